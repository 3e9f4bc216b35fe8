"""The dock's Train panel: fit a model to the analyst's area from the ticked dated layers and a
label layer, in a background task, with progress, Cancel and the numbers before and after.

The panel only gathers choices into a ``models.fine_tune.FineTuneRequest``; the training runs
in a ``TrainingTask``; when it ends the new model is offered to the dock (``model_ready``).
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from qgis.core import (
    QgsApplication,
    QgsMapLayerProxyModel,
    QgsProject,
)
from qgis.gui import QgsFileWidget
from qgis.PyQt.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
)

from ..core.definitions import FINE_TUNE_EPOCHS, FINE_TUNE_MINUTES
from ..core.model_card import SHIPPED_ROAD_MODEL
from ..core.preflight import model_written_over
from .area_chooser import AreaChooser
from .dependencies import missing_training_message
from .label_layers import is_label_candidate, label_source_of
from .layer_choice import ChosenLayerCombo
from .project_folders import default_folder, default_folder_words
from .task_controls import TaskControls
from .training_task import TrainingOutcome, TrainingTask

MODELS_FOLDER = "timeseg_models"  # under the project's folder, or the temporary one
STARTS = (("fine_tune", "Fine-tune the shipped road model"), ("scratch", "Train from scratch"))


class TrainPanel(QGroupBox):
    """Train or fine-tune on the analyst's area. ``checked_layers`` gives the dock's ticked
    dated layers; ``model_ready(path, choose)`` is called with each new model (``choose`` False when
    it scored below the model it started from)."""

    def __init__(self, iface, project: QgsProject, checked_layers: Callable[[], tuple[list, list]],
                 model_ready: Callable[[Path, bool], None], model_in_use: Callable[[], Path], parent=None) -> None:
        super().__init__(parent)
        self.setTitle(self.tr("Train on your area"))
        self.iface, self.project = iface, project
        self.checked_layers, self.model_ready, self.model_in_use = checked_layers, model_ready, model_in_use
        self.task: TrainingTask | None = None
        self.started = 0.0  # time.monotonic() when the task started
        form = QFormLayout(self)
        self.labels_combo = ChosenLayerCombo()
        self.labels_combo.setFilters(QgsMapLayerProxyModel.LineLayer | QgsMapLayerProxyModel.PolygonLayer
                                     | QgsMapLayerProxyModel.RasterLayer)
        self.labels_combo.setToolTip(self.tr("Road lines (e.g. OpenStreetMap roads), polygons, or a label raster "
                                             "(1 = road, 0 = not road, 255 = unknown). Draw every road inside the "
                                             "Area: a road left out is learnt as not-road"))
        self.leave_out_images()
        self.labels_combo.setLayer(None)  # chosen by the analyst, never guessed
        project.layersAdded.connect(self.leave_out_images)
        form.addRow(self.tr("Labels"), self.labels_combo)
        self.line_width_spin = QSpinBox()
        self.line_width_spin.setRange(1, 15)
        self.line_width_spin.setValue(3)
        self.line_width_spin.setToolTip(self.tr("Lines are drawn this many pixels wide"))
        form.addRow(self.tr("Line width (px)"), self.line_width_spin)
        self.area = AreaChooser(iface, project)
        form.addRow(self.tr("Area"), self.area)
        self.start_combo = QComboBox()
        for key, label in STARTS:
            self.start_combo.addItem(self.tr(label), key)
        self.start_combo.setToolTip(self.tr("Fine-tuning starts from the shipped road model and needs fewer labels"))
        form.addRow(self.tr("Start"), self.start_combo)
        self.minutes_spin = QSpinBox()
        self.minutes_spin.setRange(1, 600)
        self.minutes_spin.setValue(round(FINE_TUNE_MINUTES))
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(1, 500)
        self.epochs_spin.setValue(FINE_TUNE_EPOCHS)
        self.minutes_spin.setToolTip(self.tr("The training stops after this many minutes; scoring the held-out "
                                             "part and writing the model follow"))
        self.epochs_spin.setToolTip(self.tr("Single-date epochs at most; the sequence stage runs a third of them"))
        budget_row = QHBoxLayout()
        budget_row.addWidget(self.minutes_spin)
        budget_row.addWidget(QLabel(self.tr("min, at most")))
        budget_row.addWidget(self.epochs_spin)
        budget_row.addWidget(QLabel(self.tr("epochs")))
        form.addRow(self.tr("Time budget"), budget_row)
        self.output_widget = QgsFileWidget()
        self.output_widget.setStorageMode(QgsFileWidget.SaveFile)
        self.output_widget.setFilter("ONNX models (*.onnx)")
        form.addRow(self.tr("Model to write"), self.output_widget)
        for signal in (project.fileNameChanged, project.readProject, project.cleared):  # read and clear: no name
            signal.connect(self._say_default_folder)
        self._say_default_folder()
        self.controls = TaskControls(self.tr("Train"), self.tr("Fit a model to the ticked layers of the last "
                                                               "period and the labels, in the background"))
        form.addRow(self.controls)
        self.controls.run_button.clicked.connect(self.train)
        self.controls.cancel_button.clicked.connect(self.cancel)
        for signal in (self.labels_combo.layerChanged, self.line_width_spin.valueChanged,
                       self.area.kind_combo.currentIndexChanged, self.area.layer_combo.layerChanged,
                       self.start_combo.currentIndexChanged, self.output_widget.fileChanged):
            signal.connect(self.controls.form_changed)  # a refusal ("Choose a label layer") goes once mended

    def leave_out_images(self, *_) -> None:
        """Rasters of several bands (the dated images themselves) are not offered as labels."""
        self.labels_combo.setExceptedLayerList(
            [layer for layer in self.project.mapLayers().values() if not is_label_candidate(layer)])

    # --- gathering the request
    def output_path(self) -> Path:
        chosen = self.output_widget.filePath().strip()
        if chosen:
            return Path(chosen) if chosen.lower().endswith(".onnx") else Path(chosen + ".onnx")
        return default_folder(self.project, MODELS_FOLDER) / dt.datetime.now().strftime("roads_%Y%m%d_%H%M%S.onnx")

    def _say_default_folder(self, *_) -> None:
        placeholder, where = default_folder_words(self.project, MODELS_FOLDER, "trained models",
                                                  "roads_<date>_<time>.onnx")
        self.output_widget.lineEdit().setPlaceholderText(placeholder)
        self.output_widget.setToolTip(self.tr("The new model (.onnx); its checkpoint and numbers are written "
                                              "beside it") + "\n" + where)

    def request(self, folder: Path):
        """The training request, or a ValueError whose message says what to fix; label layers that are not
        one saved file are written to ``folder`` (``label_layers.label_source_of``)."""
        from ..core.raster_stack import DatedRaster
        from ..models.settings import FineTuneRequest

        layers, undated = self.checked_layers(lone_undated=True)  # one image alone trains without a date
        if undated:
            raise ValueError(self.tr("Give a date to: {}").format(", ".join(undated)))
        if not layers:
            raise ValueError(self.tr("Tick the dated layers to train on."))
        last_period = layers[0].period if len(layers) == 1 else max(layers, key=lambda layer: layer.date).period
        chosen = [layer for layer in layers if layer.period == last_period]
        label_layer = self.labels_combo.currentLayer()
        if label_layer is None:
            raise ValueError(self.tr("Choose a label layer (road lines, polygons or a label raster)."))
        output = self.output_path()
        init = SHIPPED_ROAD_MODEL.with_suffix(".pt") if self.start_combo.currentData() == "fine_tune" else None
        kept = model_written_over(output, init)
        if kept:
            raise ValueError(kept[0].upper() + kept[1:] + ".")
        if output.resolve() == self.model_in_use().resolve():
            raise ValueError(self.tr("Write the new model to another file: {} is the model the dock runs, and a fit "
                                     "that turns out worse would replace it.").format(output.name))
        first = self.project.mapLayer(chosen[0].layer_id)
        polygon_layer = self.area.polygon_layer()
        polygons = label_source_of(polygon_layer, 1, folder) if polygon_layer is not None else None
        return FineTuneRequest(
            [DatedRaster(layer.path, layer.date) for layer in chosen],
            label_source_of(label_layer, self.line_width_spin.value(), folder), output, init,
            self.area.canvas_extent(first), self.epochs_spin.value(), float(self.minutes_spin.value()),
            layer_names=[layer.name for layer in chosen], area_polygons=polygons,
            labels_name=_layer_words(label_layer), area_name=_layer_words(polygon_layer) if polygon_layer else None)

    # --- running
    def train(self) -> None:
        missing = missing_training_message()
        if missing:
            self.controls.refused(missing)
            return
        label_folder = tempfile.TemporaryDirectory(prefix="timeseg_labels_")
        try:
            request = self.request(Path(label_folder.name))
        except ValueError as error:
            label_folder.cleanup()
            self.controls.refused(str(error))
            return
        self.task = TrainingTask(request, self.on_finished, label_folder)
        self.started = time.monotonic()
        self.task.epochDone.connect(self.show_epoch)
        self.task.progressChanged.connect(self.controls.set_progress)
        dates = len(request.rasters)
        self.controls.started((self.tr("Training on {} dates; a fifth of the area is held out ...") if dates != 1 else
                               self.tr("Training on {} date; a fifth of the area is held out ...")).format(dates))
        QgsApplication.taskManager().addTask(self.task)

    def show_epoch(self, record: dict) -> None:
        stage = self.tr("single date") if record["stage"] == "fcn" else self.tr("sequence")
        text = self.tr("{} epoch {}/{}: loss {:.3f}, validation F1 {:.3f}").format(
            stage, record["epoch"], record["epochs"], record["loss"], record["f1"])
        progress = self.task.progress() if self.task is not None else 0.0  # set by the task before this signal
        elapsed = time.monotonic() - self.started
        if 5 <= progress < 100:
            left = elapsed * (100 - progress) / progress
            if self.task is not None and self.task.request.minutes:  # the budget ends training at the latest
                left = min(left, max(self.task.request.minutes * 60 - elapsed, 0))
            text += self.tr("; training ends in about {} min").format(max(1, round(left / 60)))
        elif progress >= 100:
            text += self.tr("; scoring the held-out part and writing the model ...")
        self.controls.status_label.setText(text)

    def cancel(self) -> None:
        if self.task is not None:
            self.controls.cancelling()
            self.task.cancel()

    def on_finished(self, outcome: TrainingOutcome) -> None:
        self.task = None
        if outcome.cancelled:
            self.controls.stopped(self.tr("Cancelled; no model was written."), done=False)
            return
        if outcome.error:
            self.controls.stopped(self.tr("Training failed: {}").format(outcome.error), done=False)
            return
        result = outcome.result
        lines = [self.tr("New model: {}").format(result.model_path)]
        if result.int8_path is None:
            lines.append(self.tr("No int8 variant (it would change more than 1 % of the map): it runs in float32."))
        lines += [line[0].upper() + line[1:] for line in result.held_out_lines()]
        if result.verdict():
            lines.append(self.tr("Warning: {}").format(result.verdict()))
        self.controls.stopped("\n".join(lines), done=True)
        self.model_ready(result.model_path, not result.worse_than_start)


def _layer_words(layer) -> str:
    """A QGIS layer as a card names it: its name, and its filter or that it is a scratch layer."""
    words = f'"{layer.name()}"'
    if layer.providerType() == "memory":
        count = layer.featureCount()
        return f"{words} (a scratch layer of {count} feature{'s' * (count != 1)})"
    subset = layer.subsetString() if hasattr(layer, "subsetString") else ""
    return f"{words} (filtered: {subset})" if subset else words
