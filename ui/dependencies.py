"""Which Python packages the plugin misses, and the exact command that installs them."""

from __future__ import annotations

import importlib.util
import shutil
import sys
import sysconfig
from pathlib import Path

RUNTIME_PACKAGES = {"onnxruntime": "onnxruntime", "rasterio": "rasterio"}


def python_for_pip() -> str:
    """The Python interpreter QGIS runs (sys.executable is the qgis binary on some systems)."""
    executable = Path(sys.executable)
    if executable.name.startswith("python"):
        return str(executable)
    return shutil.which("python3") or "python3"


def externally_managed() -> bool:
    """Debian and Ubuntu mark the system Python (PEP 668): pip then needs --break-system-packages."""
    return (Path(sysconfig.get_paths()["stdlib"]) / "EXTERNALLY-MANAGED").exists()


def install_command(packages: list[str]) -> str:
    flags = "--user --break-system-packages" if externally_managed() else "--user"
    return f"{python_for_pip()} -m pip install {flags} {' '.join(packages)}"


def missing_packages() -> list[str]:
    return [pip_name for module, pip_name in RUNTIME_PACKAGES.items() if importlib.util.find_spec(module) is None]


def missing_dependency_message() -> str | None:
    """None when everything is there, else what is missing and the command to install it."""
    missing = missing_packages()
    if not missing:
        return None
    command = install_command(missing)
    return (f"TimeSeg needs the Python package(s) {', '.join(missing)} in the Python that QGIS uses. "
            f"Install with:\n{command}\n(for CUDA: onnxruntime-gpu instead of onnxruntime), then restart QGIS.")


# What training adds (the pins of requirements-dev.txt; tests/test_plugin.py checks they agree).
TRAINING_PACKAGES = {"torch": "torch==2.13.0", "onnx": "onnx==1.23.2"}


def missing_training_message() -> str | None:
    """None when torch and onnx import, else what is missing and the command to install the CPU
    wheels into the Python that QGIS runs."""
    missing = [pin for module, pin in TRAINING_PACKAGES.items() if importlib.util.find_spec(module) is None]
    if not missing:
        return None
    return (f"Training needs {', '.join(m.split('==')[0] for m in missing)} in the Python that QGIS uses "
            f"(running models does not). Install with: {install_command(missing)} then restart QGIS.")
