"""The TimeSeg dock: pick dated layers and a model, run in the background, get styled layers.

The dock composes panels that each own one job (layers, model, options, the run's controls,
compare, train). It only gathers choices into ``RunParameters``, asks core's preflight what
is wrong before Run, and starts a ``SegmentationTask``; the results are added on the main thread.
"""

from __future__ import annotations

from pathlib import Path

from qgis.core import Qgis, QgsApplication, QgsMessageLog, QgsProject, QgsRasterLayer
from qgis.gui import QgsDockWidget
from qgis.PyQt.QtCore import Qt, QTimer, QUrl
from qgis.PyQt.QtGui import QDesktopServices
from qgis.PyQt.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from ..core.definitions import device_words
from .compare_panel import ComparePanel
from .dependencies import missing_dependency_message
from .layer_table import PRODUCT_PROPERTY, LayerTable
from .model_panel import ModelPanel
from .options_panel import RESULTS_FOLDER, OptionsPanel
from .results import (
    add_change_layers,
    add_period_layers,
    change_message,
    hide_earlier_results,
    period_span,
    plain_lines,
)
from .run_parameters import RunParameters
from .segmentation_task import SegmentationTask, TaskOutcome
from .task_controls import TaskControls
from .temporary_results import TemporaryResultsKeeper
from .train_panel import MODELS_FOLDER, TrainPanel
from .wrapping_label import WrappingLabel

LOG_TAG = "TimeSeg"


def log(message: str, level=Qgis.Info) -> None:
    QgsMessageLog.logMessage(message, LOG_TAG, level)


def _message_label(colour: str) -> QLabel:
    label = WrappingLabel()
    label.setTextInteractionFlags(Qt.TextSelectableByMouse)
    label.setStyleSheet(f"color: {colour}")
    return label


def _red_label() -> QLabel:
    """For what keeps a run from starting."""
    return _message_label("#a40000")


def _amber_label() -> QLabel:
    """For what a run will change in its inputs, said before it starts."""
    return _message_label("#8a5a00")


def _sentence(line: str) -> str:
    """A line of the engine's words as a sentence of the dock: its first word capitalised, unless that word is
    a name (a file's: ``rgb_32633.tif``), which stays as it is."""
    first = line.split(" ", 1)[0]
    return line[:1].upper() + line[1:] if first.isalpha() and first.islower() else line


def _same_files(layers) -> list[str]:
    """One layer's file ticked twice under two names, in their names."""
    by_file: dict[Path, list[str]] = {}
    for layer in layers:
        by_file.setdefault(Path(layer.path).resolve(), []).append(layer.name)
    return [f"{' and '.join(names)} are the same file: untick one" for names in by_file.values() if len(names) > 1]


class TimeSegDock(QgsDockWidget):
    def __init__(self, iface, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("TimeSeg"))
        self.setObjectName("TimeSegDock")
        self.iface = iface
        self.project = QgsProject.instance()
        self.task: SegmentationTask | None = None
        self.refused = False  # the status says why the last click on Run did nothing
        body = QWidget()
        column = QVBoxLayout(body)
        self.dependency_label = _red_label()
        column.addWidget(self.dependency_label)
        self.install_button = QPushButton(self.tr("Install missing packages"))
        self.install_button.clicked.connect(self.install_dependencies)
        column.addWidget(self.install_button)
        self.install_task = None
        self.installed = False  # this session's install succeeded: QGIS imports it after a restart
        column.addWidget(QLabel(self.tr("Dated raster layers (tick the ones to use):")))
        self.table = LayerTable(self.project, body)
        column.addWidget(self.table, stretch=1)
        column.addLayout(self._tick_buttons())
        self.warning_label = _red_label()
        column.addWidget(self.warning_label)
        self.notice_label = _amber_label()
        column.addWidget(self.notice_label)
        self.warning_label.setVisible(False)  # shown when they have something to say (update_warnings)
        self.notice_label.setVisible(False)
        # Run right under the layers and what is wrong with them; the model and options below (their defaults run)
        self.controls = TaskControls(self.tr("Run segmentation"), self.tr(
            "Segment each period of the ticked layers; with two periods, map the change"))
        column.addWidget(self.controls)
        self.open_folder_button = QPushButton(self.tr("Open output folder"))
        self.open_folder_button.setToolTip(self.tr("The folder of the last run's rasters, lines and summaries"))
        self.open_folder_button.setEnabled(False)
        self.open_folder_button.clicked.connect(self.open_output_folder)
        column.addWidget(self.open_folder_button)
        self.last_output: Path | None = None
        self.model_panel = ModelPanel(body)
        column.addWidget(self.model_panel)
        self.options = OptionsPanel(iface, self.project, body)
        column.addWidget(self.options)
        self.compare_panel = ComparePanel(iface, self.project, self.options.new_output_folder,
                                          self.options.change_options, self._results_in,
                                          lambda: self.project_generation, body)
        column.addWidget(self.compare_panel)
        self.train_panel = TrainPanel(iface, self.project, self.table.checked_layers,
                                      self.model_panel.offer_model, lambda: self.model_panel.path, body)
        column.addWidget(self.train_panel)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)  # the panels wrap to the dock's width
        scroll.setWidget(body)
        # the dock asks QGIS for the width its panels need, so that nothing is cut off at the right
        scroll.setMinimumWidth(body.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 4)
        self.setWidget(scroll)

        self.model_panel.cardChanged.connect(self._card_changed)
        self.options.defaults_button.clicked.connect(lambda: self.options.apply_card(self.model_panel.card))
        self.table.selectionChangedByUser.connect(self.update_warnings)
        self.options.changed.connect(self.update_warnings)
        self.controls.run_button.clicked.connect(self.run)
        self.controls.cancel_button.clicked.connect(self.cancel)
        self.project_generation = 0  # a new or another project: a run of the one before adds nothing to it
        self.project.cleared.connect(self._project_changed)
        self.project.readProject.connect(self._project_changed)
        # results written to the temporary folder before the project had a file: beside it once it is saved
        self.keeper = TemporaryResultsKeeper(self.project, RESULTS_FOLDER, MODELS_FOLDER,
                                             lambda: self.model_panel.trained, self._results_moved, self)
        self.check_dependencies()
        self.model_panel.load_model()

    def _tick_buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        for text, tip, checked in ((self.tr("All"), self.tr("Tick every listed layer"), True),
                                   (self.tr("None"), self.tr("Untick every layer"), False)):
            button = QPushButton(text)
            button.setToolTip(tip)
            button.clicked.connect(lambda _=False, checked=checked: self.table.set_all_checked(checked))
            row.addWidget(button)
        products = QPushButton(self.tr("+ Sentinel-2…"))
        products.setToolTip(self.tr("L1C or L2A products as downloaded (.zip, or a .SAFE folder's manifest.safe): "
                                    "their true-colour images join the project, dated"))
        products.clicked.connect(self._choose_products)
        row.addWidget(products)
        periods = QPushButton(self.tr("Period"))  # a push button leaves room for its menu's arrow (a tool button's
        periods.setToolTip(self.tr("Tick every layer of one period"))  # arrow overlapped its text)
        menu = QMenu(periods)
        menu.aboutToShow.connect(lambda: self._fill_period_menu(menu))
        periods.setMenu(menu)
        row.addWidget(periods)
        row.addStretch(1)
        return row

    def _fill_period_menu(self, menu: QMenu) -> None:
        menu.clear()
        for period in self.table.periods():
            menu.addAction(period, lambda period=period: self.table.set_period_checked(period))

    def _choose_products(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, self.tr("Sentinel-2 products"), "",
                                                self.tr("Sentinel-2 products (*.zip manifest.safe)"))
        from ..core.sentinel2 import product_of

        self.add_products([product_of(p) for p in paths])

    def add_products(self, products: list[Path]) -> list[str]:
        """Each product's true-colour image (or, without one, its red band) as a layer named after the product
        (its date in the name); returns the problems, also shown in the dock. The engine reads the product as
        the model asks (a TCI-less product's bands, for the road model)."""
        from ..core.sentinel2 import ProductError, display_path, is_product, product_name

        problems, layers = [], []
        for product in products:
            if not is_product(product):
                problems.append(self.tr("{} is not a Sentinel-2 product (a .SAFE folder or its .zip): add it as a "
                                        "raster layer").format(Path(product).name))
                continue
            try:  # a product of several granules is shown through a VRT file, which a saved project finds again
                source = display_path(product, Path(QgsApplication.qgisSettingsDirPath()) / "timeseg" / "products")
            except ProductError as error:
                problems.append(str(error))
                continue
            layer = QgsRasterLayer(source, product_name(product))
            if layer.isValid():
                layer.setCustomProperty(PRODUCT_PROPERTY, str(Path(product).absolute()))  # the engine reads the product
                layers.append(layer)
            else:
                problems.append(self.tr("QGIS cannot read the images of {}").format(Path(product).name))
        self.project.addMapLayers(layers)
        for layer in layers:
            self.table.set_checked(layer.id())
        self.controls.status_label.setText("\n".join(problems))
        return problems

    def _results_in(self, folder: Path) -> None:
        """Open output folder opens ``folder``: where the last run or comparison wrote."""
        self.last_output = folder
        self.open_folder_button.setEnabled(True)

    def open_output_folder(self) -> None:
        if self.last_output is not None and self.last_output.is_dir():
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.last_output)))

    def check_dependencies(self) -> bool:
        from .dependencies import to_install

        message = missing_dependency_message()
        self.dependency_label.setText(message or "")
        self.dependency_label.setVisible(bool(message))
        self.controls.run_button.setEnabled(not message)
        # what running needs (training's torch, a download of its own, is the Train panel's to say); none more
        # to click once installed, until QGIS restarts and imports it
        packages = to_install()
        self.install_button.setVisible(bool(packages) and self.install_task is None and not self.installed)
        self.install_button.setToolTip(self.tr("pip install {} into the Python QGIS runs").format(" ".join(packages)))
        return not message

    def install_dependencies(self) -> None:
        """The exact pinned pip install into QGIS's own Python, in the background; then restart QGIS."""
        from .core_task import CoreTask
        from .dependencies import install, to_install

        packages = to_install()

        def done(output, error: str | None) -> None:
            self.install_task = None
            self.install_button.setEnabled(True)
            self.dependency_label.setVisible(True)
            if error:  # what went wrong, and the command to run by hand still there
                log(f"installing {', '.join(packages)} failed: {error}", Qgis.Critical)
                self.dependency_label.setText(f"{error}\n{missing_dependency_message() or ''}".strip())
                return
            self.installed = True
            self.install_button.setVisible(False)
            self.dependency_label.setText(self.tr("Installed {}. Restart QGIS to use them.\n{}").format(
                ", ".join(packages), output))

        self.install_task = CoreTask(self.tr("TimeSeg: installing packages"), lambda: install(packages), done)
        self.install_button.setEnabled(False)
        self.dependency_label.setVisible(True)
        self.dependency_label.setText(self.tr("Installing {} (this takes a few minutes) ...").format(
            ", ".join(packages)))
        QgsApplication.taskManager().addTask(self.install_task)

    def _card_changed(self) -> None:
        self.options.apply_card(self.model_panel.card)
        self.update_warnings()

    # --- what is wrong before Run
    def parameters(self) -> RunParameters:
        """The run as the dock shows it; a ``ValueError`` says what is missing (the area's polygon layer)."""
        layers, _ = self.table.checked_layers(lone_undated=True)
        first = self.project.mapLayer(min(layers, key=lambda layer: layer.date).layer_id) if layers else None
        return RunParameters(
            layers=tuple(layers),
            model_path=self.model_panel.path,
            output_dir=self.options.output_folder(),
            device=self.options.device_combo.currentData(),
            precision=self.options.precision_combo.currentData(),
            orientations=self.options.orientations_combo.currentData(),
            scales=self.options.scales_combo.currentData(),
            threshold=self.options.threshold_spin.value() or None,
            change=self.options.change_options(),
            tile_size=self.options.tile_spin.value(),
            overlap=self.options.overlap_spin.value(),
            add_probability=self.options.probability_check.isChecked(),
            aoi=self.options.area.aoi(first) if first is not None else None,
        )

    def problems(self) -> list[str]:
        """What keeps the ticked layers from running with the model, in words."""
        return self.preflight()[0]

    def preflight(self) -> tuple[list[str], list[str]]:
        """``(problems, warnings)`` of the ticked layers with the model: the dock's own problems (dates,
        a model chosen) and, per period, what core's preflight finds and what the run will change."""
        from ..core.segment import periods_apart, segment_preflight

        layers, undated = self.table.checked_layers(lone_undated=True)
        unreadable = _same_files(layers) + self.table.period_clashes()
        if unreadable:  # said in the layers' names, not again in the engine's words
            return unreadable, []
        problems = []
        if undated:
            problems.append(self.tr("Give a date to: {}").format(", ".join(undated)))
        if self.model_panel.card is None:
            if missing_dependency_message():  # no card can be read without onnxruntime
                return [*problems, self.tr("onnxruntime is missing: click Install missing packages above, then "
                                           "restart QGIS")], []
            if self.model_panel.model_widget.filePath().strip():  # chosen, and refused: the Model panel says why
                return [*problems, self.tr("This model cannot be used: the Model panel says why; choose another")], []
            return [*problems, self.tr("Choose a model.")], []
        if not layers and not undated:
            problems.append(self.tr("Tick the dated layers to use."))
        try:
            parameters = self.parameters()
        except ValueError as error:
            return [*problems, str(error)], []
        reference = self.project.mapLayer(min(layers, key=lambda layer: layer.date).layer_id) if layers else None
        off = self.options.area.off_the_rasters(reference) if reference is not None else None
        if off:
            return [*problems, off], []
        folder = self.options.output_folder().parent
        if folder.exists() and not folder.is_dir():
            return [*problems, self.tr("The output folder {} is a file: choose a folder.").format(folder)], []
        requests = parameters.segment_requests()
        found = {period: segment_preflight(request) for period, request in requests.items()}
        problems += self._by_period({period: lines for period, (lines, _) in found.items()})
        return (problems + [_sentence(line) for line in periods_apart(requests)],
                self._by_period({p: lines for p, (_, lines) in found.items()}))

    def _by_period(self, lines: dict[str, list[str]]) -> list[str]:
        """Each line once, prefixed with the periods that have it ("Periods 2018, 2020: ..."); a line every
        period has (the model's, the folder's) bare, as a sentence."""
        periods_of: dict[str, list[str]] = {}
        for period, period_lines in lines.items():
            for line in period_lines:
                periods_of.setdefault(line, []).append(period)
        said = []
        for line, periods in periods_of.items():
            if len(lines) > 1 and len(periods) == len(lines):
                said.append(_sentence(line))
            else:
                said.append((self.tr("Period {}: {}") if len(periods) == 1 else self.tr("Periods {}: {}")).format(
                    ", ".join(periods), line))
        return said

    def update_warnings(self) -> None:
        ticked, undated = self.table.checked_layers(lone_undated=True)
        problems, warnings = self.preflight() if ticked or undated else ([], [])
        for label, lines in ((self.warning_label, problems), (self.notice_label, warnings)):
            label.setText("\n".join(lines))
            label.setVisible(bool(lines))  # no empty gap above Run
        if self.refused:  # what a refused Run said no longer holds: the lines above say what does
            self.controls.status_label.clear()
            self.refused = False

    # --- running
    def run(self) -> None:
        if self.task is not None or not self.check_dependencies():  # one run at a time
            return
        problems = self.problems()
        if problems:  # the red lines above say what; the status says that Run waits for them
            self.warning_label.setText("\n".join(problems))
            self.warning_label.setVisible(True)
            self.controls.refused(self.tr("Not run: mend what the red lines above say."))
            self.refused = True
            return
        self.model_panel.save_settings()
        self.options.save_settings()
        parameters = self.parameters()
        self.options.claim(parameters.output_dir)
        generation = self.project_generation
        self.task = SegmentationTask(parameters, lambda outcome: self.on_task_finished(outcome, generation))
        self.task.progressChanged.connect(self.controls.set_progress)
        self.task.stepChanged.connect(self._show_step)
        periods = ", ".join(parameters.periods())
        self.controls.started(self.tr("Running on periods {} ...").format(periods))
        log(f"run: {len(parameters.layers)} layers, periods {periods}, model {parameters.model_path}, "
            f"output {parameters.output_dir}")
        QgsApplication.taskManager().addTask(self.task)

    def _show_step(self, step: str) -> None:
        """What the run is doing now (the status said "Running on periods ..." to the end), unless cancelling."""
        if self.task is not None and not self.task.isCanceled():
            self.controls.status_label.setText(self.tr("Running: {} ...").format(step))

    def cancel(self) -> None:
        if self.task is not None:
            # a task not started yet finishes inside cancel(): say so first
            self.controls.cancelling()
            self.task.cancel()

    def _project_changed(self, *_) -> None:
        """Project > New or Open: what the dock said of the last run belongs to the project before."""
        self.project_generation += 1
        if self.task is None:
            self.controls.status_label.clear()
            self.controls.progress.setValue(0)
            self.open_folder_button.setEnabled(False)
            self.last_output = None
        self.update_warnings()  # what the project's ticked layers lack (a file deleted since) is said at once

    def _results_moved(self, moved) -> None:
        """What the panels said of the folders and models moved beside the saved project, said anew; the
        message bar says what moved, or what could not."""
        for old, new in moved.models.items():
            self.model_panel.model_moved(old, new)
        for label in (self.controls.status_label, self.compare_panel.status_label,
                      self.train_panel.controls.status_label):
            text = label.text()
            for old, new in [*moved.folders.items(), *moved.models.items()]:
                text = text.replace(str(old), str(new))
            label.setText(text)
        for old, new in moved.folders.items():
            if self.last_output is not None and self.last_output.resolve() == old:
                self.last_output = new
        if moved.folders or moved.models:
            where = ", ".join(sorted({str(p.parent) for p in [*moved.folders.values(), *moved.models.values()]}))
            message = self.tr("Moved {} from the temporary folder to {}; the project was saved again with their "
                              "new paths").format(moved.words(), where)
            log(message)
            self.iface.messageBar().pushMessage("TimeSeg", message, Qgis.Info, 10)
        if moved.failed:
            message = self.tr("Could not move from the temporary folder (many systems empty it at restart): {}. "
                              "Copy them beside the project yourself").format("; ".join(moved.failed))
            log(message, Qgis.Warning)
            self.iface.messageBar().pushMessage("TimeSeg", message, Qgis.Warning, 0)

    def on_task_finished(self, outcome: TaskOutcome, generation: int | None = None) -> None:
        self.task = None
        if not outcome.cancelled and not outcome.error and generation not in (None, self.project_generation):
            self.controls.stopped(self.tr("The project this run was started in was closed: its maps were not added "
                                          "to this one. They are in {}").format(outcome.parameters.output_dir),
                                  done=True)
            self._results_in(outcome.parameters.output_dir)
            return
        if outcome.cancelled:
            self.controls.stopped(self.tr("Cancelled; nothing of this run was kept."), done=False)
            log("run cancelled; its outputs were removed")
            return
        if outcome.error:
            self.controls.stopped(self.tr("Failed: {}").format(outcome.error), done=False)
            log(f"run failed: {outcome.error}", Qgis.Critical)
            self.iface.messageBar().pushMessage("TimeSeg", outcome.error, Qgis.Critical, 10)
            return
        try:
            lines = self._add_results(outcome)
        except Exception as error:  # a map deleted or unreadable since the run wrote it: the dock must not stay busy
            from ..core.atomic import one_line

            message = self.tr("The maps were made but could not be added: {}. They are in {}").format(
                one_line(error), outcome.parameters.output_dir)
            self._results_in(outcome.parameters.output_dir)
            self.controls.stopped(message, done=False)
            log(message, Qgis.Critical)
            self.iface.messageBar().pushMessage("TimeSeg", message, Qgis.Critical, 10)
            return
        lines += outcome.warnings
        lines.append(self.tr("Results in {}").format(outcome.parameters.output_dir))
        self._results_in(outcome.parameters.output_dir)
        self.controls.stopped("\n".join(lines), done=True)
        for line in lines:
            log(line)

    def _add_results(self, outcome: TaskOutcome) -> list[str]:
        """A finished run's layers added to the project; the lines that say what was made."""
        hide_earlier_results(self.project)
        for index, period in enumerate(outcome.periods):
            add_period_layers(self.project, outcome.model_name, period, outcome.parameters.add_probability,
                              latest=index == len(outcome.periods) - 1)
        lines = [(self.tr("{}: {} dates on {}") if len(p.dates) != 1 else self.tr("{}: {} date on {}"))
                 .format(p.period, len(p.dates), device_words(p.provider)) for p in outcome.periods]
        if outcome.change_path is not None:
            from ..core.change import lines_path

            span = period_span(outcome.periods[-2].period, outcome.periods[-1].period)
            add_change_layers(self.project, outcome.model_name, outcome.change_path, lines_path(outcome.change_path),
                              span, [*outcome.periods[-2].dates, *outcome.periods[-1].dates])
            lines += plain_lines(outcome.change_summary)
            said = self.tr("Change {}: {}").format(span, change_message(outcome.change_summary))
            # once QGIS has said "Task complete" (it says it after this callback, over the kilometres)
            bar = self.iface.messageBar()
            QTimer.singleShot(0, lambda: bar.pushMessage("TimeSeg", said, Qgis.Success, 10))
        return lines
