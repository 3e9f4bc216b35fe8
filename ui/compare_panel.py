"""The dock's Compare panel: the change between two class layers already in the project."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from qgis.core import Qgis, QgsMapLayerProxyModel, QgsMessageLog, QgsProject, QgsRasterLayer
from qgis.gui import QgsMapLayerComboBox
from qgis.PyQt.QtWidgets import QFormLayout, QGroupBox, QPushButton

from .results import add_change_layers


class ComparePanel(QGroupBox):
    """``output_folder()`` says where a change raster goes; ``show(text)`` reports to the analyst."""

    def __init__(self, iface, project: QgsProject, output_folder: Callable[[], Path],
                 show: Callable[[str], None], parent=None) -> None:
        super().__init__(parent)
        self.setTitle(self.tr("Compare two class layers (no new run)"))
        self.iface, self.project = iface, project
        self.output_folder, self.show = output_folder, show
        form = QFormLayout(self)
        self.before_combo = QgsMapLayerComboBox()
        self.after_combo = QgsMapLayerComboBox()
        for combo in (self.before_combo, self.after_combo):
            combo.setFilters(QgsMapLayerProxyModel.RasterLayer)
            combo.setToolTip(self.tr("A classes layer made by TimeSeg"))
        self.compare_button = QPushButton(self.tr("Compare"))
        self.compare_button.setToolTip(self.tr("Write and add the new/removed map of the later layer's grid"))
        form.addRow(self.tr("Earlier"), self.before_combo)
        form.addRow(self.tr("Later"), self.after_combo)
        form.addRow(self.compare_button)
        self.compare_button.clicked.connect(self.compare)

    def compare(self) -> None:
        from ..core.change import compute_change, lines_path

        before, after = self.before_combo.currentLayer(), self.after_combo.currentLayer()
        if not isinstance(before, QgsRasterLayer) or not isinstance(after, QgsRasterLayer) or before == after:
            self.show(self.tr("Choose two different class layers to compare."))
            return
        output = self.output_folder().parent / f"change_{before.name()}_{after.name()}.tif"
        try:
            summary = compute_change(Path(before.source()), Path(after.source()), output)
        except Exception as error:  # shown, logged; QGIS keeps running
            self.show(self.tr("Compare failed: {}").format(error))
            QgsMessageLog.logMessage(f"compare failed: {error}", "TimeSeg", Qgis.Critical)
            return
        add_change_layers(self.project, "compare", output, lines_path(output), f"{before.name()} -> {after.name()}",
                          [])
        self.show("\n".join(summary.lines()))
        self.iface.messageBar().pushMessage("TimeSeg", summary.lines()[0], Qgis.Success, 10)
