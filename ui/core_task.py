"""A background task that runs one core call and hands its result, or its error in one line, to the main thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qgis.core import QgsTask
from qgis.PyQt.QtCore import QCoreApplication

# tasks whose owner went away (the plugin unloaded or reloaded) before they finished: held here until they do,
# since QGIS holds only the C++ task, and a Python task nobody holds is collected with its finished() (its label
# folder was then removed by Python's finaliser, mid-run, with a ResourceWarning)
_DETACHED: set[QgsTask] = set()


def hold_until_finished(task: QgsTask) -> None:
    _DETACHED.add(task)


def release(task: QgsTask) -> None:
    _DETACHED.discard(task)


class SaysCancelledTask(QgsTask):
    """A task whose description says it was cancelled, and what that kept: QGIS 3.22 tells of a task of 5 s or
    more that ends cancelled as "Task failed: <its description>" (it has no Silent flag before 3.26), whoever
    cancelled it (the dock's Cancel, QGIS's task bar)."""

    cancelled_words = "cancelled"

    def cancel(self) -> None:  # main thread; QGIS's task manager calls it too
        if not self.isCanceled():
            self.setDescription(f"{self.description()}: {QCoreApplication.translate('TimeSeg', self.cancelled_words)}")
        super().cancel()


class CoreTask(SaysCancelledTask):
    """``work()`` runs in QGIS's task thread on plain data copied before the start; ``on_done(result, error)``
    runs on the main thread (``error`` None on success, "cancelled" when cancelled)."""

    def __init__(self, description: str, work: Callable[[], Any], on_done: Callable[[Any, str | None], None]) -> None:
        super().__init__(description, QgsTask.CanCancel)
        self._work, self._on_done = work, on_done
        self.result, self.error = None, None

    def run(self) -> bool:  # worker thread
        from ..core.atomic import one_line

        try:
            self.result = self._work()
            return True
        except Exception as error:  # shown by the owner; QGIS must not crash
            self.error = one_line(error)
            return False

    def detach(self) -> None:
        """The owner is going away: finish quietly."""
        self._on_done = lambda result, error: None
        hold_until_finished(self)

    def finished(self, ok: bool) -> None:  # main thread
        release(self)
        self._on_done(self.result, None if ok else (self.error or "cancelled"))
