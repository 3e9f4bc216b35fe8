"""QGIS vector layers as files the engine and the training read: label layers and area polygons."""

from __future__ import annotations

import hashlib
from pathlib import Path

from qgis.core import (
    QgsCoordinateTransformContext,
    QgsProject,
    QgsRasterLayer,
    QgsVectorFileWriter,
    QgsVectorLayer,
    QgsWkbTypes,
)

from ..core.definitions import folder_name
from .layer_table import timeseg_output_kind


def is_label_candidate(layer) -> bool:
    """Lines, polygons or a one-band raster: what can hold labels (a raster of several bands is an image, and
    a TimeSeg probability map holds P, not classes; a classes map added by hand can be labels). The results
    the dock added are not offered: a model's own map, or its new and removed roads, taught as roads."""
    from .results import RESULT_LAYER

    if layer.customProperty(RESULT_LAYER):
        return False
    if not isinstance(layer, QgsRasterLayer):
        return True
    return layer.bandCount() == 1 and timeseg_output_kind(layer) not in ("probability", "change")


def label_source_of(layer, line_width: int, folder: Path):
    """A ``models.labels.LabelSource`` for a QGIS layer: lines, polygons or a label raster; vector layers
    as ``vector_file`` gives them (``folder`` must outlive the training run)."""
    from ..models.labels import LabelSource

    if isinstance(layer, QgsRasterLayer):
        if not is_label_candidate(layer):
            raise ValueError(f"{layer.name()} holds no labels (an image, or TimeSeg's probability or change map): "
                             "choose road lines, polygons or a one-band label raster (1 road, 0 not road, "
                             "255 unknown)")
        path = Path(layer.source())
        if layer.providerType() != "gdal" or not path.is_file():
            raise ValueError(f"{layer.name()} is not a raster file: save it as a GeoTIFF, then choose that layer")
        return LabelSource(path, "raster")
    if not isinstance(layer, QgsVectorLayer):
        raise ValueError(f"{layer.name()} is neither a vector nor a raster layer")
    geometry = QgsWkbTypes.geometryType(layer.wkbType())
    kinds = {QgsWkbTypes.LineGeometry: "lines", QgsWkbTypes.PolygonGeometry: "polygons"}
    if geometry not in kinds:
        raise ValueError(f"{layer.name()} holds points; labels are lines (roads) or polygons")
    path, name = vector_file(layer, folder)
    return LabelSource(path, kinds[geometry], name, line_width)


def vector_file(layer: QgsVectorLayer, folder: Path) -> tuple[Path, str | None]:
    """A file and its layer name (None: its only layer) that GDAL reads as QGIS shows ``layer``.

    A layer that is simply one saved file is read where it is; any other (a scratch or database layer, a
    filtered one, one with unsaved edits) is written, filter and edits applied, in its CRS, to a
    GeoPackage in ``folder`` named after its features, so that a file a run reads is never rewritten."""
    path, *options = layer.source().split("|")
    settings = dict(option.split("=", 1) for option in options if "=" in option)  # layername=..., layerid=...
    name = settings.get("layername")
    one_layer_as_saved = set(settings) <= {"layername", "layerid"} and (name or settings.get("layerid", "0") == "0")
    if (layer.providerType() == "ogr" and Path(path).is_file() and one_layer_as_saved and not layer.subsetString()
            and not layer.isModified()):
        return Path(path), name
    content = hashlib.sha1(layer.crs().toWkt().encode())
    for feature in layer.getFeatures():
        content.update(bytes(feature.geometry().asWkb()))
    target = folder / f"{folder_name(layer.id())}_{content.hexdigest()[:12]}.gpkg"
    if target.is_file():
        return target, "features"
    folder.mkdir(parents=True, exist_ok=True)
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName, options.layerName = "GPKG", "features"
    project = QgsProject.instance()
    context = project.transformContext() if project is not None else QgsCoordinateTransformContext()
    partial = target.with_suffix(".partial.gpkg")
    error, message, _, _ = QgsVectorFileWriter.writeAsVectorFormatV3(layer, str(partial), context, options)
    if error != QgsVectorFileWriter.NoError:
        raise ValueError(f"{layer.name()} could not be read ({message}): save it to a GeoPackage, then choose it")
    partial.rename(target)
    return target, "features"


def area_of(layer: QgsVectorLayer, folder: Path) -> str:
    """The engine's ``--aoi`` for a polygon layer, as ``vector_file`` gives it."""
    path, name = vector_file(layer, folder)
    return f"{path}|layername={name}" if name else str(path)
