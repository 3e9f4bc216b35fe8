"""An area of interest: bounds (``xmin,ymin,xmax,ymax`` in the reference raster's CRS) or the polygons
of a vector file. Only the area is read and processed; outside its polygons is nodata."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.features import rasterize
from rasterio.transform import Affine
from rasterio.warp import transform_bounds
from rasterio.windows import Window, from_bounds

from .raster_stack import Grid


class AreaError(ValueError):
    """The area of interest cannot be used; the message says what to give."""


@dataclass(frozen=True)
class Area:
    """The part of a reference grid to process: its ``window`` and, for polygons, their geometries
    (GeoJSON-like, in the grid's CRS) that mask it."""

    window: Window
    geometries: tuple[dict, ...] = ()
    on_rasters: float = 1.0  # the share of the asked bounds that lies on the rasters (the window is cut to them)

    def mask(self, window: Window, transform: Affine) -> np.ndarray | None:
        """``[h, w]`` True inside the polygons, for ``window`` of the grid with ``transform``; None: no polygons."""
        if not self.geometries:
            return None
        shape = (int(window.height), int(window.width))
        local = transform * Affine.translation(window.col_off, window.row_off)
        return rasterize(self.geometries, out_shape=shape, transform=local, fill=0, default_value=1,
                         dtype="uint8").astype(bool)


def parse_area(text: str, grid: Grid, crs: str | None = None) -> Area:
    """``xmin,ymin,xmax,ymax`` (in ``crs``, WKT or an authority code, when given, else in ``grid``'s) or a
    polygon file (``FILE|layername=NAME`` for one of its layers, as QGIS names layers) -> the ``Area`` on
    ``grid`` (raises ``AreaError``)."""
    parts = text.split(",")
    if len(parts) == 4 and not Path(text).exists():
        try:
            bounds = tuple(float(p) for p in parts)
        except ValueError:
            raise AreaError(f"--aoi {text!r}: give xmin,ymin,xmax,ymax in the rasters' CRS, or a polygon file") \
                from None
        given = _crs(crs) if crs is not None else None
        called, hint = None, ""
        if given is not None and grid.crs is not None and given != grid.crs:
            _check_order(bounds, text)
            called = f"the area of interest {text} (in {crs if len(crs) < 40 else given.to_string()}, --aoi-crs)"
            hint = " (in degrees: longitude first, west,south,east,north)" if given.is_geographic else ""
            bounds = transform_bounds(given, grid.crs, *bounds, densify_pts=21)
        elif given is None and grid.crs is not None and grid.crs.is_projected and \
                all(abs(v) <= 180 for v in bounds[::2]) and all(abs(v) <= 90 for v in bounds[1::2]):
            hint = " (these look like longitude and latitude: add --aoi-crs EPSG:4326)"
        window, on_rasters = _window(bounds, grid, text, called, hint)
        return Area(window, on_rasters=on_rasters)
    if crs is not None:
        raise AreaError("--aoi-crs gives the CRS of --aoi's bounds, and a polygon file carries its own: leave "
                        "--aoi-crs out")
    path, _, layer_name = text.partition("|layername=")
    geometries = _polygons(Path(path), grid, layer_name.split("|")[0] or None)
    xs, ys = zip(*(point for g in geometries for ring in _rings(g) for point in ring))
    layer = layer_name.split("|")[0]
    called = f"the area of the polygons of {Path(path).name}" + (f" (layer {layer})" if layer else "")
    window, on_rasters = _window((min(xs), min(ys), max(xs), max(ys)), grid, text, called)
    return Area(window, tuple(geometries), on_rasters)


def _crs(text: str) -> CRS:
    """The CRS of ``--aoi-crs`` (raises ``AreaError``)."""
    try:
        return CRS.from_user_input(text)
    except CRSError:
        raise AreaError(f"--aoi-crs {text!r} is not a CRS: give an authority code like EPSG:4326, or WKT") from None


def _check_order(bounds: tuple[float, ...], text: str) -> None:
    if not (bounds[0] < bounds[2] and bounds[1] < bounds[3]):
        raise AreaError(f"--aoi {text!r}: xmin must be below xmax and ymin below ymax")


def _window(bounds: tuple[float, ...], grid: Grid, text: str, called: str | None = None,
            hint: str = "") -> tuple[Window, float]:
    """The grid's window of ``bounds``, cut to the grid, and the share of ``bounds`` it keeps; ``called``: how a
    refusal names the area (polygons are in their own CRS: their bounds on the grid would mislead); ``hint``: what
    the refusal adds."""
    _check_order(bounds, text)
    xmin, ymin, xmax, ymax = bounds
    window = from_bounds(xmin, ymin, xmax, ymax, grid.transform)
    col, row = max(0, math.floor(window.col_off)), max(0, math.floor(window.row_off))
    end_col = min(grid.width, math.ceil(window.col_off + window.width))
    end_row = min(grid.height, math.ceil(window.row_off + window.height))
    if end_col <= col or end_row <= row:
        crs = grid.crs.to_string() if grid.crs else "no CRS"
        called = called or f"the area of interest {text} (in {crs}, the outputs' grid's CRS)"
        raise AreaError(f"{called} does not overlap the rasters: give an area over them{hint}")
    kept = (end_col - col) * (end_row - row) / max(window.width * window.height, 1e-9)
    return Window(col, row, end_col - col, end_row - row), min(1.0, kept)


def _rings(geometry: dict) -> list:
    if geometry["type"] == "Polygon":
        return geometry["coordinates"]
    return [ring for polygon in geometry["coordinates"] for ring in polygon]


def _polygons(path: Path, grid: Grid, layer_name: str | None = None) -> list[dict]:
    """The polygons of layer ``layer_name`` of ``path`` (None: its first), in the grid's CRS."""
    import json

    from osgeo import ogr, osr

    if not path.exists():
        raise AreaError(f"--aoi {path}: no such file; give xmin,ymin,xmax,ymax or a polygon file")
    source = ogr.Open(str(path))
    if source is None or source.GetLayerCount() == 0:
        raise AreaError(f"--aoi {path.name} is not a vector file GDAL can read: give a GeoPackage or shapefile")
    layer = source.GetLayer(0) if layer_name is None else source.GetLayerByName(layer_name)
    if layer is None:
        raise AreaError(f"--aoi {path.name} has no layer {layer_name}: give one of "
                        f"{', '.join(source.GetLayer(i).GetName() for i in range(source.GetLayerCount()))}")
    target = osr.SpatialReference()
    target.ImportFromWkt(grid.crs.to_wkt())
    target.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    found = []
    for feature in layer:
        geometry = feature.GetGeometryRef()
        if geometry is None or ogr.GT_Flatten(geometry.GetGeometryType()) not in (ogr.wkbPolygon, ogr.wkbMultiPolygon):
            continue
        geometry = geometry.Clone()
        reference = geometry.GetSpatialReference() or layer.GetSpatialRef()
        if reference is not None:
            reference.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
            geometry.Transform(osr.CoordinateTransformation(reference, target))
        found.append(json.loads(geometry.ExportToJson()))
    if not found:
        raise AreaError(f"--aoi {path.name} holds no polygons: give the polygons of the area")
    return found
