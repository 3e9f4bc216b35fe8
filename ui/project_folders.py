"""Where the dock writes when no folder is chosen: beside the project, or, for a project never saved, in the
temporary folder; and the words that say so on an empty folder field before anything is written."""

from __future__ import annotations

import tempfile
from pathlib import Path

from qgis.core import QgsProject
from qgis.PyQt.QtCore import QCoreApplication


def temporary_folder() -> Path:
    """Where an unsaved project's results go (``ui.temporary_results`` moves them once it is saved)."""
    return Path(tempfile.gettempdir())


def default_folder(project: QgsProject, name: str) -> Path:
    """``<project's folder>/<name>``, or ``<temporary folder>/<name>`` for a project never saved."""
    base = Path(project.fileName()).parent if project.fileName() else temporary_folder()
    return base / name


def default_folder_words(project: QgsProject, name: str) -> tuple[str, str]:
    """``(placeholder, tooltip line)`` of an empty folder field: short enough for a narrow dock, and the
    ``default_folder`` in full, with, for an unsaved project, that it is a temporary folder (which many
    systems empty at restart) and how to keep the results."""
    folder = default_folder(project, name)
    if project.fileName():
        return (QCoreApplication.translate("TimeSeg", "beside the project"),
                QCoreApplication.translate("TimeSeg", "Empty: {}").format(folder))
    return (QCoreApplication.translate("TimeSeg", "a temporary folder"),
            QCoreApplication.translate("TimeSeg", "Empty: {}, a temporary folder (many systems empty it at restart): "
                                                  "saving the project moves the results beside it").format(folder))
