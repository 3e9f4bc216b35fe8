"""Where the dock writes when no folder is chosen: beside the project, or, for a project never saved, in the
temporary folder; and the words that say so on an empty folder field before anything is written."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from qgis.core import QgsProject
from qgis.PyQt.QtCore import QCoreApplication

RUN_FOLDER_FORMAT = "run_%Y%m%d_%H%M%S"  # each dock run's (and comparison's) folder; _2, _3... for one second's
_RUN_FOLDER = re.compile(r"run_\d{8}_\d{6}(_\d+)*")


def is_run_folder(name: str) -> bool:
    """A folder name ``RUN_FOLDER_FORMAT`` makes (not one of the analyst's beside them)."""
    return _RUN_FOLDER.fullmatch(name) is not None


def temporary_folder() -> Path:
    """Where an unsaved project's results go (``ui.temporary_results`` moves them once it is saved)."""
    return Path(tempfile.gettempdir())


def default_folder(project: QgsProject, name: str) -> Path:
    """``<project's folder>/<name>``, or ``<temporary folder>/<name>`` for a project never saved."""
    base = Path(project.fileName()).parent if project.fileName() else temporary_folder()
    return base / name


def default_folder_words(project: QgsProject, name: str, what: str = "results", file: str = "") -> tuple[str, str]:
    """``(placeholder, tooltip line)`` of an empty output field: short enough for a narrow dock, and the
    ``default_folder`` in full, with, for an unsaved project, that it is a temporary folder (which many
    systems empty at restart) and how to keep ``what`` is written there. ``file``: the field asks for a
    file, written under that name in the folder (``roads_<date>_<time>.onnx``)."""
    folder = default_folder(project, name)
    where = f"{folder}/{file}" if file else str(folder)
    named = f"{file} " if file else ""
    if project.fileName():
        return (QCoreApplication.translate("TimeSeg", "{}beside the project").format(named),
                QCoreApplication.translate("TimeSeg", "Empty: {}").format(where))
    return (QCoreApplication.translate("TimeSeg", "{}in a temporary folder" if file else "a temporary folder")
            .format(named),
            QCoreApplication.translate("TimeSeg", "Empty: {}, in a temporary folder (many systems empty it at "
                                                  "restart): saving the project moves the {} beside it").format(
                where, what))
