"""The CPU's bfloat16 path: OpenVINO runs a model's float32 ONNX graph in bfloat16 where the CPU
computes bfloat16 itself (AMX or AVX-512 BF16), in place of an onnxruntime session.

onnxruntime's CPU provider has no bfloat16 convolutions; OpenVINO's CPU plugin (oneDNN) has, and
with AMX they run the road model alone 2.3-2.5 times as fast as onnxruntime in float32 (README, Speed
and memory). Each input shape is compiled once with static shapes: OpenVINO ran the road model's
ConvLSTM loop with dynamic shapes at a third of that speed.
"""

from __future__ import annotations

import functools
import logging
import threading
from pathlib import Path

import numpy as np

from .definitions import OPENVINO_PIN
from .model_card import ModelCardError

log = logging.getLogger("timeseg")


# Every OpenVINO call of the process, one at a time: with calls from several threads at once (the engine's two
# runs, a batch's worker threads) a compile and the runs beside it now and then never returned (qgis_process,
# 2026-12-06). One run at a time takes all the threads given, as one stream.
_ONE_AT_A_TIME = threading.Lock()


class OpenVinoUnavailable(RuntimeError):
    """OpenVINO is not installed, or this CPU does not compute bfloat16; the message says what to do."""


def import_openvino():
    try:
        import openvino
    except ImportError:
        from .install import install_command

        raise OpenVinoUnavailable("the bf16 precision runs through OpenVINO, which is not installed: "
                                  f"{install_command([OPENVINO_PIN])}, or choose another precision") from None
    return openvino


@functools.lru_cache(maxsize=1)
def native_bf16() -> bool:
    """OpenVINO is installed and this CPU computes bfloat16 itself (AMX or AVX-512 BF16)."""
    try:
        openvino = import_openvino()
        with _ONE_AT_A_TIME:
            return "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:  # not installed, or a CPU plugin that cannot start: onnxruntime's paths remain
        return False


class OpenVinoSession:
    """Runs a float32 ONNX model in bfloat16 on the CPU, called as an onnxruntime session is
    (``run(output_names, {input_name: array})``), from any thread: the calls run one at a time,
    each on ``threads`` cores."""

    def __init__(self, path: Path, threads: int) -> None:
        openvino = import_openvino()
        if not native_bf16():
            raise OpenVinoUnavailable("this CPU does not compute bfloat16 (it has neither AMX nor AVX-512 BF16): "
                                      "choose precision auto, int8 or fp32")
        with _ONE_AT_A_TIME:
            self._core = openvino.Core()
            try:
                self._model = self._core.read_model(str(path))
            except Exception as error:  # an operator or loop OpenVINO does not read
                log.debug("OpenVINO refused %s: %s", path, error)
                raise ModelCardError(f"OpenVINO cannot read {path.name}: choose precision fp32 or int8 "
                                     "(onnxruntime), or re-export the model with 'timeseg export'") from None
            self._input_name = self._model.inputs[0].get_any_name()  # the models here have one input
        self._config = {"INFERENCE_PRECISION_HINT": "bf16", "NUM_STREAMS": 1, "INFERENCE_NUM_THREADS": max(1, threads)}
        self._requests: dict[tuple[int, ...], object] = {}  # input shape -> infer request of its compiled model

    def prepare(self, shape: tuple[int, ...]) -> None:
        """Compile the model for inputs of ``shape`` now rather than at the first run of that shape (the road
        model: 0.2-0.3 s, as long as two or three runs)."""
        with _ONE_AT_A_TIME:
            self._request(tuple(shape))

    def run(self, output_names: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The outputs ``output_names`` for one input array (the models here have one)."""
        (_, array), = feed.items()
        with _ONE_AT_A_TIME:
            # the input read in place, the outputs copied out of OpenVINO's buffers before the next run
            results = self._request(array.shape).infer({self._input_name: np.ascontiguousarray(array)},
                                                       share_inputs=True, share_outputs=True)
            return [np.array(results[output]) for output in output_names]

    def _request(self, shape: tuple[int, ...]):
        """The infer request of the model compiled for ``shape`` (compiled at the first call; under the lock)."""
        if shape not in self._requests:
            model = self._model.clone()
            model.reshape({self._input_name: list(shape)})
            compiled = self._core.compile_model(model, "CPU", self._config)
            self._requests[shape] = compiled.create_infer_request()
        return self._requests[shape]
