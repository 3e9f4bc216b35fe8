"""The plugin loads through classFactory in QGIS and unloads cleanly."""

from tests_support import load_plugin_package


def test_plugin_loads_and_unloads(qgis_iface):
    from qgis.core import Qgis, QgsApplication

    messages = []
    QgsApplication.messageLog().messageReceived.connect(lambda text, tag, level: messages.append((tag, text)))
    plugin = load_plugin_package().classFactory(qgis_iface)
    plugin.initGui()
    plugin.unload()
    assert ("TimeSeg", "TimeSeg loaded (engine: python -m core)") in messages
    assert ("TimeSeg", "TimeSeg unloaded") in messages
    assert Qgis.QGIS_VERSION_INT >= 32200
