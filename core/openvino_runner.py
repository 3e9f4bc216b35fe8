"""The CPU's bfloat16 path: OpenVINO runs a model's float32 ONNX graph in bfloat16 where the CPU
computes bfloat16 itself (AMX or AVX-512 BF16), in place of an onnxruntime session.

onnxruntime's CPU provider has no bfloat16 convolutions; OpenVINO's CPU plugin (oneDNN) has, and
with AMX they run the road model about 2.5 times as fast as onnxruntime in float32 (README, Speed
and memory). Each input shape is compiled once with static shapes: OpenVINO ran the road model's
ConvLSTM loop with dynamic shapes at a third of that speed.
"""

from __future__ import annotations

import functools
import logging
import threading
from pathlib import Path

import numpy as np

from .model_card import ModelCardError

log = logging.getLogger("timeseg")
OPENVINO_PIN = "openvino==2026.4.1"


class OpenVinoUnavailable(RuntimeError):
    """OpenVINO is not installed, or this CPU does not compute bfloat16; the message says what to do."""


def import_openvino():
    try:
        import openvino
    except ImportError:
        raise OpenVinoUnavailable(f"the bf16 precision runs through OpenVINO, which is not installed: "
                                  f"python -m pip install {OPENVINO_PIN}, or choose another precision") from None
    return openvino


@functools.lru_cache(maxsize=1)
def native_bf16() -> bool:
    """OpenVINO is installed and this CPU computes bfloat16 itself (AMX or AVX-512 BF16)."""
    try:
        return "BF16" in import_openvino().Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:  # not installed, or a CPU plugin that cannot start: onnxruntime's paths remain
        return False


class OpenVinoSession:
    """Runs a float32 ONNX model in bfloat16 on the CPU, called as an onnxruntime session is
    (``run(output_names, {input_name: array})``) from up to ``streams`` threads at once, each
    stream on ``threads // streams`` cores."""

    def __init__(self, path: Path, threads: int, streams: int) -> None:
        openvino = import_openvino()
        if not native_bf16():
            raise OpenVinoUnavailable("this CPU does not compute bfloat16 (it has neither AMX nor AVX-512 BF16): "
                                      "choose precision auto, int8 or fp32")
        self._core = openvino.Core()
        try:
            self._model = self._core.read_model(str(path))
        except Exception as error:  # an operator or loop OpenVINO does not read
            log.debug("OpenVINO refused %s: %s", path, error)
            raise ModelCardError(f"OpenVINO cannot read {path.name}: choose precision fp32 or int8 (onnxruntime), "
                                 "or re-export the model with 'timeseg export'") from None
        self._config = {"INFERENCE_PRECISION_HINT": "bf16", "NUM_STREAMS": max(1, streams),
                        "INFERENCE_NUM_THREADS": max(1, threads)}
        self._compiled: dict[tuple[int, ...], object] = {}  # input shape -> compiled model
        self._compiling = threading.Lock()
        self._requests = threading.local()  # per thread: input shape -> infer request

    def run(self, output_names: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The outputs ``output_names`` for one input array (the models here have one)."""
        (name, array), = feed.items()
        request = self._request(name, array.shape)
        results = request.infer({name: array})
        return [np.array(results[output]) for output in output_names]

    def _request(self, name: str, shape: tuple[int, ...]):
        requests = self._requests.__dict__.setdefault("by_shape", {})
        if shape not in requests:
            with self._compiling:
                if shape not in self._compiled:
                    model = self._model.clone()
                    model.reshape({name: list(shape)})
                    self._compiled[shape] = self._core.compile_model(model, "CPU", self._config)
            requests[shape] = self._compiled[shape].create_infer_request()
        return requests[shape]

