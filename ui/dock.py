"""The TimeSeg dock: pick dated layers and a model, run in the background, get styled layers.

The dock only gathers choices into ``RunParameters`` and starts a ``SegmentationTask``;
the engine (``core``) does the work, and the results are added on the main thread.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

from qgis.core import (
    Qgis,
    QgsApplication,
    QgsMapLayerProxyModel,
    QgsMessageLog,
    QgsProject,
    QgsRasterLayer,
    QgsSettings,
)
from qgis.gui import QgsDockWidget, QgsFileWidget, QgsMapLayerComboBox
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..core.model_card import SHIPPED_ROAD_MODEL, shipped_models
from .dependencies import missing_dependency_message
from .layer_table import LayerTable
from .results import add_change_layer, add_period_layers
from .run_parameters import RunParameters
from .segmentation_task import SegmentationTask, TaskOutcome
from .train_panel import TrainPanel

LOG_TAG = "TimeSeg"
SETTINGS = "timeseg/"
DEVICES = (("auto", "Auto"), ("cuda", "CUDA"), ("cpu", "CPU"))


def log(message: str, level=Qgis.Info) -> None:
    QgsMessageLog.logMessage(message, LOG_TAG, level)


class TimeSegDock(QgsDockWidget):
    def __init__(self, iface, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("TimeSeg"))
        self.setObjectName("TimeSegDock")
        self.iface = iface
        self.project = QgsProject.instance()
        self.task: SegmentationTask | None = None
        self.card = None
        settings = QgsSettings()

        body = QWidget()
        column = QVBoxLayout(body)
        self.dependency_label = QLabel()
        self.dependency_label.setWordWrap(True)
        self.dependency_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.dependency_label.setStyleSheet("color: #a40000")
        column.addWidget(self.dependency_label)

        column.addWidget(QLabel(self.tr("Dated raster layers (tick the ones to use):")))
        self.table = LayerTable(self.project, body)
        column.addWidget(self.table, stretch=1)

        model_box = QGroupBox(self.tr("Model"))
        model_layout = QVBoxLayout(model_box)
        self.shipped_combo = QComboBox()
        for path in shipped_models():
            self.shipped_combo.addItem(self.tr("Shipped: {}").format(path.stem), str(path))
        self.shipped_combo.addItem(self.tr("Another model file…"), "")
        model_layout.addWidget(self.shipped_combo)
        self.model_widget = QgsFileWidget()
        self.model_widget.setFilter("ONNX models (*.onnx)")
        self.model_widget.setFilePath(settings.value(SETTINGS + "model", str(SHIPPED_ROAD_MODEL)))
        model_layout.addWidget(self.model_widget)
        self.card_label = QLabel()
        self.card_label.setWordWrap(True)
        model_layout.addWidget(self.card_label)
        self.warning_label = QLabel()
        self.warning_label.setWordWrap(True)
        self.warning_label.setStyleSheet("color: #a40000")
        model_layout.addWidget(self.warning_label)
        column.addWidget(model_box)

        options = QGroupBox(self.tr("Options"))
        form = QFormLayout(options)
        self.device_combo = QComboBox()
        for key, label in DEVICES:
            self.device_combo.addItem(self.tr(label), key)
        saved_device = settings.value(SETTINGS + "device", "auto")
        self.device_combo.setCurrentIndex(max(0, self.device_combo.findData(saved_device)))
        self.device_label = QLabel()
        device_row = QHBoxLayout()
        device_row.addWidget(self.device_combo)
        device_row.addWidget(self.device_label, stretch=1)
        form.addRow(self.tr("Device"), device_row)
        self.tile_spin = QSpinBox()
        self.tile_spin.setRange(32, 4096)
        self.tile_spin.setSingleStep(32)
        self.overlap_spin = QSpinBox()
        self.overlap_spin.setRange(0, 2048)
        self.defaults_button = QPushButton(self.tr("From model"))
        tile_row = QHBoxLayout()
        tile_row.addWidget(self.tile_spin)
        tile_row.addWidget(QLabel(self.tr("overlap")))
        tile_row.addWidget(self.overlap_spin)
        tile_row.addWidget(self.defaults_button)
        form.addRow(self.tr("Tile size (px)"), tile_row)
        self.output_widget = QgsFileWidget()
        self.output_widget.setStorageMode(QgsFileWidget.GetDirectory)
        self.output_widget.setFilePath(self._project_setting("output_dir", ""))
        self.output_widget.lineEdit().setPlaceholderText(self.tr("beside the project, or a temporary folder"))
        form.addRow(self.tr("Output folder"), self.output_widget)
        self.probability_check = QCheckBox(self.tr("Add the probability layer"))
        self.probability_check.setChecked(settings.value(SETTINGS + "add_probability", True, type=bool))
        form.addRow(self.probability_check)
        column.addWidget(options)

        buttons = QHBoxLayout()
        self.run_button = QPushButton(self.tr("Run segmentation"))
        self.cancel_button = QPushButton(self.tr("Cancel"))
        self.cancel_button.setEnabled(False)
        buttons.addWidget(self.run_button, stretch=1)
        buttons.addWidget(self.cancel_button)
        column.addLayout(buttons)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        column.addWidget(self.progress)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        column.addWidget(self.status_label)

        compare = QGroupBox(self.tr("Compare two class layers (no new run)"))
        compare_form = QFormLayout(compare)
        self.before_combo = QgsMapLayerComboBox()
        self.after_combo = QgsMapLayerComboBox()
        for combo in (self.before_combo, self.after_combo):
            combo.setFilters(QgsMapLayerProxyModel.RasterLayer)
        self.compare_button = QPushButton(self.tr("Compare"))
        compare_form.addRow(self.tr("Earlier"), self.before_combo)
        compare_form.addRow(self.tr("Later"), self.after_combo)
        compare_form.addRow(self.compare_button)
        column.addWidget(compare)
        self.train_panel = TrainPanel(iface, self.project, self.table.checked_layers, self.offer_model, body)
        column.addWidget(self.train_panel)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)
        self.setWidget(scroll)

        self.model_widget.fileChanged.connect(self.load_model)
        self.shipped_combo.activated.connect(self._choose_shipped_model)
        self.defaults_button.clicked.connect(self.apply_model_defaults)
        self.device_combo.currentIndexChanged.connect(self._update_device_label)
        self.table.selectionChangedByUser.connect(self.update_warnings)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        self.compare_button.clicked.connect(self.compare)
        self.check_dependencies()
        self.load_model(self.model_widget.filePath())
        self._update_device_label()

    # --- project and settings
    def _project_setting(self, key: str, default: str) -> str:
        value, found = self.project.readEntry("TimeSeg", key, default)
        return value if found else default

    def save_settings(self) -> None:
        settings = QgsSettings()
        settings.setValue(SETTINGS + "model", self.model_widget.filePath())
        settings.setValue(SETTINGS + "device", self.device_combo.currentData())
        settings.setValue(SETTINGS + "add_probability", self.probability_check.isChecked())
        self.project.writeEntry("TimeSeg", "output_dir", self.output_widget.filePath())

    # --- dependencies, model, warnings
    def check_dependencies(self) -> bool:
        message = missing_dependency_message()
        self.dependency_label.setText(message or "")
        self.dependency_label.setVisible(bool(message))
        self.run_button.setEnabled(not message)
        return not message

    def _choose_shipped_model(self, index: int) -> None:
        path = self.shipped_combo.itemData(index)
        if path:
            self.model_widget.setFilePath(path)
        else:
            self.model_widget.lineEdit().setFocus()

    def offer_model(self, path: Path) -> None:
        """A model trained in the Train panel joins the model chooser, chosen, ready to run."""
        key = str(Path(path).resolve())
        if self.shipped_combo.findData(key) < 0:
            self.shipped_combo.insertItem(self.shipped_combo.count() - 1, self.tr("Trained: {}").format(
                Path(path).stem), key)
        self.model_widget.setFilePath(key)

    def load_model(self, path: str) -> None:
        shipped = self.shipped_combo.findData(str(Path(path).resolve()) if path else "")
        self.shipped_combo.setCurrentIndex(shipped if shipped >= 0 else self.shipped_combo.count() - 1)
        self.card = None
        if not path:
            self.card_label.setText(self.tr("Choose a model file."))
            return
        try:
            from ..core.model_card import read_model_card

            self.card = read_model_card(path)
        except Exception as error:  # a broken or foreign file: say so, keep QGIS running
            self.card_label.setText(self.tr("Cannot use this model: {}").format(error))
            self.update_warnings()
            return
        self.card_label.setText(describe_card(self.card))
        self.apply_model_defaults()
        self.update_warnings()

    def apply_model_defaults(self) -> None:
        if self.card is not None:
            self.tile_spin.setValue(self.card.tile_size)
            self.overlap_spin.setValue(self.card.tiles_overlap)

    def _update_device_label(self) -> None:
        from ..core.runtime import RuntimeUnavailable, import_onnxruntime

        try:
            cuda = "CUDAExecutionProvider" in import_onnxruntime().get_available_providers()
        except RuntimeUnavailable:
            self.device_label.setText("")
            return
        if self.device_combo.currentData() == "auto":
            self.device_label.setText(self.tr("will run on CUDA") if cuda else self.tr("will run on the CPU"))
        elif self.device_combo.currentData() == "cuda" and not cuda:
            self.device_label.setText(self.tr("CUDA unavailable: install onnxruntime-gpu"))
        else:
            self.device_label.setText("")

    def problems(self) -> list[str]:
        """What keeps the ticked layers from running with the model, in words."""
        layers, undated = self.table.checked_layers()
        problems = []
        if undated:
            problems.append(self.tr("Give a date to: {}").format(", ".join(undated)))
        if self.card is None:
            problems.append(self.tr("Choose a TimeSeg model."))
            return problems
        if not layers and not undated:
            problems.append(self.tr("Tick the dated layers to use."))
        for layer in layers:
            qgs_layer = self.project.mapLayer(layer.layer_id)
            if qgs_layer is not None and qgs_layer.bandCount() != len(self.card.bands):
                problems.append(self.tr("{} has {} bands, the model wants {} ({})").format(
                    layer.name, qgs_layer.bandCount(), len(self.card.bands), ", ".join(self.card.bands)))
        periods = RunParameters(tuple(layers), Path(), Path()).periods()
        for period, members in periods.items():
            if len(members) < self.card.min_sequence_length:
                problems.append(self.tr("Period {} has {} dates, the model needs at least {}").format(
                    period, len(members), self.card.min_sequence_length))
            dates = [m.date for m in members]
            if len(set(dates)) != len(dates):
                problems.append(self.tr("Period {} has two layers of the same date").format(period))
        return problems

    def update_warnings(self) -> None:
        ticked, undated = self.table.checked_layers()
        self.warning_label.setText("\n".join(self.problems()) if ticked or undated else "")

    # --- running
    def output_folder(self) -> Path:
        chosen = self.output_widget.filePath().strip()
        if chosen:
            base = Path(chosen)
        elif self.project.fileName():
            base = Path(self.project.fileName()).parent / "timeseg_results"
        else:
            base = Path(tempfile.gettempdir()) / "timeseg_results"
        return base / dt.datetime.now().strftime("run_%Y%m%d_%H%M%S")

    def parameters(self) -> RunParameters:
        layers, _ = self.table.checked_layers()
        return RunParameters(
            layers=tuple(layers),
            model_path=Path(self.model_widget.filePath()),
            output_dir=self.output_folder(),
            device=self.device_combo.currentData(),
            tile_size=self.tile_spin.value(),
            overlap=self.overlap_spin.value(),
            add_probability=self.probability_check.isChecked(),
        )

    def run(self) -> None:
        if not self.check_dependencies():
            return
        problems = self.problems()
        if problems:
            self.status_label.setText("\n".join(problems))
            return
        self.save_settings()
        parameters = self.parameters()
        self.task = SegmentationTask(parameters, self.on_task_finished)
        self.task.progressChanged.connect(lambda value: self.progress.setValue(int(value)))
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setValue(0)
        periods = ", ".join(parameters.periods())
        self.status_label.setText(self.tr("Running on periods {} ...").format(periods))
        log(f"run: {len(parameters.layers)} layers, periods {periods}, model {parameters.model_path}, "
            f"output {parameters.output_dir}")
        QgsApplication.taskManager().addTask(self.task)

    def cancel(self) -> None:
        if self.task is not None:
            # a task not started yet finishes inside cancel(): set the text first
            self.status_label.setText(self.tr("Cancelling ..."))
            self.task.cancel()

    def on_task_finished(self, outcome: TaskOutcome) -> None:
        self.task = None
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if outcome.cancelled:
            self.progress.setValue(0)
            self.status_label.setText(self.tr("Cancelled; nothing was kept."))
            log("run cancelled; its outputs were removed")
            return
        if outcome.error:
            self.status_label.setText(self.tr("Failed: {}").format(outcome.error))
            log(f"run failed: {outcome.error}", Qgis.Critical)
            self.iface.messageBar().pushMessage("TimeSeg", outcome.error, Qgis.Critical, 10)
            return
        self.progress.setValue(100)
        for period in outcome.periods:
            add_period_layers(self.project, outcome.model_name, period, outcome.class_names,
                              outcome.parameters.add_probability)
        lines = [self.tr("{}: {} dates on {}").format(p.period, len(p.dates), p.provider) for p in outcome.periods]
        if outcome.change_path is not None:
            earlier, later = outcome.periods[-2].period, outcome.periods[-1].period
            add_change_layer(self.project, outcome.model_name, outcome.change_path, f"{earlier}-{later}")
            lines += outcome.change_summary
            self.iface.messageBar().pushMessage(
                "TimeSeg", self.tr("Change {}-{}: {}").format(earlier, later, outcome.change_summary[0]),
                Qgis.Success, 10)
        self.status_label.setText("\n".join(lines))
        for line in lines:
            log(line)

    def compare(self) -> None:
        from ..core.change import compute_change

        before, after = self.before_combo.currentLayer(), self.after_combo.currentLayer()
        if not isinstance(before, QgsRasterLayer) or not isinstance(after, QgsRasterLayer) or before == after:
            self.status_label.setText(self.tr("Choose two different class layers to compare."))
            return
        output = self.output_folder().parent / f"change_{before.name()}_{after.name()}.tif"
        try:
            summary = compute_change(Path(before.source()), Path(after.source()), output)
        except Exception as error:  # shown, logged; QGIS keeps running
            self.status_label.setText(self.tr("Compare failed: {}").format(error))
            log(f"compare failed: {error}", Qgis.Critical)
            return
        add_change_layer(self.project, "compare", output, f"{before.name()} -> {after.name()}")
        self.status_label.setText("\n".join(summary.lines()))
        self.iface.messageBar().pushMessage("TimeSeg", summary.lines()[0], Qgis.Success, 10)


def describe_card(card) -> str:
    """The model card in words."""
    classes = ", ".join(card.class_names)
    finds = card.class_names[1] if card.is_binary else classes
    text = (f"Finds {finds} (classes: {classes}). Bands: {', '.join(card.bands)} ({card.input_dtype}), "
            f"{card.resolution:g} m. Dates: at least {card.min_sequence_length}, trained on "
            f"{card.sequence_length}. Tiles {card.tile_size} px, overlap {card.tiles_overlap} px.")
    real = card.metrics.get("real_heldout") if isinstance(card.metrics, dict) else None
    if isinstance(real, dict) and "l1c_tci" in real:
        text += (f" On real Sentinel-2 (held-out area, hand-traced roads, one clear date): F1 "
                 f"{real['l1c_tci']['f1']:.2f} on L1C, {real.get('l2a_tci', {}).get('f1', float('nan')):.2f} on "
                 f"L2A true colour.")
    return text
