"""The model builder's subcommands of ``timeseg``: train, train-crops, export, simulate."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..core.options import add_options, values_of
from .settings import REAL_WEIGHTINGS, CropTraining, FineTuneRequest, NetworkConfig, TrainOptions

DEFAULT_DATA = Path("data/simulated")


def _add_train(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "train",
        help="train paper A's FCN + ConvLSTM (FCN, then ConvLSTM on the frozen FCN, then optionally both)",
        description="Train on simulated scenes (default) or on your own dated rasters and label layer. "
        "Writes fcn_best.pt, sequence_best.pt, model.pt and history.json to --output.",
    )
    data = parser.add_argument_group("simulated data (used when --images is not given)")
    data.add_argument("--simulated-scenes", type=int, default=16, help="training scenes (default 16)")
    data.add_argument("--validation-scenes", type=int, default=4,
                      help="held-out scenes, seeds never used for training (default 4)")
    data.add_argument("--scene-size", type=int, default=256, help="scene width and height in pixels")
    data.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="where scenes are written and reused")
    user = parser.add_argument_group("your data")
    user.add_argument("--images", type=Path, nargs="+",
                      help="dated rasters of one site (any order; one image alone needs no date)")
    user.add_argument("--dates", help="comma-separated YYYY-MM-DD, one per --images, if not in names/tags")
    user.add_argument("--labels", type=Path, help="label file: vector (lines/polygons) or raster")
    user.add_argument("--label-kind", choices=("lines", "polygons", "raster"), default="lines")
    user.add_argument("--label-layer", help="vector layer name (default: the first layer)")
    user.add_argument("--line-width", type=int, default=3, help="road width after dilation, pixels (default 3)")
    user.add_argument("--output-model", type=Path,
                      help="fit to your area and write this .onnx (its checkpoint and numbers beside it): the area is "
                      "cut into training, validation and held-out parts automatically (no --validation-images)")
    user.add_argument("--extent", help="with --output-model: xmin,ymin,xmax,ymax in the first raster's CRS "
                      "(default: its whole extent)")
    add_options(user, FineTuneRequest)
    user.add_argument("--validation-images", type=Path, nargs="+",
                      help="dated rasters of a held-out site (not with --output-model)")
    user.add_argument("--validation-labels", type=Path, help="labels of the held-out site (not with --output-model)")
    user.add_argument("--class-names", default="background,road", help="comma-separated (default background,road)")
    user.add_argument("--bands", default="B04,B03,B02", help="band names in input order (default TCI R,G,B)")
    user.add_argument("--input-scale", type=float, default=1 / 255, help="raw value multiplier (default 1/255)")
    add_options(parser.add_argument_group("network"), NetworkConfig)
    real = parser.add_argument_group("real labelled imagery, added to the training sites")
    real.add_argument("--real-labels", type=Path, nargs="+",
                      help="GeoPackages of hand-traced roads with split and areas (e.g. models/real/*_roads.gpkg); "
                      "their 'train' areas join the training sites")
    real.add_argument("--real-image", type=Path, help="with one GeoPackage of your own: the image its lines were "
                      "traced on (default: the shipped image of that GeoPackage)")
    real.add_argument("--real-share", type=float, default=0.5,
                      help="share of the training patches drawn from the real images, shared among them as "
                      "--real-weights says (default 0.5)")
    real.add_argument("--real-weights", choices=REAL_WEIGHTINGS, default="area",
                      help="share the real patches by the train areas' sizes (area, default) or equally per "
                      "scene")
    fit = parser.add_argument_group("training")
    fit.add_argument("--output", type=Path, help="run folder for checkpoints and history (not with --output-model, "
                     "which writes its checkpoint and numbers beside the model)")
    add_options(fit, TrainOptions)
    return parser


def _add_train_crops(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "train-crops", help="train paper B's BiConvLSTM crop classifier on the simulated crop region",
        description="13-band Sentinel-2-like scenes with a year of observations, cloudy or not, no cloud mask. "
        "Writes classifier_best.pt, model.pt and history.json to --output.",
    )
    add_crop_training_arguments(parser, Path("runs/crops"))
    parser.add_argument("--min-dates", type=int, default=20,
                        help="batches keep a random time-ordered subset of N to all dates (default 20)")
    return parser


def add_crop_training_arguments(parser: argparse.ArgumentParser, output: Path) -> None:
    parser.add_argument("--output", type=Path, default=output, help=f"run folder (default {output})")
    add_options(parser, CropTraining)


def crop_training_kwargs(args: argparse.Namespace) -> dict:
    """``models.settings.CropTraining`` keyword arguments from the crop training options."""
    return dict(output=args.output, **values_of(CropTraining, args))


def _add_export(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "export", help="checkpoint -> .onnx with its model card, checked against PyTorch",
        description="Export a checkpoint to one ONNX file (dynamic batch, time, height, width). "
        "onnxruntime runs it at two sequence lengths and two sizes; nothing is written if it "
        "differs from PyTorch by more than 1e-4.",
    )
    parser.add_argument("checkpoint", type=Path, help="model.pt from 'timeseg train'")
    parser.add_argument("--output", type=Path, required=True, help="the .onnx file to write")
    parser.add_argument("--tile-size", type=int, help="override the card's tile size")
    parser.add_argument("--overlap", type=int, help="override the card's tile overlap")
    parser.add_argument("--description", help="one sentence on what the model finds")
    parser.add_argument("--trained-on", help="override the card's trained_on text")
    parser.add_argument("--real-labels", type=Path, nargs="+",
                        help="score the checkpoint on these shipped GeoPackages' held-out areas (e.g. "
                        "models/real/*_roads.gpkg) and put the numbers into the card's metrics as real_heldout")
    parser.add_argument("--unseen-place", action="store_true",
                        help="with --real-labels: also score it on the real place no model is trained on (Inn, "
                        "models/real/, one and two clear dates) and put that into the metrics as real_unseen")
    parser.add_argument("--precision", choices=("fp32", "int8", "fp16"), default="fp32",
                        help="int8: the CPU variant (name it <model>.int8.onnx beside <model>.onnx), its FCN "
                        "quantised and calibrated on --calibration; fp16: the GPU variant (<model>.fp16.onnx)")
    parser.add_argument("--calibration", type=Path, nargs="+",
                        help="with --precision int8: rasters to calibrate on (default: the training areas of "
                        "the real images in models/real, as L1C and as L2A true colour)")
    return parser


MIN_SCENE_PX, MAX_SCENE_PX, MAX_SIMULATED_DATES = 64, 4096, 60  # a tile of the road model at least


def _add_simulate(commands) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "simulate", help="write a simulated Sentinel-2-like scene (two periods) and its labels",
        description="A simulated place at 10 m: true-colour dates of 2016 and of 2019 (clouds included, new roads "
        "built between them) and its road labels, to try TimeSeg on without data of your own.",
    )
    parser.add_argument("--output", type=Path, required=True, help="folder to write")
    parser.add_argument("--seed", type=int, default=0, help="the scene's seed: one seed, one scene (default 0)")
    parser.add_argument("--size", type=int, default=256,
                        help=f"width and height in pixels of 10 m, {MIN_SCENE_PX} to {MAX_SCENE_PX} (default 256)")
    parser.add_argument("--dates", type=int, default=5,
                        help=f"dates per period, 1 to {MAX_SIMULATED_DATES} (default 5)")
    parser.add_argument("--reflectance", action="store_true", help="also write B02,B03,B04,B08 x 10000")
    return parser


def run_train(args: argparse.Namespace) -> None:
    from .labels import LabelSource
    from .sites import VALIDATION_SEED_OFFSET, simulated_sites, user_site
    from .training import train

    class_names = args.class_names.split(",")
    if args.output_model:
        return run_fine_tune(args)
    if args.output is None:
        raise ValueError("give --output (the run folder for checkpoints and history), or --output-model to fit a "
                         "model to your area")
    if args.images:
        if not (args.labels and args.validation_images and args.validation_labels):
            raise ValueError("with --images, give --labels, --validation-images and --validation-labels "
                             "(a held-out site keeps the metrics honest)")
        train_sites = [user_site(args.images, LabelSource(args.labels, args.label_kind, args.label_layer,
                                                          args.line_width), args.dates)]
        val_sites = [user_site(args.validation_images, LabelSource(
            args.validation_labels, args.label_kind, args.label_layer, args.line_width))]
        names = ", ".join(path.name for path in args.images[:3]) + (", ..." if len(args.images) > 3 else "")
        trained_on = f"user data: {len(args.images)} dates ({names})"
    else:
        train_seeds = range(args.seed * 1000, args.seed * 1000 + args.simulated_scenes)
        first = VALIDATION_SEED_OFFSET + args.seed * 1000
        val_seeds = range(first, first + args.validation_scenes)
        train_sites = simulated_sites(args.data_dir, train_seeds, args.scene_size, line_width_px=args.line_width)
        val_sites = simulated_sites(args.data_dir, val_seeds, args.scene_size, line_width_px=args.line_width)
        trained_on = (f"TimeSeg simulator: {args.simulated_scenes} scenes x 2 periods of "
                      f"{args.scene_size}x{args.scene_size} px at 10 m, Sentinel-2-like TCI, clouds included; "
                      f"validation on {args.validation_scenes} held-out scenes")
    site_weights, selection_sites = None, []
    if args.real_labels:
        from .real_scene import SHORE_PX, TRAIN_ONLY_SCENES, real_training_sites, scene_of, training_site_weights

        if not 0 < args.real_share < 1:
            raise ValueError("--real-share must lie between 0 and 1 (a share of the training patches)")
        if args.real_image and len(args.real_labels) > 1:
            raise ValueError("--real-image goes with one --real-labels GeoPackage, the one traced on it")
        try:
            scenes = [scene_of(labels, args.real_image) for labels in args.real_labels]
        except ValueError as error:
            raise ValueError(f"{error}: give --real-image, the image its lines were traced on") from None
        shore_px = SHORE_PX if args.shore_weight > 1 else 0.0
        pairs = [real_training_sites(args.output / "real", scene, args.line_width, shore_px, args.real_ring_px)
                 for scene in scenes]
        areas = [site.window.width * site.window.height for site, _ in pairs]
        site_weights = training_site_weights(len(train_sites), areas, args.real_share, args.real_weights)
        train_sites = [*train_sites, *(site for site, _ in pairs)]
        selection_sites = [selection for _, selection in pairs if selection is not None]
        trained_on += (f"; real: the 'train' areas of {', '.join(s.labels.name for s in scenes)} over "
                       f"{', '.join(s.image.name for s in scenes)} ({args.real_share:.0%} of the training patches, "
                       f"{'by area' if args.real_weights == 'area' else 'equally per scene'}; "
                       "each stage's best epoch chosen on the last columns of "
                       f"{', '.join(s.name for s in scenes if s not in TRAIN_ONLY_SCENES)}, never trained on)")
    options = TrainOptions(
        output=args.output,
        network=NetworkConfig("fcn_convlstm", len(args.bands.split(",")), 1 if len(class_names) == 2 else
                              len(class_names), **values_of(NetworkConfig, args)),
        class_names=class_names, bands=args.bands.split(","), input_scale=args.input_scale, trained_on=trained_on,
        **values_of(TrainOptions, args),
    )
    started = time.time()
    final = train(options, train_sites, val_sites, site_weights, selection_sites=selection_sites)
    print(f"trained in {time.time() - started:.0f} s; validation on held-out data:")
    for name in ("single_date_fcn", "sequence", "sequence_model_last_date_only"):
        m = final[name]
        print(f"  {name:30s} accuracy {m['accuracy']:.4f}  IoU {m['iou']:.4f}  F1 {m['f1']:.4f}")
    print(f"checkpoint: {args.output / 'model.pt'}")


def run_fine_tune(args: argparse.Namespace) -> None:
    """``train --images ... --labels ... --output-model X.onnx [--init ...] [--extent ...]``."""
    from ..core.dates import dated_rasters
    from .fine_tune import fine_tune
    from .labels import LabelSource

    if not (args.images and args.labels):
        raise ValueError("with --output-model, give --images (your dated rasters) and --labels (your label layer)")
    unused = [flag for flag, value in (("--validation-images", args.validation_images),
                                       ("--validation-labels", args.validation_labels), ("--output", args.output),
                                       ("--real-labels", args.real_labels), ("--real-image", args.real_image))
              if value is not None]
    if unused:  # a held-out site given here would not be what the model is scored on
        raise ValueError(f"{', '.join(unused)} {'is' if len(unused) == 1 else 'are'} not used with --output-model, "
                         "which holds out a part of your area itself and writes beside the model: leave "
                         f"{'it' if len(unused) == 1 else 'them'} out, or train without --output-model")
    extent = None
    if args.extent:
        try:
            extent = tuple(float(v) for v in args.extent.split(","))
        except ValueError:
            extent = ()
        if len(extent) != 4:
            raise ValueError(f"--extent wants xmin,ymin,xmax,ymax in the rasters' CRS, got {args.extent!r}")
    request = FineTuneRequest(
        dated_rasters(args.images, args.dates, lone_undated=True),  # one image alone: its date is not read
        LabelSource(args.labels, args.label_kind, args.label_layer, args.line_width),
        args.output_model, args.init_checkpoint, extent, seed=args.seed, **values_of(FineTuneRequest, args))
    started = time.time()
    result = fine_tune(request)
    print(f"trained in {time.time() - started:.0f} s; held-out part of the area:")
    for name, numbers in (("before", result.before), ("after", result.after)):
        if numbers:
            print(f"  {name:7s} " + "  ".join(f"{k} {v:.3f}" for k, v in numbers.items()))
    print(f"model: {result.model_path} (checkpoint {result.checkpoint_path})")
    print(f"int8 CPU variant: {result.int8_path}" if result.int8_path else
          "no int8 CPU variant (quantising changed more than 1 % of the class pixels): it runs in float32")
    if result.verdict():
        print(f"warning: {result.verdict()}")


def run_train_crops(args: argparse.Namespace) -> None:
    from .crops import train_crop_model

    started = time.time()
    final = train_crop_model(CropTraining(**crop_training_kwargs(args)), args.min_dates)
    print(f"trained in {time.time() - started:.0f} s; held-out scenes:")
    for name in ("classifier", "every_second_date"):
        print(f"  {name:18s} overall accuracy {final[name]['accuracy']:.4f}  mean F1 {final[name]['f1']:.4f}")
    print(f"checkpoint: {args.output / 'model.pt'}")


def run_export(args: argparse.Namespace) -> None:
    from .export import export_checkpoint

    if args.output.suffix.lower() != ".onnx":
        raise ValueError(f"name the model {args.output.with_suffix('.onnx').name} (.onnx): QGIS, the dock and "
                         "the engine look for .onnx files")

    overrides = {key: value for key, value in (
        ("tile_size", args.tile_size), ("tiles_overlap", args.overlap),
        ("description", args.description), ("trained_on", args.trained_on)) if value is not None}
    if args.unseen_place and not args.real_labels:
        raise ValueError("--unseen-place goes with --real-labels: give the GeoPackages of the held-out areas too")
    if args.real_labels:
        overrides["metrics"] = real_heldout_metrics(args.checkpoint, args.real_labels, args.unseen_place)
    if args.precision == "int8":
        from .export import export_int8

        card, equal = export_int8(args.checkpoint, args.output, calibration_images(args.calibration), overrides)
        print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.1f} MB, int8); class pixels equal to "
              f"the float32 model's: {equal:.2%}")
        return
    if args.precision == "fp16":
        from .export import export_fp16

        card, difference = export_fp16(args.checkpoint, args.output, overrides)
        print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.1f} MB, fp16); largest difference from "
              f"PyTorch on the CPU (fp16 weights) {difference:.1e}")
        return
    card, difference = export_checkpoint(args.checkpoint, args.output, overrides)
    size_mb = args.output.stat().st_size / 1e6
    print(f"wrote {args.output} ({size_mb:.1f} MB); largest ONNX-PyTorch difference {difference:.1e}")


def calibration_images(paths: list[Path] | None) -> list:
    """Raw ``[C, H, W]`` arrays to calibrate int8 on: the given rasters, or the real images' training areas."""
    import rasterio

    from .real_scene import REAL_SCENES, split_window
    from .road_scores import l2a_like

    if not paths:  # both true-colour conventions the model meets: L1C as it ships, and L2A
        images = []
        for scene in REAL_SCENES:
            with rasterio.open(scene.image) as dataset:
                train = dataset.read(window=split_window(scene.labels, scene.image, "train"))
            images += [train, l2a_like(train)]
        return images
    images = []
    for path in paths:
        with rasterio.open(path) as dataset:
            images.append(dataset.read())
    return images


def real_heldout_metrics(checkpoint: Path, gpkgs: list[Path], unseen_place: bool = False) -> dict:
    """The checkpoint's metrics with its scores on the shipped real scenes' held-out areas added (and,
    with ``unseen_place``, on the real place no model is trained on), each entry labelled real or
    simulated in ``sources``."""
    import tempfile

    import torch

    from .real_scene import UNSEEN_DATES, scene_of
    from .road_scores import TOLERANCE_PX, checkpoint_scores, unseen_place_scores

    metrics = dict(torch.load(checkpoint, map_location="cpu", weights_only=True)["card"].get("metrics", {}))
    sources = {key: "simulated held-out scenes" for key, value in metrics.items() if isinstance(value, dict)}
    with tempfile.TemporaryDirectory() as folder:
        scenes = [scene_of(gpkg) for gpkg in gpkgs]
        real = checkpoint_scores(checkpoint, Path(folder), scenes)
        if unseen_place:
            metrics["real_unseen"] = {
                **unseen_place_scores(checkpoint, Path(folder) / "unseen"), "tolerance_px": TOLERANCE_PX,
                "data": f"{UNSEEN_DATES[0].labels.name}: hand-traced roads of a place no model is trained on, "
                        "each real clear date alone and all in time order (L1C TCI)"}
            sources["real_unseen"] = "real"
    metrics["real_heldout"] = {**real, "tolerance_px": TOLERANCE_PX,
                               "data": f"held-out areas of {', '.join(s.labels.name for s in scenes)}: hand-traced "
                                       "roads on real Sentinel-2 dates, pooled (per scene under 'scenes')"}
    metrics["sources"] = {**sources, "real_heldout": "real"}
    return metrics


def run_simulate(args: argparse.Namespace) -> None:
    from .simulator import simulate_scene

    if not MIN_SCENE_PX <= args.size <= MAX_SCENE_PX:
        raise ValueError(f"--size must be between {MIN_SCENE_PX} and {MAX_SCENE_PX} pixels, not {args.size}")
    if not 1 <= args.dates <= MAX_SIMULATED_DATES:
        raise ValueError(f"--dates must be between 1 and {MAX_SIMULATED_DATES} per period, not {args.dates}")
    scene = simulate_scene(args.output, args.seed, args.size, args.dates, write_reflectance=args.reflectance)
    for year in scene.years:
        print(f"{year}: " + ", ".join(p.name for p in scene.tci_paths[year]))
    print(f"labels: {scene.labels_path}")


def add_commands(commands) -> None:
    """Add train, train-crops, export and simulate to ``commands`` (an argparse subparsers object)."""
    for add, run in ((_add_train, run_train), (_add_train_crops, run_train_crops), (_add_export, run_export),
                     (_add_simulate, run_simulate)):
        add(commands).set_defaults(run=run)
