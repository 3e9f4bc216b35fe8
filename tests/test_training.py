"""A few training steps lower the loss; a tiny run writes checkpoints that load safely."""

import json

import numpy as np
import pytest
import rasterio
import torch

from timeseg.models.checkpoint import load_checkpoint, save_checkpoint
from timeseg.models.networks import BiConvLstmClassifier, JointLoss, UNet
from timeseg.models.networks.unet import probabilities_from_logits
from timeseg.models.settings import NetworkConfig, TrainOptions
from timeseg.models.sites import simulated_sites
from timeseg.models.training import autocast, averaged_weights, compute_precision, learning_rate_schedule, train


@pytest.mark.parametrize("name", ["unet", "biconvlstm"])
def test_a_few_adam_steps_lower_the_loss(name):
    torch.manual_seed(0)
    images = torch.rand(2, 3, 3, 16, 16)
    if name == "unet":  # one date; roads are the pixels whose first band is bright
        net, inputs, labels, ratio = UNet(3, 1, 2, 8), images[:, -1], (images[:, -1, 0] > 0.6).long(), 0.5
    else:  # three classes from the mean of the sequence
        net, inputs, ratio = BiConvLstmClassifier(3, 3, 8), images, 0.75
        labels = (images[:, :, 0].mean(1) * 3).long().clamp(0, 2)
    loss_fn = JointLoss(0.7)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = loss_fn(net(inputs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < ratio * losses[0]


def test_paper_schedule_steps_down_by_ten_twice():
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = learning_rate_schedule(optimizer, epochs=6, schedule="paper")
    rates = []
    for _ in range(6):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])


def test_cosine_schedule_goes_from_the_base_rate_down_to_a_hundredth():
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = learning_rate_schedule(optimizer, epochs=4, schedule="cosine")
    rates = []
    for _ in range(5):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    # 0.001 + 0.099 * (1 + cos(pi * epoch / 4)) / 2
    assert rates == pytest.approx([0.1, 0.08550, 0.0505, 0.01550, 0.001], abs=1e-5)


def test_bf16_training_keeps_float32_weights_and_probabilities(tmp_path):
    options = TrainOptions(output=tmp_path, train_precision="bf16")
    assert compute_precision(options) == "bf16"
    assert compute_precision(TrainOptions(output=tmp_path)) == "fp32"
    assert compute_precision(TrainOptions(output=tmp_path, train_precision="auto")) in ("fp32", "bf16")
    net = UNet(3, 1, 2, 8)
    images = torch.rand(2, 3, 16, 16)
    with autocast(options):
        logits = net.logits(images)
        probabilities = net(images)
    assert logits.dtype == torch.bfloat16  # the convolutions ran in bf16
    assert probabilities.dtype == torch.float32
    assert probabilities_from_logits(logits).dtype == torch.float32
    # the same network in float32 gives nearly the same map: bf16 keeps 8 bits of mantissa
    assert (net(images) - probabilities).abs().max() < 0.02
    loss = JointLoss(0.7)(probabilities, (images[:, 0] > 0.6).long())
    loss.backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in net.parameters())


def test_bf16_on_a_cpu_that_emulates_it_is_warned_of_and_auto_picks_fp32(tmp_path, monkeypatch, caplog):
    """Without native bf16 (an AVX2 CPU) torch emulates it, about 40x slower than float32 here."""
    from timeseg.models import training

    monkeypatch.setattr(training, "native_bf16", lambda device: False)
    assert compute_precision(TrainOptions(output=tmp_path, train_precision="auto")) == "fp32"
    with caplog.at_level("WARNING", logger="timeseg.train"):
        training._start(TrainOptions(output=tmp_path / "bf16", train_precision="bf16"), "fcn_convlstm")
    assert [r.getMessage() for r in caplog.records] == [
        "this CPU has no native bf16, so --train-precision bf16 runs many times slower than fp32: "
        "use --train-precision auto or fp32"]
    caplog.clear()
    with caplog.at_level("WARNING", logger="timeseg.train"):
        training._start(TrainOptions(output=tmp_path / "fp32"), "fcn_convlstm")
    assert caplog.records == []


def test_averaged_weights_are_lent_to_the_network_and_given_back():
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    network = UNet(3, 1, 2, 4)
    averaged = AveragedModel(network, multi_avg_fn=get_ema_multi_avg_fn(0.75), use_buffers=True)
    averaged.update_parameters(network)  # the first update copies
    before = {k: v.clone() for k, v in network.state_dict().items()}
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.add_(1.0)
    averaged.update_parameters(network)  # 0.75 * before + 0.25 * (before + 1)
    own = {k: v.clone() for k, v in network.state_dict().items()}
    with averaged_weights(network, averaged):
        inside = network.state_dict()
        assert all(torch.allclose(inside[k], before[k] + 0.25) for k, _ in network.named_parameters())
    after = network.state_dict()
    assert all(torch.equal(after[k], own[k]) for k in own)
    with averaged_weights(network, None):  # no average: the network's own weights
        assert all(torch.equal(network.state_dict()[k], own[k]) for k in own)


def test_a_stage_with_moving_average_keeps_the_average_not_the_last_step(tmp_path):
    """With a decay of 0.9999 the average of two steps is the first step's weights (to 1e-4 of
    the second step): the kept checkpoint equals that of the same run stopped after one step
    (a zero time cap ends the stage after its first batch), not that of the raw two steps."""
    from dataclasses import replace

    from timeseg.models.training import TrainingMonitor

    sites = simulated_sites(tmp_path / "data", [1], size=64, dates_per_period=1)
    raw = TrainOptions(output=tmp_path / "raw", network=NetworkConfig(depth=2, base_channels=4, hidden_channels=2),
                       patch_size=32, sequence_length=1, batch_size=4, fcn_epochs=1, sequence_epochs=0,
                       samples_per_epoch=8, seed=3, learning_rate=1e-2)
    runs = {"one_step": (raw, TrainingMonitor(stage_seconds={"fcn": 0})),
            "two_steps": (replace(raw, output=tmp_path / "two"), None),
            "two_steps_averaged": (replace(raw, output=tmp_path / "averaged", ema_decay=0.9999), None)}
    kept = {}
    for name, (options, monitor) in runs.items():
        train(options, sites, sites, monitor=monitor)
        kept[name] = torch.load(options.output / "fcn_best.pt", weights_only=True)["state_dict"]
    names = [k for k in kept["one_step"] if k.startswith("fcn.")]
    assert not all(torch.allclose(kept["one_step"][k], kept["two_steps"][k], atol=1e-4) for k in names)
    assert all(torch.allclose(kept["one_step"][k], kept["two_steps_averaged"][k], atol=1e-4) for k in names)


@pytest.fixture
def start_never_kept(monkeypatch):
    """A stage's start from ``--init`` scored below every epoch, so that each stage keeps trained weights:
    for the tests that ask which parts a stage moves, not which epoch it keeps (the tiny networks' epochs
    often score no better than their start, which would then be kept)."""
    import timeseg.models.training as training

    monkeypatch.setattr(training, "_start_scores", lambda *args: {"accuracy": 0.0, "iou": -1.0, "f1": 0.0})


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train")
    train_sites = simulated_sites(folder / "data", [1, 2], size=64, dates_per_period=3)
    val_sites = simulated_sites(folder / "data", [900], size=64, dates_per_period=3)
    options = TrainOptions(output=folder / "run", network=NetworkConfig(depth=2, base_channels=4, hidden_channels=2),
                           patch_size=32, sequence_length=3, batch_size=4, fcn_epochs=2, sequence_epochs=1,
                           joint_epochs=1, samples_per_epoch=8, seed=5, trained_on="test")
    return options, train(options, train_sites, val_sites)


def test_training_writes_checkpoints_metrics_and_history(tiny_run):
    options, final = tiny_run
    for name in ("fcn_best.pt", "sequence_best.pt", "joint_best.pt", "model.pt", "history.json"):
        assert (options.output / name).is_file()
    for model in ("single_date_fcn", "sequence"):
        assert 0 <= final[model]["accuracy"] <= 1 and 0 <= final[model]["iou"] <= 1
    history = json.loads((options.output / "history.json").read_text())["history"]
    assert [(h["stage"], h["epoch"]) for h in history] == [("fcn", 1), ("fcn", 2), ("sequence", 1), ("joint", 1)]
    # each epoch's time since its stage began (what a time-limited run's progress reads)
    assert 0 < history[0]["seconds"] <= history[1]["seconds"] and history[2]["seconds"] > 0
    # weights_only loading (no pickled code) and the card travels with the checkpoint
    checkpoint = torch.load(options.output / "model.pt", weights_only=True)
    assert checkpoint["card"]["class_names"] == ["background", "road"]
    assert checkpoint["card"]["metrics"]["sequence"] == final["sequence"]
    network, config, _ = load_checkpoint(options.output / "model.pt")
    assert config.base_channels == 4
    assert network(torch.rand(1, 2, 3, 24, 24)).shape == (1, 1, 24, 24)


def test_training_is_deterministic_with_a_seed(tiny_run, tmp_path):
    options, final = tiny_run
    from dataclasses import replace

    data = options.output.parent / "data"
    again = train(replace(options, output=tmp_path / "again"), simulated_sites(data, [1, 2], 64, 3),
                  simulated_sites(data, [900], 64, 3))
    assert again["sequence"] == final["sequence"]
    first = torch.load(options.output / "model.pt", weights_only=True)["state_dict"]
    second = torch.load(tmp_path / "again" / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_a_stage_choosing_on_strips_scores_the_validation_scenes_sparsely_with_the_same_result(
        tiny_run, tmp_path, monkeypatch):
    """With selection strips, a stage scores the validation scenes every ``VALIDATION_EVERY`` epochs
    and on its last, and its kept epoch afterwards: the same weights, the same kept epoch and the
    same metrics in its checkpoint as scoring them after every epoch."""
    from dataclasses import replace

    import timeseg.models.training as training

    options, _ = tiny_run
    data = options.output.parent / "data"
    train_sites, strips = simulated_sites(data, [1, 2], 64, 3), simulated_sites(data, [900], 64, 3)
    kept, histories = {}, {}
    for every in (1, 2):
        monkeypatch.setattr(training, "VALIDATION_EVERY", every)
        run = replace(options, output=tmp_path / str(every), fcn_epochs=3, sequence_epochs=0, joint_epochs=0,
                      ema_decay=0.9)
        train(run, train_sites, train_sites[:1], selection_sites=strips)
        kept[every] = torch.load(run.output / "fcn_best.pt", weights_only=True)
        histories[every] = json.loads((run.output / "history.json").read_text())["history"]
    assert [("iou" in r) for r in histories[1]] == [True, True, True]
    assert [("iou" in r) for r in histories[2]] == [False, True, True]
    assert [r["selection_iou"] for r in histories[1]] == [r["selection_iou"] for r in histories[2]]
    assert kept[1]["epoch"] == kept[2]["epoch"]
    assert "iou" not in histories[2][kept[2]["epoch"] - 1]  # the kept epoch was scored after the stage
    assert kept[1]["metrics"] == kept[2]["metrics"] and 0 <= kept[2]["metrics"]["iou"] <= 1
    assert all(torch.equal(kept[1]["state_dict"][k], kept[2]["state_dict"][k]) for k in kept[1]["state_dict"])


def test_the_frozen_fcn_keeps_its_batch_normalisation_statistics_in_the_sequence_stage(tiny_run, tmp_path):
    """``--batch-norm``: the sequence stage reads the FCN it froze as the exported model will run it
    (running statistics) and leaves those statistics as the single-date stage chose them."""
    from dataclasses import replace

    options, _ = tiny_run
    data = options.output.parent / "data"
    run = replace(options, output=tmp_path / "bn", network=replace(options.network, batch_norm=True), fcn_epochs=1,
                  sequence_epochs=1, joint_epochs=0)
    train(run, simulated_sites(data, [1, 2], 64, 3), simulated_sites(data, [900], 64, 3))
    single = torch.load(run.output / "fcn_best.pt", weights_only=True)["state_dict"]
    sequence = torch.load(run.output / "sequence_best.pt", weights_only=True)["state_dict"]
    statistics = [k for k in single if k.startswith("fcn.") and k.endswith(("running_mean", "running_var"))]
    assert statistics and all(torch.equal(single[k], sequence[k]) for k in statistics)
    assert not all(torch.equal(single[k], sequence[k]) for k in sequence if k.startswith("lstms."))


def test_frozen_statistics_keep_the_starting_statistics_while_the_weights_learn(tiny_run, tmp_path, start_never_kept):
    """``frozen_statistics`` (what fitting a trained model to one area asks): every stage normalises with the
    running statistics of ``--init`` and leaves them as they were, while the convolutions still learn; without
    it the single-date stage moves them to its patches'."""
    from dataclasses import replace

    options, _ = tiny_run
    data = options.output.parent / "data"
    sites = simulated_sites(data, [1, 2], 64, 3), simulated_sites(data, [900], 64, 3)
    start = replace(options, output=tmp_path / "start", network=replace(options.network, batch_norm=True),
                    fcn_epochs=1, sequence_epochs=1, joint_epochs=0)
    train(start, *sites)
    before = torch.load(start.output / "model.pt", weights_only=True)["state_dict"]
    statistics = [k for k in before if k.endswith(("running_mean", "running_var"))]
    after = {}
    for frozen in (True, False):
        run = replace(start, output=tmp_path / f"frozen_{frozen}", init_checkpoint=start.output / "model.pt",
                      frozen_statistics=frozen, fcn_epochs=2, joint_epochs=1, seed=6)
        train(run, simulated_sites(data, [3], 64, 3), sites[1])  # another place than the start's
        after[frozen] = torch.load(run.output / "model.pt", weights_only=True)["state_dict"]
    assert statistics and all(torch.equal(before[k], after[True][k]) for k in statistics)
    assert not all(torch.equal(before[k], after[False][k]) for k in statistics)
    weights = [k for k in before if k.startswith("fcn.") and k.endswith("weight")]
    assert not all(torch.equal(before[k], after[True][k]) for k in weights)


def test_a_stage_refuses_a_checkpoint_whose_unet_is_laid_out_otherwise(tiny_run, tmp_path):
    """``--init`` with an FCN trained ``--batch-norm`` but a stage that leaves it out: the convolutions
    after the first would not fit by name and the FCN would start half random; the stage says which
    option differs instead. The same options start it from every weight."""
    from dataclasses import replace

    from timeseg.models.training import _start

    options, _ = tiny_run
    normalised = replace(options.network, batch_norm=True)
    network, _, _ = _start(replace(options, network=normalised, output=tmp_path / "bn"), "fcn_convlstm")
    with torch.no_grad():  # unlike the fresh network a run of the same seed starts from
        for parameter in network.parameters():
            parameter.add_(0.5)
    save_checkpoint(tmp_path / "bn.pt", network, normalised, {}, stage="fcn", epoch=1, metrics={})
    with pytest.raises(ValueError, match="batch_norm True, this run asks for batch_norm False.*--batch-norm"):
        _start(replace(options, output=tmp_path / "plain", init_checkpoint=tmp_path / "bn.pt"), "fcn_convlstm")
    started, _, _ = _start(replace(options, network=normalised, output=tmp_path / "again",
                                   init_checkpoint=tmp_path / "bn.pt"), "fcn_convlstm")
    assert all(torch.equal(a, b) for a, b in zip(started.state_dict().values(), network.state_dict().values()))


def test_train_and_export_on_user_rasters_from_the_command_line(small_scene, tmp_path, capsys):
    from timeseg.cli import main
    from timeseg.core.model_card import read_model_card
    from timeseg.models.simulator import simulate_scene

    held_out = simulate_scene(tmp_path / "held_out", seed=77, size=64, dates_per_period=3)
    common = ["--label-kind", "lines", "--label-layer", "roads_2019", "--depth", "2", "--base-channels", "4",
              "--hidden-channels", "2", "--patch-size", "32", "--sequence-length", "3", "--batch-size", "2",
              "--fcn-epochs", "1", "--sequence-epochs", "1", "--samples-per-epoch", "4"]
    code = main(["train", "--output", str(tmp_path / "run"), "--images", *map(str, small_scene.tci_paths[2019]),
                 "--labels", str(small_scene.labels_path), "--validation-images",
                 *map(str, held_out.tci_paths[2019]), "--validation-labels", str(held_out.labels_path), *common])
    assert code == 0, capsys.readouterr().err
    assert "single_date_fcn" in capsys.readouterr().out
    assert main(["export", str(tmp_path / "run" / "model.pt"), "--output", str(tmp_path / "mine.onnx")]) == 0
    card = read_model_card(tmp_path / "mine.onnx")
    names = ", ".join(path.name for path in small_scene.tci_paths[2019][:3])
    assert card.trained_on == f"user data: 3 dates ({names})"  # named, not by their folder ("of .")
    assert main(["export", str(tmp_path / "run" / "model.pt"), "--output", str(tmp_path / "mine.txt")]) == 1
    assert "name the model mine.onnx (.onnx)" in capsys.readouterr().err and not (tmp_path / "mine.txt").exists()
    # the place no model is trained on is scored only beside the held-out areas: refused in one line, nothing written
    assert main(["export", str(tmp_path / "run" / "model.pt"), "--output", str(tmp_path / "other.onnx"),
                 "--unseen-place"]) == 1
    assert "--real-labels" in capsys.readouterr().err and not (tmp_path / "other.onnx").exists()
    # without a held-out site the command refuses, in one line
    assert main(["train", "--output", str(tmp_path / "bad"), "--images", str(small_scene.tci_paths[2019][0]),
                 "--labels", str(small_scene.labels_path)]) == 1
    assert "--validation-images" in capsys.readouterr().err


def test_real_patches_are_shared_by_area_or_equally_per_scene():
    from timeseg.models.real_scene import training_site_weights

    by_area = training_site_weights(4, [300, 100], 0.8)
    assert by_area == pytest.approx([0.05] * 4 + [0.6, 0.2])
    per_scene = training_site_weights(4, [300, 100], 0.8, "scene")
    assert per_scene == pytest.approx([0.05] * 4 + [0.4, 0.4])
    assert sum(per_scene) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="weighted per one of area, scene"):
        training_site_weights(4, [300, 100], 0.8, "pixels")


def test_real_scenes_join_the_training_sites_by_area(small_scene, tmp_path, capsys):
    from timeseg.cli import main
    from timeseg.models.real_scene import REAL_SCENES

    common = ["--label-kind", "lines", "--label-layer", "roads_2019", "--depth", "2", "--base-channels", "4",
              "--hidden-channels", "2", "--patch-size", "32", "--sequence-length", "2", "--batch-size", "2",
              "--fcn-epochs", "1", "--sequence-epochs", "0", "--samples-per-epoch", "4",
              "--images", *map(str, small_scene.tci_paths[2019]), "--labels", str(small_scene.labels_path),
              "--validation-images", *map(str, small_scene.tci_paths[2016]),
              "--validation-labels", str(small_scene.labels_path)]
    labels = [str(scene.labels) for scene in REAL_SCENES]
    assert main(["train", "--output", str(tmp_path / "run"), "--real-labels", *labels, "--real-share", "0.6",
                 *common]) == 0, capsys.readouterr().err
    card = torch.load(tmp_path / "run" / "model.pt", weights_only=True)["card"]
    assert all(scene.labels.name in card["trained_on"] for scene in REAL_SCENES)
    assert "60% of the training patches, by area" in card["trained_on"]
    for scene in REAL_SCENES:  # the training crops hold the train area only
        with rasterio.open(tmp_path / "run" / "real" / f"{scene.image.stem}_train.tif") as crop:
            assert crop.width * crop.height < 0.8 * np.prod(rasterio.open(scene.image).shape)
    # one image cannot go with two GeoPackages
    assert main(["train", "--output", str(tmp_path / "bad"), "--real-labels", *labels, "--real-image",
                 str(REAL_SCENES[0].image), *common]) == 1
    assert "--real-image goes with one" in capsys.readouterr().err


def test_a_gate_added_to_a_trained_convlstm_starts_open_and_chooses_on_one_date_too(tiny_run, tmp_path):
    """``--date-gate --init <a trained sequence model>``: the new gate takes in 0.95 of every date, so
    the network starts near the model it came from (from a single-date stage's checkpoint, whose
    ConvLSTM never trained, it starts undecided at 0.5); a gated stage's selection score is the mean
    of the strips as given and of their last date alone."""
    from dataclasses import replace

    from timeseg.models.training import _start

    options, _ = tiny_run
    gated = replace(options.network, date_gate=True)
    images = torch.rand(2, 3, 3, 32, 32)
    started = {}
    for stage in ("model", "fcn_best"):
        network, _, _ = _start(replace(options, network=gated, output=tmp_path / stage,
                                       init_checkpoint=options.output / f"{stage}.pt"), "fcn_convlstm")
        with torch.no_grad():
            started[stage] = (network.eval().date_steps(images)[:, :, -1], network(images))
    torch.testing.assert_close(started["model"][0], torch.full_like(started["model"][0], 0.95))
    assert 0.3 < float(started["fcn_best"][0].mean()) < 0.7
    trained, _, _ = load_checkpoint(options.output / "model.pt")
    with torch.no_grad():
        difference = (started["model"][1] - trained(images)).abs().max()
    assert 0 < float(difference) < 0.02

    sites = simulated_sites(tmp_path / "data", [1], size=64, dates_per_period=3)
    run = replace(options, network=gated, output=tmp_path / "gated", fcn_epochs=1, sequence_epochs=1, joint_epochs=0)
    train(run, sites, sites, selection_sites=sites)
    history = json.loads((run.output / "history.json").read_text())["history"]
    record = [r for r in history if r["stage"] == "sequence"][0]
    assert 0 <= record["selection_iou_one_date"] <= 1
    assert record["selection_iou"] == pytest.approx((record["iou"] + record["selection_iou_one_date"]) / 2)


def test_one_date_selection_strips_are_scored_once_per_date_with_the_same_iou(tmp_path):
    """A real scene's selection strips hold one date; the single-date stage scores it once, not five
    times over (the length the sequence stage gives it), and gets the same IoU."""
    from timeseg.core.normalisation import Normalisation
    from timeseg.models.dataset import OpenSite
    from timeseg.models.training import evaluate, selection_patches

    torch.manual_seed(0)
    sites = simulated_sites(tmp_path / "data", [1], size=64, dates_per_period=1)
    options = TrainOptions(output=tmp_path, patch_size=32, sequence_length=5, batch_size=4)
    network = UNet(3, 1, 2, 4).eval()
    with OpenSite(sites[0]) as site:
        normalisation = Normalisation(1 / 255)
        once = selection_patches([site], options, normalisation, per_date=True)
        repeated = selection_patches([site], options, normalisation, per_date=False)
        assert next(iter(once))["images"].shape[1] == 1 and next(iter(repeated))["images"].shape[1] == 5
        with torch.no_grad():  # a random network: call the brighter half of its map road
            median = float(network(next(iter(once))["images"].flatten(0, 1)).median())
        scores = [evaluate(lambda x: network(x.flatten(0, 1)), loader, 2, "cpu", True, median)
                  for loader in (once, repeated)]
    assert scores[0]["iou"] == pytest.approx(scores[1]["iou"], abs=1e-9) and scores[0]["iou"] > 0


def test_gate_only_trains_the_gate_alone_and_asks_for_a_gate(tiny_run, tmp_path, start_never_kept):
    """``--date-gate --gate-only --init <a trained sequence model>``: the sequence stage moves the
    gate's weights and nothing else; without ``--date-gate`` it is refused before anything is written."""
    from dataclasses import replace

    options, _ = tiny_run
    sites = simulated_sites(tmp_path / "data", [1], size=64, dates_per_period=3)
    run = replace(options, network=replace(options.network, date_gate=True), output=tmp_path / "gate_only",
                  init_checkpoint=options.output / "model.pt", fcn_epochs=0, sequence_epochs=1, joint_epochs=0,
                  gate_only=True, learning_rate=0.05)
    train(run, sites, sites)
    before = torch.load(options.output / "model.pt", weights_only=True)["state_dict"]
    after = torch.load(run.output / "model.pt", weights_only=True)["state_dict"]
    kept = [name for name in after if not name.startswith("gate.")]
    assert kept == list(before) and all(torch.equal(before[name], after[name]) for name in kept)
    assert float(after["gate.layers.2.weight"].abs().sum()) > 0  # moved: a gate starting open starts at 0

    with pytest.raises(ValueError, match="--gate-only trains the date gate alone: give --date-gate too"):
        train(replace(run, network=options.network, output=tmp_path / "refused"), sites, sites)
    assert not (tmp_path / "refused").exists()


def test_head_only_trains_the_head_alone(tiny_run, tmp_path, start_never_kept):
    """``--head-only --init <a trained sequence model>``: the sequence stage moves the 1x1 head and
    nothing else (make model's recalibration after the gate); with ``--gate-only`` it is refused."""
    from dataclasses import replace

    options, _ = tiny_run
    sites = simulated_sites(tmp_path / "data", [1], size=64, dates_per_period=3)
    run = replace(options, output=tmp_path / "head_only", init_checkpoint=options.output / "model.pt",
                  fcn_epochs=0, sequence_epochs=1, joint_epochs=0, head_only=True, learning_rate=0.05)
    train(run, sites, sites)
    before = torch.load(options.output / "model.pt", weights_only=True)["state_dict"]
    after = torch.load(run.output / "model.pt", weights_only=True)["state_dict"]
    assert list(after) == list(before)
    moved = [name for name in after if not torch.equal(before[name], after[name])]
    assert moved == ["head.weight", "head.bias"]

    both = replace(run, network=replace(options.network, date_gate=True), gate_only=True, output=tmp_path / "both")
    with pytest.raises(ValueError, match="--gate-only and --head-only each train one part alone"):
        train(both, sites, sites)
    assert not (tmp_path / "both").exists()


def test_a_stage_with_patience_stops_after_that_many_epochs_without_a_better_score(tiny_run, tmp_path):
    """At a learning rate of 0 every epoch scores as the first: with a patience of 2 the stage stops
    after its third epoch of 6 and keeps its first; with a patience of 0 all 6 run."""
    from dataclasses import replace

    options, _ = tiny_run
    data = options.output.parent / "data"
    train_sites, strips = simulated_sites(data, [1, 2], 64, 3), simulated_sites(data, [900], 64, 3)
    epochs_run = {}
    for patience in (0, 2):
        run = replace(options, output=tmp_path / str(patience), fcn_epochs=6, sequence_epochs=0, joint_epochs=0,
                      learning_rate=0.0, patience=patience)
        train(run, train_sites, train_sites[:1], selection_sites=strips)
        history = json.loads((run.output / "history.json").read_text())["history"]
        epochs_run[patience] = [r["epoch"] for r in history]
        assert len({r["selection_iou"] for r in history}) == 1
        assert torch.load(run.output / "fcn_best.pt", weights_only=True)["epoch"] == 1
    assert epochs_run == {0: [1, 2, 3, 4, 5, 6], 2: [1, 2, 3]}


def test_a_stage_keeps_no_epoch_of_its_warm_up_and_counts_its_patience_after_it(tiny_run, tmp_path):
    """At a learning rate of 0 every epoch scores alike: with 3 warm-up epochs and a patience of 2 the
    stage keeps its fourth epoch and stops after its sixth of 8; a warm-up as long as the stage keeps
    its last epoch."""
    from dataclasses import replace

    options, _ = tiny_run
    data = options.output.parent / "data"
    train_sites, strips = simulated_sites(data, [1, 2], 64, 3), simulated_sites(data, [900], 64, 3)
    for warmup, epochs, ran, kept in ((3, 8, 6, 4), (10, 3, 3, 3)):
        run = replace(options, output=tmp_path / str(warmup), fcn_epochs=epochs, sequence_epochs=0, joint_epochs=0,
                      learning_rate=0.0, patience=2, warmup_epochs=warmup)
        train(run, train_sites, train_sites[:1], selection_sites=strips)
        history = json.loads((run.output / "history.json").read_text())["history"]
        assert [r["epoch"] for r in history] == list(range(1, ran + 1))
        assert torch.load(run.output / "fcn_best.pt", weights_only=True)["epoch"] == kept


def test_head_only_learns_from_the_labels_alone_not_from_the_overcast_contract(tiny_run, tmp_path, monkeypatch):
    """With weather (overcast dates in every batch) the sequence stage adds the overcast contract to its
    loss; the head alone cannot shut a date, so ``--head-only`` trains on the label loss only (with the
    contract, a gate open on white dates let it saturate P on every pixel)."""
    from dataclasses import replace

    import timeseg.models.training as training

    def contract(*args, **kwargs):
        raise AssertionError("the overcast contract was computed")

    monkeypatch.setattr(training, "overcast_contract_loss", contract)
    options, _ = tiny_run
    sites = simulated_sites(tmp_path / "data", [1], size=64, dates_per_period=3)
    run = replace(options, output=tmp_path / "head_only", init_checkpoint=options.output / "model.pt",
                  fcn_epochs=0, sequence_epochs=1, joint_epochs=0, head_only=True, weather=True)
    train(run, sites, sites)
    assert (run.output / "model.pt").is_file()
    with pytest.raises(AssertionError, match="the overcast contract was computed"):
        train(replace(run, head_only=False, output=tmp_path / "whole"), sites, sites)


def test_a_stage_from_a_checkpoint_scores_its_start_and_keeps_it_when_no_epoch_beats_it(
        tiny_run, tmp_path, monkeypatch, caplog):
    """Started from a trained checkpoint and choosing on selection strips, a stage scores its start as
    epoch 0 and an epoch must beat it: with its start scored above every epoch the stage keeps the
    checkpoint's own weights and says so; with its start scored below, the same training keeps moved
    weights. The scores are set here (the tiny network scores 0 everywhere), the training is real."""
    from dataclasses import replace

    import timeseg.models.training as training

    options, _ = tiny_run
    data = options.output.parent / "data"
    train_sites, strips = simulated_sites(data, [1, 2], 64, 3), simulated_sites(data, [900], 64, 3)
    start = torch.load(options.output / "model.pt", weights_only=True)["state_dict"]
    measured = training._selection_scores
    kept = {}
    for start_score in (1.0, -1.0):
        calls = []

        def scores(*args, start_score=start_score, calls=calls):
            calls.append(1)
            return {"selection_iou": start_score} if len(calls) == 1 else measured(*args)

        monkeypatch.setattr(training, "_selection_scores", scores)
        run = replace(options, output=tmp_path / str(start_score), init_checkpoint=options.output / "model.pt",
                      fcn_epochs=0, sequence_epochs=2, joint_epochs=0, head_only=True, learning_rate=0.05)
        caplog.clear()
        with caplog.at_level("WARNING", logger="timeseg.train"):
            train(run, train_sites, train_sites[:1], selection_sites=strips)
        history = json.loads((run.output / "history.json").read_text())["history"]
        assert [r["epoch"] for r in history] == [0, 1, 2] and "loss" not in history[0]
        assert history[0]["selection_iou"] == start_score
        kept[start_score] = torch.load(run.output / "sequence_best.pt", weights_only=True)
        final = torch.load(run.output / "model.pt", weights_only=True)["state_dict"]
        same = all(torch.equal(start[name], final[name]) for name in start)
        assert same == (start_score == 1.0)
        warned = "sequence: no epoch scored above the stage's start" in caplog.text
        assert warned == (start_score == 1.0)
    assert kept[1.0]["epoch"] == 0 and 0 <= kept[1.0]["metrics"]["iou"] <= 1
    assert kept[-1.0]["epoch"] in (1, 2)


def test_without_strips_a_stage_from_a_checkpoint_scores_its_start_on_the_validation_scenes(
        tiny_run, tmp_path, monkeypatch):
    """Without selection strips (a fit to an analyst's area: its validation part) a stage started from a
    trained checkpoint scores its start on the validation scenes as epoch 0, keeps it when no epoch beats
    it, and history.json says which epoch each stage kept. The start's IoU is set here, the training is real."""
    from dataclasses import replace

    import timeseg.models.training as training

    options, _ = tiny_run
    data = options.output.parent / "data"
    train_sites, val_sites = simulated_sites(data, [1, 2], 64, 3), simulated_sites(data, [900], 64, 3)
    start = torch.load(options.output / "model.pt", weights_only=True)["state_dict"]
    measured = training.evaluate
    for start_iou in (1.0, -1.0):
        calls = []

        def scores(*args, start_iou=start_iou, calls=calls, **kwargs):
            calls.append(1)
            metrics = measured(*args, **kwargs)
            return {**metrics, "iou": start_iou} if len(calls) == 1 else metrics

        monkeypatch.setattr(training, "evaluate", scores)
        run = replace(options, output=tmp_path / str(start_iou), init_checkpoint=options.output / "model.pt",
                      fcn_epochs=0, sequence_epochs=2, joint_epochs=0, head_only=True, learning_rate=0.05)
        train(run, train_sites, val_sites)
        summary = json.loads((run.output / "history.json").read_text())
        history = summary["history"]
        assert [r["epoch"] for r in history] == [0, 1, 2] and "loss" not in history[0]
        assert history[0]["iou"] == start_iou and 0 <= history[0]["f1"] <= 1
        final = torch.load(run.output / "model.pt", weights_only=True)["state_dict"]
        same = all(torch.equal(start[name], final[name]) for name in start)
        assert same == (start_iou == 1.0)
        kept = summary["kept_epochs"]["sequence"]
        assert kept == 0 if start_iou == 1.0 else kept in (1, 2)


def test_a_gate_trained_alone_keeps_its_latest_epoch_that_beats_its_start(tiny_run, tmp_path, monkeypatch):
    """Strips scored 0.5 at the start, then 0.9, 0.6 and 0.4 (set here; the training is real): a date gate
    trained alone keeps epoch 2, the latest above its start (it learns the overcast contract, which the
    strips do not measure); a head trained alone keeps epoch 1, its best."""
    from dataclasses import replace

    import timeseg.models.training as training

    options, _ = tiny_run
    data = options.output.parent / "data"
    train_sites, strips = simulated_sites(data, [1, 2], 64, 3), simulated_sites(data, [900], 64, 3)
    set_scores = [0.5, 0.9, 0.6, 0.4]
    for part, kept_epoch in (("gate_only", 2), ("head_only", 1)):
        calls = []

        def scores(*_args, calls=calls):
            calls.append(1)
            return {"selection_iou": set_scores[len(calls) - 1]}

        monkeypatch.setattr(training, "_selection_scores", scores)
        run = replace(options, network=replace(options.network, date_gate=True), output=tmp_path / part,
                      init_checkpoint=options.output / "model.pt", fcn_epochs=0, sequence_epochs=3, joint_epochs=0,
                      **{part: True})
        train(run, train_sites, train_sites[:1], selection_sites=strips)
        assert len(calls) == 4
        assert torch.load(run.output / "sequence_best.pt", weights_only=True)["epoch"] == kept_epoch


def test_a_stage_from_scratch_does_not_score_its_random_start(tiny_run, tmp_path):
    from dataclasses import replace

    options, _ = tiny_run
    data = options.output.parent / "data"
    train_sites, strips = simulated_sites(data, [1, 2], 64, 3), simulated_sites(data, [900], 64, 3)
    run = replace(options, output=tmp_path / "fcn", fcn_epochs=1, sequence_epochs=0, joint_epochs=0)
    train(run, train_sites, train_sites[:1], selection_sites=strips)
    history = json.loads((run.output / "history.json").read_text())["history"]
    assert [r["epoch"] for r in history] == [1]
