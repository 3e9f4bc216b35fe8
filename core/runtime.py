"""An onnxruntime session on CUDA when it is usable, on the CPU otherwise."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEVICES = ("auto", "cpu", "cuda")
INSTALL_HINT = "install it into this Python with: python -m pip install onnxruntime (or onnxruntime-gpu for CUDA)"


class RuntimeUnavailable(RuntimeError):
    """onnxruntime, or the device asked for, cannot be used; the message says what to do."""


@dataclass
class ModelSession:
    session: object  # onnxruntime.InferenceSession
    provider: str  # the execution provider that runs the model

    @property
    def device(self) -> str:
        return "cuda" if self.provider == "CUDAExecutionProvider" else "cpu"


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise RuntimeUnavailable(f"onnxruntime is not installed; {INSTALL_HINT}") from None
    return onnxruntime


def open_session(model_path: str | Path, device: str = "auto", threads: int | None = None) -> ModelSession:
    """Session for ``model_path``; ``device`` is auto, cpu or cuda.

    ``auto`` uses CUDA when this onnxruntime has the CUDA provider and a session starts
    on it, else the CPU. ``cuda`` fails with a clear message when it cannot run.
    """
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or max(1, os.cpu_count() or 1)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    cuda_available = "CUDAExecutionProvider" in ort.get_available_providers()
    if device == "cuda" and not cuda_available:
        raise RuntimeUnavailable(
            "CUDA was asked for but this onnxruntime has no CUDA provider: install onnxruntime-gpu "
            "(pip uninstall onnxruntime; pip install onnxruntime-gpu) or choose device cpu/auto"
        )
    if device in ("auto", "cuda") and cuda_available:
        if hasattr(ort, "preload_dlls"):
            try:
                ort.preload_dlls()
            except Exception:  # CUDA libraries missing: the provider check below decides
                pass
        session = ort.InferenceSession(str(model_path), options,
                                       providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
        if session.get_providers()[0] == "CUDAExecutionProvider":
            return ModelSession(session, "CUDAExecutionProvider")
        if device == "cuda":
            raise RuntimeUnavailable("onnxruntime could not start CUDA (driver or CUDA/cuDNN libraries "
                                     "missing); choose device cpu or auto")
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    return ModelSession(session, "CPUExecutionProvider")
