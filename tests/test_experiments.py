"""The experiment commands at toy sizes: cloud-cover subsets, sequence vs single date, gate images, report."""

import json
import re

import numpy as np
import pytest
import torch

from tests_support import ROOT


@pytest.fixture(scope="module")
def cloud_run(tmp_path_factory):
    """Two conditions of the cloud experiment on 2 + 1 scenes of 32 px, 20 dates, 1 epoch."""
    from timeseg.research.clouds import CloudExperiment, run_cloud_experiment

    folder = tmp_path_factory.mktemp("clouds")
    experiment = CloudExperiment(output=folder / "run", data_dir=folder / "data", train_scenes=2,
                                 validation_scenes=1, scene_size=32, dates=20, epochs=2, samples_per_epoch=4,
                                 patch_size=16, validation_patch_size=32, hidden_channels=4, batch_size=4,
                                 conditions=["all", "below_25"])
    return experiment, run_cloud_experiment(experiment)


def test_dates_below_keeps_the_dates_under_the_limit():
    from timeseg.research.clouds import dates_below

    cover = np.array([0.0, 0.05, 0.3, 0.9, 0.0, 0.2])
    assert dates_below(cover, None).tolist() == [0, 1, 2, 3, 4, 5]
    assert dates_below(cover, 0.25).tolist() == [0, 1, 4, 5]
    assert dates_below(cover, 0.1).tolist() == [0, 1, 4]
    assert dates_below(cover, 0.0).tolist() == [0, 4]


def test_cloud_experiment_trains_each_subset_on_its_dates_only(cloud_run):
    experiment, results = cloud_run
    saved = json.loads((experiment.output / "clouds.json").read_text())
    assert saved == json.loads(json.dumps(results))
    cover = np.array(results["date_cloud_cover"])
    every, below = results["conditions"]
    assert every["dates_used"] == 20 and every["date_indices"] == list(range(20))
    assert 0 < below["dates_used"] < 20
    assert np.all(cover[below["date_indices"]] < 0.25)
    assert below["mean_cloud_cover_of_dates"] < every["mean_cloud_cover_of_dates"]
    for condition in results["conditions"]:
        assert [h["epoch"] for h in condition["history"]] == [1, 2]
        assert 0 <= condition["final"]["accuracy"] <= 1 and "f1_class_6" in condition["final"]
        card = torch.load(experiment.output / condition["name"] / "model.pt", weights_only=True)["card"]
        assert card["sequence_length"] == condition["dates_used"]


def test_unknown_condition_is_refused(tmp_path):
    from timeseg.research.clouds import CloudExperiment, run_cloud_experiment

    with pytest.raises(ValueError, match="unknown condition.*below_50"):
        run_cloud_experiment(CloudExperiment(output=tmp_path, conditions=["below_5"]))


def test_sequence_experiment_reports_both_models_over_seeds(tmp_path):
    from timeseg.models.simulator.landscape import Cover, make_landscape
    from timeseg.models.sites import mangrove_scene_seeds
    from timeseg.research.sequence import SequenceExperiment, run_sequence_experiment

    experiment = SequenceExperiment(output=tmp_path / "run", data_dir=tmp_path / "data", seeds=[0, 1],
                                    train_scenes=1, validation_scenes=1, scene_size=64, dates=3, patch_size=64,
                                    fcn_epochs=1, sequence_epochs=1, samples_per_epoch=2, depth=1,
                                    base_channels=4, hidden_channels=2)
    results = run_sequence_experiment(experiment)
    assert results == json.loads((tmp_path / "run" / "sequence.json").read_text())
    for task in ("roads", "mangroves"):
        runs = results["tasks"][task]["runs"]
        assert [r["seed"] for r in runs] == [0, 1]
        summary = results["tasks"][task]["summary"]
        values = [r["sequence"]["iou"] - r["single_date_fcn"]["iou"] for r in runs]
        assert summary["difference"]["iou"]["mean"] == pytest.approx(np.mean(values))
        assert summary["sequence"]["accuracy"]["std"] == pytest.approx(
            np.std([r["sequence"]["accuracy"] for r in runs], ddof=1))
    assert results["tasks"]["roads"]["train_sites"] == 2  # one scene, two periods
    assert results["tasks"]["mangroves"]["train_sites"] == 1  # the last period only
    seed = results["tasks"]["mangroves"]["train_scene_seeds"][0]
    assert seed == mangrove_scene_seeds(0, 1, 64)[0]
    assert (make_landscape(64, np.random.default_rng(seed)).cover[-1] == Cover.MANGROVE).mean() >= 0.03


def test_traced_gates_reproduce_the_convlstm():
    from timeseg.models.networks import ConvLstm
    from timeseg.research.gates import trace_gates

    torch.manual_seed(0)
    lstm = ConvLstm(3, 4)
    sequence = torch.rand(1, 5, 3, 8, 8)
    forward = trace_gates(lstm, sequence)
    backward = trace_gates(lstm, sequence, reverse=True)
    with torch.no_grad():
        _, last_cell = lstm(sequence)
        _, first_cell = lstm(torch.flip(sequence, dims=[1]))
    assert forward.input.shape == (5, 4, 8, 8)
    assert np.allclose(forward.cell[-1], last_cell[0].numpy(), atol=1e-6)
    assert np.allclose(backward.cell[0], first_cell[0].numpy(), atol=1e-6)  # time order: step 0 is read last
    assert forward.input.min() >= 0 and forward.input.max() <= 1
    assert forward.modulation.min() >= -1 and forward.modulation.max() <= 1


def test_gate_closure_scores_a_gate_that_shuts_on_clouds():
    from timeseg.research.gates import GateTrace, choose_cells, gate_closure

    opacity = np.zeros((4, 6, 6), np.float32)
    opacity[1, :3] = 0.9
    opacity[3, :, 2:] = 0.5
    shut = 1.0 - (opacity > 0.1)  # cell 1: open on clear pixels, shut on clouds
    blind = np.full_like(opacity, 0.6)  # cell 0: the same everywhere
    gates = np.stack([blind, shut], axis=1)
    trace = GateTrace(gates, np.zeros_like(gates), np.zeros_like(gates))
    closure = gate_closure(trace, opacity)
    assert closure == pytest.approx([0.0, 1.0])
    assert choose_cells(trace, closure, 1) == [1]


def test_gate_command_draws_a_crop_model_and_a_road_model(cloud_run, local_model, small_scene, tmp_path):
    import matplotlib.image

    from timeseg.models.crops import region_scenes
    from timeseg.research.cli import main

    experiment, _ = cloud_run
    scene = region_scenes(experiment.data_dir, [10**6], 32, 20)[0]
    output = tmp_path / "gates.png"
    code = main(["experiment", "gates", "--checkpoint", str(experiment.output / "all" / "model.pt"),
                 "--images", *map(str, scene.image_paths), "--clouds", str(scene.clouds_path),
                 "--output", str(output), "--window", "4,4,24", "--cell-count", "3"])
    assert code == 0
    numbers = json.loads(output.with_suffix(".json").read_text())
    assert numbers["layer"] == "forward" and len(numbers["cells"]) == 3
    assert len(numbers["closure_per_cell"]) == numbers["hidden_cells"] == 4
    best = int(np.nanargmax(numbers["closure_per_cell"]))
    assert numbers["cells"][0] == best
    image = matplotlib.image.imread(output)
    assert image.shape[1] > 20 * 30  # one column per date

    # paper A's model: the first ConvLSTM layer over the FCN's maps, cells given
    road_png = tmp_path / "road_gates.png"
    code = main(["experiment", "gates", "--checkpoint", str(local_model.parent / "model.pt"),
                 "--images", *map(str, small_scene.tci_paths[2019]), "--output", str(road_png), "--cells", "1"])
    assert code == 0
    road = json.loads(road_png.with_suffix(".json").read_text())
    assert road["layer"] == "0" and road["cells"] == [1] and "closure_mean_over_cells" not in road
    assert main(["experiment", "gates", "--checkpoint", str(local_model.parent / "model.pt"), "--images",
                 *map(str, small_scene.tci_paths[2019]), "--output", str(road_png), "--cells", "9"]) == 1
    from rasterio.windows import Window

    from timeseg.core.dates import dated_rasters
    from timeseg.research.gates import write_gate_figure

    with pytest.raises(ValueError, match="is not a TimeSeg checkpoint"):
        write_gate_figure(ROOT / "README.md", dated_rasters(scene.image_paths[:3]), road_png, Window(0, 0, 16, 16))
    with pytest.raises(ValueError, match="the rasters have 13 bands, the checkpoint's model wants 3"):
        write_gate_figure(local_model.parent / "model.pt", dated_rasters(scene.image_paths[:3]), road_png,
                          Window(0, 0, 16, 16))


def test_report_tables_plots_and_make_target(cloud_run, tmp_path):
    from timeseg.research.report import EXPERIMENT_COMMANDS, write_report

    experiment, results = cloud_run
    sequence = {
        "experiment": {"fcn_epochs": 1, "sequence_epochs": 1, "dates": 5, "samples_per_epoch": 2, "patch_size": 64,
                       "depth": 1, "base_channels": 4, "hidden_channels": 2, "learning_rate": 0.003,
                       "schedule": "constant", "seeds": [0, 1]},
        "tasks": {"roads": {"train_sites": 2, "validation_sites": 2, "runs": [
            {"seed": s, "seconds": 60.0, "single_date_fcn": {"accuracy": 0.9, "iou": 0.3, "f1": 0.4},
             "sequence": {"accuracy": 0.95, "iou": 0.5 - s / 10, "f1": 0.6}} for s in (0, 1)]}},
    }
    from timeseg.research.sequence import summarise

    sequence["tasks"]["roads"]["summary"] = summarise(sequence["tasks"]["roads"]["runs"])
    (tmp_path / "sequence.json").write_text(json.dumps(sequence))
    report = write_report(tmp_path / "docs", [tmp_path / "sequence.json"], experiment.output / "clouds.json",
                          [], None, EXPERIMENT_COMMANDS)
    text = report.read_text()
    assert "| roads | difference | +0.0500 ± 0.0000 | +0.1500 ± 0.0707 |" in text
    assert "in accuracy in 2 of 2 seeds, in IoU in 2 and in F1 in 2" in text and "**supported**" in text
    for condition in results["conditions"]:
        assert f"{condition['final']['accuracy']:.4f}" in text
    for name in ("sequence_vs_single.png", "clouds_accuracy.png", "clouds_f1.png", "clouds.json"):
        assert (tmp_path / "docs" / "experiments" / name).stat().st_size > 1000

    # `make experiments` runs exactly the commands the report cites
    makefile = (ROOT / "Makefile").read_text()
    target = makefile.split("\nexperiments:", 1)[1].split("\n\n", 1)[0]
    gate_scene = re.search(r"^GATE_SCENE := (.+)$", makefile, re.M).group(1)
    lines = target.replace("\\\n", " ").splitlines()[1:]
    made = [re.sub(r"\s+", " ", line.strip().replace("$(RESEARCH)", "timeseg-research")
                   .replace("$(GATE_SCENE)", gate_scene)) for line in lines]
    assert made == EXPERIMENT_COMMANDS


def test_cloud_experiment_on_your_own_rasters_and_cloud_cover(cloud_run, tmp_path):
    from timeseg.models.crops import region_scenes
    from timeseg.research.cli import main
    from timeseg.research.clouds import read_cloud_cover

    experiment, _ = cloud_run
    train, held_out = region_scenes(experiment.data_dir, [0, 10**6], 32, 20)
    table = tmp_path / "cover.csv"
    table.write_text("date,cloud_cover\n" + "".join(
        f"{a.date},{c:.3f}\n" for a, c in zip(train.acquisitions, train.measured_cloud_cover)))
    assert len(read_cloud_cover(table)) == 20
    base = ["experiment", "clouds", "--output", str(tmp_path / "run"), "--epochs", "1", "--samples-per-epoch", "4",
            "--patch-size", "16", "--hidden-channels", "2", "--conditions", "all,below_10",
            "--images", *map(str, train.image_paths), "--labels", str(train.labels_path),
            "--validation-images", *map(str, held_out.image_paths), "--validation-labels", str(held_out.labels_path)]
    assert main([*base, "--cloud-cover", str(table)]) == 1  # class names missing: refused before training
    names = "other,meadow,winter_cereal,spring_cereal,maize,rapeseed,sugar_beet"
    assert main([*base, "--cloud-cover", str(table), "--class-names", names]) == 0
    results = json.loads((tmp_path / "run" / "clouds.json").read_text())
    every, clear = results["conditions"]
    assert results["data"].startswith("user data: 20 dates")
    assert every["dates_used"] == 20 and clear["dates_used"] == int((np.array(train.measured_cloud_cover) < 0.1).sum())
    card = torch.load(tmp_path / "run" / "below_10" / "model.pt", weights_only=True)["card"]
    assert card["bands"] == [f"band{i}" for i in range(1, 14)] and card["class_names"] == names.split(",")

    table.write_text("2016-01-01,0.2\n")
    assert main([*base, "--cloud-cover", str(table), "--class-names", names]) == 1
    with pytest.raises(ValueError, match="gives no cloud cover for"):
        from timeseg.research.clouds import user_cloud_data

        user_cloud_data(train.image_paths, train.labels_path, held_out.image_paths, held_out.labels_path, table,
                        names.split(","), None, 1e-4)
    table.write_text("2016-01-01,20\n")
    with pytest.raises(ValueError, match="not a share between 0 and 1"):
        read_cloud_cover(table)
