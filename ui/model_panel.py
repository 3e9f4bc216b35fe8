"""The dock's Model panel: choose a shipped, trained or other ONNX model and read its card."""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsSettings
from qgis.gui import QgsFileWidget
from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtWidgets import QComboBox, QGroupBox, QVBoxLayout

from ..core.model_card import SHIPPED_ROAD_MODEL, shipped_models
from .wrapping_label import WrappingLabel

SETTING = "timeseg/model"


class ModelPanel(QGroupBox):
    """``card`` is the chosen model's card, or None when the file cannot be used (the label says why);
    ``cardChanged`` is emitted after every choice."""

    cardChanged = pyqtSignal()  # noqa: N815 (Qt naming)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setTitle(self.tr("Model"))
        self.card = None
        self.trained: list[Path] = []  # models trained in this session, as offered
        column = QVBoxLayout(self)
        self.shipped_combo = QComboBox()
        self.shipped_combo.setToolTip(self.tr("Models that come with TimeSeg, and those trained in this session"))
        for path in shipped_models():
            self.shipped_combo.addItem(self.tr("Shipped: {}").format(path.stem), str(path))
        self.shipped_combo.addItem(self.tr("Another model file…"), "")
        column.addWidget(self.shipped_combo)
        self.model_widget = QgsFileWidget()
        self.model_widget.setFilter("ONNX models (*.onnx)")
        self.model_widget.setToolTip(self.tr("A TimeSeg model (.onnx with its model card)"))
        remembered = QgsSettings().value(SETTING, str(SHIPPED_ROAD_MODEL))
        # a remembered model since moved or deleted: the shipped road model, not a card that cannot be read
        self.model_widget.setFilePath(remembered if remembered and Path(remembered).is_file()
                                      else str(SHIPPED_ROAD_MODEL))
        column.addWidget(self.model_widget)
        self.card_label = WrappingLabel()
        column.addWidget(self.card_label)
        self.model_widget.fileChanged.connect(self.load_model)
        self.shipped_combo.activated.connect(self._choose_shipped_model)

    @property
    def path(self) -> Path:
        return Path(self.model_widget.filePath())

    def save_settings(self) -> None:
        QgsSettings().setValue(SETTING, self.model_widget.filePath())

    def _choose_shipped_model(self, index: int) -> None:
        path = self.shipped_combo.itemData(index)
        if path:
            self.model_widget.setFilePath(path)
        else:
            self.model_widget.lineEdit().setFocus()

    def offer_model(self, path: Path, choose: bool = True) -> None:
        """A model trained in the Train panel joins the chooser; chosen, ready to run, unless it
        scored below the model it started from (``choose`` False)."""
        key = str(Path(path).resolve())
        if Path(key) not in self.trained:
            self.trained.append(Path(key))
        if self.shipped_combo.findData(key) < 0:
            self.shipped_combo.insertItem(self.shipped_combo.count() - 1, self.tr("Trained: {}").format(
                Path(path).stem), key)
        if str(self.path.resolve()) == key:  # written where the chosen model was: no fileChanged, its card anew
            self.load_model()
        elif choose:
            self.model_widget.setFilePath(key)

    def model_moved(self, old: Path, new: Path) -> None:
        """A trained model moved (beside the project once it is saved): the chooser and the chosen path follow."""
        self.trained = [new if p == old else p for p in self.trained]
        index = self.shipped_combo.findData(str(old))
        if index >= 0:
            self.shipped_combo.setItemData(index, str(new))
            self.shipped_combo.setItemText(index, self.tr("Trained: {}").format(new.stem))
        if self.model_widget.filePath() and Path(self.model_widget.filePath()).resolve() == old:
            self.model_widget.setFilePath(str(new))

    def load_model(self, path: str | None = None) -> None:
        path = self.model_widget.filePath() if path is None else path
        shipped = self.shipped_combo.findData(str(Path(path).resolve()) if path else "")
        self.shipped_combo.setCurrentIndex(shipped if shipped >= 0 else self.shipped_combo.count() - 1)
        self.card = None
        if not path:
            self.card_label.setText(self.tr("Choose a model file."))
        else:
            try:
                from ..core.model_card import read_model_card

                self.card = read_model_card(path)
                self.card_label.setText(describe_card(self.card))
            except Exception as error:  # a broken or foreign file: say so, keep QGIS running
                self.card_label.setText(self.tr("Cannot use this model: {}").format(error))
        self.cardChanged.emit()


def describe_card(card) -> str:
    """The model card in words."""
    from ..core.deepness import ARCHITECTURE as DEEPNESS
    from ..core.tiling import overlap_words

    classes = ", ".join(card.class_names)
    # a binary model finds its class among the classes; a multi-class one names them once
    finds = f"{card.class_names[1]} (classes: {classes})" if card.is_binary else f"one of {classes} per pixel"
    resolution = f"{card.resolution:g} m" if card.resolution > 0 else "any resolution"
    if card.architecture == DEEPNESS:
        return (f"Deepness model, one date (the latest ticked in each period). Finds {finds}. "
                f"{len(card.bands)} bands ({card.input_dtype}), {resolution}. Tiles "
                f"{card.tile_size} px, overlap {overlap_words(card.tile_size, card.tiles_overlap)}.")
    text = (f"Finds {finds}. Bands: {', '.join(card.bands)} ({card.input_dtype}), "
            f"{resolution}. Dates: at least {card.min_sequence_length}, trained on "
            f"{card.sequence_length}. Tiles {card.tile_size} px, overlap "
            f"{overlap_words(card.tile_size, card.tiles_overlap)}.")
    if card.harmonisation is not None:
        text += (" Each date's colours are first stretched onto those of its training images (overcast dates "
                 "left as they are).")
    real = card.metrics.get("real_heldout") if isinstance(card.metrics, dict) else None
    if isinstance(real, dict) and "l1c_tci" in real:
        scenes = len(real.get("scenes", {})) or 1
        text += (f" On real Sentinel-2 (held-out areas of {scenes} scene{'s' if scenes > 1 else ''}, hand-traced "
                 f"roads, one clear date): F1 {_f1_words(real['l1c_tci'])} on L1C, "
                 f"{_f1_words(real.get('l2a_tci', {}))} on L2A true colour.")
    unseen = card.metrics.get("real_unseen") if isinstance(card.metrics, dict) else None
    if isinstance(unseen, dict) and unseen.get("one_date") and "all_dates" in unseen:
        one = sorted(entry["f1"] for entry in unseen["one_date"].values())
        text += (f" On a real place it was never trained on: F1 {one[0]:.2f}-{one[-1]:.2f} with one clear date, "
                 f"{unseen['all_dates']['f1']:.2f} with {'both' if len(one) == 2 else f'all {len(one)}'}.")
    after = card.metrics.get("heldout_after") if isinstance(card.metrics, dict) else None
    if isinstance(after, dict) and "f1" in after:  # a model fitted to the analyst's area (models.fine_tune)
        before = card.metrics.get("heldout_before") or {}
        key = "relaxed_f1" if "relaxed_f1" in after else "f1"
        words = "F1 within 2 px" if key == "relaxed_f1" else "pixel F1"
        change = (f"{before[key]:.2f} before, " if isinstance(before, dict) and key in before else "")
        text += (f" Fitted to your area ({_trained_on_words(card.trained_on)}): on its held-out part, {words} "
                 f"{change}{after[key]:.2f} after.")
    simulated = card.metrics.get("classifier") if isinstance(card.metrics, dict) else None
    if not isinstance(real, dict) and isinstance(simulated, dict) and "accuracy" in simulated:
        text += (f" Trained and scored on simulated scenes only (held-out accuracy {simulated['accuracy']:.2f}, "
                 "simulated): not measured on real imagery; check it against labels of your own first.")
    return f"{card.description.rstrip('.')}. {text}" if card.description else text


def _trained_on_words(trained_on: str, most: int = 300) -> str:
    """A fitted model's ``trained_on`` (``models.fine_tune``: its rasters; its area; its labels; its start), its
    parts kept whole up to ``most`` characters."""
    kept = []
    for part in trained_on.split("; "):
        if kept and len("; ".join([*kept, part])) > most:
            return "; ".join(kept) + "; ..."
        kept.append(part)
    return "; ".join(kept)


def _f1_words(scores: dict) -> str:
    """``0.54`` or, where the card has it, ``0.54 (95 % interval 0.49-0.60)``."""
    f1 = f"{scores.get('f1', float('nan')):.2f}"
    bounds = scores.get("f1_interval")
    if isinstance(bounds, (list, tuple)) and len(bounds) == 2 and all(isinstance(b, (int, float)) for b in bounds):
        return f"{f1} (95 % interval {bounds[0]:.2f}-{bounds[1]:.2f})"
    return f1
