"""The QGIS plugin object: the TimeSeg dock (toolbar button and Raster menu) and the
``timeseg`` Processing provider."""

from __future__ import annotations

from pathlib import Path

from qgis.core import Qgis, QgsApplication, QgsMessageLog
from qgis.PyQt.QtCore import QCoreApplication, Qt
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction

LOG_TAG = "TimeSeg"
PLUGIN_ROOT = Path(__file__).resolve().parent
ICON = PLUGIN_ROOT / "icons" / "timeseg.svg"


class TimeSegPlugin:
    def __init__(self, iface) -> None:
        self.iface = iface
        self.provider = None
        self.action: QAction | None = None
        self.dock = None

    @staticmethod
    def tr(text: str) -> str:
        return QCoreApplication.translate("TimeSeg", text)

    def initProcessing(self) -> None:  # noqa: N802 (QGIS's name)
        try:
            from .provider.provider import TimeSegProvider
        except ImportError as error:  # a package QGIS's Python lacks (rasterio): said, the rest of QGIS untouched
            QgsMessageLog.logMessage(self.tr("TimeSeg's Processing algorithms cannot load: {}; {}").format(
                error, missing_words(error)), LOG_TAG, Qgis.Critical)
            return
        self.provider = TimeSegProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:  # noqa: N802 (QGIS's name)
        self.initProcessing()
        self.action = QAction(QIcon(str(ICON)), self.tr("TimeSeg: time-series segmentation"),
                              self.iface.mainWindow())
        self.action.setCheckable(True)
        self.action.triggered.connect(self.toggle_dock)
        self.iface.addToolBarIcon(self.action)
        self.iface.addPluginToRasterMenu(self.tr("&TimeSeg"), self.action)
        QgsMessageLog.logMessage("TimeSeg loaded", LOG_TAG, Qgis.Info)

    def toggle_dock(self, checked: bool = True) -> None:
        if self.dock is None:
            try:
                from .ui.dock import TimeSegDock
            except ImportError as error:  # rasterio missing: the dock cannot show, the message bar says why
                self.iface.messageBar().pushMessage("TimeSeg", missing_words(error), Qgis.Critical, 0)
                self.action.setChecked(False)
                return
            self.dock = TimeSegDock(self.iface, self.iface.mainWindow())
            self.iface.addDockWidget(Qt.RightDockWidgetArea, self.dock)
            self.dock.visibilityChanged.connect(self.action.setChecked)
        self.dock.setVisible(checked)

    def unload(self) -> None:
        if self.dock is not None:
            for task in (self.dock.task, self.dock.train_panel.task, self.dock.compare_panel.task,
                         self.dock.install_task):  # pip goes on; its end no longer reaches a deleted dock
                if task is not None:  # cancelled quietly: nothing of it is kept, no one is told
                    task.detach()
                    task.cancel()
            self.iface.removeDockWidget(self.dock)
            self.dock.deleteLater()
            self.dock = None
        if self.action is not None:
            self.iface.removePluginRasterMenu(self.tr("&TimeSeg"), self.action)
            self.iface.removeToolBarIcon(self.action)
            self.action.deleteLater()
            self.action = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        QgsMessageLog.logMessage("TimeSeg unloaded", LOG_TAG, Qgis.Info)


def missing_words(error: ImportError) -> str:
    """What to install for a package QGIS's Python lacks (rasterio comes with QGIS's own distribution, not pip)."""
    name = getattr(error, "name", None) or str(error)
    if name.split(".")[0] == "rasterio":
        return ("TimeSeg needs rasterio in the Python QGIS runs: on Debian and Ubuntu sudo apt install "
                "python3-rasterio; with OSGeo4W, its rasterio package; then restart QGIS")
    return f"TimeSeg needs the Python package {name} in the Python QGIS runs; install it, then restart QGIS"
