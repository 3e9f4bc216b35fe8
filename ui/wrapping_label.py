"""A label whose text wraps to the dock's width, long file names included.

Qt wraps a label's text between words only: a Sentinel-2 product's name or a path (60 characters without a
space) set the dock's least width, and the dock then cut every panel at its right edge. This label lets such
words break after their separators (zero-width spaces); ``text()`` and what is copied from it (Ctrl+C, its
menu's Copy) are the text as it was set, so that a copied path works.
"""

from __future__ import annotations

import re

from qgis.PyQt.QtGui import QKeySequence
from qgis.PyQt.QtWidgets import QApplication, QLabel, QMenu

LONG_WORD = 24  # characters from which a word may break after '_', '/', '\\', '.' or '-'
_BREAK = "\u200b"  # zero-width space: a place to break, shown as nothing
_LONG = re.compile(rf"\S{{{LONG_WORD},}}")


def breakable(text: str) -> str:
    """``text`` with a zero-width space after each separator of its words of ``LONG_WORD`` characters or more."""
    return _LONG.sub(lambda word: re.sub(r"([_/\\.\-])", rf"\1{_BREAK}", word.group()), text)


class WrappingLabel(QLabel):
    """A word-wrapped ``QLabel`` whose long words break after their separators."""

    def __init__(self, text: str = "", parent=None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt naming)
        self._text = text
        super().setText(breakable(text))
        self._fit_height()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        super().resizeEvent(event)
        self._fit_height()

    def _fit_height(self) -> None:
        """The height its wrapped lines need at its width, as its least height: a group box (the Compare and
        Train panels) lays its children out by their one-line size hint, and cut a long message after a few
        lines until the dock was resized."""
        needed = self.heightForWidth(self.width()) if self.width() > 0 else -1
        if needed > 0 and needed != self.minimumHeight():
            self.setMinimumHeight(needed)

    def text(self) -> str:
        return self._text

    def clear(self) -> None:
        self.setText("")

    def selectedText(self) -> str:  # noqa: N802 (Qt naming)
        return super().selectedText().replace(_BREAK, "")

    def copy_selection(self) -> None:
        """The selected text to the clipboard, without the breaks this label put in."""
        QApplication.clipboard().setText(self.selectedText())

    def select_all(self) -> None:
        self.setSelection(0, len(QLabel.text(self)))  # the text shown, breaks included

    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        if event.matches(QKeySequence.Copy) and self.hasSelectedText():
            self.copy_selection()
            event.accept()
            return
        super().keyPressEvent(event)

    def contextMenuEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        menu = QMenu(self)
        copy = menu.addAction(self.tr("Copy"), self.copy_selection)
        copy.setEnabled(self.hasSelectedText())
        menu.addAction(self.tr("Select All"), self.select_all)
        menu.exec_(event.globalPos())
