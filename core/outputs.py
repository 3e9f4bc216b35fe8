"""GeoTIFF outputs written under a temporary name and renamed only when complete."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

from .raster_stack import Grid

# Fixed colours for common classes; other classes take the palette in order.
NAMED_COLOURS = {
    "background": (0, 0, 0, 0),
    "road": (230, 30, 30, 255),
    "mangrove": (20, 120, 60, 255),
    # crop types (models/weights/crops.onnx); land that is not a crop stays grey
    "other": (190, 190, 190, 255),
    "meadow": (120, 200, 90, 255),
    "winter_cereal": (230, 190, 60, 255),
    "spring_cereal": (200, 150, 90, 255),
    "maize": (240, 120, 30, 255),
    "rapeseed": (250, 240, 40, 255),
    "sugar_beet": (150, 70, 160, 255),
}
PALETTE = [(31, 119, 180, 255), (255, 127, 14, 255), (44, 160, 44, 255), (214, 39, 40, 255),
           (148, 103, 189, 255), (140, 86, 75, 255), (227, 119, 194, 255), (127, 127, 127, 255),
           (188, 189, 34, 255), (23, 190, 207, 255)]


def class_colours(class_names: Sequence[str]) -> dict[int, tuple[int, int, int, int]]:
    """Colour table entry (RGBA) per class code."""
    colours = {}
    for code, name in enumerate(class_names):
        colours[code] = NAMED_COLOURS.get(name.lower(), PALETTE[code % len(PALETTE)])
    colours[255] = (0, 0, 0, 0)
    return colours


class AtomicGeoTiff(contextlib.AbstractContextManager):
    """A tiled, compressed GeoTIFF on ``grid`` written to ``.<name>.partial``; ``commit()``
    adds overviews and renames it to ``path``. Leaving the context without ``commit()``
    (an error, a cancel) deletes the partial file."""

    def __init__(self, path: Path, grid: Grid, count: int, dtype: str, nodata: float | int,
                 descriptions: Sequence[str] = (), colours: dict | None = None,
                 tags: dict[str, str] | None = None, band_tags: dict[str, str] | None = None) -> None:
        self.path = Path(path)
        self.partial = self.path.with_name(f".{self.path.name}.partial")
        self._committed = False
        profile = dict(
            driver="GTiff", width=grid.width, height=grid.height, count=count, dtype=dtype,
            crs=grid.crs, transform=grid.transform, nodata=nodata, compress="deflate",
            predictor=3 if dtype == "float32" else 2, BIGTIFF="IF_SAFER",
        )
        if grid.width >= 256 and grid.height >= 256:
            profile.update(tiled=True, blockxsize=256, blockysize=256)
        self.dataset = rasterio.open(self.partial, "w", **profile)
        for band, description in enumerate(descriptions, start=1):
            self.dataset.set_band_description(band, description)
        if colours:
            self.dataset.write_colormap(1, colours)
        if tags:
            self.dataset.update_tags(**tags)
        if band_tags:
            self.dataset.update_tags(1, **band_tags)

    def write(self, data: np.ndarray, window: Window) -> None:
        self.dataset.write(data, window=window)

    def commit(self) -> None:
        factors = [f for f in (2, 4, 8, 16, 32) if min(self.dataset.width, self.dataset.height) // f >= 64]
        if factors:
            resampling = Resampling.average if self.dataset.dtypes[0] == "float32" else Resampling.nearest
            self.dataset.build_overviews(factors, resampling)
        self.dataset.close()
        os.replace(self.partial, self.path)
        self._committed = True

    def __exit__(self, *exc_info) -> None:
        if not self._committed:
            self.dataset.close()
            self.partial.unlink(missing_ok=True)
