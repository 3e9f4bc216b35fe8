"""Which Python packages the plugin misses, and the exact command that installs them."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from ..core.definitions import GPU_RUNTIME_PIN, ONNXRUNTIME_PIN, OPENVINO_PIN
from ..core.install import install_command, pip_arguments

# What running models needs (the pins: core.definitions). rasterio comes from the system (Debian, OSGeo4W,
# QGIS.app) and is not pip-installed here.
RUNTIME_PACKAGES = {"onnxruntime": ONNXRUNTIME_PIN, "rasterio": "rasterio"}
GPU_RUNTIME = GPU_RUNTIME_PIN
# The CPU's bfloat16 path (core/openvino_runner.py), installed beside them on a CPU that computes bfloat16
SPEED_PACKAGES = {"openvino": OPENVINO_PIN}


def cuda_gpu_present() -> bool:
    """An NVIDIA driver answers on this machine (then the GPU build of onnxruntime is the one to install)."""
    return Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi") is not None


def cpu_computes_bf16() -> bool:
    """This CPU has AMX or AVX-512 BF16, as Linux's /proc/cpuinfo says (elsewhere unknown: False)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return False
    return bool(flags & {"amx_bf16", "avx512_bf16"})


def to_install() -> list[str]:
    """The pinned packages the installer button would install now: what running models needs (onnxruntime-gpu
    with a CUDA GPU, OpenVINO with a CPU that computes bfloat16), not training's torch (``missing_training_message``
    gives its own command: a download of its own)."""
    missing = [pin for module, pin in RUNTIME_PACKAGES.items()
               if importlib.util.find_spec(module) is None and module != "rasterio"]
    missing = [GPU_RUNTIME if pin.startswith("onnxruntime") and cuda_gpu_present() else pin for pin in missing]
    if cpu_computes_bf16():
        missing += [pin for module, pin in SPEED_PACKAGES.items() if importlib.util.find_spec(module) is None]
    return missing


def install(packages: list[str]) -> str:
    """Run pip (in a background task) -> its output's last lines; raises ``RuntimeError`` with what went wrong
    in words (pip's own ERROR lines, not the first of its last lines) on failure."""
    import subprocess

    completed = subprocess.run(pip_arguments(packages), capture_output=True, text=True, timeout=1800)
    lines = (completed.stdout + completed.stderr).strip().splitlines()
    if completed.returncode == 0:
        return "\n".join(lines[-6:])
    if any("No module named pip" in line for line in lines):
        raise RuntimeError("pip is not installed in QGIS's Python: install it (Debian, Ubuntu: sudo apt install "
                           "python3-pip), then click again, or run the command below")
    errors = [line.removeprefix("ERROR: ") for line in lines if line.startswith("ERROR:")]
    said = "; ".join(errors) or (lines[-1] if lines else f"exit code {completed.returncode}")
    offline = any("Connection" in line or "Temporary failure in name resolution" in line for line in lines)
    raise RuntimeError(f"pip failed: {said}" + (" (no connection to the package index: connect, or install the "
                                                "packages on a connected machine)" if offline else ""))


def missing_packages() -> list[str]:
    return [pin for module, pin in RUNTIME_PACKAGES.items() if importlib.util.find_spec(module) is None]


def missing_dependency_message() -> str | None:
    """None when everything is there, else what is missing and the command to install it."""
    missing = missing_packages()
    if not missing:
        return None
    command = install_command(missing)
    return (f"TimeSeg needs the Python package(s) {', '.join(m.split('==')[0] for m in missing)} in the Python "
            f"that QGIS uses. Click Install missing packages, or run:\n{command}\n(for CUDA: {GPU_RUNTIME} instead "
            "of onnxruntime), then restart QGIS.")


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
