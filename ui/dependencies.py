"""Which Python packages the plugin misses, and the exact command that installs them."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

RUNTIME_PACKAGES = {"onnxruntime": "onnxruntime", "rasterio": "rasterio"}


def python_for_pip() -> str:
    """The Python interpreter QGIS runs (sys.executable is the qgis binary on some systems)."""
    executable = Path(sys.executable)
    if executable.name.startswith("python"):
        return str(executable)
    return shutil.which("python3") or "python3"


def missing_packages() -> list[str]:
    return [pip_name for module, pip_name in RUNTIME_PACKAGES.items() if importlib.util.find_spec(module) is None]


def missing_dependency_message() -> str | None:
    """None when everything is there, else what is missing and the command to install it."""
    missing = missing_packages()
    if not missing:
        return None
    command = f"{python_for_pip()} -m pip install --user {' '.join(missing)}"
    return (f"TimeSeg needs the Python package(s) {', '.join(missing)} in the Python that QGIS uses. "
            f"Install with:\n{command}\n(for CUDA: onnxruntime-gpu instead of onnxruntime), then restart QGIS.")
