"""Several dated rasters of one place, read window by window on one reference grid.

Rasters on other grids (CRS, resolution, extent) are warped lazily onto the reference
with rasterio's WarpedVRT; pixels a date does not cover come back as nodata, so a
partial overlap is not an error.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window, bounds

from .definitions import is_gdal_source, listed
from .true_colour import l1c_tci

METRES_PER_DEGREE = 111_320.0  # along a meridian, and along the equator


def lossy_storage(dataset) -> str:
    """How an open rasterio ``dataset`` is stored with lossy compression ("JPEG", "JPEG 2000", "WebP", "PNG of
    256 colours"), or "": a JPEG or WebP file or TIFF, a JPEG 2000 file not compressed reversibly (ESA's are), a
    GeoPackage of JPEG or WebP tiles (GDAL's default for opaque tiles) or of colour-quantised PNG tiles (PNG8)."""
    reversibility = dataset.tags(ns="IMAGE_STRUCTURE").get("COMPRESSION_REVERSIBILITY")
    if reversibility == "LOSSLESS":  # WebP and JPEG 2000 can be either; GDAL says which
        return ""
    kind = {"JPEG": "JPEG", "WEBP": "WebP"}.get(dataset.driver) or {"jpeg": "JPEG", "webp": "WebP"}.get(
        str(dataset.compression).lower().rsplit(".", 1)[-1], "")
    if reversibility == "LOSSY" and not kind:
        kind = "JPEG 2000"
    elif dataset.driver == "GPKG":
        kind = _geopackage_tiles(dataset.name)
    return kind


def _geopackage_tiles(source: str) -> str:
    """"JPEG", "WebP" or "PNG of 256 colours" when a GeoPackage's raster tiles (a few of each tile table; of its
    table, for ``GPKG:file:table``) are stored so, else ""."""
    import sqlite3

    path, table = source, None
    if source.upper().startswith("GPKG:"):
        path, _, table = source[5:].rpartition(":")
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as database:
            tables = [row[0] for row in database.execute(
                "SELECT table_name FROM gpkg_contents WHERE data_type = 'tiles'") if table in (None, row[0])]
            starts = [bytes(row[0][:26]) for table in tables for row in database.execute(
                f'SELECT tile_data FROM "{table.replace(chr(34), chr(34) * 2)}" LIMIT 8') if row[0]]
    except sqlite3.Error:
        return ""
    if any(start.startswith(b"\xff\xd8") for start in starts):
        return "JPEG"
    if any(start[:4] == b"RIFF" and start[8:12] == b"WEBP" for start in starts):
        return "WebP"
    # a PNG whose header (IHDR) says colour type 3: a palette of at most 256 colours for the three bands
    return "PNG of 256 colours" if any(start[:8] == b"\x89PNG\r\n\x1a\n" and len(start) > 25 and start[25] == 3
                                       for start in starts) else ""


class RasterStackError(ValueError):
    """The rasters cannot form one stack; the message says what to change."""


@dataclass(frozen=True)
class DatedRaster:
    path: Path | str  # a file, or a GDAL virtual path (``/vsizip/...``: a Sentinel-2 product's image)
    date: dt.date | None  # None: a lone raster run without a date (``dates.dated_rasters``'s ``lone_undated``)
    given: Path | str | None = None  # what the analyst gave when ``path`` is read from it (a Sentinel-2 product)

    @property
    def name(self) -> str:
        """How messages name it: the file, or the product it was read from (not the bands' VRT made of it)."""
        return Path(self.given or self.path).name


def zero_is_no_data(flags: Sequence[list[MaskFlags]]) -> bool:
    """Whether bands of these mask ``flags`` are an image of 3 bands or more that declares no nodata and
    has no mask: where no band is above 0 it has no data (``has_data``). Sentinel-2 true colour and band
    files leave the 0 beyond a swath's edge undeclared, SNAP and FORCE exports a -9999; an orthophoto's
    border is 0. No land reflects nothing in three bands at once."""
    return len(flags) >= 3 and all(band == [MaskFlags.all_valid] for band in flags)


def has_data(values: np.ndarray) -> np.ndarray:
    """``[C, h, w]`` values of a ``zero_is_no_data`` image -> ``[h, w]`` True where some band is above 0
    (NaN is not)."""
    return values.any(axis=0) if values.dtype.kind in "ub" else (values > 0).any(axis=0)


def _values_and_validity(view, window: Window, indexes: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``[C, h, w]`` values of ``window`` (of the bands ``indexes``, 1-based; None: all) and ``[h, w]``
    True where any band has data. A mask made from the nodata value alone is computed from the values:
    a masked read would decode the window twice; ``zero_is_no_data`` images have none where no band is above 0."""
    flags = [view.mask_flag_enums[i - 1] for i in indexes] if indexes else view.mask_flag_enums
    if all(band == [MaskFlags.all_valid] for band in flags):
        values = view.read(indexes, window=window)
        if zero_is_no_data(flags):
            return values, has_data(values)
        return values, np.ones(values.shape[1:], bool)
    if view.nodata is not None and all(band == [MaskFlags.nodata] for band in flags):
        values = view.read(indexes, window=window)
        return values, (values != view.nodata).any(axis=0)
    data = view.read(indexes, window=window, masked=True)  # an internal mask or alpha band
    return np.ma.getdata(data), ~np.ma.getmaskarray(data).all(axis=0)


WORLD_FILE_SUFFIXES = (".wld", ".jgw", ".pgw", ".tfw", ".jpgw", ".pngw", ".tifw")  # pixel placement without a CRS


def _data_bands(dataset: rasterio.DatasetReader) -> list[int]:
    """The dataset's bands (1-based) but its alpha bands, which mask the others (GDAL reads them so)."""
    return [index for index, colour in enumerate(dataset.colorinterp, start=1) if colour != ColorInterp.alpha]


def utm_zone(longitude: float, latitude: float) -> rasterio.crs.CRS:
    """The WGS 84 UTM zone of a point in degrees (EPSG:326xx north of the equator, 327xx south)."""
    zone = min(60, int((longitude + 180) // 6) + 1)
    return rasterio.crs.CRS.from_epsg((32600 if latitude >= 0 else 32700) + zone)


def raster_exists(path: Path | str) -> bool:
    """A file that exists, a Sentinel-2 product (a .SAFE folder), or a GDAL virtual path or connection string
    (checked when GDAL opens it)."""
    from .sentinel2 import is_product

    return is_gdal_source(path) or Path(path).is_file() or (is_product(path) and Path(path).exists())


def raster_missing(path: Path | str) -> str:
    """Why ``path`` (where ``raster_exists`` is False) cannot be read, and what to give instead."""
    if Path(path).is_dir():
        return f"{path} is a folder, not a raster or a Sentinel-2 product (.SAFE): give the raster files in it"
    return f"raster not found: {path}"


def unreadable_message(damaged: Sequence[tuple[Path | str, Exception]]) -> str:
    """Rasters whose pixels GDAL failed to read, each with GDAL's error: damaged or cut-short files, all named
    (GDAL's words for the first)."""
    names = [Path(path).name for path, _ in damaged]
    detail = str(damaged[0][1]).split(": ")[-1].rstrip(".")
    if len(names) == 1:
        return f"{names[0]} is damaged or cut short: its pixels cannot be read ({detail}); copy or download it again"
    return (f"{listed(names)} are damaged or cut short: their pixels cannot be read ({detail}, {names[0]}); copy or "
            "download them again")


@dataclass(frozen=True)
class Grid:
    """A raster grid: CRS, affine transform and size in pixels."""

    crs: rasterio.crs.CRS
    transform: rasterio.Affine
    width: int
    height: int

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in the grid's CRS."""
        return bounds(Window(0, 0, self.width, self.height), self.transform)

    @property
    def pixel_metres(self) -> tuple[float, float]:
        """Metres on the ground per pixel along columns and rows, at the grid's centre (degrees
        converted at its latitude for geographic CRSs; Mercator's scale taken off)."""
        width, height = abs(self.transform.a), abs(self.transform.e)
        if self.crs is not None and self.crs.is_geographic:
            latitude = math.radians((self.bounds[1] + self.bounds[3]) / 2)
            return width * METRES_PER_DEGREE * math.cos(latitude), height * METRES_PER_DEGREE
        metres = self.ground_metres_per_unit  # a CRS lookup, and a point transformed for Mercator: once
        return width * metres, height * metres

    @property
    def ground_metres_per_unit(self) -> float:
        """Metres on the ground per unit of a projected CRS at the grid's centre: the unit's length, over
        the projection's scale there for Mercator (the web maps' EPSG:3857 draws 10 m at 47 degrees north
        as 14.7 units); 1 without a CRS."""
        if self.crs is None:
            return 1.0
        factor = self.crs.linear_units_factor[1]
        mercator = _mercator_parameters(self.crs)
        if mercator is None:
            return factor
        k0, standard_parallel = mercator  # the scale is k0 cos(phi1) / cos(phi) (the sphere's: within 0.5 %)
        return factor * math.cos(math.radians(self.centre_latitude)) / (k0 * math.cos(math.radians(standard_parallel)))

    @property
    def centre_latitude(self) -> float:
        """Degrees north of the grid's centre."""
        from rasterio.warp import transform as transform_points

        left, bottom, right, top = self.bounds
        _, latitudes = transform_points(self.crs, "EPSG:4326", [(left + right) / 2], [(bottom + top) / 2])
        return latitudes[0]

    @property
    def pixel_size_m(self) -> float:
        """Pixel size in metres: the geometric mean of ``pixel_metres``."""
        across, along = self.pixel_metres
        return math.sqrt(across * along)

    @classmethod
    def of(cls, dataset: rasterio.DatasetReader) -> Grid:
        return cls(dataset.crs, dataset.transform, dataset.width, dataset.height)

    def north_up(self) -> Grid:
        """The grid of the same pixels with rows from north to south and columns from west to east, as the
        models were trained to see the ground; itself when it already is, or when it is rotated."""
        a, b, c, d, e, f = self.transform[:6]
        if b or d or (a > 0 and e < 0):
            return self
        left, top = (c + a * self.width if a < 0 else c), (f + e * self.height if e > 0 else f)
        return Grid(self.crs, rasterio.Affine(abs(a), 0, left, 0, -abs(e), top), self.width, self.height)

    def matches(self, dataset: rasterio.DatasetReader) -> bool:
        """The dataset lies on this grid (no warping needed): its CRS and size, and its geotransform to within
        float rounding (gdalwarp writes 10 m pixels as 10.000000000000002 m). The tolerance, a billionth of a pixel
        per pixel, drifts by a hundred-thousandth of a pixel across a Sentinel-2 tile."""
        if dataset.crs != self.crs or (dataset.width, dataset.height) != (self.width, self.height):
            return False
        own, grid = dataset.transform, self.transform
        unit = max(abs(grid.a), abs(grid.e), abs(grid.b), abs(grid.d)) or 1.0  # a pixel's size in CRS units
        return (all(abs(getattr(own, k) - getattr(grid, k)) <= 1e-9 * unit for k in "abde")
                and all(abs(getattr(own, k) - getattr(grid, k)) <= 1e-6 * unit for k in "cf"))

    def shares_pixels(self, dataset: rasterio.DatasetReader) -> bool:
        """The dataset's pixels are this grid's, over another extent maybe: its CRS and pixel size, its corner
        a whole number of pixels away (read onto the grid, nothing is resampled)."""
        own, grid = Grid.of(dataset).north_up().transform, self.transform
        if not (grid.a and grid.e) or dataset.crs != self.crs or own.b or own.d or grid.b or grid.d:
            return False
        offsets = ((own.c - grid.c) / grid.a, (own.f - grid.f) / grid.e)
        return (abs(own.a - grid.a) < 1e-9 * abs(grid.a) and abs(own.e - grid.e) < 1e-9 * abs(grid.e)
                and all(abs(o - round(o)) < 1e-6 for o in offsets))


def _mercator_parameters(crs: rasterio.crs.CRS) -> tuple[float, float] | None:
    """``(k0, standard parallel in degrees)`` of a Mercator projection (normal aspect), else None."""
    from osgeo import osr

    reference = osr.SpatialReference()
    reference.ImportFromWkt(crs.to_wkt())
    if reference.GetAttrValue("PROJECTION") not in ("Mercator_1SP", "Mercator_2SP"):
        return None
    return (reference.GetProjParm(osr.SRS_PP_SCALE_FACTOR, 1.0),
            reference.GetProjParm(osr.SRS_PP_STANDARD_PARALLEL_1, 0.0))


def bounds_overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """Two (left, bottom, right, top) boxes in one CRS share some area."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


class RasterStack(contextlib.AbstractContextManager):
    """Open dated rasters sorted by date, each seen on the grid of ``rasters[reference]``.

    ``read(window)`` returns ``[T, C, h, w]`` pixel values (the files' data type, or uint8 true colour
    after ``read_as_true_colour``) and a ``[T, h, w]`` bool mask, True where the date has data.
    """

    def __init__(
        self,
        rasters: Sequence[DatedRaster],
        reference: int = 0,
        resampling: Resampling = Resampling.bilinear,
    ) -> None:
        if not rasters:
            raise RasterStackError("no rasters given")
        self.rasters = sorted(rasters, key=lambda r: r.date)
        reference_path = rasters[reference].path
        self._stack = contextlib.ExitStack()
        try:
            self._datasets = [self._stack.enter_context(_open(r.path)) for r in self.rasters]
            ref = next(d for d, r in zip(self._datasets, self.rasters) if r.path == reference_path)
            self.reference_name = rasters[reference].name
            self._reference_path = reference_path
            self.grid = Grid.of(ref).north_up()  # a south-up reference is read flipped, through a warp
            self.band_count = self.source_band_count = ref.count
            self._band_indexes: list[list[int]] | None = None  # select_bands
            self.dtype = self.source_dtype = np.dtype(ref.dtypes[0])
            self._reflectance_scaling: list[tuple[float, float] | None] | None = None  # read_as_true_colour
            # each date as seen on the reference grid (the dataset itself, or a WarpedVRT of it)
            self._reference_data_bands = len(_data_bands(ref))
            self.views = [self._aligned(d, resampling, r.name) for d, r in zip(self._datasets, self.rasters)]
            self.full_grid, self.area, self._resampling = self.grid, None, resampling
            if len({d.count for d in self._datasets}) > 1:  # some dates hold an alpha band, others not
                self.select_bands(self.data_bands())  # each alpha masks its date
        except BaseException:
            self._stack.close()
            raise

    def _aligned(self, dataset: rasterio.DatasetReader, resampling: Resampling, name: str):
        if len(_data_bands(dataset)) != self._reference_data_bands:
            raise RasterStackError(
                f"{name} has {dataset.count} band{'s' * (dataset.count != 1)}, {self.reference_name} (the "
                f"reference) {self.source_band_count}: give rasters with the same bands"
            )
        # placed by ground control points only (a CRS they carry is theirs, not the grid's)
        if dataset.gcps[0] and (dataset.crs is None or dataset.transform.is_identity):
            raise RasterStackError(f"{name} is placed by ground control points only: warp it onto a grid first, e.g. "
                                   f"gdalwarp {name} {Path(name).stem}_warped.tif")
        if dataset.crs is None:
            world_file = any(Path(dataset.name).with_suffix(suffix).exists() for suffix in WORLD_FILE_SUFFIXES)
            known = next((d.crs.to_epsg() for d in self._datasets if d.crs is not None and d.crs.to_epsg()), None)
            srs = f"EPSG:{known}" if known else "EPSG:<its code>"
            raise RasterStackError(f"{name} has no coordinate reference system: " + (
                "its world file places it but does not say in which CRS; give it the CRS of its export, e.g. "
                f"gdal_translate -a_srs EPSG:3857 {name} {Path(name).stem}_crs.tif" if world_file else
                f"its pixels are placed but no CRS says where; give it its CRS, e.g. gdal_translate -a_srs {srs} "
                f"{name} {Path(name).stem}_crs.tif{' (the other dates are in it)' if known else ''}"))
        if dataset.transform.b or dataset.transform.d:
            raise RasterStackError(f"{name} has a rotated geotransform (its rows do not run east-west): warp it "
                                   f"north-up first, e.g. gdalwarp {name} {Path(name).stem}_north_up.tif")
        if self.grid.matches(dataset):
            return dataset
        footprint = transform_bounds(dataset.crs, self.grid.crs, *Grid.of(dataset).north_up().bounds)
        if not bounds_overlap(footprint, self.grid.bounds):
            raise RasterStackError(f"{name} does not overlap {self.reference_name}, the raster on whose grid the "
                                   "dates are read: give dates of one place")
        # an undeclared 0 border (ESA's TCI beyond a swath's edge): the warper takes a pixel whose bands are all 0
        # as no data, else it would write its zeros as 1 (dark land to ``has_data``) and blend them into the edge
        zero_border = zero_is_no_data(dataset.mask_flag_enums)
        return self._stack.enter_context(
            WarpedVRT(
                dataset,
                crs=self.grid.crs,
                transform=self.grid.transform,
                width=self.grid.width,
                height=self.grid.height,
                resampling=resampling,
                nodata=dataset.nodata if dataset.nodata is not None else 0,
                **({"src_nodata": 0, "warp_extras": {"UNIFIED_SRC_NODATA": "YES"}} if zero_border else {}),
            )
        )

    def resample_to(self, resolution_m: float) -> None:
        """Put every date on a grid of square pixels of ``resolution_m`` metres over the reference's extent;
        a reference in degrees goes to its UTM zone (``utm_zone``). The outputs then take that grid."""
        if self.grid.crs is None:
            raise RasterStackError("rasters without a CRS cannot be resampled to the model's resolution: "
                                   "georeference them first")
        crs, (left, bottom, right, top) = self.grid.crs, self.grid.bounds
        if crs.is_geographic:
            crs, step = utm_zone((left + right) / 2, (bottom + top) / 2), resolution_m
            left, bottom, right, top = transform_bounds(self.grid.crs, crs, left, bottom, right, top)
            left, top = left // step * step, -(-top // step) * step  # on Sentinel-2's grid in that zone
        else:
            step = resolution_m / self.grid.ground_metres_per_unit
        width, height = max(1, round((right - left) / step)), max(1, round((top - bottom) / step))
        self.grid = self.full_grid = Grid(crs, rasterio.Affine(step, 0, left, 0, -step, top), width, height)
        self.views = [self._aligned(d, self._resampling, r.name) for d, r in zip(self._datasets, self.rasters)]

    def warped(self) -> list[bool]:
        """Per date, in date order: read through a warp onto the grid (another CRS, pixel size or corner)."""
        return [view is not dataset for view, dataset in zip(self.views, self._datasets)]

    def lossy(self) -> list[str]:
        """Per date, in date order: the lossy compression it is stored with (``lossy_storage``), or ""."""
        return [lossy_storage(dataset) for dataset in self._datasets]

    def share_off_the_grid(self) -> list[float]:
        """Per date, in date order: the share of its footprint that lies off the grid (its bounds', in the grid's
        CRS): not mapped, since the outputs take the grid."""
        shares = []
        left, bottom, right, top = self.full_grid.bounds
        for dataset in self._datasets:
            a, b, c, d = transform_bounds(dataset.crs, self.full_grid.crs, *Grid.of(dataset).north_up().bounds)
            area = max((c - a) * (d - b), 1e-9)
            inside = max(0.0, min(c, right) - max(a, left)) * max(0.0, min(d, top) - max(b, bottom))
            shares.append(max(0.0, 1 - inside / area))
        return shares

    def stored_flipped(self) -> list[str]:
        """Per date, in date order: how it is stored when not north-up (``Grid.north_up``; it is read turned
        north-up): "its rows from south to north", "its columns from east to west", or both; else ""."""
        ways = []
        for dataset in self._datasets:
            grid = Grid.of(dataset)
            own, up = grid.transform, grid.north_up().transform
            ways.append(" and ".join([*["its rows from south to north"] * (own.e != up.e),
                                      *["its columns from east to west"] * (own.a != up.a)]))
        return ways

    def on_the_grids_lattice(self) -> list[bool]:
        """Per date, in date order: its pixels are the grid's, over another extent maybe (``Grid.shares_pixels``:
        read as they are, no data outside it)."""
        return [self.grid.shares_pixels(dataset) for dataset in self._datasets]

    def date_pixel_sizes(self) -> list[float]:
        """Each date's own pixel size on the ground, metres, in date order (``Grid.pixel_size_m``)."""
        return [Grid.of(dataset).pixel_size_m for dataset in self._datasets]

    def band_descriptions(self) -> list[tuple[str | None, ...]]:
        """Each date's band descriptions (GDAL's; None where a band has none), in date order."""
        return [dataset.descriptions for dataset in self._datasets]

    def data_bands(self) -> list[list[int]]:
        """Each date's bands (1-based) but its alpha bands, which mask the others (``_data_bands``)."""
        return [_data_bands(dataset) for dataset in self._datasets]

    def band_colours(self) -> list[tuple[str, ...]]:
        """Each date's bands' colour interpretations (GDAL's: ``red``, ``alpha``, ``gray``, ``undefined``...)."""
        return [tuple(colour.name for colour in dataset.colorinterp) for dataset in self._datasets]

    def select_bands(self, indexes_per_date: list[list[int]]) -> None:
        """From now on ``read`` gives these bands of each date (1-based, as many for every date)."""
        self._band_indexes = [list(indexes) for indexes in indexes_per_date]
        self.band_count = len(indexes_per_date[0])

    def read_as_true_colour(self, scalings: Sequence[tuple[float, float] | None]) -> None:
        """From now on ``read`` gives ESA's L1C true colour (``core.true_colour``, uint8 1..255, 0 where no data)
        of rasters of B04, B03, B02 reflectance: per date, reflectance = value x scale + offset (``scalings``,
        in date order), or None for a date that is true colour already."""
        self._reflectance_scaling = list(scalings)
        self.dtype = np.dtype(np.uint8)

    def declared_scaling(self) -> list[tuple[float, float] | None]:
        """Per date, in date order: the scale and offset its bands declare (GDAL's: value x scale + offset, the
        same for each band read), or None when they declare none (1 and 0) or differ."""
        found = []
        for index, dataset in enumerate(self._datasets):
            indexes = self._band_indexes[index] if self._band_indexes is not None else range(1, self.band_count + 1)
            pairs = {(float(dataset.scales[i - 1]), float(dataset.offsets[i - 1])) for i in indexes}
            found.append(pairs.pop() if len(pairs) == 1 and pairs != {(1.0, 0.0)} else None)
        return found

    def mixed_types_problem(self) -> str | None:
        """Dates of different data types as they will be read (a date read as true colour counts as uint8):
        what to give instead, or None."""
        converted = [v is not None for v in self._reflectance_scaling or [None] * len(self._datasets)]
        as_read = [np.dtype(np.uint8) if c else d for d, c in zip(self.date_dtypes(), converted)]
        reference = next((t for t, r in zip(as_read, self.rasters) if r.path == self._reference_path), as_read[0])
        odd = next(((r, t) for r, t in zip(self.rasters, as_read) if t != reference), None)
        if odd is None:
            return None
        return (f"{odd[0].name} holds {odd[1].name} values, {self.reference_name} (the reference) {reference.name}: "
                "give every date in the same data type")

    def date_dtypes(self) -> list[np.dtype]:
        """Each date's data type, in date order (the stack's own, ``dtype``, is the reference's until read
        as true colour; ``core.preflight`` refuses a mix the model cannot read)."""
        return [np.dtype(dataset.dtypes[0]) for dataset in self._datasets]

    def sample(self, window: Window, dates: Sequence[bool]) -> np.ndarray:
        """The valid values ``[N]`` (float64, every band) of ``window`` in the ``dates`` marked True, each in its
        own data type as read, before any true-colour reading."""
        found = []
        for index, (view, chosen) in enumerate(zip(self.views, dates)):
            if chosen:
                indexes = self._band_indexes[index] if self._band_indexes is not None else None
                values, valid = _values_and_validity(view, window, indexes)
                found.append(values[:, valid].astype(np.float64).ravel())
        return np.concatenate(found) if found else np.zeros(0)

    def restrict(self, area) -> None:
        """Process only ``area`` (a ``core.area.Area`` on the reference grid): ``grid`` becomes its window,
        reads are relative to it and, for polygons, invalid outside them."""
        from rasterio.windows import transform as window_transform

        self.area = area
        window = area.window
        self.grid = Grid(self.full_grid.crs, window_transform(window, self.full_grid.transform),
                         int(window.width), int(window.height))

    def keep_dates(self, keep: Sequence[bool]) -> None:
        """From now on the stack holds only the dates where ``keep`` (one per date, in date order) is True;
        the grid stays the reference's even when the reference is left out."""
        self.rasters = [r for r, kept in zip(self.rasters, keep) if kept]
        self._datasets = [d for d, kept in zip(self._datasets, keep) if kept]
        self.views = [v for v, kept in zip(self.views, keep) if kept]
        if self._band_indexes is not None:
            self._band_indexes = [i for i, kept in zip(self._band_indexes, keep) if kept]
        if self._reflectance_scaling is not None:
            self._reflectance_scaling = [v for v, kept in zip(self._reflectance_scaling, keep) if kept]

    @property
    def dates(self) -> list[dt.date]:
        return [r.date for r in self.rasters]

    def block_row_bytes(self) -> int:
        """Bytes of one row of blocks of every date across its width (as stored: a warped date's source)."""
        return sum(d.width * d.block_shapes[0][0] * d.count * np.dtype(d.dtypes[0]).itemsize for d in self._datasets)

    def read(self, window: Window, pool: Executor | None = None, whole: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Pixels ``[T, C, h, w]`` and validity ``[T, h, w]`` of ``window`` on the reference grid (of the
        area when the stack is restricted to one, else the full one; ``whole``: always the full one, and
        no pixel invalid for lying outside the area's polygons).

        Outside the grid, and where a date has no data, pixels are 0 and invalid. ``pool``: threads
        that read the dates at once (each date's dataset is read by one thread at a time).
        """
        height, width = int(window.height), int(window.width)
        pixels = np.zeros((len(self.views), self.band_count, height, width), self.dtype)
        valid = np.zeros((len(self.views), height, width), bool)
        if self.area is not None and not whole:  # window is on the area's grid; the views are on the full one
            window = Window(window.col_off + self.area.window.col_off, window.row_off + self.area.window.row_off,
                            width, height)
        inside = window.intersection(Window(0, 0, self.full_grid.width, self.full_grid.height)) \
            if _window_overlaps(window, self.full_grid) else None
        if inside is None:
            return pixels, valid
        rows = slice(int(inside.row_off - window.row_off), int(inside.row_off - window.row_off + inside.height))
        cols = slice(int(inside.col_off - window.col_off), int(inside.col_off - window.col_off + inside.width))

        def read_date(index: int) -> tuple[Path | str, Exception] | None:
            """Date ``index`` read into ``pixels`` and ``valid``; its file and GDAL's error when it is damaged."""
            indexes = self._band_indexes[index] if self._band_indexes is not None else None
            try:
                values, has_data = _values_and_validity(self.views[index], inside, indexes)
            except rasterio.errors.RasterioIOError as error:
                return self.rasters[index].path, error
            if values.dtype.kind == "f":  # NaN and inf are no data, whatever the declared nodata
                finite = np.isfinite(values)
                has_data &= finite.all(axis=0)
                values = np.where(finite, values, 0)
            scaling = self._reflectance_scaling[index] if self._reflectance_scaling is not None else None
            if scaling is not None:
                scale, offset = scaling
                values = np.where(has_data, l1c_tci(values * np.float32(scale) + np.float32(offset)), 0)
            elif not has_data.all():  # 0, whatever a nodata value or a mask leaves there
                values = np.where(has_data, values, 0)
            pixels[index, :, rows, cols] = values
            valid[index, rows, cols] = has_data
            return None

        damaged = [found for found in (pool.map if pool else map)(read_date, range(len(self.views))) if found]
        if damaged:  # every date damaged here named at once
            raise RasterStackError(unreadable_message(damaged))
        if self.area is not None and not whole:
            inside_polygons = self.area.mask(window, self.full_grid.transform)
            if inside_polygons is not None:
                valid &= inside_polygons[None]
        return pixels, valid

    def __exit__(self, *exc_info) -> None:
        self._stack.close()


def _window_overlaps(window: Window, grid: Grid) -> bool:
    return (window.col_off < grid.width and window.row_off < grid.height
            and window.col_off + window.width > 0 and window.row_off + window.height > 0)


def read_band_on_grid(path: Path, grid: Grid | None = None, resampling: Resampling = Resampling.nearest,
                      fill_nodata: float = 0) -> tuple[np.ma.MaskedArray, Grid]:
    """Band 1 of ``path`` on ``grid`` (warped when the raster lies on another; its own grid when
    None), masked where it has no data; ``fill_nodata`` marks the outside when the raster declares
    no nodata value."""
    with _open(path) as dataset:
        if grid is None or grid.matches(dataset):
            return dataset.read(1, masked=True), Grid.of(dataset)
        nodata = dataset.nodata if dataset.nodata is not None else fill_nodata
        with WarpedVRT(dataset, crs=grid.crs, transform=grid.transform, width=grid.width, height=grid.height,
                       resampling=resampling, nodata=nodata) as view:
            return view.read(1, masked=True), grid


def _open(path: Path | str) -> rasterio.DatasetReader:
    if not raster_exists(path):
        raise RasterStackError(raster_missing(path))
    try:
        dataset = rasterio.open(path)
    except rasterio.errors.RasterioIOError:
        raise RasterStackError(f"{path} is not a raster GDAL can read") from None
    if dataset.count == 0:  # a NetCDF, HDF or GeoPackage of several rasters: GDAL names each one
        inside = dataset.subdatasets
        dataset.close()
        if inside:
            raise RasterStackError(f"{Path(path).name} holds {len(inside)} rasters: give one of them as GDAL names "
                                   f"it ({', '.join(inside[:3])}{', ...' if len(inside) > 3 else ''}); bands held "
                                   "apart: stack them first (gdalbuildvrt -separate OUT.vrt BAND1 BAND2 BAND3)")
        raise RasterStackError(f"{path} holds no raster bands: give a raster file")
    return dataset
