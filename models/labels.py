"""Label layers -> label rasters on a stack's reference grid.

Lines (roads) are rasterised and widened by morphological dilation as in paper A
(section 3.1); polygons are rasterised; a label raster is resampled (nearest).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.features import rasterize

from ..core.raster_stack import Grid, RasterStackError, read_band_on_grid

LABEL_NODATA = 255
HARD_NEGATIVE = 2  # binary maps: not the class, and weighted more in the loss (e.g. a real image's shores)
LabelKind = Literal["lines", "polygons", "raster"]


class LabelError(ValueError):
    """The label layer cannot be read or put on the grid; the message says why."""


@dataclass(frozen=True)
class LabelSource:
    """Where the labels of a site come from.

    ``layer`` names the vector layer (GeoPackage layers, say ``roads_2019``); ``None``
    takes the first. ``line_width_px`` is the road width after dilation, in pixels.
    ``value`` is the class written for vector features (1 = road or mangrove).
    """

    path: Path
    kind: LabelKind = "lines"
    layer: str | None = None
    line_width_px: int = 3
    value: int = 1


def label_raster(source: LabelSource, grid: Grid) -> np.ndarray:
    """Labels ``[H, W]`` uint8 on ``grid``: class codes, ``LABEL_NODATA`` where unknown."""
    path = Path(source.path)
    if not path.exists():
        raise LabelError(f"label file not found: {path}")
    if source.kind == "raster":
        return _resampled_raster(path, grid)
    geometries = _read_geometries(path, source.layer, grid)
    kinds = {"LineString": "lines", "MultiLineString": "lines", "Polygon": "polygons", "MultiPolygon": "polygons",
             "Point": "points", "MultiPoint": "points"}
    counts = Counter(kinds.get(geometry["type"], "other geometries") for geometry in geometries)
    if set(counts) - {"lines", "polygons"}:  # a point would be burnt as a blob of road
        found = ", ".join(sorted(set(counts) - {"lines", "polygons"}))
        raise LabelError(f"{path.name} holds {found}; labels are lines (roads) or polygons: choose a layer of those")
    if len(counts) > 1:
        raise LabelError(f"{path.name} holds both lines ({counts['lines']}) and polygons ({counts['polygons']}): keep "
                         "one kind (in QGIS, the layer's lines or polygons alone, or a filter on "
                         "geometry_type(@geometry); else split the file)")
    if counts and source.kind not in counts:  # polygons read as lines fill their area; lines read as polygons are 1 px
        other = next(iter(counts))
        layers = _layer_kinds(path)
        if source.layer is None and len(layers) > 1:  # the first layer was taken: the right one may be another
            fitting = [name for name, kind in layers.items() if kind == source.kind]
            advice = f"give --label-layer {fitting[0]}" if fitting else f"give the label kind {other}"
            raise LabelError(f"{path.name}'s first layer, {next(iter(layers))}, holds {other}, not {source.kind}: "
                             f"{advice} (its layers: {', '.join(f'{n} ({k})' for n, k in layers.items())})")
        raise LabelError(f"{path.name} holds {other}, not {source.kind}: give the label kind {other}")
    shape = (grid.height, grid.width)
    if not geometries:
        return np.zeros(shape, dtype=np.uint8)
    burned = rasterize(
        ((g, 1) for g in geometries), out_shape=shape, transform=grid.transform,
        fill=0, all_touched=source.kind == "lines", dtype="uint8",
    ).astype(bool)
    if source.kind == "lines" and source.line_width_px > 1:
        radius = (source.line_width_px - 1) / 2
        offsets = np.arange(-int(np.ceil(radius)), int(np.ceil(radius)) + 1)
        disk = np.hypot(*np.meshgrid(offsets, offsets)) <= radius + 1e-6
        from scipy import ndimage  # here, not at the top: the command line imports this module to start

        burned = ndimage.binary_dilation(burned, structure=disk)
    return (burned * np.uint8(source.value)).astype(np.uint8)


def _resampled_raster(path: Path, grid: Grid) -> np.ndarray:
    if _is_raster(path):
        with rasterio.open(path) as dataset:
            if dataset.count > 1:  # an image, not class codes
                raise LabelError(f"{path.name} holds {dataset.count} bands: a label raster is one band of class "
                                 "codes (1 the class, 0 the rest, 255 unknown)")
    try:
        data, _ = read_band_on_grid(path, grid, Resampling.nearest, fill_nodata=LABEL_NODATA)
    except RasterStackError as error:
        raise LabelError(str(error)) from None
    return np.ma.filled(data.astype(np.uint8), LABEL_NODATA)


def _is_raster(path: Path) -> bool:
    try:
        with rasterio.open(path):
            return True
    except rasterio.errors.RasterioIOError:
        return False


def _layer_kinds(path: Path) -> dict[str, str]:
    """The layers of a vector file in order, each with its kind: lines, polygons, points or other."""
    from osgeo import ogr

    source = ogr.Open(str(path))
    kinds = {ogr.wkbLineString: "lines", ogr.wkbPolygon: "polygons", ogr.wkbPoint: "points",
             ogr.wkbMultiLineString: "lines", ogr.wkbMultiPolygon: "polygons", ogr.wkbMultiPoint: "points"}
    layers = (source.GetLayer(i) for i in range(source.GetLayerCount()))
    return {layer.GetName(): kinds.get(ogr.GT_Flatten(layer.GetGeomType()), "other") for layer in layers}


def _read_geometries(path: Path, layer_name: str | None, grid: Grid) -> list[dict]:
    """GeoJSON-like geometries of a vector layer, in the grid's CRS."""
    from osgeo import ogr, osr

    # OGR's errors are checked as they come back (None): ogr.UseExceptions() here turned them into exceptions for
    # all of QGIS's Python, other plugins and the console included, after a training in QGIS
    if not path.exists():
        raise LabelError(f"label file not found: {path}")
    try:
        source = ogr.Open(str(path))
    except RuntimeError:
        source = None
    if source is None:
        raise LabelError(f"{path.name} is a raster: give the label kind raster (--label-kind raster)"
                         if _is_raster(path) else f"{path} is not a vector file OGR can read")
    layer = source.GetLayerByName(layer_name) if layer_name else source.GetLayer(0)
    if layer is None:
        names = [source.GetLayer(i).GetName() for i in range(source.GetLayerCount())]
        raise LabelError(f"{path} has no layer '{layer_name}'; its layers are {', '.join(names)}")
    target = osr.SpatialReference()
    target.ImportFromWkt(grid.crs.to_wkt())
    target.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    layer_srs = layer.GetSpatialRef()
    transform = None
    if layer_srs is not None and not layer_srs.IsSame(target):
        layer_srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        transform = osr.CoordinateTransformation(layer_srs, target)
    geometries = []
    for feature in layer:
        geometry = feature.GetGeometryRef()
        if geometry is None or geometry.IsEmpty():
            continue
        geometry = geometry.Clone()
        if transform is not None:
            geometry.Transform(transform)
        geometries.append(json.loads(geometry.ExportToJson()))
    return geometries
