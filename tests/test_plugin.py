"""The plugin loads through classFactory in QGIS and unloads cleanly."""

import importlib.util
import sys

from tests_support import ROOT


def load_plugin_package():
    spec = importlib.util.spec_from_file_location("timeseg", ROOT / "__init__.py",
                                                  submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["timeseg"] = module
    spec.loader.exec_module(module)
    return module


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
