"""QGIS label layers as the training side's label sources."""

from __future__ import annotations

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


def label_source_of(layer, line_width: int, folder: Path):
    """A ``models.labels.LabelSource`` for a QGIS layer: lines, polygons or a label raster.

    A vector layer that is not simply one file as saved (a scratch or database layer, a filtered one, one
    with unsaved edits) is written as QGIS shows it to a GeoPackage in ``folder`` first, which must
    outlive the training run."""
    from ..models.labels import LabelSource

    path = Path(layer.source().split("|")[0])
    if isinstance(layer, QgsRasterLayer):
        if layer.providerType() != "gdal" or not path.is_file():
            raise ValueError(f"{layer.name()} is not a raster file: save it as a GeoTIFF, then choose that layer")
        return LabelSource(path, "raster")
    if not isinstance(layer, QgsVectorLayer):
        raise ValueError(f"{layer.name()} is neither a vector nor a raster layer")
    geometry = QgsWkbTypes.geometryType(layer.wkbType())
    kinds = {QgsWkbTypes.LineGeometry: "lines", QgsWkbTypes.PolygonGeometry: "polygons"}
    if geometry not in kinds:
        raise ValueError(f"{layer.name()} holds points; labels are lines (roads) or polygons")
    plain_file = (layer.providerType() == "ogr" and path.is_file() and not layer.subsetString()
                  and not layer.isModified())
    if not plain_file:
        return LabelSource(_written(layer, folder), kinds[geometry], "labels", line_width)
    name = None
    if "layername=" in layer.source():
        name = layer.source().split("layername=")[1].split("|")[0]
    return LabelSource(path, kinds[geometry], name, line_width)


def _written(layer: QgsVectorLayer, folder: Path) -> Path:
    """``layer``'s features as QGIS shows them (filter and edits included), in its CRS, as layer
    ``labels`` of a new GeoPackage in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{folder_name(layer.id())}.gpkg"
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName, options.layerName = "GPKG", "labels"
    project = QgsProject.instance()
    context = project.transformContext() if project is not None else QgsCoordinateTransformContext()
    error, message, _, _ = QgsVectorFileWriter.writeAsVectorFormatV3(layer, str(target), context, options)
    if error != QgsVectorFileWriter.NoError:
        raise ValueError(f"{layer.name()} could not be read for training ({message}): save it to a GeoPackage")
    return target
