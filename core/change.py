"""Two periods' maps -> a change map: 0 none, 1 new, 2 removed, 255 nodata.

From class maps, a class is present where its code is; from probability maps, where the
probability passes hysteresis thresholds (above ``high``, or above ``low`` and connected
to a pixel above ``high``). A pixel is new where the later map has the class and the earlier one
has it nowhere within ``tolerance_px`` (removed likewise), so that a road found a pixel aside
on another date is not a pair of slivers. Patches of new or removed pixels smaller than
``min_patch_pixels`` are dropped as speckle. The summary counts pixels and area per code
and, for lines such as roads, estimates the length of new and removed features from
their skeleton.

The change map is computed in memory (connected components need the whole map): one
byte per pixel and a few boolean masks, about 0.6 GB for a full 10980 x 10980 tile; the
skeletons and lines add to it (2.9 GB at peak for a synthetic tile with 8100 km of change lines,
``/usr/bin/time``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling

from .atomic import OutputSet
from .change_lines import change_lines, write_lines
from .class_map import NO_CLASS
from .definitions import (
    CHANGE_THRESHOLD,
    CHANGE_TOLERANCE_PX,
    MIN_PATCH_PIXELS,
    MODEL_ID_TAG,
    MODEL_TAG,
    OUTPUT_TAG,
    PROBABILITY_NAME,
    THRESHOLD_TAG,
)
from .options import option, range_problems
from .outputs import GeoTiffWriter
from .preflight import output_problems
from .qml import change_qml, dates_of, style_path
from .raster_stack import Grid, RasterStackError, bounds_overlap, raster_missing, read_band_on_grid

NONE, NEW, REMOVED, NODATA = 0, 1, 2, NO_CLASS
CHANGE_COLOURS = {NONE: (0, 0, 0, 0), NEW: (230, 20, 20, 255), REMOVED: (30, 80, 230, 255), NODATA: (0, 0, 0, 0)}


class ChangeError(ValueError):
    """The two maps cannot be compared; the message says why."""


@dataclass(frozen=True)
class ChangeOptions:
    target_class: int | None = option(None, "class code to follow (default: 1, the class of a two-class map, as "
                                      "road; maps of more classes, as crops, need it)", flag="--class", minimum=0,
                                      maximum=254, words="the class code")
    high: float = option(CHANGE_THRESHOLD, "probability threshold (probability inputs)", minimum=0, maximum=1,
                         words="the threshold")
    low: float | None = option(None, "hysteresis lower threshold, below the threshold (probability inputs)", minimum=0,
                               maximum=1, words="the lower threshold")
    min_patch_pixels: int = option(MIN_PATCH_PIXELS, "drop new/removed patches under N pixels (8-connected)",
                                   flag="--min-patch",
                                   minimum=0, maximum=1_000_000, words="the minimum patch size")
    # the same road is found a pixel aside on another date (its width, the scene's co-registration): not a change
    tolerance_px: int = option(CHANGE_TOLERANCE_PX, "new only where the earlier map has none of the class within N "
                               "pixels, removed only where the later map has none within N (0: pixel by pixel)",
                               flag="--tolerance", minimum=0, maximum=10, words="the tolerance")


# measured by make change-check (README): real Inn, one date per period, nothing built in between, the default
# tolerance (1 px): 21.7 km of false new lines and 10.7 km of false removed ones, for 40 km of traced roads
SINGLE_DATE_WARNING = ("warning: {} was made from one date: between single dates much of the change is false (on a "
                       "real pair with nothing built, about 20 km of false new lines for 40 km of roads); use several "
                       "dates per period, with a model that reads them (a one-date model, a Deepness one, reads the "
                       "latest only)")


@dataclass(frozen=True)
class ChangeSummary:
    pixels: dict[str, int]
    area_m2: dict[str, float]
    new_length_m: float
    removed_length_m: float
    pixel_size_m: float
    warnings: list[str] = field(default_factory=list)
    followed: str = ""  # the class whose change, named when the maps hold more than two (crops: no lines then)

    def lines(self) -> list[str]:
        if self.followed:  # fields, not roads: areas, not lines
            return [f"new {self.followed}: {self.pixels['new']} px, {self.area_m2['new'] / 1e4:.2f} ha",
                    f"removed {self.followed}: {self.pixels['removed']} px, {self.area_m2['removed'] / 1e4:.2f} ha",
                    f"no change: {self.pixels['none']} px; no data: {self.pixels['nodata']} px", *self.warnings]
        return [
            f"new:     {self.pixels['new']} px, {self.area_m2['new'] / 1e4:.2f} ha, "
            f"about {self.new_length_m / 1000:.2f} km of lines",
            f"removed: {self.pixels['removed']} px, {self.area_m2['removed'] / 1e4:.2f} ha, "
            f"about {self.removed_length_m / 1000:.2f} km of lines",
            f"no change: {self.pixels['none']} px; no data: {self.pixels['nodata']} px",
            *self.warnings,
        ]


def _read_on_grid(path: Path, grid: Grid | None) -> tuple[np.ndarray, np.ndarray, Grid, bool]:
    """Band 1 of ``path`` on ``grid`` (its own when None) -> values, valid mask, grid, is_probability."""
    try:
        data, grid = read_band_on_grid(path, grid, fill_nodata=NODATA)
    except RasterStackError as error:
        raise ChangeError(str(error)) from None
    values = np.ma.getdata(data)
    valid = ~np.ma.getmaskarray(data)
    is_probability = values.dtype.kind == "f"
    if is_probability:
        valid &= np.isfinite(values)
    return values, valid, grid, is_probability


@dataclass(frozen=True)
class MapKind:
    """What a map given to ``change`` is: ``classes`` or ``probability``, its class names and the model that
    made it (file name, ``core.runtime.model_fingerprint``), from its tags (None where it has none)."""

    kind: str
    names: tuple[str, ...] | None
    model: str | None
    model_id: str | None
    threshold: float | None = None  # a class map's (None: a probability map, or one made before it was recorded)


NODATA_SAID_FROM = 0.01  # of the change map without data, said in a warning (and the dock's message bar)


def _map_kind(path: Path) -> MapKind:
    """The map's ``MapKind``; raises for rasters that are not maps."""
    try:
        with rasterio.open(path) as dataset:
            count, dtype, tags = dataset.count, dataset.dtypes[0], dataset.tags()
    except rasterio.errors.RasterioIOError:
        raise ChangeError(f"{path} is not a raster GDAL can read: give a classes.tif made by timeseg segment") from None
    if count != 1 or dtype not in ("uint8", "float32", "float64"):
        raise ChangeError(f"{Path(path).name} has {count} band{'s' * (count > 1)} of {dtype}, not a class map: "
                          "give a classes.tif (or a one-band probability.tif) made by timeseg segment")
    names = tags.get("class_names")
    return MapKind("probability" if dtype.startswith("float") else "classes",
                   tuple(names.split(",")) if names else None, tags.get(MODEL_TAG), tags.get(MODEL_ID_TAG),
                   float(tags[THRESHOLD_TAG]) if tags.get(THRESHOLD_TAG) else None)


def _other_models(before: str, after: str, kinds: list[MapKind]) -> list[str]:
    """The problem of two maps (called ``before`` and ``after``) made by different models (or versions of one),
    each tagged with its model: their difference would be mostly the models', not the ground's."""
    earlier, later = kinds
    if not earlier.model_id or not later.model_id or earlier.model_id == later.model_id:
        return []
    models = (f"two versions of {later.model}" if earlier.model == later.model
              else f"{earlier.model} and {later.model}")
    return [f"{before} and {after} were made by {models}: compare maps made by the same model "
            f"(run the earlier period again with {later.model})"]


def change_problems(before: Path, after: Path, output: Path, options: ChangeOptions,
                    names: tuple[str, str] | None = None) -> list[str]:
    """Every problem knowable before the change is computed; the maps are called ``names`` (the dock's layer
    names), else by their folder and file."""
    earlier_map, later_map = names or (shown(before), shown(after))
    problems = range_problems(options)
    if options.low is not None and options.low >= options.high:
        problems.append(f"the lower threshold {options.low:g} must be below the threshold {options.high:g}")
    for path in (before, after):
        if not Path(path).is_file():
            problems.append(raster_missing(path))
    if Path(output).suffix.lower() in (".json", ".gpkg"):
        problems.append(f"{output} is the name of the summary or the lines: give the change raster a .tif name")
    elif Path(output).suffix.lower() not in (".tif", ".tiff"):
        problems.append(f"the change map is a GeoTIFF: name it {Path(output).with_suffix('.tif').name}")
    problems += output_problems(change_outputs(output), [before, after])
    if problems:
        return problems
    try:
        kinds = [_map_kind(path) for path in (before, after)]
    except ChangeError as error:
        return [str(error)]
    if Path(before).resolve() == Path(after).resolve():
        return [f"the earlier and the later map are the same file ({before}): give the maps of two periods"]
    class_names = [kind.names for kind in kinds if kind.names is not None]
    if len(class_names) == 2 and class_names[0] != class_names[1]:
        problems.append(f"{earlier_map} holds {', '.join(class_names[0])} and {later_map} holds "
                        f"{', '.join(class_names[1])}: compare maps made by the same model")
    else:
        problems += _other_models(earlier_map, later_map, kinds)
    if not _footprints_overlap(before, after):
        return [*problems, f"{earlier_map} does not overlap {later_map}: give maps of the same place"]
    earlier, later = _dates(before), _dates(after)
    if earlier and later and min(earlier) > max(later):
        problems.append(f"the earlier map {earlier_map} is of {_span(earlier)}, after the later map "
                        f"{later_map} ({_span(later)}): swap them")
    if class_names and kinds[0].kind == "classes" and options.target_class is None and len(class_names[0]) > 2:
        problems.append(f"these maps hold {len(class_names[0])} classes ({', '.join(class_names[0])}): give the "
                        f"class whose change to map (1 for {class_names[0][1]}, ...: --class on the command line, "
                        "Class in Processing)")
    elif class_names and followed_class(options) >= len(class_names[0]) and kinds[0].kind == "classes":
        problems.append(f"class {followed_class(options)} is not in these maps (classes 0 to "
                        f"{len(class_names[0]) - 1}: {', '.join(class_names[0])}): give another class (--class; "
                        "in Processing: Class code)")
    return problems


def _class_name(found: MapKind, code: int) -> str:
    """The name of class ``code`` of a map of more than two classes (its ``class_names`` tag), else ""."""
    names = found.names
    return names[code] if found.kind == "classes" and names and len(names) > 2 and code < len(names) else ""


def followed_class(options: ChangeOptions) -> int:
    """The class code whose change is mapped: the one asked, else 1 (a two-class map's class, as road)."""
    return 1 if options.target_class is None else options.target_class


def _footprints_overlap(before: Path, after: Path) -> bool:
    """The two maps' extents share some area (``before``'s taken into ``after``'s CRS)."""
    from rasterio.warp import transform_bounds

    with rasterio.open(before) as earlier, rasterio.open(after) as later:
        if earlier.crs is None or later.crs is None:
            return True  # said by the reading (no CRS)
        return bounds_overlap(transform_bounds(earlier.crs, later.crs, *Grid.of(earlier).north_up().bounds),
                              Grid.of(later).north_up().bounds)


def shown(path: Path) -> str:
    """A map named with its folder (each period's is ``classes.tif``)."""
    folder = Path(path).absolute().parent.name
    return f"{folder}/{Path(path).name}" if folder else Path(path).name


def _span(dates: list) -> str:
    return f"{min(dates)} to {max(dates)}" if len(dates) > 1 else str(dates[0])


def summary_path(output: Path) -> Path:
    """The JSON summary written beside a change raster."""
    return Path(output).with_suffix(".json")


def lines_path(output: Path) -> Path:
    """The GeoPackage of new and removed centre lines written beside a change raster."""
    return Path(output).with_suffix(".gpkg")


def change_outputs(output: Path) -> list[Path]:
    """Every file a change writes: the raster, its QGIS style, its summary and its lines."""
    return [Path(output), style_path(output), summary_path(output), lines_path(output)]


def presence(values: np.ndarray, is_probability: bool, options: ChangeOptions) -> np.ndarray:
    """Where the target is present: its class code, or hysteresis on its probability."""
    if not is_probability:
        return values == followed_class(options)
    values = np.nan_to_num(values, nan=0.0)
    strong = values >= options.high
    if options.low is None or options.low >= options.high:
        return strong
    weak = values >= options.low
    from scipy import ndimage  # here, not at the top: scipy takes 0.15 s to import and 'segment' never needs it

    labels, _ = ndimage.label(weak, structure=np.ones((3, 3)))
    keep = np.unique(labels[strong])
    return np.isin(labels, keep[keep > 0])


def within(mask: np.ndarray, pixels: int) -> np.ndarray:
    """``mask`` ``[H, W]`` grown by ``pixels`` in every direction, diagonals included (a square)."""
    if pixels <= 0:
        return mask
    from scipy import ndimage

    return ndimage.maximum_filter(mask, size=2 * pixels + 1)  # separable: as fast at 10 px as at 1


def drop_small_patches(mask: np.ndarray, min_pixels: int) -> np.ndarray:
    if min_pixels <= 1:
        return mask
    from scipy import ndimage

    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    large = sizes >= min_pixels
    large[0] = False
    return large[labels]


def _dates(path: Path) -> list:
    with rasterio.open(path) as dataset:
        return dates_of(dataset.tags())


def _probability_beside(classes: Path, grid: Grid, outputs: OutputSet | None) -> np.ndarray | None:
    """The period's probability map (``probability.tif`` beside its ``classes.tif``) on ``grid``, if any."""
    path = Path(classes).with_name(PROBABILITY_NAME)
    source = outputs.readable(path) if outputs is not None else path
    if not source.is_file() or source == Path(classes):
        return None
    values, _ = read_band_on_grid(source, grid, resampling=Resampling.bilinear)
    return np.ma.filled(values.astype(np.float32), np.nan)


def compute_change(before: Path, after: Path, output: Path, options: ChangeOptions = ChangeOptions(),
                   outputs: OutputSet | None = None) -> ChangeSummary:
    """Write the change GeoTIFF ``output`` on ``after``'s grid, its JSON summary and its new and removed
    centre lines (``<name>.gpkg``, layer ``lines``) beside it.

    With ``outputs`` (an ``OutputSet`` of the caller's run that holds both files, and maybe
    ``before`` and ``after`` not yet committed) the files are left for its owner to commit.
    """
    before_source = outputs.readable(before) if outputs is not None else Path(before)
    after_source = outputs.readable(after) if outputs is not None else Path(after)
    problems = change_problems(before_source, after_source, output, options)
    if problems:
        raise ChangeError(problems[0])
    after_values, after_valid, grid, after_prob = _read_on_grid(after_source, None)
    before_values, before_valid, _, before_prob = _read_on_grid(before_source, grid)
    if not before_valid.any():
        raise ChangeError(f"{shown(before)} does not overlap {shown(after)}: give maps of the same place")
    was = presence(before_values, before_prob, options)
    now = presence(after_values, after_prob, options)
    valid = before_valid & after_valid
    new = drop_small_patches(now & ~within(was, options.tolerance_px) & valid, options.min_patch_pixels)
    removed = drop_small_patches(was & ~within(now, options.tolerance_px) & valid, options.min_patch_pixels)
    change = np.full(after_values.shape, NONE, np.uint8)
    change[new] = NEW
    change[removed] = REMOVED
    change[~valid] = NODATA
    pixel_size = grid.pixel_size_m
    dates = {path: _dates(source) for path, source in ((before, before_source), (after, after_source))}
    counts = {name: int((change == code).sum()) for name, code in
              (("none", NONE), ("new", NEW), ("removed", REMOVED), ("nodata", NODATA))}
    # each line's mean P: of the later map for new lines, the earlier for removed ones (the map itself, or the
    # probability map beside a classes map)
    lines = change_lines(new, removed, grid,
                         np.where(after_valid, after_values, np.nan) if after_prob else
                         _probability_beside(after, grid, outputs),
                         np.where(before_valid, before_values, np.nan) if before_prob else
                         _probability_beside(before, grid, outputs))
    warnings = [SINGLE_DATE_WARNING.format(shown(path)) for path, found in dates.items() if len(found) == 1]
    earlier, later = dates[before], dates[after]
    if earlier and later and max(earlier) >= min(later):  # (the earlier map wholly after the later is refused)
        shared = sorted(set(earlier) & set(later))
        warnings.append(f"warning: the periods overlap: {shown(before)} is of {_span(earlier)}, {shown(after)} of "
                        f"{_span(later)}" + (f", both with {', '.join(map(str, shared))}" if shared else "") +
                        ": what changed in between is partly hidden; give each period its own dates")
    makers = {path: _map_kind(source) for path, source in ((before, before_source), (after, after_source))}
    untold = [path for path, kind in makers.items() if kind.model is None]
    if len(untold) == 1:  # a map made before maps named their model
        known = next(kind.model for kind in makers.values() if kind.model)
        warnings.append(f"warning: {shown(untold[0])} does not say which model made it (made before TimeSeg "
                        f"recorded it): if not {known}, much of the change is the two models' difference")
    with rasterio.open(before_source) as dataset:
        if not grid.shares_pixels(dataset):
            warnings.append(f"warning: {shown(before)} is not on the grid of {shown(after)} (another CRS, pixel size "
                            "or corner): it was resampled onto it, so roads along its pixels' edges may show as "
                            "change; for a cleaner change map, give both periods' rasters on one grid (gdalwarp)")
    # a probability map is cut at --high here: the threshold it is compared at
    thresholds = [options.high if kind.kind == "probability" else kind.threshold for kind in makers.values()]
    if None not in thresholds and thresholds[0] != thresholds[1]:
        warnings.append(f"warning: {shown(before)} is cut at threshold {thresholds[0]:g}, {shown(after)} at "
                        f"{thresholds[1]:g}: a road called at one and not the other shows as change; make both "
                        "periods at one threshold (--high for a probability map)")
    share = counts["nodata"] / change.size
    if share >= NODATA_SAID_FROM:
        warnings.append(f"warning: {share:.0%} of the map has no data in a period (outside its rasters' data or "
                        "its area, or white on all its dates): no change can be seen there, drawn grey")
    probabilities_read = bool(before_prob or after_prob)
    unused = [] if probabilities_read else [flag for flag, given in (
        ("--high", options.high != CHANGE_THRESHOLD), ("--low", options.low is not None)) if given]
    if unused:  # class maps were thresholded when they were made (segment --threshold)
        warnings.append(f"warning: {' and '.join(unused)} read{'s' * (len(unused) == 1)} probability maps; these are "
                        f"class maps, so {'it was' if len(unused) == 1 else 'they were'} not used")
    # the options as used: a threshold class maps did not read is not recorded as if it had been
    used = {**asdict(options), "target_class": followed_class(options)} | (
        {} if probabilities_read else {"high": None, "low": None})
    summary = ChangeSummary(
        pixels=counts,
        area_m2={name: count * pixel_size**2 for name, count in counts.items()},
        new_length_m=sum(line.length_m for line in lines if line.change == "new"),
        removed_length_m=sum(line.length_m for line in lines if line.change == "removed"),
        pixel_size_m=pixel_size,
        warnings=warnings,
        followed=_class_name(makers[after], followed_class(options)),
    )
    output = Path(output)
    text = json.dumps({"before": str(Path(before).absolute()), "after": str(Path(after).absolute()),
                       "dates": {"before": [str(d) for d in dates[before]], "after": [str(d) for d in dates[after]]},
                       "models": {"before": makers[before].model, "after": makers[after].model},
                       "thresholds": dict(zip(("before", "after"), thresholds)),
                       "options": used, **asdict(summary),
                       "lines": {"path": str(lines_path(output).absolute()),
                                 "new": sum(1 for x in lines if x.change == "new"),
                                 "removed": sum(1 for x in lines if x.change == "removed")}}, indent=2)
    own_outputs = OutputSet(change_outputs(output)) if outputs is None else None
    with own_outputs if own_outputs is not None else contextlib.nullcontext(outputs) as run_outputs:
        with GeoTiffWriter(run_outputs.partial(output), grid, 1, "uint8", nodata=NODATA, descriptions=["change"],
                           colours=CHANGE_COLOURS,
                           tags={"codes": "0 none, 1 new, 2 removed, 255 nodata", OUTPUT_TAG: "change"}) as tif:
            tif.write(change[None], rasterio.windows.Window(0, 0, grid.width, grid.height))
            tif.finish()
        run_outputs.write_text(summary_path(output), text)
        run_outputs.write_text(style_path(output), change_qml([*dates[before], *dates[after]], summary.followed))
        write_lines(run_outputs.partial(lines_path(output)), lines, grid)
        if own_outputs is not None:
            own_outputs.commit()
    return summary


def change_unless_cancelled(before: Path, after: Path, output: Path, options: ChangeOptions,
                            cancelled: Callable[[], bool]) -> ChangeSummary:
    """``compute_change`` for a caller that can cancel it (Processing, the dock's Compare): checked first in
    words (``change_problems``: ``ValueError``), its files committed only when ``cancelled()`` is still False once
    they are written; else ``pipeline.Cancelled`` and nothing is kept."""
    from .pipeline import Cancelled

    problems = change_problems(before, after, output, options)  # before the outputs' set takes their names
    if problems:
        raise ValueError(problems[0])
    with OutputSet(change_outputs(output)) as outputs:
        if cancelled():
            raise Cancelled("cancelled; nothing was kept")
        made = compute_change(before, after, output, options, outputs)
        if cancelled():
            raise Cancelled("cancelled; nothing was kept")
        outputs.commit()
    return made
