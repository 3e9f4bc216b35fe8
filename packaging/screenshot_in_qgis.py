"""Run inside real QGIS (``qgis --code``) by ``make screenshot``: enable TimeSeg, add the demo
sample's ten dated layers, run the segmentation for both periods from the dock, and save a
PNG of the window. Reads TIMESEG_SAMPLE and TIMESEG_SCREENSHOT from the environment."""

import os
from pathlib import Path

import qgis.utils
from qgis.core import QgsApplication, QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import QTimer

SAMPLE = Path(os.environ["TIMESEG_SAMPLE"])
SCREENSHOT = Path(os.environ["TIMESEG_SCREENSHOT"])
iface = qgis.utils.iface


def finish(code: int) -> None:
    # clear the project first, as QGIS's own close does: QGIS 3.22 destroying it after its docks dies on
    # signal 11 (QgisApp::setMapStyleDockLayer; without TimeSeg too, 4 times in 4)
    QTimer.singleShot(500, lambda: (QgsProject.instance().clear(), QgsApplication.exit(code)))


def start() -> None:
    qgis.utils.loadPlugin("timeseg")
    qgis.utils.startPlugin("timeseg")
    plugin = qgis.utils.plugins["timeseg"]
    plugin.toggle_dock(True)
    dock = plugin.dock
    layers = [QgsRasterLayer(str(p), p.stem) for p in sorted(SAMPLE.glob("*/*_TCI.tif"))]
    QgsProject.instance().addMapLayers(layers)
    for layer in layers:
        dock.table.set_checked(layer.id())
    dock.options.output_widget.setFilePath(str(SCREENSHOT.parent.parent / "demo_output" / "qgis"))
    dock.controls.run_button.click()

    def wait() -> None:
        if dock.task is not None:
            QTimer.singleShot(500, wait)
            return
        # show the latest true-colour date under the results
        root = QgsProject.instance().layerTreeRoot()
        for layer in layers[:-1]:
            root.findLayer(layer.id()).setItemVisibilityChecked(False)
        iface.mapCanvas().setExtent(layers[-1].extent())
        iface.mapCanvas().refreshAllLayers()
        QTimer.singleShot(4000, save)

    def save() -> None:
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        ok = iface.mainWindow().grab().save(str(SCREENSHOT))
        print(f"screenshot {'saved' if ok else 'FAILED'}: {SCREENSHOT}; status: {dock.controls.status_label.text()}")
        finish(0 if ok else 1)

    QTimer.singleShot(1000, wait)


iface.mainWindow().resize(1600, 1000)
iface.mainWindow().showMaximized()
QTimer.singleShot(2000, start)
