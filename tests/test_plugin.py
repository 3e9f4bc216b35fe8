"""The plugin loads through classFactory in QGIS, adds its action, dock and provider, and unloads cleanly."""

from tests_support import ROOT, load_plugin_package


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


def test_the_plugin_loads_and_says_what_to_install_without_rasterio(qgis_iface, monkeypatch):
    """A QGIS Python without rasterio: the plugin loads (it failed in initGui), its algorithms are left out with a
    message, and opening the dock says what to install, in the message bar."""
    import sys

    from qgis.core import QgsApplication

    package = load_plugin_package()
    messages = []
    QgsApplication.messageLog().messageReceived.connect(lambda text, tag, level: messages.append((tag, text)))
    for module in ("provider.provider", "ui.dock"):  # their imports reach rasterio
        monkeypatch.setitem(sys.modules, f"{package.__name__}.{module}", None)
    plugin = package.classFactory(qgis_iface)
    plugin.initGui()
    try:
        assert QgsApplication.processingRegistry().providerById("timeseg") is None
        assert any(tag == "TimeSeg" and text.startswith("TimeSeg's Processing algorithms cannot load") for tag, text
                   in messages), messages
        plugin.action.trigger()
        assert plugin.dock is None and not plugin.action.isChecked()
    finally:
        plugin.unload()
    rasterio_missing = ModuleNotFoundError("No module named 'rasterio'", name="rasterio")
    assert "sudo apt install python3-rasterio" in sys.modules[package.__name__ + ".plugin"].missing_words(
        rasterio_missing)


def test_training_install_hint_names_the_pinned_packages(monkeypatch):
    from timeseg.ui import dependencies

    pins = {line.split("==")[0]: line.strip() for line in (ROOT / "requirements-dev.txt").read_text().splitlines()
            if "==" in line and not line.startswith("#")}
    for module, pin in dependencies.TRAINING_PACKAGES.items():
        assert pins[module] == pin
    assert dependencies.missing_training_message() is None  # torch and onnx are in the test venv
    monkeypatch.setattr(dependencies.importlib.util, "find_spec", lambda name: None if name == "torch" else object())
    message = dependencies.missing_training_message()
    assert "torch==2.13.0" in message and "-m pip install" in message and "onnx==" not in message


def test_runtime_pins_are_the_requirements(monkeypatch):
    from timeseg.ui import dependencies

    def pins(name):
        return {line.split("==")[0]: line.strip() for line in (ROOT / name).read_text().splitlines()
                if "==" in line and not line.startswith("#")}

    assert pins("requirements.txt")["onnxruntime"] == dependencies.RUNTIME_PACKAGES["onnxruntime"]
    assert pins("requirements.txt")["openvino"] == dependencies.SPEED_PACKAGES["openvino"]
    assert pins("requirements-gpu.txt")["onnxruntime-gpu"] == dependencies.GPU_RUNTIME
    # the installer adds OpenVINO (the bf16 path) on a CPU that computes bfloat16 only
    monkeypatch.setattr(dependencies.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(dependencies, "cuda_gpu_present", lambda: False)
    monkeypatch.setattr(dependencies, "cpu_computes_bf16", lambda: True)
    assert dependencies.to_install() == ["onnxruntime==1.32.0", "openvino==2026.4.1"]
    monkeypatch.setattr(dependencies, "cpu_computes_bf16", lambda: False)
    assert dependencies.to_install() == ["onnxruntime==1.32.0"]



def test_pip_runs_in_qgiss_own_python_not_another_on_the_path(monkeypatch, tmp_path):
    """Embedded in QGIS, sys.executable is whatever python3 the PATH names first (a pyenv shim, conda's): pip
    must run QGIS's own, in its prefix; a venv's python, in the venv's prefix, is its own."""
    import sys

    from timeseg.core import runtime

    prefix = tmp_path / "usr"
    (prefix / "bin").mkdir(parents=True)
    own = prefix / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    own.write_text("")
    monkeypatch.setattr(sys, "prefix", str(prefix))
    monkeypatch.setattr(sys, "executable", str(tmp_path / ".pyenv" / "shims" / "python3"))
    assert runtime.python_for_pip() == str(own)
    monkeypatch.setattr(sys, "executable", str(prefix / "bin" / "python3"))
    assert runtime.python_for_pip() == str(prefix / "bin" / "python3")


def test_pip_failures_are_said_in_words(monkeypatch):
    """Offline, pip's last lines were its retries ("pip failed: Looking in indexes: ..."); without pip, a line of
    Python's traceback. Now: pip's own ERROR lines, the connection named, or that pip is missing."""
    import pytest

    from timeseg.ui import dependencies

    def pip_says(stderr: str):
        class Completed:
            returncode, stdout = 1, ""

        Completed.stderr = stderr
        monkeypatch.setattr("subprocess.run", lambda command, **kwargs: Completed())

    pip_says("Looking in indexes: http://127.0.0.1:9/simple\nWARNING: Retrying (Retry(total=0)) after connection "
             "broken by 'NewConnectionError(Connection refused)'\nERROR: Could not find a version that satisfies "
             "the requirement onnxruntime==1.32.0\nERROR: No matching distribution found for onnxruntime==1.32.0\n")
    with pytest.raises(RuntimeError, match="^pip failed: Could not find a version .*; No matching distribution "
                                           "found for onnxruntime==1.32.0 .no connection to the package index"):
        dependencies.install(["onnxruntime==1.32.0"])
    pip_says('Traceback (most recent call last):\n  File "<frozen runpy>", line 189\n'
             "/usr/bin/python3: No module named pip\n")
    with pytest.raises(RuntimeError, match="^pip is not installed in QGIS's Python: install it"):
        dependencies.install(["onnxruntime==1.32.0"])


def test_the_pip_command_fits_the_python(monkeypatch):
    """QGIS's own Python: --user (and PEP 668's flag where the system marks it); a virtual environment: neither
    (pip refuses --user there); everywhere the numpy installed held, so that pip does not bring numpy 2."""
    import sys

    import numpy as np

    from timeseg.core import install

    monkeypatch.setattr(install, "externally_managed", lambda: True)
    monkeypatch.setattr(sys, "base_prefix", sys.prefix)
    assert install.pip_arguments(["onnxruntime==1.32.0"])[3:] == [
        "install", "--user", "--break-system-packages", "onnxruntime==1.32.0", f"numpy=={np.__version__}"]
    monkeypatch.setattr(sys, "base_prefix", "/elsewhere")
    assert install.pip_arguments(["onnxruntime==1.32.0"])[3:] == [
        "install", "onnxruntime==1.32.0", f"numpy=={np.__version__}"]
    monkeypatch.setattr(sys, "platform", "linux")
    assert install.pip_arguments(["torch==2.13.0"])[4:6] == ["--extra-index-url", install.TORCH_CPU_INDEX]
