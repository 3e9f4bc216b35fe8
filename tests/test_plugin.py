"""The plugin loads through classFactory in QGIS, adds its action, dock and provider, and unloads cleanly."""

from tests_support import load_plugin_package


def test_plugin_loads_and_unloads(qgis_iface):
    from qgis.core import Qgis, QgsApplication

    messages = []
    QgsApplication.messageLog().messageReceived.connect(lambda text, tag, level: messages.append((tag, text)))
    plugin = load_plugin_package().classFactory(qgis_iface)
    plugin.initGui()
    assert plugin.action is not None and plugin.action.text() == "TimeSeg: time-series segmentation"
    assert QgsApplication.processingRegistry().providerById("timeseg") is not None
    plugin.action.trigger()  # the toolbar button opens the dock
    assert plugin.dock is not None and not plugin.dock.isHidden() and plugin.action.isChecked()
    plugin.unload()
    assert plugin.dock is None and plugin.action is None
    assert QgsApplication.processingRegistry().providerById("timeseg") is None
    assert ("TimeSeg", "TimeSeg loaded") in messages and ("TimeSeg", "TimeSeg unloaded") in messages
    assert Qgis.QGIS_VERSION_INT >= 32200
