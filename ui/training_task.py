"""The background job behind Train: ``models.fine_tune`` in QGIS's task thread.

``run()`` works on the plain request copied before the start (paths, dates, extent) and never
touches layers, the project or widgets; it reports each epoch through ``epochDone`` (a Qt
signal, delivered on the main thread). ``finished()`` hands the outcome to the panel.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass

from qgis.core import QgsTask
from qgis.PyQt.QtCore import QCoreApplication, pyqtSignal

from .core_task import SaysCancelledTask


@dataclass
class TrainingOutcome:
    """What a finished training hands back: the result, or why there is none."""

    result: object | None = None  # models.fine_tune.FineTuneResult
    error: str | None = None
    cancelled: bool = False


class TrainingTask(SaysCancelledTask):
    epochDone = pyqtSignal(dict)  # noqa: N815 (Qt's naming)
    cancelled_words = "cancelled, no model written"

    def __init__(self, request, on_finished: Callable[[TrainingOutcome], None],
                 label_folder: tempfile.TemporaryDirectory | None = None) -> None:
        """``label_folder``: where the request's labels were written (``label_layers``), removed when the
        run ends."""
        super().__init__(QCoreApplication.translate("TimeSeg", "TimeSeg training"), QgsTask.CanCancel)
        self.request = request
        self.label_folder = label_folder
        self.outcome = TrainingOutcome()
        self._on_finished = on_finished

    def _on_epoch(self, record: dict) -> None:  # worker thread
        from ..models.fine_tune import progress_percent

        self.setProgress(progress_percent(record, self.request.minutes))
        self.epochDone.emit(dict(record))

    def run(self) -> bool:  # worker thread
        from ..models.fine_tune import fine_tune
        from ..models.training import TrainingCancelled, TrainingMonitor

        try:
            self.outcome.result = fine_tune(self.request, TrainingMonitor(self._on_epoch, self.isCanceled))
        except TrainingCancelled:
            self.outcome.cancelled = True
            return False
        except Exception as error:  # reported in the panel; QGIS keeps running
            self.outcome.error = str(error) or type(error).__name__
            return False
        return True

    def detach(self) -> None:
        """The panel is going away (the plugin unloads): finish quietly, telling no one."""
        from .core_task import hold_until_finished

        self._on_finished = lambda outcome: None
        hold_until_finished(self)

    def finished(self, result: bool) -> None:  # main thread
        from .core_task import release

        release(self)
        if not result and self.isCanceled():
            self.outcome.cancelled = True
        if self.label_folder is not None:
            self.label_folder.cleanup()
        self._on_finished(self.outcome)
