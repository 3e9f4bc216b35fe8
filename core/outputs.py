"""GeoTIFF outputs: their colours, and the writer that streams them to an ``OutputSet`` file."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

from .atomic import gdal_errors
from .raster_stack import Grid

# GDAL computes overviews on every core unless the user says otherwise (10980 px, 16 cores: 15.2 -> 3.1 s)
OVERVIEW_THREADS = os.environ.get("GDAL_NUM_THREADS", "ALL_CPUS")
DEFLATE_LEVEL = 1  # 12 % faster end to end on 2 cores than the default 6, files 3 % larger
# overviews at the same level (GDAL's own default for them is 6): 0.20 -> 0.15 s for a 4096 px
# probability map's five, the file 0.8 % larger
OVERVIEW_OPTIONS = {"GDAL_NUM_THREADS": OVERVIEW_THREADS, "ZLEVEL_OVERVIEW": str(DEFLATE_LEVEL)}

# Fixed colours for common classes; other classes take the palette in order.
NAMED_COLOURS = {
    "background": (0, 0, 0, 0),
    "road": (255, 150, 0, 255),  # orange: red and blue are the change map's new and removed
    "mangrove": (20, 120, 60, 255),
    # crop types (models/weights/crops.onnx): Okabe and Ito's colours for colour-blind readers, told apart under
    # each kind of colour blindness (tests/test_crops.py); land that is not a crop dark grey, far from the
    # maps' light grey no data (core.qml.NO_DATA_GREY: 215) and from the purple of sugar beet (140 was not)
    "other": (90, 90, 90, 255),
    "meadow": (0, 158, 115, 255),
    "winter_cereal": (230, 159, 0, 255),
    "spring_cereal": (0, 114, 178, 255),
    "maize": (213, 94, 0, 255),
    "rapeseed": (240, 228, 66, 255),
    "sugar_beet": (204, 121, 167, 255),
}
# other models' classes (Deepness's zoo: land cover, buildings, ...) by a word of their name, as maps draw them
KEYWORD_COLOURS = (
    ("water", (40, 110, 220, 255)), ("river", (40, 110, 220, 255)), ("sea", (40, 110, 220, 255)),
    ("forest", (20, 110, 40, 255)), ("tree", (20, 110, 40, 255)), ("vegetation", (90, 180, 70, 255)),
    ("grass", (140, 210, 100, 255)), ("crop", (230, 200, 80, 255)), ("field", (230, 200, 80, 255)),
    ("building", (200, 40, 40, 255)), ("urban", (200, 40, 40, 255)), ("road", (255, 150, 0, 255)),
    ("bare", (170, 120, 80, 255)), ("soil", (170, 120, 80, 255)), ("sand", (230, 210, 160, 255)),
    ("snow", (245, 245, 250, 255)), ("ice", (200, 230, 250, 255)), ("cloud", (230, 230, 230, 255)),
    ("shadow", (60, 60, 70, 255)),
)
PALETTE = [(31, 119, 180, 255), (255, 127, 14, 255), (44, 160, 44, 255), (214, 39, 40, 255),
           (148, 103, 189, 255), (140, 86, 75, 255), (227, 119, 194, 255), (127, 127, 127, 255),
           (188, 189, 34, 255), (23, 190, 207, 255)]


def predictor(dtype: str, precision: str = "fp32") -> int:
    """The GeoTIFF predictor for ``dtype`` values computed at ``precision``: floating point (3) for float32 maps,
    none for the maps of a bfloat16 model, horizontal differencing (2) for integers. Measured on the road
    model's 2048 px bench maps (deflate level 1): its float32 and int8 maps are 22 % smaller with predictor 3
    (7.13 against 9.06 MB; 4.92 against 6.30), written in 1.1-1.4x the time; its bfloat16 maps, whose values
    carry 8 significant bits, are 29 % smaller without (2.56 against 3.62 MB), written 2.3x as fast."""
    if dtype != "float32":
        return 2
    return 1 if precision == "bf16" else 3


def class_colours(class_names: Sequence[str]) -> dict[int, tuple[int, int, int, int]]:
    """Colour table entry (RGBA) per class code."""
    colours = {}
    for code, name in enumerate(class_names):
        by_word = next((colour for word, colour in KEYWORD_COLOURS if word in name.lower()), None)
        colours[code] = NAMED_COLOURS.get(name.lower(), by_word or PALETTE[code % len(PALETTE)])
    colours[255] = (0, 0, 0, 0)
    return colours


class GeoTiffWriter(contextlib.AbstractContextManager):
    """A tiled, compressed GeoTIFF on ``grid`` written to ``path`` (an ``OutputSet`` partial),
    its blocks compressed by ``compress_threads`` GDAL threads with the ``predictor`` for its values
    (``precision``: what computed them).

    ``finish()`` closes it, checks that GDAL wrote every block, then adds overviews: only a
    good file gets them. GDAL write failures raise ``OutputError`` (``core.atomic.gdal_errors``).
    """

    def __init__(self, path: Path, grid: Grid, count: int, dtype: str, nodata: float | int,
                 descriptions: Sequence[str] = (), colours: dict | None = None,
                 tags: dict[str, str] | None = None, band_tags: dict[str, str] | None = None,
                 compress_threads: int = 1, precision: str = "fp32") -> None:
        self.path = Path(path)
        profile = dict(
            driver="GTiff", width=grid.width, height=grid.height, count=count, dtype=dtype,
            crs=grid.crs, transform=grid.transform, nodata=nodata, compress="deflate",
            predictor=predictor(dtype, precision), BIGTIFF="IF_SAFER", zlevel=DEFLATE_LEVEL,
        )
        if grid.width >= 256 and grid.height >= 256:
            profile.update(tiled=True, blockxsize=256, blockysize=256)
        if compress_threads > 1:
            profile.update(num_threads=compress_threads)
        with gdal_errors(self.path):
            self.dataset = rasterio.open(self.path, "w", **profile)
            for band, description in enumerate(descriptions, start=1):
                self.dataset.set_band_description(band, description)
            if colours:
                self.dataset.write_colormap(1, colours)
            if tags:
                self.dataset.update_tags(**tags)
            if band_tags:
                self.dataset.update_tags(1, **band_tags)

    def write(self, data: np.ndarray, window: Window) -> None:
        with gdal_errors(self.path):
            self.dataset.write(data, window=window)

    def finish(self) -> None:
        """Close, then add overviews to the complete file."""
        with gdal_errors(self.path):
            self.dataset.close()
        with rasterio.open(self.path) as written:
            width, height, dtype = written.width, written.height, written.dtypes[0]
        factors = [f for f in (2, 4, 8, 16, 32) if min(width, height) // f >= 64]
        if factors:
            resampling = Resampling.average if dtype == "float32" else Resampling.nearest
            with (gdal_errors(self.path), rasterio.Env(**OVERVIEW_OPTIONS),
                  rasterio.open(self.path, "r+") as dataset):
                dataset.build_overviews(factors, resampling)

    def __exit__(self, *exc_info) -> None:
        if not self.dataset.closed:
            with contextlib.suppress(Exception):  # already failing: the partial file is removed by its OutputSet
                with gdal_errors(self.path):
                    self.dataset.close()
