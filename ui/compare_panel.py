"""The dock's Compare panel: the change between two class layers already in the project, in the background."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from qgis.core import Qgis, QgsApplication, QgsMapLayerProxyModel, QgsMessageLog, QgsProject, QgsRasterLayer
from qgis.PyQt.QtWidgets import QComboBox, QFormLayout, QGroupBox, QPushButton

from ..core.change import ChangeOptions
from ..core.definitions import folder_name
from .core_task import CoreTask
from .layer_choice import ChosenLayerCombo
from .layer_table import timeseg_output_kind
from .results import add_change_layers, change_message, hide_earlier_results, plain_lines
from .wrapping_label import WrappingLabel


class ComparePanel(QGroupBox):
    """``output_folder()`` says where a change raster goes; ``results_in(folder)`` is told where a comparison
    wrote its files. Only TimeSeg class layers are offered; the change runs in a background task, and the
    panel's own status line, under its button, says how it went."""

    def __init__(self, iface, project: QgsProject, output_folder: Callable[[], Path],
                 change_options: Callable[[], ChangeOptions], results_in: Callable[[Path], None],
                 project_generation: Callable[[], int], parent=None) -> None:
        super().__init__(parent)
        self.setTitle(self.tr("Compare two class layers (no new run)"))
        self.iface, self.project = iface, project
        self.output_folder, self.change_options, self.results_in = output_folder, change_options, results_in
        self.project_generation = project_generation  # a new or another project: a comparison adds nothing to it
        self.task: CoreTask | None = None
        form = QFormLayout(self)
        self.before_combo = ChosenLayerCombo()
        self.after_combo = ChosenLayerCombo()
        for combo in (self.before_combo, self.after_combo):
            combo.setFilters(QgsMapLayerProxyModel.RasterLayer)
            combo.setToolTip(self.tr("A classes layer made by TimeSeg"))
        self.compare_button = QPushButton(self.tr("Compare"))
        self.compare_button.setToolTip(self.tr("Write and add the new/removed map on the later layer's grid, "
                                               "with its lines"))
        self.class_combo = QComboBox()
        self.class_combo.setToolTip(self.tr("The class whose change to map (maps of more than two classes)"))
        form.addRow(self.tr("Earlier"), self.before_combo)
        form.addRow(self.tr("Later"), self.after_combo)
        form.addRow(self.tr("Class"), self.class_combo)
        form.addRow(self.compare_button)
        self.status_label = WrappingLabel()
        form.addRow(self.status_label)
        self.compare_button.clicked.connect(self.compare)
        self.before_combo.layerChanged.connect(self._offer_classes)
        project.layersAdded.connect(self._offer_class_layers)
        self._offer_class_layers()
        self._offer_classes()

    def _offer_classes(self, *_) -> None:
        """The earlier layer's classes (its ``class_names`` tag) but the first (other, background), when it
        has more than two: which one's change to map is the analyst's choice."""
        from osgeo import gdal

        self.class_combo.clear()
        layer = self.before_combo.currentLayer()
        dataset = gdal.Open(layer.source()) if isinstance(layer, QgsRasterLayer) else None
        names = (dataset.GetMetadataItem("class_names") or "").split(",") if dataset is not None else []
        for code, name in enumerate(names[1:] if len(names) > 2 else [], start=1):
            self.class_combo.addItem(f"{code}: {name}", code)
        self.class_combo.setEnabled(self.class_combo.count() > 0)
        if len(names) == 2:  # the one class there is to follow, shown (the box was empty)
            self.class_combo.addItem(f"1: {names[1]}", None)

    def _offer_class_layers(self, *_) -> None:
        others = [layer for layer in self.project.mapLayers().values()
                  if isinstance(layer, QgsRasterLayer) and timeseg_output_kind(layer) != "classes"]
        for combo in (self.before_combo, self.after_combo):
            combo.setExceptedLayerList(others)
        classes = sorted((layer for layer in self.project.mapLayers().values()
                          if isinstance(layer, QgsRasterLayer) and layer not in others), key=_dates_of)
        if len(classes) >= 2:  # two different layers to start with, the earliest dates first
            if self.before_combo.currentLayer() is None:
                self.before_combo.setLayer(classes[0])
            before = self.before_combo.currentLayer()
            if self.after_combo.currentLayer() in (None, before):
                self.after_combo.setLayer(classes[-1] if classes[-1] is not before else classes[0])
        self._offer_classes()  # the earlier layer may be new without a change of the combo's choice

    def compare(self) -> None:
        from ..core.change import change_problems, change_unless_cancelled, lines_path

        before, after = self.before_combo.currentLayer(), self.after_combo.currentLayer()
        if not isinstance(before, QgsRasterLayer) or not isinstance(after, QgsRasterLayer) or before == after:
            self.status_label.setText(self.tr("Choose two different class layers to compare."))
            return
        output = self.output_folder() / f"change_{folder_name(before.name())}_{folder_name(after.name())}.tif"
        label = f"{before.name()} -> {after.name()}"
        options = dataclasses.replace(self.change_options(), target_class=self.class_combo.currentData())
        before_path, after_path = Path(before.source()), Path(after.source())  # plain data for the task thread
        # what can be known at once is said at once, of the layers by their names
        problems = change_problems(before_path, after_path, output, options,
                                   names=(f'"{before.name()}"', f'"{after.name()}"'))
        if problems:
            self.status_label.setText(self.tr("Not compared: {}").format("\n".join(problems)))
            return

        started_in = self.project_generation()

        def done(summary, error: str | None) -> None:
            self.task = None
            self.compare_button.setEnabled(True)
            if not error and started_in != self.project_generation():
                self.status_label.setText(self.tr("The project this comparison was started in was closed: its map "
                                                  "was not added to this one. It is in {}").format(output.parent))
                self.results_in(output.parent)
                return
            if error and error.startswith("cancelled"):
                self.status_label.setText(self.tr("Compare cancelled; nothing was kept."))
                return
            if error:
                self.status_label.setText(self.tr("Compare failed: {}").format(error))
                QgsMessageLog.logMessage(f"compare failed: {error}", "TimeSeg", Qgis.Critical)
                self.iface.messageBar().pushMessage("TimeSeg", self.tr("Compare failed: {}").format(error),
                                                    Qgis.Critical, 10)
                return
            hide_earlier_results(self.project)
            add_change_layers(self.project, "compare", output, lines_path(output), label, [])
            self.status_label.setText("\n".join([*plain_lines(summary.lines()),
                                                 self.tr("Results in {}").format(output.parent)]))
            self.results_in(output.parent)
            self.iface.messageBar().pushMessage(
                "TimeSeg", self.tr("Change {}: {}").format(label, change_message(summary.lines())), Qgis.Success, 10)

        self.task = task = CoreTask(  # cancelled (the plugin unloading), it keeps nothing
            self.tr("TimeSeg compare"),
            lambda: change_unless_cancelled(before_path, after_path, output, options, task.isCanceled), done)
        self.compare_button.setEnabled(False)
        self.status_label.setText(self.tr("Comparing {} ...").format(label))
        QgsApplication.taskManager().addTask(self.task)


def _dates_of(layer: QgsRasterLayer) -> tuple[str, str]:
    """A class layer's first and last dates (its ``dates`` tag, read by ``core.qml.dates_of``), ISO, for the order
    of the periods; ("", "") without them."""
    from osgeo import gdal

    from ..core.qml import dates_of

    dataset = gdal.Open(layer.source())
    dates = sorted(dates_of(dataset.GetMetadata() or {})) if dataset is not None else []
    return (str(dates[0]), str(dates[-1])) if dates else ("", "")
