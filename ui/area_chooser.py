"""Where to work: the layers' whole extent, the map canvas, or inside the polygons of a layer.
Shared by the dock's Options (segmentation) and Train panels."""

from __future__ import annotations

import tempfile
from pathlib import Path

from qgis.core import (
    QgsCoordinateTransform,
    QgsCsException,
    QgsMapLayerProxyModel,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsVectorLayer,
)
from qgis.PyQt.QtWidgets import QComboBox, QHBoxLayout, QWidget

from .label_layers import area_of
from .layer_choice import ChosenLayerCombo

AREAS = (("layers", "Extent of the layers"), ("canvas", "Map canvas extent"), ("polygons", "Inside a polygon layer"))


class AreaChooser(QWidget):
    def __init__(self, iface, project: QgsProject, parent=None) -> None:
        super().__init__(parent)
        self.iface, self.project = iface, project
        self.written: tempfile.TemporaryDirectory | None = None  # polygon layers written for the engine
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.kind_combo = QComboBox()
        for key, label in AREAS:
            self.kind_combo.addItem(self.tr(label), key)
        self.kind_combo.setToolTip(self.tr("Only this area is read and processed; outside the polygons is nodata"))
        self.layer_combo = ChosenLayerCombo()
        self.layer_combo.setFilters(QgsMapLayerProxyModel.PolygonLayer)
        self.layer_combo.setEnabled(False)
        self.layer_combo.setToolTip(self.tr("The polygon layer whose inside is the area"))
        row.addWidget(self.kind_combo)
        row.addWidget(self.layer_combo, stretch=1)
        self.kind_combo.currentIndexChanged.connect(
            lambda: self.layer_combo.setEnabled(self.kind() == "polygons"))

    def kind(self) -> str:
        return self.kind_combo.currentData()

    def set_kind(self, kind: str) -> None:
        self.kind_combo.setCurrentIndex(self.kind_combo.findData(kind))

    def canvas_extent(self, reference: QgsRasterLayer) -> tuple[float, float, float, float] | None:
        """The canvas extent in ``reference``'s CRS when the area is the canvas, else None."""
        if self.kind() != "canvas":
            return None
        canvas = self.iface.mapCanvas()
        rectangle, crs = canvas.extent(), canvas.mapSettings().destinationCrs()
        if crs != reference.crs():
            rectangle = QgsCoordinateTransform(crs, reference.crs(), self.project).transformBoundingBox(rectangle)
        return rectangle.xMinimum(), rectangle.yMinimum(), rectangle.xMaximum(), rectangle.yMaximum()

    def off_the_rasters(self, reference: QgsRasterLayer) -> str | None:
        """What to do when the canvas or the chosen polygons lie wholly off ``reference`` (the engine would name
        them by coordinates or by a file), else None."""
        if self.kind() == "canvas":
            rectangle = QgsRectangle(*self.canvas_extent(reference))
            said = self.tr("The map canvas shows none of the ticked layers: pan or zoom to them, or choose another "
                           "Area.")
        elif self.kind() == "polygons" and self.layer_combo.currentLayer() is not None:
            layer = self.layer_combo.currentLayer()
            try:
                rectangle = QgsCoordinateTransform(layer.crs(), reference.crs(), self.project).transformBoundingBox(
                    layer.extent())
            except QgsCsException:  # not transformable here: the engine judges the polygons themselves
                return None
            said = self.tr('The polygons of "{}" lie outside the ticked layers: choose polygons over them.').format(
                layer.name())
        else:
            return None
        return None if rectangle.intersects(reference.extent()) else said

    def polygon_layer(self) -> QgsVectorLayer | None:
        """The chosen polygon layer when the area is one; raises ``ValueError`` when none is chosen."""
        if self.kind() != "polygons":
            return None
        layer = self.layer_combo.currentLayer()
        if layer is None:
            raise ValueError(self.tr("Choose the polygon layer that outlines the area."))
        return layer

    def aoi(self, reference: QgsRasterLayer) -> str | None:
        """The engine's ``--aoi``: bounds in ``reference``'s CRS, a polygon file, or None for everything."""
        extent = self.canvas_extent(reference)
        if extent is not None:
            return ",".join(repr(v) for v in extent)
        layer = self.polygon_layer()
        if layer is None:
            return None
        if self.written is None:  # scratch, filtered or edited polygons, as files, while the dock lives
            self.written = tempfile.TemporaryDirectory(prefix="timeseg_area_")
        return area_of(layer, Path(self.written.name))
