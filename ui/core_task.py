"""A background task that runs one core call and hands its result, or its error in one line, to the main thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qgis.core import QgsTask

# tasks whose owner went away (the plugin unloaded or reloaded) before they finished: held here until they do,
# since QGIS holds only the C++ task, and a Python task nobody holds is collected with its finished() (its label
# folder was then removed by Python's finaliser, mid-run, with a ResourceWarning)
_DETACHED: set[QgsTask] = set()


def hold_until_finished(task: QgsTask) -> None:
    _DETACHED.add(task)


def release(task: QgsTask) -> None:
    _DETACHED.discard(task)


class CoreTask(QgsTask):
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
