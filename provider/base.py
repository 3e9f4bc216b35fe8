"""What every TimeSeg Processing algorithm shares: translation, the instance factory, and core's
errors (one line that says what to do) turned into Processing errors."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from qgis.core import QgsProcessingAlgorithm, QgsProcessingException, QgsProcessingUtils
from qgis.PyQt.QtCore import QCoreApplication

Result = TypeVar("Result")


def tr(text: str) -> str:
    return QCoreApplication.translate("TimeSeg", text)


class TimeSegAlgorithm(QgsProcessingAlgorithm):
    """Subclasses give ``name``, ``displayName``, ``shortHelpString``, ``initAlgorithm`` and
    ``processAlgorithm``; they call core through ``run_core``."""

    def createInstance(self):  # noqa: N802
        return type(self)()

    @staticmethod
    def scratch_folder(prefix: str) -> Path:
        """A new folder in Processing's temporary folder, which QGIS removes on exit (for layers written as
        QGIS shows them, ``ui.label_layers``)."""
        return Path(tempfile.mkdtemp(prefix=prefix, dir=QgsProcessingUtils.tempFolder()))

    @staticmethod
    def run_core(work: Callable[[], Result], cancelled_types: tuple[type[BaseException], ...] = (),
                 cancelled_text: str = "cancelled; nothing was kept") -> Result:
        """``work()``; a cancel or a refusal from core becomes one ``QgsProcessingException`` line."""
        try:
            return work()
        except cancelled_types:
            raise QgsProcessingException(tr(cancelled_text)) from None
        except (ValueError, RuntimeError, OSError) as error:
            from ..core.atomic import one_line

            raise QgsProcessingException(one_line(error)) from None
