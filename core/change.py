"""Two periods' maps -> a change map: 0 none, 1 new, 2 removed, 255 nodata.

From class maps, a class is present where its code is; from probability maps, where the
probability passes hysteresis thresholds (above ``high``, or above ``low`` and connected
to a pixel above ``high``). Patches of new or removed pixels smaller than
``min_patch_pixels`` are dropped as speckle. The summary counts pixels and area per code
and, for lines such as roads, estimates the length of new and removed features from
their skeleton.

The change map is computed in memory (connected components need the whole map): one
byte per pixel and a few boolean masks, about 0.6 GB for a full 10980 x 10980 tile.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import rasterio
from scipy import ndimage

from .outputs import AtomicGeoTiff
from .raster_stack import Grid, read_band_on_grid

NONE, NEW, REMOVED, NODATA = 0, 1, 2, 255
CHANGE_COLOURS = {NONE: (0, 0, 0, 0), NEW: (230, 20, 20, 255), REMOVED: (30, 80, 230, 255), NODATA: (0, 0, 0, 0)}


class ChangeError(ValueError):
    """The two maps cannot be compared; the message says why."""


@dataclass(frozen=True)
class ChangeOptions:
    target_class: int = 1  # the class whose appearance and disappearance is mapped (1 = road)
    high: float = 0.5  # probability thresholds, used when the inputs are probability rasters
    low: float | None = None  # hysteresis lower threshold; None: no hysteresis
    min_patch_pixels: int = 0  # drop new/removed patches smaller than this (8-connected)


@dataclass(frozen=True)
class ChangeSummary:
    pixels: dict[str, int]
    area_m2: dict[str, float]
    new_length_m: float
    removed_length_m: float
    pixel_size_m: float

    def lines(self) -> list[str]:
        return [
            f"new:     {self.pixels['new']} px, {self.area_m2['new'] / 1e4:.2f} ha, "
            f"about {self.new_length_m / 1000:.2f} km of lines",
            f"removed: {self.pixels['removed']} px, {self.area_m2['removed'] / 1e4:.2f} ha, "
            f"about {self.removed_length_m / 1000:.2f} km of lines",
            f"none:    {self.pixels['none']} px; nodata: {self.pixels['nodata']} px",
        ]


def _read_on_grid(path: Path, grid: Grid | None) -> tuple[np.ndarray, np.ndarray, Grid, bool]:
    """Band 1 of ``path`` on ``grid`` (its own when None) -> values, valid mask, grid, is_probability."""
    data, grid = read_band_on_grid(path, grid, fill_nodata=NODATA)
    values = np.ma.getdata(data)
    valid = ~np.ma.getmaskarray(data)
    is_probability = values.dtype.kind == "f"
    if is_probability:
        valid &= np.isfinite(values)
    return values, valid, grid, is_probability


def presence(values: np.ndarray, is_probability: bool, options: ChangeOptions) -> np.ndarray:
    """Where the target is present: its class code, or hysteresis on its probability."""
    if not is_probability:
        return values == options.target_class
    values = np.nan_to_num(values, nan=0.0)
    strong = values >= options.high
    if options.low is None or options.low >= options.high:
        return strong
    weak = values >= options.low
    labels, _ = ndimage.label(weak, structure=np.ones((3, 3)))
    keep = np.unique(labels[strong])
    return np.isin(labels, keep[keep > 0])


def drop_small_patches(mask: np.ndarray, min_pixels: int) -> np.ndarray:
    if min_pixels <= 1:
        return mask
    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    large = sizes >= min_pixels
    large[0] = False
    return large[labels]


def skeleton_length_px(mask: np.ndarray) -> float:
    """Length in pixels of the centre lines of ``mask``: skeleton links, diagonals counting sqrt(2)."""
    from skimage.morphology import skeletonize

    skeleton = skeletonize(mask)
    s = skeleton.astype(np.int32)
    orthogonal = (s[:, 1:] & s[:, :-1]).sum() + (s[1:, :] & s[:-1, :]).sum()
    diagonal = (s[1:, 1:] & s[:-1, :-1]).sum() + (s[1:, :-1] & s[:-1, 1:]).sum()
    # a diagonal step between two pixels already joined through an orthogonal neighbour is not a link
    corners = (s[1:, 1:] & s[:-1, :-1] & (s[1:, :-1] | s[:-1, 1:])).sum() + \
        (s[1:, :-1] & s[:-1, 1:] & (s[1:, 1:] | s[:-1, :-1])).sum()
    return float(orthogonal + math.sqrt(2) * (diagonal - corners))


def compute_change(before: Path, after: Path, output: Path, options: ChangeOptions = ChangeOptions()
                   ) -> ChangeSummary:
    """Write the change GeoTIFF ``output`` on ``after``'s grid and ``output.json`` beside it."""
    after_values, after_valid, grid, after_prob = _read_on_grid(after, None)
    before_values, before_valid, _, before_prob = _read_on_grid(before, grid)
    if not before_valid.any():
        raise ChangeError(f"{Path(before).name} does not overlap {Path(after).name}")
    was = presence(before_values, before_prob, options)
    now = presence(after_values, after_prob, options)
    valid = before_valid & after_valid
    new = drop_small_patches(now & ~was & valid, options.min_patch_pixels)
    removed = drop_small_patches(was & ~now & valid, options.min_patch_pixels)
    change = np.full(after_values.shape, NONE, np.uint8)
    change[new] = NEW
    change[removed] = REMOVED
    change[~valid] = NODATA
    pixel_size = abs(grid.transform.a)
    pixel_area = abs(grid.transform.a * grid.transform.e)
    counts = {name: int((change == code).sum()) for name, code in
              (("none", NONE), ("new", NEW), ("removed", REMOVED), ("nodata", NODATA))}
    summary = ChangeSummary(
        pixels=counts,
        area_m2={name: count * pixel_area for name, count in counts.items()},
        new_length_m=skeleton_length_px(new) * pixel_size,
        removed_length_m=skeleton_length_px(removed) * pixel_size,
        pixel_size_m=pixel_size,
    )
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with AtomicGeoTiff(output, grid, 1, "uint8", nodata=NODATA, descriptions=["change"],
                       colours=CHANGE_COLOURS, tags={"codes": "0 none, 1 new, 2 removed, 255 nodata"}) as tif:
        tif.write(change[None], rasterio.windows.Window(0, 0, grid.width, grid.height))
        tif.commit()
    summary_path = output.with_suffix(".json")
    partial = summary_path.with_name(f".{summary_path.name}.partial")
    partial.write_text(json.dumps({"before": str(before), "after": str(after), **asdict(summary)}, indent=2))
    partial.replace(summary_path)
    return summary
