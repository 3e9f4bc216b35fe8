"""Tiled multi-date inference: dated rasters + model -> probability and class GeoTIFFs.

Tiles are read from the aligned stack in a reader thread (on a GPU a tile's dates in parallel,
``core.runtime.engine_threads``), batched through onnxruntime (on a CPU two batches at once,
``core.runtime.cpu_threads``), blended with a smooth window and
streamed to disk by a writer thread one row of tiles at a time (``core.pipeline``,
``core.blending``): memory depends on the tile size and the raster's width, never on its
height. Tiles without data are not run. Everything knowable
is checked before the model runs (``segment_preflight``); both outputs are committed
together or not at all (``core.atomic.OutputSet``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from rasterio.env import get_gdal_config
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from .area import AreaError, parse_area
from .atomic import OutputSet
from .blending import StreamingBlender
from .class_map import NO_CLASS, ClassRows, class_labels
from .dates import date_words
from .definitions import (
    CLASSES_NAME,
    DATE_SELECTIONS,
    DEVICES,
    MAX_TILE_SIZE,
    MIN_TILE_SIZE,
    MODEL_ID_TAG,
    MODEL_TAG,
    ORIENTATIONS_HELP,
    OUTPUT_TAG,
    PRECISION_HELP,
    PRECISIONS,
    PROBABILITY_NAME,
    SCALES_HELP,
    THRESHOLD_TAG,
    device_words,
)
from .harmonisation import Harmonisation, looked_up, stack_model_tables
from .model_card import ModelCard, ModelCardError
from .model_inputs import fit_stack
from .normalisation import Normalisation
from .options import option, range_problems
from .orientations import ORIENTATION_COUNTS, averaged_over_orientations
from .outputs import GeoTiffWriter, class_colours
from .pipeline import Cancelled, run_pipeline
from .preflight import (
    SQUARE_PIXELS,
    dates_with_data,
    far_finer,
    output_problems,
    raster_problems,
    resolution_fits,
)
from .qml import classes_qml, dates_tag, probability_band, probability_qml, style_path
from .raster_stack import (
    DatedRaster,
    RasterStack,
    RasterStackError,
    bounds_overlap,
    raster_exists,
    raster_missing,
)
from .runtime import (
    LOGITS_WARNING,
    LoadedModel,
    RuntimeUnavailable,
    engine_threads,
    load_model,
    model_fingerprint,
    precision_problems,
)
from .scales import SCALE_COUNTS, averaged_over_scales
from .sentinel2 import ProductError, is_product, resolve_products
from .tiling import TILE_ALIGN_PX, Tile, aligned_overlap, tile_grid
from .true_colour import takes_true_colour

log = logging.getLogger("timeseg")
ProgressCallback = Callable[[float, str], None]

__all__ = ["Cancelled", "SegmentError", "SegmentRequest", "SegmentResult", "segment", "segment_preflight",
           "select_dates"]


class SegmentError(ValueError):
    """The inputs do not fit the model or the outputs cannot be written. ``problems`` lists
    every problem found; the message is all of them on one line, the most basic first."""

    def __init__(self, problems: str | Sequence[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


@dataclass
class SegmentRequest:
    """One segmentation job. ``date_selection`` chooses dates when there are more than
    ``max_dates`` (or than a fixed-length model takes): ``last`` N, ``even``ly spaced N, or
    ``all``; ``auto`` is all, or the last ``max_dates`` when that is given (evenly spaced for a one-year model)."""

    rasters: Sequence[DatedRaster]
    model_path: Path = option(help="TimeSeg .onnx model", flag="--model", required=True, words="the model")
    output_dir: Path | None = option(None, "folder for probability.tif and classes.tif", flag="--output",
                                     required=True)
    device: str = option("auto", "auto: GPU (CUDA) when usable, else CPU (default)", choices=DEVICES)
    tile_size: int | None = option(None, "tile size in pixels (default: the model card's)",
                                   minimum=MIN_TILE_SIZE, maximum=MAX_TILE_SIZE, words="the tile size")
    overlap: int | None = option(None, "tile overlap in pixels (default: the model card's)", minimum=0,
                                 words="the tile overlap")
    batch_size: int | None = option(None, "tiles per model call (default: 8 on a GPU, 1 on a CPU, where two "
                                    "onnxruntime calls run at once; a model of a fixed batch takes its own)",
                                    minimum=1, maximum=64,
                                    words="the batch size")
    precision: str = option("auto", PRECISION_HELP, choices=PRECISIONS)
    orientations: int = option(1, ORIENTATIONS_HELP, choices=ORIENTATION_COUNTS, words="the orientations")
    scales: int = option(1, SCALES_HELP, choices=SCALE_COUNTS, words="the scales")
    date_selection: str = option("auto", "with --max-dates (or a fixed-length model): the last N dates, N "
                                 "evenly spaced dates, or all; auto: all, or with --max-dates the last N (N evenly "
                                 "spaced for a one-year model, as the crop model)",
                                 choices=DATE_SELECTIONS)
    max_dates: int | None = option(None, "use at most N dates (default: all for models that take any number)",
                                   minimum=1, words="the maximum number of dates")
    threads: int | None = option(None, "CPU threads for onnxruntime, on a GPU for reading and writing "
                                 "(default: all cores)", minimum=1,
                                 maximum=1024, words="the number of threads")
    threshold: float | None = option(None, "P(class) from which a pixel is called the class (binary models; "
                                     "default: the model card's)", minimum=0.01, maximum=0.99, words="the threshold")
    aoi: str | None = option(None, "area of interest: xmin,ymin,xmax,ymax in the CRS of the outputs' grid (the "
                             "earliest date's, or --reference's; or in --aoi-crs), or a polygon "
                             "file, FILE|layername=NAME for one of its layers (outside its polygons is nodata); "
                             "only the area is read and written")
    aoi_crs: str | None = option(None, "the CRS of --aoi's bounds when not the outputs' grid's: an authority code "
                                 "(EPSG:4326 for longitude and latitude) or WKT", flag="--aoi-crs")
    reference_path: Path | None = option(None, "one of the dated rasters: its grid (CRS, pixels, extent) is the "
                                         "outputs' (default: the earliest date's)", flag="--reference")
    probability_path: Path | None = None  # None: output_dir / probability.tif
    classes_path: Path | None = None  # None: output_dir / classes.tif
    progress: ProgressCallback | None = None
    cancelled: Callable[[], bool] = field(default=lambda: False)
    input_warnings: tuple[str, ...] = ()  # what reading the inputs found (``dates.dated_rasters``): said with the run's
    # the part of the outputs' grid (col, row, width, height) whose pixels ``SegmentResult.coverage`` counts (a batch
    # window's core, without its halo); None: all
    counted_part: tuple[int, int, int, int] | None = None


@dataclass(frozen=True)
class SegmentResult:
    probability_path: Path
    classes_path: Path
    provider: str
    dates: list
    card: ModelCard
    tiles_run: int = 0  # tiles the model ran on; tiles without data are skipped
    tiles_total: int = 0
    precision: str = "fp32"
    warnings: tuple[str, ...] = ()
    coverage: tuple[int, int, int] = (0, 0, 0)  # pixels mapped; of them, lacking a date; white on every date


def select_dates(rasters: Sequence[DatedRaster], card: ModelCard, selection: str = "auto",
                 max_dates: int | None = None) -> list[DatedRaster]:
    """Rasters sorted by date, checked (no duplicates, enough dates) and thinned as asked."""
    if selection not in DATE_SELECTIONS:
        raise SegmentError(f"date selection must be one of {', '.join(DATE_SELECTIONS)}, got {selection!r}")
    if selection == "all" and max_dates is not None:
        raise SegmentError("--max-dates and date selection 'all' contradict each other: choose last or even")
    if selection in ("last", "even") and max_dates is None and card.dynamic_time:
        raise SegmentError(f"date selection '{selection}' chooses among the dates only with --max-dates N (this "
                           "model reads any number of dates): give --max-dates, or leave the selection out")
    if selection == "auto":  # a one-year model (crops) needs the whole season: 0.851 evenly, 0.788 the last 20 of 30
        selection = "all" if max_dates is None else "even" if card.one_year else "last"
    ordered = sorted(rasters, key=lambda r: r.date)
    twice = dates_given_twice(ordered)
    if twice:
        raise SegmentError(twice)
    if len(ordered) < card.min_sequence_length:
        raise SegmentError(f"{len(ordered)} date{'s' * (len(ordered) != 1)} given, the model needs at least "
                           f"{card.min_sequence_length}: add dates")
    limit = max_dates if max_dates is not None else (None if card.dynamic_time else card.sequence_length)
    if limit is None or len(ordered) <= limit:
        return ordered
    if selection == "all" and card.dynamic_time:
        return ordered
    if limit < card.min_sequence_length:
        raise SegmentError(f"max dates {limit} is below the model's minimum of {card.min_sequence_length}: "
                           "give a larger --max-dates")
    if selection == "even":
        keep = np.unique(np.linspace(0, len(ordered) - 1, limit).round().astype(int))
        return [ordered[i] for i in keep]
    return ordered[-limit:]


def dates_given_twice(rasters: Sequence[DatedRaster]) -> list[str]:
    """A raster given twice, or two of one date (pieces of one day's export: they need a mosaic), in words."""
    ordered = sorted(rasters, key=lambda r: r.date)
    for a, b in zip(ordered, ordered[1:]):
        if a.date == b.date and Path(a.path).resolve() == Path(b.path).resolve():
            return [f"{a.name} is given twice: give it once"]
        if a.date == b.date and all(is_product(r.given or r.path) for r in (a, b)):  # two Sentinel-2 products
            return [f"{a.name} and {b.name} have the same date {a.date}: two tiles of one pass, which a run maps "
                    "apart: give the products of one tile (its name's T..... part) per run, or a mosaic of their "
                    "true-colour images (gdalbuildvrt)"]
        if a.date == b.date:
            return [f"{a.name} and {b.name} have the same date {a.date}: give each date once (two pieces or "
                    "tiles of one day: mosaic them first, e.g. gdalbuildvrt)"]
    return []


def _reference_index(rasters: Sequence[DatedRaster], reference: Path | None) -> int:
    if reference is None:
        return 0
    for index, raster in enumerate(rasters):
        if Path(raster.path).resolve() == Path(reference).resolve():
            return index
    if not raster_exists(reference):
        raise SegmentError(f"reference {raster_missing(reference)}")
    raise SegmentError(f"the reference {reference} is not one of the dated rasters given: give one of them")


def segment_outputs(probability_path: Path, classes_path: Path) -> list[Path]:
    """Every file a segmentation writes: both maps and their QGIS styles."""
    return [probability_path, classes_path, style_path(probability_path), style_path(classes_path)]


def _output_paths(request: SegmentRequest) -> tuple[Path, Path]:
    def path(explicit: Path | None, name: str) -> Path:
        if explicit is not None:
            return Path(explicit)
        if request.output_dir is None:
            raise SegmentError("give an output folder (or both output files)")
        return Path(request.output_dir) / name

    return path(request.probability_path, PROBABILITY_NAME), path(request.classes_path, CLASSES_NAME)


def _estimated_output_bytes(width: int, height: int, channels: int) -> int:
    """Upper bound: uncompressed float32 probabilities and uint8 classes, plus a third for overviews."""
    return int(width * height * (4 * channels + 1) * 4 / 3)


def request_problems(request: SegmentRequest) -> list[str]:
    """What is wrong with the request before the model is opened: options, files, output paths."""
    problems = range_problems(request)
    if not request.rasters:
        problems.append("no rasters given: give the dated rasters of one place")
    problems += [raster_missing(r.path) for r in request.rasters if not raster_exists(r.path)]
    folder = Path(request.output_dir) if request.output_dir is not None else None
    if folder is not None and folder.suffix.lower() in (".tif", ".tiff") and not folder.is_dir():
        problems.append(f"the output is a folder (for probability.tif and classes.tif) and {folder.name} names a "
                        "file: give a folder")
    try:
        outputs = _output_paths(request)
    except SegmentError as error:
        return problems + error.problems
    misnamed = [path for path in outputs if path.suffix.lower() not in (".tif", ".tiff")]
    if misnamed:
        problems.append("the outputs are GeoTIFFs: name them " + " and ".join(
            f"{path.with_suffix('.tif').name}" for path in misnamed))
    return problems + output_problems(outputs, [r.path for r in request.rasters])


def _model_problems(request: SegmentRequest, model: LoadedModel, stack: RasterStack) -> list[str]:
    card = model.card
    problems = precision_problems(request.model_path, request.precision, card) + raster_problems(stack, card)
    tile_size, overlap = _asked_tiling(request, card)
    if overlap >= tile_size:
        problems.append(f"the tile overlap {overlap} must be below the tile size {tile_size}: give a smaller overlap")
    if model.fixed_tile_size is not None and tile_size != model.fixed_tile_size:
        problems.append(f"this model takes tiles of exactly {model.fixed_tile_size} px: leave the tile size "
                        "to the model")
    if model.fixed_tile_size is not None and request.scales != 1:
        problems.append(f"this model takes tiles of exactly {model.fixed_tile_size} px, so it cannot see them "
                        "at other scales: average over 1 scale")
    grid = stack.grid
    needed = _estimated_output_bytes(grid.width, grid.height, card.output_channels)
    return problems + output_problems(_output_paths(request), [r.path for r in request.rasters], needed)


def _selected_dates(request: SegmentRequest, card: ModelCard) -> tuple[list[DatedRaster], list[str], list[str]]:
    """The dates the model runs on (``select_dates``, products resolved), the problem of too few (then all the
    dates, so that what the rasters themselves lack is said first: more dates cannot mend that), and a warning
    that names the dates given but not used (a one-date Deepness model reads the latest alone)."""
    twice = dates_given_twice(request.rasters)
    if twice:  # before the rasters are opened: pieces of one day's export do not overlap each other
        raise SegmentError(twice)
    try:
        rasters, too_few = select_dates(request.rasters, card, request.date_selection, request.max_dates), []
    except SegmentError as error:
        rasters, too_few = sorted(request.rasters, key=lambda r: r.date), error.problems
    if card.one_year:
        season_problems, season_warnings = _season(rasters)
        too_few, request_warnings = too_few + season_problems, season_warnings
    else:
        request_warnings = []
    unused = len(request.rasters) - len(rasters)
    left_out = [] if not unused else [
        f"the model reads {len(rasters)} date{'s' * (len(rasters) != 1)} ({', '.join(str(r.date) for r in rasters)}); "
        f"{unused} other{'s' * (unused != 1)} given {'are' if unused != 1 else 'is'} not used"
        + (" (choose the clearest date: the model reads one)" if len(rasters) == 1 else "")]
    return resolve_products(rasters, card), too_few, request_warnings + left_out


SEASON_MONTHS = 9  # a year's dates over fewer months leave out much of what tells its crops apart


def _season(rasters: Sequence[DatedRaster]) -> tuple[list[str], list[str]]:
    """A one-year model's dates: a problem when they are of several years (read as one season, two years' crops
    mix: a July-to-June series scored 0.32 on the simulator, against 0.88), a warning when they cover less than
    ``SEASON_MONTHS`` months of it (January to August: 0.52)."""
    if not rasters:
        return [], []
    undated = [r.name for r in rasters if r.date is None]
    if undated:
        return [f"{undated[0]} has no date, and the model reads the days of a year's dates: put its date in its "
                "name (image_20210617.tif) or give it (--dates; in Processing: Dates)"], []
    first, last = min(r.date for r in rasters), max(r.date for r in rasters)
    if first.year != last.year:
        return [f"the dates run from {first} to {last}: the model reads one calendar year's dates; give one year's "
                "(each year as its own period)"], []
    months = last.month - first.month + 1
    if months < SEASON_MONTHS:
        return [], [f"the dates cover {months} months ({first} to {last}) of the year the model reads: expect much "
                    "lower accuracy (January to August scored 0.52 on simulated scenes, the whole year 0.88)"]
    return [], []


def segment_preflight(request: SegmentRequest) -> tuple[list[str], list[str]]:
    """Everything knowable about ``request`` without running the model (its card is read on the CPU)
    -> ``(problems, warnings)``: what keeps it from running, and what the run will change in the
    inputs (a resampling, bands read by name, dates without data left out). The dock shows both
    before Run."""
    problems = request_problems(request)
    if problems:
        return problems, []
    try:
        model = load_model(request.model_path, "cpu", threads=1, precision=request.precision)
        rasters, too_few, left_out = _selected_dates(request, model.card)
        with RasterStack(rasters, _reference_index(rasters, request.reference_path)) as stack:
            warnings, left_too_few = _prepare_stack(stack, model.card, request.aoi, request.aoi_crs)
            return _model_problems(request, model, stack) + left_too_few + too_few, left_out + warnings
    except SegmentError as error:
        return problems + error.problems, []
    except (ModelCardError, RasterStackError, RuntimeUnavailable, AreaError, ProductError) as error:
        return [*problems, str(error)], []


def periods_apart(requests: dict[str, SegmentRequest]) -> list[str]:
    """The periods (in time order) whose outputs' grid lies apart from the first period's: their maps would
    have nothing in common for a change map. Rasters that cannot be opened are left to each period's checks."""
    footprints = {}
    for period, request in requests.items():
        rasters = sorted(request.rasters, key=lambda r: r.date)
        path = rasters[_reference_index(rasters, request.reference_path)].path if rasters else None
        try:
            with rasterio.open(path) as dataset:
                if dataset.crs is not None:
                    footprints[period] = (path, dataset.crs, dataset.bounds)
        except (rasterio.errors.RasterioIOError, SegmentError, TypeError):
            continue
    if not footprints:
        return []
    (first, (first_path, crs, bounds)), *later = footprints.items()
    return [f"periods {first} and {period} do not overlap ({Path(first_path).name} and {Path(path).name} lie "
            "apart): tick the layers of one place"
            for period, (path, other_crs, other_bounds) in later
            if not bounds_overlap(transform_bounds(other_crs, crs, *other_bounds), bounds)]


def segment(request: SegmentRequest, outputs: OutputSet | None = None,
            model: LoadedModel | None = None) -> SegmentResult:
    """Run the model over the stack; write ``probability.tif`` and ``classes.tif``.

    With ``outputs`` (an ``OutputSet`` that holds both paths) the files are left for its owner
    to commit with the run's other outputs; without, they are committed here. ``model``: the
    request's model already loaded (a batch worker keeps one per process).
    """
    problems = request_problems(request)
    if problems:
        raise SegmentError(problems)
    model = model or load_model(request.model_path, request.device, request.threads, request.precision)
    try:
        return _segment(request, outputs, model)
    except _LogitsFoundLate:  # the tiles written before were raw logits: all again, each read as logits
        log.info("the model gave logits only after the first tiles were written: the maps are made again")
        return _segment(request, outputs, model)


class _LogitsFoundLate(Exception):
    """A one-date network gave values beyond 0..1 only after tiles read as probabilities were written."""


def _segment(request: SegmentRequest, outputs: OutputSet | None, model: LoadedModel) -> SegmentResult:
    """``segment`` with its model loaded."""
    card = model.card
    rasters, too_few, left_out = _selected_dates(request, card)
    report = request.progress or (lambda fraction, message: None)
    normalisation = Normalisation.from_card(card)
    probability_path, classes_path = _output_paths(request)
    with RasterStack(rasters, _reference_index(rasters, request.reference_path)) as stack:
        warnings, problems = _prepare_stack(stack, card, request.aoi, request.aoi_crs)
        warnings = [*request.input_warnings, *left_out, *warnings]
        if request.threshold is not None and not card.takes_threshold:  # the likeliest class: nothing to cut
            warnings.append(f"the threshold applies to models of two classes; this one maps the likeliest of "
                            f"{len(card.class_names)}, so it was not used")
        problems = _model_problems(request, model, stack) + problems + too_few
        if problems:
            raise SegmentError(problems)
        for warning in warnings:  # once the run is sure to start: a refusal is one line
            log.warning("warning: %s", warning)
        log.info("running %s (%s) on %s", Path(request.model_path).name, card.precision, device_words(model.provider))
        grid = stack.grid
        channels = card.output_channels
        # the full raster's tiling, whatever the area: an area's tiles are the full raster's, cut to it
        origin, (lattice_height, lattice_width) = _lattice(stack)
        tile_size, overlap = _tiling(request, model, lattice_width, lattice_height)
        threshold = card.threshold if request.threshold is None else request.threshold
        tiles = tile_grid(grid.height, grid.width, tile_size, overlap, origin, (lattice_height, lattice_width))
        batch_size = request.batch_size or model.tiles_per_run
        with ThreadPoolExecutor(1, "prepare") as preparing:  # the model made ready while the dates are harmonised
            prepared = preparing.submit(model.prepare, min(batch_size, len(tiles)), len(stack.dates), tile_size)
            input_tables = _input_tables(stack, card, normalisation)
            prepared.result()
        batches = [tiles[i : i + batch_size] for i in range(0, len(tiles), batch_size)]
        blender = StreamingBlender(tiles, channels, grid.width, grid.height, overlap, tile_size)
        done, run = [0], [0]  # tiles written, tiles the model ran on (counted by the one writer thread)
        # grid pixels with data on some date, of them those lacking a date, and those white on every date (the
        # reader's count)
        seen = [0, 0, 0]
        looks_for_clouds = takes_true_colour(card.bands, card.input_dtype) and stack.dtype == np.uint8
        stride = tile_size - overlap

        def owned(tile: Tile) -> tuple[slice, slice]:
            """The part of a tile's window that it alone covers of the grid: before the next tile's start."""
            rows_end = min(tile_size if tile.bottom_edge else stride, tile.skip_rows + tile.height)
            cols_end = min(tile_size if tile.right_edge else stride, tile.skip_cols + tile.width)
            return (slice(tile.skip_rows, max(tile.skip_rows, rows_end)),
                    slice(tile.skip_cols, max(tile.skip_cols, cols_end)))

        def counted(tile: Tile) -> tuple[slice, slice]:
            """``owned(tile)`` within ``request.counted_part``: the pixels the run's coverage counts."""
            rows, cols = owned(tile)
            if request.counted_part is None:
                return rows, cols
            col, row, width, height = request.counted_part
            top, left = tile.row - tile.skip_rows, tile.col - tile.skip_cols  # the tile's corner on the grid

            def within(owned_part: slice, start: int, stop: int) -> slice:
                first = max(owned_part.start, start)
                return slice(first, max(first, min(owned_part.stop, stop)))

            return within(rows, row - top, row + height - top), within(cols, col - left, col + width - left)

        reading_threads, compress_threads = engine_threads(model.device, len(stack.dates), request.threads)
        readers = ThreadPoolExecutor(reading_threads, "read") if reading_threads > 1 else None  # one per date

        no_data_value = (None if card.no_data_value is None else
                         np.asarray(card.no_data_value, stack.dtype)[:, None, None])  # [C, 1, 1]

        def read(batch: list[Tile]) -> tuple[np.ndarray, list[np.ndarray]]:
            pixels = np.empty((len(batch), len(stack.dates), stack.band_count, tile_size, tile_size), stack.dtype)
            valid = []
            for index, tile in enumerate(batch):
                window = Window(tile.col - tile.skip_cols, tile.row - tile.skip_rows, tile_size, tile_size)
                pixels[index], valid_dates = stack.read(window, readers)
                if no_data_value is not None and not valid_dates.all():  # what the model learnt to pass over
                    pixels[index] = np.where(valid_dates[:, None], pixels[index], no_data_value)
                some = valid_dates.any(axis=0)
                rows, cols = counted(tile)
                inside = some[rows, cols]
                seen[0] += int(np.count_nonzero(inside))
                seen[1] += int(np.count_nonzero(inside & ~valid_dates[:, rows, cols].all(axis=0)))
                if looks_for_clouds:
                    unseen = white_on_every_date(pixels[index], valid_dates) & some
                    seen[2] += int(np.count_nonzero(unseen[rows, cols]))
                    some &= ~unseen
                valid.append(some)
            images = np.empty(pixels.shape, np.float32)

            def normalise(date: int) -> None:
                table = input_tables[date]
                if table is None:
                    normalisation.apply(pixels[:, date], out=images[:, date])
                    return
                looked_up(table, pixels[:, date], out=images[:, date])

            list((readers.map if readers else map)(normalise, range(len(stack.dates))))
            return images, valid

        def oriented(images: np.ndarray) -> np.ndarray:
            return averaged_over_orientations(model.run, images, request.orientations)

        def averaged_views(images: np.ndarray) -> np.ndarray:
            """The model's answer ``[B, K, h, w]`` to ``images`` ``[B, T, C, h, w]``, averaged over the views
            asked (``--scales``, each over ``--orientations``)."""
            return averaged_over_scales(oriented, images, request.scales)

        def infer(data: tuple[np.ndarray, list[np.ndarray]]) -> tuple[np.ndarray, list[np.ndarray]]:
            images, valid = data
            has_data = np.array([tile_valid.any() for tile_valid in valid])
            if has_data.all():  # the usual batch: no copies
                return averaged_views(images), valid
            predictions = np.full((len(images), channels, tile_size, tile_size), np.nan, np.float32)
            if has_data.any():
                predictions[has_data] = averaged_views(images[has_data])
            return predictions, valid

        # which model made the maps: change compares maps of one model only
        made_by = {MODEL_TAG: Path(request.model_path).name, MODEL_ID_TAG: model_fingerprint(request.model_path)}
        own_outputs = OutputSet(segment_outputs(probability_path, classes_path)) if outputs is None else None
        with own_outputs if own_outputs is not None else contextlib.nullcontext(outputs) as run_outputs:
            with (
                GeoTiffWriter(run_outputs.partial(probability_path), grid, channels, "float32", nodata=float("nan"),
                              descriptions=_probability_names(card),
                              tags={"dates": dates_tag(stack.dates), OUTPUT_TAG: "probability", **made_by},
                              compress_threads=compress_threads, precision=card.precision) as probability,
                GeoTiffWriter(run_outputs.partial(classes_path), grid, 1, "uint8", nodata=NO_CLASS,
                              descriptions=["class"], colours=class_colours(card.class_names),
                              tags={"class_names": ",".join(card.class_names), "dates": dates_tag(stack.dates),
                                    OUTPUT_TAG: "classes", **made_by,
                                    **({THRESHOLD_TAG: f"{threshold:g}"} if card.takes_threshold else {})},
                              band_tags={f"CLASS_{code}": name for code, name in enumerate(card.class_names)},
                              compress_threads=compress_threads) as classes,
            ):

                class_rows = ClassRows(lambda row, labels: classes.write(
                    labels[None], Window(0, row, labels.shape[1], len(labels))), card.class_median_px, grid.height)

                def write(batch: list[Tile], result: tuple[np.ndarray, list[np.ndarray]]) -> None:
                    predictions, valid = result
                    run[0] += sum(bool(tile_valid.any()) for tile_valid in valid)
                    for tile, prediction, tile_valid in zip(batch, predictions, valid):
                        for first_row, blended, rows_valid in blender.add(tile, prediction, tile_valid):
                            _write_rows(probability, class_rows, card, threshold, first_row, blended, rows_valid)
                    done[0] += len(batch)
                    report(done[0] / len(tiles), f"tile {done[0]} of {len(tiles)}")

                with readers or contextlib.nullcontext(), block_cache(stack):
                    if model.single_date and not model.gives_logits.is_set():
                        # a Deepness network's outputs judged on tiles over the whole raster before any is
                        # written: logits found later would leave the first tiles raw
                        counted_before = list(seen)
                        probe = tiles[:: max(1, len(tiles) // LOGIT_PROBE_TILES)][:LOGIT_PROBE_TILES]
                        model.run(read(probe)[0])
                        seen[:] = counted_before
                    logits_known = model.gives_logits.is_set()
                    run_pipeline(batches, read, infer, write, request.cancelled, workers=model.runs_at_once)
                    if model.single_date and not logits_known and model.gives_logits.is_set():
                        raise _LogitsFoundLate  # the outputs are removed (or rewritten by the next try)
                with ThreadPoolExecutor(2, "finish") as finishing:  # the model is done: the cores close both at once
                    list(finishing.map(GeoTiffWriter.finish, (probability, classes)))
            run_outputs.write_text(style_path(probability_path),
                                   probability_qml(stack.dates, probability_band(card.class_names)))
            run_outputs.write_text(style_path(classes_path), classes_qml(card.class_names, stack.dates))
            if own_outputs is not None:
                own_outputs.commit()
        # what only the run could tell: dates missing over part of the area, a network that gave logits
        after_run = coverage_warnings(tuple(seen), card) + ([LOGITS_WARNING] if model.gives_logits.is_set() else [])
        for warning in after_run:
            log.warning("warning: %s", warning)
        return SegmentResult(probability_path.absolute(), classes_path.absolute(), model.provider, stack.dates,
                             card, run[0], len(tiles), card.precision, tuple(warnings + after_run), tuple(seen))


LOGIT_PROBE_TILES = 8  # tiles a one-date (Deepness) network is first run on, to tell logits from probabilities
PARTLY_SEEN_WARNING = 0.05  # a share of the mapped area that lacks a date (each pixel counted once)


# True colour this bright in every band is cloud, snow or a white roof: the real scenes' land stays below it,
# Zurich's cumulus (9-11 % of it) above it
WHITE_FROM = 220
WHITE_AREA_PX = 9  # white patches narrower than this (roads, roofs) are ground the model reads; wider: sky
NEARLY_WHITE_BELOW = 30  # a cloud's specks this far below WHITE_FROM are taken with it


def white_on_every_date(pixels: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``[h, w]`` bool: where every date of true-colour ``pixels`` ``[T, 3, h, w]`` (uint8) is white in patches
    ``WHITE_AREA_PX`` wide or more, or has no data (``valid`` ``[T, h, w]``). No date shows the ground there: a map
    that called it not-road made a change map call its roads removed (a cloud over one period: 2816 of 2910 road
    pixels in a QA run), so it has no data there, as where no date has data. The patches are taken whole up to
    the tile's edge (its neighbour sees past it). About 0.1 ms for a tile of 5 clear dates, 256 px."""
    from scipy.ndimage import maximum_filter, minimum_filter

    unseen = ~valid[0] | (pixels[0] >= WHITE_FROM).all(axis=0)
    for date in range(1, len(pixels)):  # date by date: most tiles are done after the first
        if np.count_nonzero(unseen) < WHITE_AREA_PX ** 2 // 2:
            return np.zeros(unseen.shape, bool)
        unseen &= ~valid[date] | (pixels[date] >= WHITE_FROM).all(axis=0)
    if np.count_nonzero(unseen) < WHITE_AREA_PX ** 2 // 2:
        return np.zeros(unseen.shape, bool)
    # a cloud's own texture leaves specks a little below the threshold: closed over 3 x 3 px, where every date is
    # nearly white (land, darker, is never taken: not even in the notches of an area's staircase edge); then
    # opened over the patch size (square filters: separable, unlike binary morphology)
    nearly = (~valid | (pixels >= WHITE_FROM - NEARLY_WHITE_BELOW).all(axis=1)).all(axis=0)
    closed = minimum_filter(maximum_filter(unseen.view(np.uint8), 3), 3, mode="constant", cval=1) & nearly
    opened = maximum_filter(minimum_filter(closed, WHITE_AREA_PX, mode="constant", cval=1), WHITE_AREA_PX,
                            mode="constant", cval=0)
    return (opened & closed).astype(bool)


UNSEEN_WARNING = 0.005  # of the mapped area white on every date


def coverage_warnings(coverage: Sequence[int], card: ModelCard) -> list[str]:
    """What a run's ``SegmentResult.coverage`` (pixels mapped, of them lacking a date, white on every date) says
    after it: the share lacking dates, the share no date shows. A batch says them once for a place of several
    windows, from the windows' coverages added up."""
    mapped, lacking, white = coverage
    return _partly_seen(lacking / max(1, mapped), card) + _unseen(white / max(1, mapped))


def _unseen(share: float) -> list[str]:
    """The warning, after a run, that ``share`` of the area was white on every date (``white_on_every_date``)."""
    if share < UNSEEN_WARNING:
        return []
    return [f"{share:.1%} of the area is white on every date (cloud, snow or bright sand): no date shows the ground "
            "there, so the maps have no data there (add a clearer date to see it)"]


def _partly_seen(share: float, card: ModelCard) -> list[str]:
    """The warning, after a run, that ``share`` of the mapped area lacked one or more dates (beyond a swath's
    edge on some dates, or masked): the map rests on fewer dates there, and how the model read the missing
    ones. None below ``PARTLY_SEEN_WARNING``."""
    if share < PARTLY_SEEN_WARNING:
        return []
    read_as = ("; the model reads them there as its no-data value, an overcast date to it" if card.no_data_value
               is not None else "; the model reads them there as overcast" if card.harmonisation else "")
    return [f"{share:.0%} of the mapped area lacks one or more of the dates (beyond a swath's edge, or masked)"
            f"{read_as}: the map rests on fewer dates there and may be less sure"]


# GDAL's block cache must hold two rows of blocks of every date (a row of tiles can cross two), and an
# eighth more: below that, each block is decoded again for every row of tiles that reads it. Sentinel-2's
# JPEG 2000 files have 1024 px blocks: 5 dates of 10980 px (CPU, a model that answers at once) took
# 295 s with the command line's 128 MB, 169 s with 1.25 rows, 107 s with 2.25 rows (380 MB).
BLOCK_ROWS_CACHED = 2.25
BLOCK_CACHE_MAX_BYTES = 1 << 30  # stacks that need more (10980 px JPEG 2000: 15 dates) decode some blocks twice


def block_cache(stack: RasterStack) -> contextlib.AbstractContextManager:
    """GDAL's block cache raised to ``BLOCK_ROWS_CACHED`` rows of blocks of the stack (at most
    ``BLOCK_CACHE_MAX_BYTES``) while it is read, where it is smaller (the command line holds it at 128 MB,
    which fits 256 px GeoTIFF blocks)."""
    needed = min(int(stack.block_row_bytes() * BLOCK_ROWS_CACHED), BLOCK_CACHE_MAX_BYTES)
    if int(get_gdal_config("GDAL_CACHEMAX")) >= needed:
        return contextlib.nullcontext()
    log.info("GDAL's block cache raised to %d MB for this stack's blocks", needed >> 20)
    return rasterio.Env(GDAL_CACHEMAX=needed)


def _input_tables(stack: RasterStack, card: ModelCard, normalisation: Normalisation) -> list[np.ndarray | None]:
    """Per date, the model inputs of the raw values 0..255 ``[C, 256]`` float32 when the card harmonises
    its dates (``core.harmonisation``: stretched, no data read as overcast), else None (the plain
    normalisation)."""
    model_tables = stack_model_tables(Harmonisation.from_card(card.harmonisation), stack)
    if model_tables is None:
        return [None] * len(stack.dates)
    tables, stretched = model_tables
    harmonised_dates = [date_words(d) for d, date_stretched in zip(stack.dates, stretched) if date_stretched]
    log.info("dates harmonised to the model's training images: %s", ", ".join(harmonised_dates) or "none")
    return [normalisation.apply(table[:, :, None])[:, :, 0] for table in tables]


def _prepare_stack(stack: RasterStack, card: ModelCard, aoi: str | None,
                   aoi_crs: str | None = None) -> tuple[list[str], list[str]]:
    """``stack`` read from now on as the model takes it: at its resolution, its bands by the card,
    within the area, the dates without data left out -> ``(warnings, problems)``, the warnings worded
    to hold before the run and after it."""
    finer = far_finer(stack, card)
    if finer:  # not resampled: a refusal, before GDAL is asked for a raster of 10 000 times the pixels
        return [], [finer]
    warnings = _resample_if_needed(stack, card) + fit_stack(stack, card.bands, card.input_dtype)
    warnings += _too_small(stack, card) + _restrict(stack, aoi, aoi_crs)
    left_out, problems = leave_out_empty_dates(stack, card)
    return warnings + left_out, problems


def _too_small(stack: RasterStack, card: ModelCard) -> list[str]:
    """A warning when the rasters are narrower than half the model's tile: a network that reads each pixel in
    its surroundings (the road model: up to 41 px away) lacks them (a 60 x 40 px cut of Inn found 41 road
    pixels where the whole image finds 143 on the same ground), and a harmonising model's stretch lacks
    pixels to measure."""
    width, height = stack.full_grid.width, stack.full_grid.height
    least = card.tile_size // 2
    if min(width, height) >= least:
        return []
    return [f"the rasters are {width} x {height} px, less than the {least} px a side the model reads a pixel's "
            "surroundings in: the map is unreliable; give larger rasters (and cut them to your area: --aoi; in the "
            "dock and Processing, the area)"]


def _resample_if_needed(stack: RasterStack, card: ModelCard) -> list[str]:
    """Rasters at another resolution than the model's are resampled to it (the outputs take that grid), and
    a date at another resolution than the outputs' is resampled onto them; the warnings say which."""
    sizes, reference = stack.date_pixel_sizes(), stack.grid.pixel_size_m
    across, along = stack.grid.pixel_metres
    warnings = []
    square = max(across, along) <= SQUARE_PIXELS * min(across, along)
    resampled = card.resolution > 0 and not (resolution_fits(reference, card.resolution) and square)
    if resampled:
        crs = stack.grid.crs
        stack.resample_to(card.resolution)
        who = ("the rasters are" if all(abs(size / reference - 1) < 0.01 for size in sizes)
               else f"{stack.reference_name} (the reference) is")
        size = f"{reference:.3g} m" if square else f"{across:.3g} m x {along:.3g} m"
        works = f"at {card.resolution:g} m" if square else f"on square pixels of {card.resolution:g} m"
        into = "" if stack.grid.crs == crs else f" in {_crs_name(stack.grid.crs)}"
        vanishing = ("roads narrower than their pixels mostly vanish: expect far fewer found" if "road" in
                     card.class_names else "what is narrower than a pixel mostly vanishes: expect far less found")
        coarse = f" ({vanishing})" if reference >= 2 * card.resolution else ""
        warnings.append(f"{who} at {size} per pixel{' (degrees)' * crs.is_geographic}, the model works {works}: "
                        f"they are resampled to {card.resolution:g} m{into} and the outputs are on that grid{coarse}")
    target = stack.grid.pixel_size_m
    for raster, size, warped, aligned, flipped, off in zip(stack.rasters, sizes, stack.warped(),
                                                           stack.on_the_grids_lattice(), stack.stored_flipped(),
                                                           stack.share_off_the_grid()):
        name = raster.name
        if flipped:
            warnings.append(f"{name} is stored with {flipped}: it is read turned north-up, as the model sees the "
                            "ground, and the outputs are north-up")
        if abs(size / reference - 1) >= 0.01 and not resolution_fits(size, target):
            warnings.append(f"{name} is at {size:.3g} m per pixel: it is resampled to the outputs' {target:.3g} m")
        elif warped and not resampled and not aligned:  # a date off the reference's grid, the grid itself kept
            warnings.append(f"{name} is not on the grid of {stack.reference_name} (another CRS, pixel size, "
                            "or pixels offset): it is resampled onto it")
        elif warped and not resampled and not flipped:  # the same pixels, another extent: not resampled
            beyond = (f"; {off:.0%} of it lies beyond {stack.reference_name} and is not mapped (the outputs take the "
                      f"grid of the earliest date, or of --reference: give --reference {name} to map it)"
                      if off >= 0.01 else "")
            warnings.append(f"{name} covers another extent than {stack.reference_name}: its pixels are read as they "
                            f"are, and where it has none the other dates make the map{beyond}")
    stored = stack.lossy()
    lossy = [raster.name for raster, kind in zip(stack.rasters, stored) if kind]
    if lossy:  # measured by a QA run on JPEG copies of Inn (quality 90-98, and gdal_translate's COG default)
        kinds = ", ".join(dict.fromkeys(kind for kind in stored if kind))
        warnings.append(f"{', '.join(lossy)} {'is' if len(lossy) == 1 else 'are'} stored with lossy compression "
                        f"({kinds}): it blurs roads one or two pixels wide (maps of JPEG copies of a real scene agreed "
                        "with the lossless one's at IoU 0.62-0.88), and black no-data borders come out as dark "
                        "land: export as GeoTIFF (DEFLATE or LZW) or PNG")
    return warnings


def _crs_name(crs) -> str:
    """``UTM zone 33N (EPSG:32633)`` for a UTM zone of WGS 84, else the CRS's EPSG code or its string."""
    code = crs.to_epsg()
    if code and code // 100 in (326, 327) and 1 <= code % 100 <= 60:
        return f"UTM zone {code % 100}{'N' if code // 100 == 326 else 'S'} (EPSG:{code})"
    return f"EPSG:{code}" if code else crs.to_string()


def leave_out_empty_dates(stack: RasterStack, card: ModelCard) -> tuple[list[str], list[str]]:
    """Leave out the dates that hold no data over the reference raster (a Sentinel-2 date wholly beyond
    its swath's edge) -> ``(warnings, problems)``: a warning that names them, or, when fewer dates than
    the model needs would be left, a problem and nothing left out."""
    has_data = dates_with_data(stack)
    empty = [raster.name for raster, kept in zip(stack.rasters, has_data) if not kept]
    left = sum(has_data)
    if not empty:
        return [], []
    words = (f"{', '.join(empty)} {'holds' if len(empty) == 1 else 'hold'} no data over the reference raster "
             "(every pixel is nodata)")
    if left < card.min_sequence_length:
        return [], [f"{words}: " + (
            "give dates that cover it" if not left else
            f"{left} date{'s' * (left != 1)} left, the model needs at least {card.min_sequence_length}: add dates")]
    stack.keep_dates(has_data)
    return [f"{words}: left out, the model runs on the {left} date{'s' * (left != 1)} left"], []


def _restrict(stack: RasterStack, aoi: str | None, aoi_crs: str | None = None) -> list[str]:
    """The stack cut to the area of interest (bounds in ``aoi_crs`` when given); a warning when the area
    reaches beyond the rasters."""
    if not aoi:
        if aoi_crs:
            raise AreaError("--aoi-crs gives the CRS of --aoi's bounds: give --aoi with it, or leave it out")
        return []
    area = parse_area(aoi, stack.grid, aoi_crs)
    stack.restrict(area)
    if area.on_rasters >= 0.99:
        return []
    return [f"the area of interest reaches beyond the rasters: the {area.on_rasters:.0%} of it on them is mapped"]


def _asked_tiling(request: SegmentRequest, card: ModelCard) -> tuple[int, int]:
    """Tile size and overlap as asked: the request's, else the card's."""
    return request.tile_size or card.tile_size, card.tiles_overlap if request.overlap is None else request.overlap


def _tiling(request: SegmentRequest, model: LoadedModel, width: int, height: int) -> tuple[int, int]:
    """Tile size and overlap: the request's or the card's; a tile never larger than the raster needs
    (rounded up to 32 px), so a huge ``--tile-size`` on a small raster asks for no more memory
    (unless the network takes one size only)."""
    tile_size, overlap = _asked_tiling(request, model.card)
    needed = -(-max(width, height) // TILE_ALIGN_PX) * TILE_ALIGN_PX
    if tile_size > needed and model.fixed_tile_size is None:
        tile_size, overlap = needed, min(overlap, needed // 2)
    return tile_size, aligned_overlap(tile_size, overlap)


def _lattice(stack: RasterStack) -> tuple[tuple[int, int], tuple[int, int]]:
    """``(origin, full)`` of ``tile_grid``: where the stack's area lies in the tiles' lattice, and its size.

    The lattice is anchored on the ground: it starts up to ``TILE_ALIGN_PX - 1`` px before the full grid's
    corner, at a row and column of pixels that are multiples of ``TILE_ALIGN_PX`` counted from the CRS's
    origin. So two rasters cut from one grid at any offset (two crops of one Sentinel-2 tile) put the
    networks' 16 px downsampling on the same ground: cut 11 px apart, their road maps agreed with F1 0.87 when
    each was tiled from its own corner, 0.98 so."""
    transform = stack.full_grid.transform
    lattice_row = round(transform.f / transform.e) % TILE_ALIGN_PX if transform.e else 0
    lattice_col = round(transform.c / transform.a) % TILE_ALIGN_PX if transform.a else 0
    full = (stack.full_grid.height + lattice_row, stack.full_grid.width + lattice_col)
    if stack.area is None:
        return (lattice_row, lattice_col), full
    return (lattice_row + int(stack.area.window.row_off), lattice_col + int(stack.area.window.col_off)), full


def _probability_names(card: ModelCard) -> list[str]:
    if card.is_binary:
        return [f"P({card.class_names[1]})"]
    return [f"P({name})" for name in card.class_names]


def _write_rows(probability: GeoTiffWriter, class_rows: ClassRows, card: ModelCard, threshold: float, row: int,
                blended: np.ndarray, valid: np.ndarray) -> None:
    """Write a finished block ``[C, n, width]`` of blended probabilities, and hand its classes on."""
    if valid.shape[0] == 0:
        return
    probability.write(blended, Window(0, row, valid.shape[1], valid.shape[0]))
    class_rows.add(row, class_labels(card, blended, threshold, valid))
