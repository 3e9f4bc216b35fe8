"""The dock's Options panel: device, tiling, where results go, which layers are added."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from qgis.core import QgsProject, QgsSettings
from qgis.gui import QgsFileWidget
from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
)

from ..core.change import ChangeOptions
from ..core.definitions import (
    CHANGE_TOLERANCE_PX,
    DEVICE_WORDS,
    MAX_TILE_SIZE,
    MIN_PATCH_PIXELS,
    MIN_TILE_SIZE,
    PRECISION_WORDS,
)
from .area_chooser import AreaChooser
from .project_folders import RUN_FOLDER_FORMAT, default_folder, default_folder_words

SETTINGS = "timeseg/"
RESULTS_FOLDER = "timeseg_results"  # under the project's folder, or the temporary one


class OptionsPanel(QGroupBox):
    """``changed`` is emitted when a choice that a run's checks read changes (device, precision, tiling, area,
    output folder), so that the dock says at once what it would refuse."""

    changed = pyqtSignal()

    def __init__(self, iface, project: QgsProject, parent=None) -> None:
        super().__init__(parent)
        self.setTitle(self.tr("Options"))
        self.project = project
        self._claimed: set[Path] = set()  # run folders handed to jobs of this session (output_folder)
        settings = QgsSettings()
        form = QFormLayout(self)
        form.setRowWrapPolicy(QFormLayout.WrapLongRows)
        self.device_combo = QComboBox()
        for key, label in DEVICE_WORDS.items():
            self.device_combo.addItem(self.tr(label), key)
        self.device_combo.setToolTip(self.tr("Auto: the GPU when onnxruntime can use CUDA, else the CPU"))
        self.device_combo.setCurrentIndex(max(0, self.device_combo.findData(settings.value(SETTINGS + "device",
                                                                                          "auto"))))
        self.device_label = QLabel()
        device_row = QHBoxLayout()
        device_row.addWidget(self.device_combo)
        device_row.addWidget(self.device_label, stretch=1)
        form.addRow(self.tr("Device"), device_row)
        self.precision_combo = QComboBox()
        for key, label in PRECISION_WORDS.items():
            self.precision_combo.addItem(self.tr(label), key)
        self.precision_combo.setToolTip(self.tr("Auto: on a CPU with AMX or AVX-512 BF16, bf16 (OpenVINO); on other "
                                                "CPUs the model's int8 variant when it comes with the model; on a GPU "
                                                "its fp16 one; else full precision. All give nearly the same map"))
        self.precision_combo.setCurrentIndex(max(0, self.precision_combo.findData(
            settings.value(SETTINGS + "precision", "auto"))))
        form.addRow(self.tr("Precision"), self.precision_combo)
        self.orientations_combo = QComboBox()
        for count, label in ((1, "1 (fastest)"), (2, "2, mirrored (2x the time)"),
                             (4, "4, mirrored, half turned (4x the time)"),
                             (8, "8, turned and mirrored (8x the time)")):
            self.orientations_combo.addItem(self.tr(label), count)
        from ..core.options import option_help
        from ..core.segment import SegmentRequest

        self.orientations_combo.setToolTip(self.tr(option_help(SegmentRequest, "orientations")))
        self.orientations_combo.setCurrentIndex(max(0, self.orientations_combo.findData(
            _remembered(settings, "orientations", int, 1))))
        form.addRow(self.tr("Orientations averaged"), self.orientations_combo)
        self.scales_combo = QComboBox()
        for count, label in ((1, "1 (fastest)"), (3, "3: 0.75x, 1x, 1.5x (3.8x the time)")):
            self.scales_combo.addItem(self.tr(label), count)
        self.scales_combo.setToolTip(self.tr(option_help(SegmentRequest, "scales")))
        self.scales_combo.setCurrentIndex(max(0, self.scales_combo.findData(
            _remembered(settings, "scales", int, 1))))
        form.addRow(self.tr("Scales averaged"), self.scales_combo)
        self.tile_spin = QSpinBox()
        self.tile_spin.setRange(MIN_TILE_SIZE, MAX_TILE_SIZE)
        self.tile_spin.setSingleStep(32)
        self.tile_spin.setToolTip(self.tr("Pixels per tile side; larger tiles need more memory"))
        self.overlap_spin = QSpinBox()
        self.overlap_spin.setRange(0, MAX_TILE_SIZE - 1)
        self.overlap_spin.setToolTip(self.tr("Pixels shared by neighbouring tiles, blended without seams"))
        self.defaults_button = QPushButton(self.tr("From model"))
        self.defaults_button.setToolTip(self.tr("The tile size and overlap the model card recommends"))
        tile_row = QHBoxLayout()
        tile_row.addWidget(self.tile_spin)
        tile_row.addWidget(QLabel(self.tr("overlap")))
        tile_row.addWidget(self.overlap_spin)
        tile_row.addWidget(self.defaults_button)
        form.addRow(self.tr("Tile size (px)"), tile_row)
        self.threshold_spin = QDoubleSpinBox()
        self.threshold_spin.setRange(0.0, 0.99)
        self.threshold_spin.setSingleStep(0.05)
        self.threshold_spin.setSpecialValueText(self.tr("the model's"))
        self.threshold_spin.setToolTip(self.tr("P(road) from which a pixel is called road; lower finds more roads "
                                               "and more false ones"))
        self.min_patch_spin = QSpinBox()
        self.min_patch_spin.setRange(0, 10_000)
        self.min_patch_spin.setValue(MIN_PATCH_PIXELS)
        self.min_patch_spin.setToolTip(self.tr("New or removed patches smaller than this (pixels) are speckle and "
                                               "left out of the change map"))
        form.addRow(self.tr("Threshold"), self.threshold_spin)
        self.change_tolerance_spin = QSpinBox()
        self.change_tolerance_spin.setRange(0, 10)
        self.change_tolerance_spin.setValue(CHANGE_TOLERANCE_PX)
        self.change_tolerance_spin.setToolTip(self.tr("A road (the class) found within this many pixels in the other "
                                                      "period is the same road, not a change (0: pixel by pixel)"))
        form.addRow(self.tr("Min. change (px)"), self.min_patch_spin)
        form.addRow(self.tr("Same feature within (px)"), self.change_tolerance_spin)
        self.area = AreaChooser(iface, project)
        form.addRow(self.tr("Area"), self.area)
        self.output_widget = QgsFileWidget()
        self.output_widget.setStorageMode(QgsFileWidget.GetDirectory)
        self.output_widget.setFilePath(self._project_folder())
        form.addRow(self.tr("Output folder"), self.output_widget)
        for key, spin in self._remembered_spins().items():  # as the last run had them, like device and precision
            spin.setValue(_remembered(settings, key, type(spin.value()), spin.value()))
        self.probability_check = QCheckBox(self.tr("Add the probability layer"))
        self.probability_check.setChecked(settings.value(SETTINGS + "add_probability", True, type=bool))
        self.probability_check.setToolTip(self.tr("Also add each period's probability map (hidden at first)"))
        form.addRow(self.probability_check)
        self.device_combo.currentIndexChanged.connect(self.update_device_label)
        for signal in (self.device_combo.currentIndexChanged, self.precision_combo.currentIndexChanged,
                       self.tile_spin.editingFinished, self.overlap_spin.editingFinished,
                       self.area.kind_combo.currentIndexChanged, self.area.layer_combo.layerChanged,
                       self.output_widget.fileChanged):
            signal.connect(self.changed)
        # the output folder is the project's: it follows when another project is opened or a new one started,
        # and a folder chosen is the project's at once (relative to it where QGIS writes relative paths)
        project.readProject.connect(self._follow_project)
        project.cleared.connect(self._follow_project)
        project.fileNameChanged.connect(self._say_default_folder)  # saved as (read and clear do not say it)
        self.output_widget.fileChanged.connect(self._keep_folder)
        self._say_default_folder()
        self.update_device_label()

    def _follow_project(self, *_) -> None:
        self.output_widget.setFilePath(self._project_folder())
        self._say_default_folder()

    def _project_folder(self) -> str:
        """The output folder the project keeps (written relative to it, read absolute), or ""."""
        kept = self._project_setting("output_dir", "")
        return self.project.readPath(kept) if kept else ""

    def _keep_folder(self, *_) -> None:
        """The folder chosen goes into the project (not only when a run starts); the same folder read back does
        not mark the project changed."""
        chosen = self.output_widget.filePath().strip()
        if chosen != self._project_folder():
            self.project.writeEntry("TimeSeg", "output_dir", self.project.writePath(chosen) if chosen else "")

    def _say_default_folder(self, *_) -> None:
        placeholder, where = default_folder_words(self.project, RESULTS_FOLDER)
        self.output_widget.lineEdit().setPlaceholderText(placeholder)
        self.output_widget.setToolTip(self.tr("Each run writes a new run_<date>_<time> folder here") + "\n" + where)

    def _project_setting(self, key: str, default: str) -> str:
        value, found = self.project.readEntry("TimeSeg", key, default)
        return value if found else default

    def save_settings(self) -> None:
        settings = QgsSettings()
        settings.setValue(SETTINGS + "device", self.device_combo.currentData())
        settings.setValue(SETTINGS + "precision", self.precision_combo.currentData())
        settings.setValue(SETTINGS + "orientations", self.orientations_combo.currentData())
        settings.setValue(SETTINGS + "scales", self.scales_combo.currentData())
        settings.setValue(SETTINGS + "add_probability", self.probability_check.isChecked())
        for key, spin in self._remembered_spins().items():
            settings.setValue(SETTINGS + key, spin.value())
        self._keep_folder()

    def _remembered_spins(self) -> dict:
        """The change and threshold choices a QGIS session keeps for the next (tiling follows each model's card)."""
        return {"threshold": self.threshold_spin, "min_patch": self.min_patch_spin,
                "change_tolerance": self.change_tolerance_spin}

    def apply_card(self, card) -> None:
        """The card's tile size and overlap; a threshold only for a model of two classes or a Deepness model (the
        others' map is the likeliest class)."""
        if card is not None:
            self.tile_spin.setValue(card.tile_size)
            self.overlap_spin.setValue(card.tiles_overlap)
            self.threshold_spin.setEnabled(card.takes_threshold)

    def update_device_label(self) -> None:
        from ..core.runtime import RuntimeUnavailable, import_onnxruntime

        try:
            cuda = "CUDAExecutionProvider" in import_onnxruntime().get_available_providers()
        except RuntimeUnavailable:
            self.device_label.setText("")
            return
        if self.device_combo.currentData() == "auto":
            self.device_label.setText(self.tr("will run on the GPU (CUDA)") if cuda else self.tr("will run on the CPU"))
        elif self.device_combo.currentData() == "cuda" and not cuda:
            self.device_label.setText(self.tr("GPU unavailable: install onnxruntime-gpu"))
        else:
            self.device_label.setText("")

    def change_options(self) -> ChangeOptions:
        """How two periods' maps are compared (the Run's change map and Compare's)."""
        return ChangeOptions(min_patch_pixels=self.min_patch_spin.value(),
                             tolerance_px=self.change_tolerance_spin.value())

    def output_folder(self) -> Path:
        """A new run folder under the chosen folder (or beside the project, or in the temporary folder): one that
        neither exists nor was claimed by a job of this session (``claim``)."""
        chosen = self.output_widget.filePath().strip()
        base = Path(chosen) if chosen else default_folder(self.project, RESULTS_FOLDER)
        folder = base / dt.datetime.now().strftime(RUN_FOLDER_FORMAT)
        number = 1
        while (candidate := folder.with_name(f"{folder.name}_{number}" if number > 1 else folder.name)).exists() or \
                candidate in self._claimed:
            number += 1  # another run (or a Compare) of the same second
        return candidate

    def claim(self, folder: Path) -> Path:
        """``folder`` (from ``output_folder``) is a starting job's: no other job of this session gets it, even
        before the job has made it (a Run and a Compare clicked in the same second both took one folder, and
        one failed on the other's lock)."""
        self._claimed.add(folder)
        return folder

    def new_output_folder(self) -> Path:
        """A new run folder, claimed at once (for a job that starts now)."""
        return self.claim(self.output_folder())


def _remembered(settings: QgsSettings, key: str, kind: type, default):
    """A choice this panel saved (``SETTINGS + key``) as ``kind``; ``default`` when there is none or it is not one
    (edited by hand, or saved by another version): the dock opens either way."""
    try:
        return kind(settings.value(SETTINGS + key, default))
    except (TypeError, ValueError):
        return default
