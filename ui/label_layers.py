"""QGIS label layers as the training side's label sources."""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsRasterLayer, QgsVectorLayer, QgsWkbTypes


def label_source_of(layer, line_width: int):
    """A ``models.labels.LabelSource`` for a QGIS layer: lines, polygons or a label raster."""
    from ..models.labels import LabelSource

    path = layer.source().split("|")[0]
    if isinstance(layer, QgsRasterLayer):
        return LabelSource(Path(path), "raster")
    if not isinstance(layer, QgsVectorLayer):
        raise ValueError(f"{layer.name()} is neither a vector nor a raster layer")
    geometry = QgsWkbTypes.geometryType(layer.wkbType())
    kinds = {QgsWkbTypes.LineGeometry: "lines", QgsWkbTypes.PolygonGeometry: "polygons"}
    if geometry not in kinds:
        raise ValueError(f"{layer.name()} holds points; labels are lines (roads) or polygons")
    name = None
    if "layername=" in layer.source():
        name = layer.source().split("layername=")[1].split("|")[0]
    return LabelSource(Path(path), kinds[geometry], name, line_width)
