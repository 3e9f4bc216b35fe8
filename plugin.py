"""The QGIS plugin object: registers the ``timeseg`` Processing provider.

The dock arrives with the plugin issue; until then the engine runs from the Processing
toolbox, the graphical modeler and ``qgis_process.bin run timeseg:segment``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from qgis.core import Qgis, QgsApplication, QgsMessageLog

LOG_TAG = "TimeSeg"
PLUGIN_ROOT = Path(__file__).resolve().parent


class TimeSegPlugin:
    def __init__(self, iface) -> None:
        self.iface = iface
        self.provider = None
        # core/ and models/ are imported as top-level packages, as on the command line
        if str(PLUGIN_ROOT) not in sys.path:
            sys.path.insert(0, str(PLUGIN_ROOT))

    def initProcessing(self) -> None:  # noqa: N802 (QGIS's name)
        from .provider.provider import TimeSegProvider

        self.provider = TimeSegProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:  # noqa: N802 (QGIS's name)
        self.initProcessing()
        QgsMessageLog.logMessage("TimeSeg loaded (engine: python -m core)", LOG_TAG, Qgis.Info)

    def unload(self) -> None:
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        QgsMessageLog.logMessage("TimeSeg unloaded", LOG_TAG, Qgis.Info)
