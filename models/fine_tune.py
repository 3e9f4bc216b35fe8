"""Fit a road (or any FCN + ConvLSTM) model to the analyst's own area: their dated rasters and
their label layer, with a spatial hold-out made automatically, numbers before and after.

The area (the rasters' extent, or a smaller ``extent``) is cut along its longer side into a
training part (70 %), a validation part (10 %, chooses the best epoch) and a held-out part
(20 %, only scored), with 8 px gaps between them: no pixel of the held-out part is read in
training. Starting from a checkpoint (``init_checkpoint``, e.g. the shipped
``models/weights/roads.pt``) keeps its bands, normalisation and network; from scratch takes a
small network of the default shape. The new model gets its int8 CPU variant beside it, as the shipped
one has, so that ``--precision auto`` (the default) runs it as fast on a CPU.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rasterio.windows import Window, from_bounds

from ..core.atomic import OutputSet
from ..core.harmonisation import Harmonisation
from ..core.model_inputs import COLOUR_BANDS, band_names, fit_stack
from ..core.normalisation import Normalisation
from ..core.preflight import model_written_over, output_problems
from ..core.raster_stack import Grid, RasterStack
from ..core.runtime import variant_sibling
from .checkpoint import checkpoint_normalisation, load_checkpoint
from .dataset import OpenSite, Site
from .labels import LABEL_NODATA, LabelSource, _read_geometries, label_raster
from .road_scores import HeldOut, scores
from .settings import FineTuneRequest, NetworkConfig, TrainOptions
from .training import TrainingCancelled, TrainingMonitor, train

SPLIT_SHARES = (("train", 0.7), ("validation", 0.1), ("heldout", 0.2))
GAP_PX = 8
MIN_PART_PX = 16  # the validation part's length along the cut, at least
EVALUATION_TILE = 512  # px: the held-out part is scored tile by tile, so any size fits in memory
# px: a label raster whose class pixels are on average narrower than this (pixels per pixel of skeleton)
# holds lines, scored as lines are (a rasterised road layer 3 px wide: 3; a field or mangrove patch: tens)
LINE_LIKE_WIDTH_PX = 6
DESCRIPTION = "Fitted to the analyst's area with TimeSeg's train"
log = logging.getLogger("timeseg.train")


class FineTuneError(ValueError):
    """The inputs cannot make a model; the message says what to change."""


@dataclass(frozen=True)
class FineTuneResult:
    model_path: Path
    checkpoint_path: Path
    before: dict[str, float] | None  # held-out scores of the starting model (None from scratch)
    after: dict[str, float]
    windows: dict[str, Window]
    # the int8 CPU variant beside the model (``--precision auto`` runs it on a CPU); None when
    # quantising would have changed more than 1 % of the class pixels
    int8_path: Path | None = None
    # fine-tuned, and no epoch of any stage scored above the starting model on the validation part: the new
    # model is the starting model
    kept_start: bool = False

    @property
    def worse_than_start(self) -> bool:
        """True when the new model scores below the starting model on the held-out part (road F1
        within 2 px where both have it, pixel F1 otherwise)."""
        if self.before is None:
            return False
        key = "relaxed_f1" if "relaxed_f1" in self.before and "relaxed_f1" in self.after else "f1"
        return self.after[key] < self.before[key]

    @property
    def finds_nothing(self) -> bool:
        """True when the new model calls no labelled pixel of the held-out part (a run too short, from scratch)."""
        return all(self.after.get(key, 0) == 0 for key in ("f1", "relaxed_f1"))

    def held_out_lines(self) -> list[str]:
        """The held-out part's scores before (when fine-tuned) and after, one line each, as the dock and
        Processing say them: ``held-out part, after: F1 0.428 (roads within 2 px: 0.470)``."""
        lines = []
        for name, numbers in (("before", self.before), ("after", self.after)):
            if numbers:
                relaxed = f" (roads within 2 px: {numbers['relaxed_f1']:.3f})" if "relaxed_f1" in numbers else ""
                lines.append(f"held-out part, {name}: F1 {numbers['f1']:.3f}{relaxed}")
        return lines

    def verdict(self) -> str | None:
        """One line for the analyst when the new model is the one it started from (no epoch beat it on the
        validation part), scores below it or finds nothing on the held-out part, else None."""
        if self.kept_start:
            return (f"no epoch of the fit scored above the starting model on your validation part, so "
                    f"{self.model_path.name} is the starting model: keep using it. {UNDRAWN} then train again")
        if self.worse_than_start:
            return (f"the new model scores below the starting model on your held-out part: keep using the "
                    f"starting model ({self.model_path.name} was written so that you can compare them). {UNDRAWN} "
                    "then train again")
        if self.finds_nothing:
            return (f"the new model finds none of the labels of your held-out part. {UNDRAWN} then train again, "
                    "with more minutes (from scratch, at least the default 5) or from the shipped model")
        return None


# the likeliest cause of a fit that learns less than it knew: roads in the area that the labels leave out
UNDRAWN = ("Every road inside the area must be drawn, as a road left out is learnt as not-road: draw the missing "
           "ones, or choose an area (Area; --extent; in Processing: Extent) around the part where every road "
           "is drawn;")


MODEL_BYTES = 20_000_000  # a fitted model, its checkpoint, its int8 variant and summary: a few MB, with room
STAGE_SHARES = {"fcn": 0.7, "sequence": 0.3}  # of the run's time budget, and of its progress


def progress_percent(record: dict[str, Any], minutes: float | None) -> float:
    """How far a run is after an epoch (``record`` as ``TrainingMonitor.on_epoch`` gets it), 0-100: the
    larger of its stage's epochs done and, with a time budget of ``minutes``, its stage's time spent,
    since either ends the stage."""
    offset = 0.0 if record["stage"] == "fcn" else 100 * STAGE_SHARES["fcn"]  # the sequence stage comes second
    share = STAGE_SHARES[record["stage"]]
    done = record["epoch"] / max(record["epochs"], 1)
    if minutes:
        done = max(done, record["seconds"] / (share * minutes * 60))
    return offset + 100 * share * min(done, 1.0)


def area_window(grid: Grid, extent: tuple[float, float, float, float] | None) -> Window:
    """The part of ``grid`` inside ``extent`` (whole grid for None)."""
    whole = Window(0, 0, grid.width, grid.height)
    if extent is None:
        return whole
    xmin, ymin, xmax, ymax = extent
    if xmin >= xmax or ymin >= ymax:
        raise FineTuneError("the area is empty: give xmin < xmax and ymin < ymax")
    window = from_bounds(xmin, ymin, xmax, ymax, grid.transform).round_offsets().round_lengths()
    try:
        return window.intersection(whole)
    except Exception:  # rasterio raises WindowError when they do not meet
        raise FineTuneError("the area does not overlap the rasters: choose an area inside them") from None


def split_windows(area: Window, held_out_first: bool = False) -> dict[str, Window]:
    """Train, validation and held-out windows cut along the longer side of ``area``, in that order from
    its left or top end (``held_out_first``: in the reverse order, the held-out part at that end)."""
    along_columns = area.width >= area.height
    length = int(area.width if along_columns else area.height)
    usable = length - 2 * GAP_PX
    if usable * SPLIT_SHARES[1][1] < MIN_PART_PX:
        needed = int(np.ceil(MIN_PART_PX / SPLIT_SHARES[1][1])) + 2 * GAP_PX
        raise FineTuneError(f"the area is {length} px along its longer side; give at least {needed} px "
                            "(it is cut into training, validation and held-out parts)")
    windows, start = {}, 0
    parts = SPLIT_SHARES[::-1] if held_out_first else SPLIT_SHARES
    for index, (name, share) in enumerate(parts):
        size = int(usable * share) if index < len(parts) - 1 else length - start
        if along_columns:
            windows[name] = Window(area.col_off + start, area.row_off, size, area.height)
        else:
            windows[name] = Window(area.col_off, area.row_off + start, area.width, size)
        start += size + GAP_PX
    return windows


def labelled_split(labels: LabelSource, grid: Grid, area: Window, called: str | None = None) -> dict[str, Window]:
    """``split_windows`` of ``area`` whose training part (to learn from) and held-out part (whose scores
    would say nothing without them) both hold labels: the held-out part at the right or bottom end, else at
    the left or top end; else ``FineTuneError`` saying what to label. ``called``: the labels' name for the
    analyst (a QGIS layer's, where the file is one written for it), else their file's."""
    if labels.kind != "raster" and not _read_geometries(Path(labels.path), labels.layer, grid):
        raise FineTuneError(f"the label layer {called or Path(labels.path).name} has no features: draw or load "
                            "some first")
    raster = label_raster(labels, grid)
    codes = sorted(set(np.unique(raster[area.toslices()]).tolist()) - {0, labels.value, LABEL_NODATA})
    if codes:  # a crop map's 0..6 would be read as road (1) against background, the other classes dropped
        listed = ", ".join(map(str, codes[:6])) + (f", ... ({len(codes)} codes)" if len(codes) > 6 else "")
        raise FineTuneError(f"{Path(labels.path).name} holds the classes {listed} besides 0 and "
                            f"{labels.value}: fitting a model teaches it one class ({labels.value}) against the rest "
                            f"(0; {LABEL_NODATA} unknown): keep one class in the labels (gdal_calc.py "
                            f"--calc=\"A=={codes[0]}\" for class {codes[0]}), or train a model of several classes from "
                            "scratch (timeseg train --class-names)")
    labelled, background = raster == labels.value, (raster != labels.value) & (raster != LABEL_NODATA)
    if not labelled[area.toslices()].any():
        raise FineTuneError("no label lies on the rasters inside the area: check that the label layer covers "
                            "the rasters (and the chosen area) and has a CRS that can be transformed to theirs")
    if not background[area.toslices()].any():
        raise FineTuneError(f"{Path(labels.path).name} marks every pixel of the area as the class, so nothing "
                            "is learnt about what is not: choose the layer of the class alone (road lines or "
                            "polygons), not one that outlines the whole area (fields of several crops: filter the "
                            "layer to one crop first)")
    for held_out_first in (False, True):
        windows = split_windows(area, held_out_first)
        if all(labelled[windows[name].toslices()].any() and background[windows[name].toslices()].any()
               for name in ("train", "heldout")):
            return windows
    raise FineTuneError("the area's labels do not reach both of its ends: its longer side is cut into a training "
                        "part (70 %) at one end and a held-out part (20 %) at the other, and each must hold labels: "
                        "label some near both ends, or choose an area whose labels spread over its length")


def _starting_model(init: Path | None) -> tuple[NetworkConfig, dict[str, Any]] | None:
    """The network and card of the checkpoint to fine-tune (None: from scratch)."""
    if init is None:
        return None
    _, config, saved = load_checkpoint(init)
    if config.architecture != "fcn_convlstm":
        raise FineTuneError(f"{init.name} is a {config.architecture} model; fine-tuning takes an FCN + ConvLSTM "
                            "checkpoint such as models/weights/roads.pt")
    return config, saved["card"]


def scratch_band_names(stack: RasterStack) -> list[str]:
    """The bands a model trained from scratch on ``stack`` reads, as its card names them: those the reference
    date names (GDAL descriptions or colours: a true-colour picture's are B04, B03, B02; an alpha band is a
    mask, not read), else B04, B03, B02 for 3 unnamed bands of uint8 (trained as true colour, ``weather``),
    else band1, band2, ..., so that the engine reads the same layers for it as for the shipped model."""
    labelled = [(description, colour) for description, colour in zip(stack.band_descriptions()[0],
                                                                       stack.band_colours()[0]) if colour != "alpha"]
    names = band_names(*zip(*labelled)) if labelled else []  # an alpha band masks, it is not read
    if names and all(names) and len(set(names)) == len(names):
        return list(names)
    if len(labelled) == 3 and stack.dtype == np.uint8:
        return [COLOUR_BANDS[colour] for colour in ("red", "green", "blue")]
    return [f"band{i + 1}" for i in range(len(labelled))]


def _network_config(start: tuple[NetworkConfig, dict[str, Any]] | None, bands: int,
                    classes: int) -> tuple[NetworkConfig, dict[str, Any]]:
    """The network to train and the card fields it keeps from the starting model ``start``."""
    if start is None:
        return NetworkConfig("fcn_convlstm", bands, classes, depth=3, base_channels=16, hidden_channels=8,
                             context_channels=4), {}
    config, card = start
    if config.in_channels != bands:
        raise FineTuneError(f"the rasters have {bands} band{'s' * (bands != 1)}, the model to fine-tune takes "
                            f"{config.in_channels} "
                            f"({', '.join(card.get('bands', []))}): give rasters with those bands, or train from "
                            "scratch")
    return start


def held_out_centre_lines(labels: LabelSource, grid: Grid, window: Window) -> np.ndarray | None:
    """The road centre lines ``[H, W]`` bool of ``window`` (the held-out part), against which roads are
    scored within 2 px, as the real held-out areas are (a tracing is a pixel or two off): line labels
    drawn 1 px wide; a label raster's class pixels thinned to their skeleton when they are strips narrower
    than ``LINE_LIKE_WIDTH_PX`` on average (a rasterised road layer); None for areas (polygons, or a raster
    of wide patches), which keep pixel scores only."""
    rows, cols = window.toslices()
    if labels.kind == "lines":
        return label_raster(dataclasses.replace(labels, line_width_px=1), grid)[rows, cols] == labels.value
    if labels.kind != "raster":
        return None
    from skimage.morphology import skeletonize  # here: the command line imports this module to start

    road = label_raster(labels, grid)[rows, cols] == labels.value
    centre = skeletonize(road)
    if not centre.any() or road.sum() / centre.sum() > LINE_LIKE_WIDTH_PX:
        return None
    return centre


def _held_out_scores(network: torch.nn.Module, site: OpenSite, normalisation: Normalisation,
                     centre: np.ndarray | None, threshold: float) -> dict[str, float]:
    """Pixel IoU and F1 of the held-out part, and with ``centre`` (``held_out_centre_lines``) relaxed
    precision, recall and F1 against the centre lines (``models.road_scores``)."""
    height, width = site.shape
    probability = np.zeros((height, width), np.float32)
    labels = np.full((height, width), LABEL_NODATA, np.uint8)
    seen = np.zeros((height, width), bool)
    network.eval()
    for row in range(0, height, EVALUATION_TILE):
        for col in range(0, width, EVALUATION_TILE):
            pixels, valid_dates, tile_labels = site.read(row, col, EVALUATION_TILE)
            rows, cols = slice(row, row + EVALUATION_TILE), slice(col, col + EVALUATION_TILE)
            h, w = probability[rows, cols].shape
            with torch.no_grad():
                tile = network(torch.from_numpy(normalisation.apply(pixels))[None])[0, -1].numpy()
            probability[rows, cols], labels[rows, cols] = tile[:h, :w], tile_labels[:h, :w]
            seen[rows, cols] = valid_dates.any(axis=0)[:h, :w]
    known = (labels != LABEL_NODATA) & seen
    called, truth = (probability >= threshold) & known, (labels == 1) & known
    intersection, union = (called & truth).sum(), (called | truth).sum()
    result = {"iou": float(intersection / union) if union else 0.0,
              "f1": float(2 * intersection / (called.sum() + truth.sum())) if union else 0.0}
    if centre is not None:
        empty = np.zeros_like(known)  # no settlement or water polygons here; scores() reads masks only
        relaxed = scores(probability, HeldOut(np.empty((0, 0, 0), np.uint8), centre & known, ~known, empty, empty),
                         threshold)
        result.update(relaxed_precision=relaxed.precision, relaxed_recall=relaxed.recall, relaxed_f1=relaxed.f1)
    return {k: round(v, 4) for k, v in result.items()}


def fine_tune(request: FineTuneRequest, monitor: TrainingMonitor | None = None,
              work_dir: Path | None = None) -> FineTuneResult:
    """Train on the training part, keep the best epoch on the validation part, score the held-out
    part before and after, and write ``request.output_model`` (.onnx with its card), its checkpoint
    beside it (.pt) and its int8 CPU variant (.int8.onnx, calibrated on the training part). Nothing is
    written when anything fails or is cancelled."""
    if not request.rasters:
        raise FineTuneError("no dated raster given: tick or pass at least one")
    if request.output_model.suffix.lower() != ".onnx":
        raise FineTuneError(f"the model to write must end in .onnx, not {request.output_model.name}")
    if request.epochs < 1:
        raise FineTuneError("epochs must be at least 1")
    output = request.output_model  # said now, not after the whole training
    problems = [problem for problem in [model_written_over(output, request.init_checkpoint)] if problem]
    problems += output_problems([output, output.with_suffix(".pt"), output.with_suffix(".json")],
                                [r.path for r in request.rasters] + [request.labels.path], MODEL_BYTES)
    if problems:
        raise FineTuneError(problems[0])
    with RasterStack(request.rasters) as stack:
        start = _starting_model(request.init_checkpoint)
        if start is not None:  # the rasters read as the engine reads them for that model (core.model_inputs)
            fit_stack(stack, start[1].get("bands", []), start[1].get("input_dtype", ""))
        scratch_bands = scratch_band_names(stack) if start is None else []
        config, init_card = _network_config(start, len(scratch_bands) or stack.band_count, 1)
        if start is None:
            init_card["bands"] = scratch_bands
        grid, dtype, dates = stack.grid, stack.dtype, len(stack.rasters)
    labels = request.labels
    extent = request.extent
    with tempfile.TemporaryDirectory(dir=work_dir) as folder:
        if request.area_polygons is not None:
            labels, extent = _labels_inside(request.labels, request.area_polygons, grid, extent, Path(folder))
        return _fine_tune(request, labels, extent, grid, config, init_card, dtype, dates, monitor, Path(folder))


def _labels_inside(labels: LabelSource, polygons: LabelSource, grid: Grid,
                   extent: tuple[float, float, float, float] | None,
                   folder: Path) -> tuple[LabelSource, tuple[float, float, float, float]]:
    """``labels`` as a label raster that is unknown outside ``polygons``, and the polygons' extent."""
    import rasterio

    inside = label_raster(dataclasses.replace(polygons, kind="polygons", value=1), grid).astype(bool)
    if not inside.any():
        raise FineTuneError("the area polygons do not overlap the rasters: choose polygons over them")
    rows, cols = np.nonzero(inside)
    left, top = grid.transform * (int(cols.min()), int(rows.min()))
    right, bottom = grid.transform * (int(cols.max()) + 1, int(rows.max()) + 1)
    box = (min(left, right), min(top, bottom), max(left, right), max(top, bottom))
    if extent is not None:
        box = (max(box[0], extent[0]), max(box[1], extent[1]), min(box[2], extent[2]), min(box[3], extent[3]))
    raster = label_raster(labels, grid)
    raster[~inside] = LABEL_NODATA
    path = folder / "labels_in_area.tif"
    with rasterio.open(path, "w", driver="GTiff", width=grid.width, height=grid.height, count=1, dtype="uint8",
                       crs=grid.crs, transform=grid.transform, nodata=LABEL_NODATA) as out:
        out.write(raster, 1)
    return LabelSource(path, "raster", value=labels.value), box


def _fine_tune(request: FineTuneRequest, labels: LabelSource, extent, grid: Grid, config: NetworkConfig,
               init_card: dict[str, Any], dtype, dates: int, monitor: TrainingMonitor | None,
               work_dir: Path) -> FineTuneResult:
    bands = config.in_channels
    area = area_window(grid, extent)
    windows = labelled_split(labels, grid, area, request.labels_name)
    sites = {name: Site(tuple(request.rasters), labels, window) for name, window in windows.items()}
    input_scale = init_card.get("input_scale", 1 / 255 if dtype == np.uint8 else 1e-4)
    names = request.layer_names or [r.path.name for r in request.rasters]
    trained_on = (f"{', '.join(names)}; area {area.width:.0f} x {area.height:.0f} px at column "
                  f"{area.col_off:.0f}, row {area.row_off:.0f} of {names[0]}; "
                  f"labels {request.labels_name or Path(request.labels.path).name}; "
                  + (f"inside the polygons of {request.area_name or Path(request.area_polygons.path).name}; "
                     if request.area_polygons else "")
                  + (f"fine-tuned from {request.init_checkpoint.name}" if request.init_checkpoint else "from scratch"))
    sequence_epochs = max(1, request.epochs // 3)
    seconds = None if request.minutes is None else request.minutes * 60
    monitor = monitor or TrainingMonitor()
    if seconds is not None:
        monitor = dataclasses.replace(monitor, stage_seconds={stage: share * seconds
                                                              for stage, share in STAGE_SHARES.items()})
    options = TrainOptions(
        output=work_dir / "run", network=config, class_names=["background", "road"],
        bands=init_card["bands"], input_scale=input_scale,
        patch_size=min(128, int(min(windows["train"].width, windows["train"].height))),
        sequence_length=min(5, dates), min_sequence_length=1, batch_size=4, fcn_epochs=request.epochs,
        sequence_epochs=sequence_epochs, samples_per_epoch=64,
        learning_rate=3e-4 if request.init_checkpoint else 3e-3,
        schedule="constant" if request.init_checkpoint else "paper", seed=request.seed,
        # a trained model keeps its normalisation statistics: those of a few patches of one small area would
        # replace those of its training (on Inn, with the shipped model, 2 seeds: 0.667 -> 0.702 within 2 px)
        frozen_statistics=request.init_checkpoint is not None,
        # from scratch, a fresh ConvLSTM's first epochs can score best at the threshold with P far from
        # calibrated (make model's seed 4: 0.36 off the roads); as make model, keep none of the first third
        warmup_epochs=0 if request.init_checkpoint else sequence_epochs // 3,
        trained_on=trained_on, weather=bands == 3 and dtype == np.uint8,
        init_checkpoint=request.init_checkpoint, input_dtype=str(dtype),
    )
    centre = held_out_centre_lines(request.labels, grid, windows["heldout"])  # scored where labels are known

    def held_out_scores(checkpoint: Path) -> dict[str, float]:
        network, _, saved = load_checkpoint(checkpoint)
        card = saved["card"]
        with OpenSite(sites["heldout"], Harmonisation.from_card(card.get("harmonisation")), card.get("bands"),
                      card.get("input_dtype", "")) as site:
            return _held_out_scores(network, site, checkpoint_normalisation(saved), centre, card.get("threshold", 0.5))

    before = held_out_scores(request.init_checkpoint) if request.init_checkpoint is not None else None
    train(options, [sites["train"]], [sites["validation"]], monitor=monitor)
    _stop_if_cancelled(monitor, "scoring the held-out part")
    after = held_out_scores(options.output / "model.pt")
    kept_epochs = json.loads((options.output / "history.json").read_text())["kept_epochs"]
    kept_start = request.init_checkpoint is not None and not any(kept_epochs.values())
    metrics = {"heldout_before": before, "heldout_after": after,
               "heldout_window": [int(v) for v in windows["heldout"].flatten()],
               "sources": {"heldout_before": "your labels, held-out part", "heldout_after": "your labels, "
                           "held-out part"}}
    with RasterStack(request.rasters) as stack:  # the int8 variant is calibrated on the training part
        fit_stack(stack, options.bands, options.input_dtype)
        calibration = list(stack.read(windows["train"])[0])
    _stop_if_cancelled(monitor, "writing the model")
    result = _write_outputs(request, options.output / "model.pt", metrics, before, after, windows, calibration,
                            monitor)
    return dataclasses.replace(result, kept_start=kept_start)


def _stop_if_cancelled(monitor: TrainingMonitor, step: str) -> None:
    """Cancel honoured after the training's epochs too, up to the last file written: nothing is kept."""
    if monitor.cancelled():
        raise TrainingCancelled(f"training cancelled while {step}")


def _write_outputs(request: FineTuneRequest, checkpoint: Path, metrics: dict[str, Any],
                   before: dict[str, float] | None, after: dict[str, float],
                   windows: dict[str, Window], calibration: list[np.ndarray],
                   monitor: TrainingMonitor) -> FineTuneResult:
    """The ONNX model (export checks parity before anything is written), its int8 CPU variant
    calibrated on ``calibration`` (raw ``[C, h, w]`` dates of the training part) and its checkpoint;
    none of them when ``monitor`` says cancel before they are committed together."""
    from .export import export_checkpoint, int8_variant
    from .quantise import QuantisationError

    output, overrides = request.output_model, {"metrics": metrics, "description": DESCRIPTION}
    checkpoint_path, summary = output.with_suffix(".pt"), output.with_suffix(".json")
    int8_path = variant_sibling(output, "int8")
    try:
        int8 = int8_variant(checkpoint, calibration, overrides)[0].SerializeToString()
    except QuantisationError as error:
        log.warning("no int8 variant: %s; the model runs in float32", error)
        int8 = None
    finals = [output, checkpoint_path, summary, *([int8_path] if int8 is not None else [])]
    with OutputSet(finals) as outputs:  # the files together, or none
        export_checkpoint(checkpoint, output, overrides, outputs=outputs)
        saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
        saved["card"]["metrics"] = metrics
        torch.save(saved, outputs.partial(checkpoint_path))
        outputs.write_text(summary, json.dumps(metrics, indent=2))
        if int8 is not None:
            outputs.write_bytes(int8_path, int8)
        _stop_if_cancelled(monitor, "writing the model")
        outputs.commit()
    # variants of a model that was at this path before would run in the new one's place
    for stale in ([] if int8 is not None else [int8_path]) + [variant_sibling(output, "fp16")]:
        if stale.is_file():
            stale.unlink()
            log.warning("removed %s: a variant of the model %s replaced", stale.name, output.name)
    return FineTuneResult(output, checkpoint_path, before, after, windows, int8_path if int8 is not None else None)

