"""The one ``pip install`` command TimeSeg offers anywhere (the dock's button, its messages, the command line's
and Processing's hints): into the Python QGIS runs, with PEP 668's flag where the system Python is marked, and
the numpy already there held as it is (onnx's dependencies would otherwise pull numpy 2, which breaks the
system's GDAL, rasterio and scipy, built against numpy 1)."""

from __future__ import annotations

import importlib.metadata
import sys
import sysconfig
from pathlib import Path

# PyTorch's own index of CPU wheels: PyPI's Linux torch is the CUDA build, with several GB of NVIDIA libraries
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def externally_managed() -> bool:
    """Debian and Ubuntu mark the system Python (PEP 668): pip then needs --break-system-packages."""
    return (Path(sysconfig.get_paths()["stdlib"]) / "EXTERNALLY-MANAGED").exists()


def held_numpy() -> list[str]:
    """``numpy==<the installed version>`` (none when numpy is missing): pip keeps it rather than upgrade it."""
    try:
        return [f"numpy=={importlib.metadata.version('numpy')}"]
    except importlib.metadata.PackageNotFoundError:
        return []


def pip_arguments(packages: list[str]) -> list[str]:
    """The exact ``pip install`` of ``packages`` into QGIS's Python, as a list of arguments."""
    from .runtime import python_for_pip

    if sys.prefix != sys.base_prefix:  # a virtual environment: its own site-packages (--user is refused there)
        flags = []
    else:
        flags = ["--user", "--break-system-packages"] if externally_managed() else ["--user"]
    torch_index = (["--extra-index-url", TORCH_CPU_INDEX]
                   if sys.platform.startswith("linux") and any(p.startswith("torch") for p in packages) else [])
    return [python_for_pip(), "-m", "pip", "install", *flags, *torch_index, *packages, *held_numpy()]


def install_command(packages: list[str]) -> str:
    """``pip_arguments`` as one line to copy into a terminal (the package pins quoted where a shell needs it)."""
    return " ".join(f"'{word}'" if any(c in word for c in "[]<>") else word for word in pip_arguments(packages))
