"""The QGIS plugin object. The dock and the Processing provider arrive with the plugin issue;
until then the plugin loads, logs where its engine is, and unloads cleanly."""

from __future__ import annotations

from qgis.core import Qgis, QgsMessageLog

LOG_TAG = "TimeSeg"


class TimeSegPlugin:
    def __init__(self, iface) -> None:
        self.iface = iface

    def initGui(self) -> None:  # noqa: N802 (QGIS's name)
        QgsMessageLog.logMessage("TimeSeg loaded (engine: python -m core)", LOG_TAG, Qgis.Info)

    def unload(self) -> None:
        QgsMessageLog.logMessage("TimeSeg unloaded", LOG_TAG, Qgis.Info)
