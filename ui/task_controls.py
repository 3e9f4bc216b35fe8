"""The controls every background job in the dock shares: start, Cancel, a progress bar and a status line."""

from __future__ import annotations

from qgis.PyQt.QtWidgets import QHBoxLayout, QProgressBar, QPushButton, QVBoxLayout, QWidget

from .wrapping_label import WrappingLabel


class TaskControls(QWidget):
    """``run_button`` starts the job (its owner connects it), ``cancel_button`` is enabled only while
    it runs; ``started``/``stopped`` switch between the two states."""

    def __init__(self, run_text: str, run_tip: str, parent=None) -> None:
        super().__init__(parent)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        buttons = QHBoxLayout()
        self.run_button = QPushButton(run_text)
        self.run_button.setToolTip(run_tip)
        self.cancel_button = QPushButton(self.tr("Cancel"))
        self.cancel_button.setToolTip(self.tr("Stop; nothing of this run is kept, earlier results stay"))
        self.cancel_button.setEnabled(False)
        buttons.addWidget(self.run_button, stretch=1)
        buttons.addWidget(self.cancel_button)
        column.addLayout(buttons)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        column.addWidget(self.progress)
        self.status_label = WrappingLabel()
        column.addWidget(self.status_label)
        self.refusal = ""  # what the last refusal said, while it is shown

    def started(self, message: str) -> None:
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setValue(0)
        self.status_label.setText(message)

    def set_progress(self, percent: float) -> None:
        self.progress.setValue(int(percent))

    def refused(self, message: str) -> None:
        """The job did not start: the bar says nothing of an earlier one; the message goes once the form
        changes (``form_changed``)."""
        self.progress.setValue(0)
        self.status_label.setText(message)
        self.refusal = message

    def form_changed(self, *_) -> None:
        """What a refusal said may no longer hold: it goes (a finished job's message stays)."""
        if self.refusal and self.status_label.text() == self.refusal:
            self.status_label.clear()
        self.refusal = ""

    def cancelling(self) -> None:
        self.status_label.setText(self.tr("Cancelling ..."))

    def stopped(self, message: str, done: bool) -> None:
        """The job ended: ``done`` fills the bar, otherwise it is reset."""
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress.setValue(100 if done else 0)
        self.status_label.setText(message)
