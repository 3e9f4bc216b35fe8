"""Everything knowable before a run starts, checked at once and said in words.

The engine (``segment``, ``compute_change``), the dock (before Run), the Processing
algorithms and the command line all call these functions, so a run that starts has inputs
that fit its model and outputs it can write. Each function returns a list of problems, one
line each, that say what to do; an empty list means go.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import rasterio
from rasterio.windows import Window

from .deepness import ARCHITECTURE as DEEPNESS
from .model_card import SHIPPED_MODELS_DIR, ModelCard
from .model_inputs import missing_bands
from .raster_stack import RasterStack, RasterStackError, has_data, unreadable_message, zero_is_no_data
from .true_colour import takes_true_colour

RESOLUTION_TOLERANCE = 1.5  # a raster up to 1.5x finer or coarser than the model's resolution runs as it is
SQUARE_PIXELS = 1.1  # pixels up to 10 % longer than wide on the ground run as they are (EPSG:4326 at 48 N: 1.5)
OVERVIEW_SIDE = 128  # pixels: the decimated read that tells whether a date holds any data
SAMPLE_SIDE = 256  # pixels: the full-resolution windows read first, at the corners and the centre


def output_problems(outputs: Sequence[Path], inputs: Sequence[Path], bytes_needed: int = 0) -> list[str]:
    """Each output: distinct from the others and from every input (and their summaries), in a
    folder that can be made and written, with ``bytes_needed`` free there."""
    problems = []
    resolved_inputs = {Path(p).resolve() for p in inputs}
    seen: set[Path] = set()
    for output in outputs:
        resolved = Path(output).resolve()
        if resolved in resolved_inputs:
            problems.append(f"the output {output} is one of the inputs: choose another output name or folder")
        if resolved in seen:
            problems.append(f"{output} is given for two outputs: give each output its own name")
        seen.add(resolved)
        if resolved.is_dir():
            problems.append(f"the output {output} is a folder: give a file name")
        folder = _existing_parent(resolved)
        if folder is None or not folder.is_dir():
            problems.append(f"cannot create the output folder {resolved.parent} (a file is in the way): "
                            "choose another folder")
        elif not os.access(folder, os.W_OK | os.X_OK):
            problems.append(f"the output folder {folder} is not writable: choose another")
    problems = list(dict.fromkeys(problems))  # two outputs in one bad folder: say it once
    if not problems and bytes_needed:
        folder = _existing_parent(Path(outputs[0]).resolve())
        usage = shutil.disk_usage(folder)
        free = usage.free
        if usage.total == 0:  # /proc, /sys: the system's own folders, of no size, that hold no files
            problems.append(f"{folder} is a system folder that cannot hold files: choose another folder")
        elif free < bytes_needed:
            problems.append(f"{folder} has {disk_size(free)} free, the outputs need about {disk_size(bytes_needed)}: "
                            "free some space or choose another folder")
    return problems


def disk_size(size_bytes: float) -> str:
    """``1.2 GB``, ``340 MB`` or ``12 kB`` (of 10^3 bytes, as file managers show disk space)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6)):
        if size_bytes >= scale:
            return f"{size_bytes / scale:.1f} {unit}"
    return f"{size_bytes / 1e3:.0f} kB"


def _existing_parent(path: Path) -> Path | None:
    """The nearest existing folder that ``path``'s missing folders would be made in."""
    for folder in path.parents:
        if folder.exists():
            return folder
    return None


MAX_UPSAMPLING = 8  # rasters resampled to a model's pixels more times finer than this are refused


def far_finer(stack: RasterStack, card: ModelCard) -> str | None:
    """The problem of rasters whose pixels are more than ``MAX_UPSAMPLING`` times the model's: resampled, they
    would make a raster of that many times squared the pixels, with nothing more to see (a Deepness card's
    resolution given in metres rather than centimetres: 10 m imagery run at 0.1 m), or None."""
    factor = stack.grid.pixel_size_m / card.resolution if card.resolution > 0 else 1
    if factor <= MAX_UPSAMPLING:
        return None
    width, height = (round(side * factor) for side in (stack.grid.width, stack.grid.height))
    return (f"the rasters are at {stack.grid.pixel_size_m:.3g} m per pixel, the model works at {card.resolution:g} m: "
            f"resampled {factor:.0f} times finer, the outputs would be {width:,} x {height:,} px; give rasters near "
            "the model's resolution, or a model made for them (is its card's resolution right? Deepness cards give "
            "it in centimetres)")


def raster_problems(stack: RasterStack, card: ModelCard) -> list[str]:
    """The stack against the model: bands, data type and resolution (dates without data:
    ``segment.leave_out_empty_dates``)."""
    mixed = stack.mixed_types_problem()
    problems = [] if mixed is None else [mixed]
    if stack.band_count != len(card.bands):
        naming = (", or name each band (GDAL band descriptions such as B4) so that TimeSeg picks them"
                  if stack.band_count > len(card.bands) else "")  # naming cannot add bands a raster lacks
        if any(colours[:1] == ("palette",) for colours in stack.band_colours()):  # one band of colour indexes
            naming = "; a paletted picture: expand its colours first (gdal_translate -expand rgb IN OUT.tif)"
        missing = missing_bands(stack, card.bands)
        # the bands named nowhere, when they are the ones lacking (not when the names do not match at all)
        lacking = ("" if len(missing) != len(card.bands) - stack.band_count else f" ({', '.join(missing)} missing)"
                   if len(missing) <= 3 else f" ({len(missing)} of the model's missing)")
        problems.append(f"the rasters have {stack.band_count} band{'s' * (stack.band_count != 1)}{lacking}, the model "
                        f"wants {len(card.bands)} ({', '.join(card.bands)}): give rasters with those bands{naming}")
    if stack.dtype.name != card.input_dtype and not (problems and takes_true_colour(card.bands, card.input_dtype)):
        # (reflectance of the right bands is read as true colour: the bands are the problem)
        hint = {"uint8": "; a true-colour picture is uint8"}.get(stack.dtype.name, "")
        if stack.dtype.kind == "f" and card.input_dtype == "uint16":  # Earth Engine's reflectance 0..1
            hint = "; reflectance 0..1 as digital numbers: gdal_translate -ot UInt16 -scale 0 1 0 10000"
        if card.architecture == DEEPNESS:  # made for QGIS's 8-bit pictures: no product of its own
            problems.append(f"the rasters hold {stack.dtype.name} values; a Deepness model reads 8-bit images "
                            "(0..255, divided by 255): give them as 8-bit (gdal_translate -ot Byte -scale MIN MAX 0 "
                            "255 IN OUT.tif, MIN and MAX those of the images)")
        else:
            problems.append(f"the rasters hold {stack.dtype.name} values, the model wants {card.input_dtype}: give "
                            f"the bands as the product the model was trained on holds them ({card.input_dtype}{hint})")
    resolution = stack.grid.pixel_size_m
    stated = card.resolution > 0  # 0: a Deepness model that does not say
    # far coarser than the model's pixels: far_finer's refusal says so (no resampling helps)
    if stated and not resolution_fits(resolution, card.resolution) and far_finer(stack, card) is None:
        problems.append(f"the rasters are at {resolution:.3g} m per pixel, the model works at {card.resolution:g} m: "
                        f"resample them first (gdalwarp -tr {card.resolution:g} {card.resolution:g})")
    return problems


def resolution_fits(resolution_m: float, model_m: float) -> bool:
    """Within ``RESOLUTION_TOLERANCE`` of the model's resolution (else the engine resamples)."""
    return model_m / RESOLUTION_TOLERANCE <= resolution_m <= model_m * RESOLUTION_TOLERANCE


def dates_with_data(stack: RasterStack) -> list[bool]:
    """Per date, whether it holds any data on the reference grid: first in a few small full-resolution
    windows (a date with data nearly always answers there), else in a decimated read of its whole mask,
    which decodes the whole file when it has no overviews (2.4 s per date of a 10980 px tile)."""
    grid = stack.grid
    side = min(SAMPLE_SIDE, grid.width, grid.height)
    samples = [Window(col, row, side, side) for row in _spread(grid.height, side) for col in _spread(grid.width, side)]
    height, width = min(grid.height, OVERVIEW_SIDE), min(grid.width, OVERVIEW_SIDE)

    def any_data(view, **read) -> bool:
        if zero_is_no_data(view.mask_flag_enums):  # the masks say valid everywhere
            return bool(has_data(view.read(**read)).any())
        return bool(view.read_masks(1, **read).any())

    found, damaged = [], []
    for view, raster in zip(stack.views, stack.rasters):
        try:
            found.append(any(any_data(view, window=window) for window in samples)
                         or any_data(view, out_shape=(height, width)))
        except rasterio.errors.RasterioIOError as error:
            damaged.append((raster.path, error))  # every damaged file is named at once
    if damaged:
        raise RasterStackError(unreadable_message(damaged))
    return found


def _spread(length: int, side: int) -> list[int]:
    """Offsets of windows of ``side`` px at the start, the middle and the end of ``length`` px."""
    return sorted({0, (length - side) // 2, length - side})


def model_written_over(output: Path, init_checkpoint: Path | None) -> str | None:
    """What a new model at ``output`` (its checkpoint beside it) would replace that must stay: TimeSeg's own
    models, or the checkpoint it starts from; else None."""
    if Path(output).resolve().parent == SHIPPED_MODELS_DIR.resolve():
        return f"write the new model to another folder: {Path(output).parent} holds TimeSeg's own models"
    if init_checkpoint is not None and Path(output).with_suffix(".pt").resolve() == Path(init_checkpoint).resolve():
        return (f"write the new model to another file: its checkpoint {Path(output).with_suffix('.pt').name} would "
                "replace the one it starts from")
    return None
