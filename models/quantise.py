"""An int8 variant of an exported FCN + ConvLSTM model, for the CPU (``timeseg export --precision int8``).

The scripted whole-model graph cannot be quantised (onnxruntime's shape inference breaks the
U-Net's skip Sequence), so the network is exported in two parts: the per-date FCN
(``date_steps``, traced: plain Conv/ConvTranspose/Relu/MaxPool), quantised statically with
onnxruntime's tools (QDQ, per-channel int8 weights, uint8 activations calibrated on real
patches), and the temporal stage (``logits_from_steps``, scripted: it takes any number of dates)
left in float32. ``onnx.compose`` joins them into one file with the usual ``images`` input and
``probabilities`` output, so the engine runs it like any TimeSeg model.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from ..core.model_card import ModelCard
from ..core.normalisation import Normalisation
from .networks import FcnConvLstm
from .networks.unet import probabilities_from_logits

CALIBRATION_PATCHES = 48
PATCH_PX = 256
MIN_EQUAL_CLASS_PIXELS = 0.99  # of the float32 model's, on patches not used for calibration


class QuantisationError(RuntimeError):
    """The int8 variant would differ too much from the float32 model; nothing was written."""


class _DateSteps(nn.Module):
    def __init__(self, network: FcnConvLstm) -> None:
        super().__init__()
        self.network = network

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, T, C, H, W]`` -> ``[B, T, K + E, H, W]``."""
        return self.network.date_steps(images)


class _Temporal(nn.Module):
    def __init__(self, network: FcnConvLstm) -> None:
        super().__init__()
        self.network = network

    def forward(self, steps: torch.Tensor) -> torch.Tensor:
        """``[B, T, K + E, H, W]`` -> ``[B, K, H, W]`` probabilities."""
        return probabilities_from_logits(self.network.logits_from_steps(steps))


def calibration_patches(images: Sequence[np.ndarray], card: ModelCard, count: int, dates: int,
                        rng: np.random.Generator) -> Iterator[np.ndarray]:
    """``count`` normalised ``[1, dates, C, 256, 256]`` patches, each one date of ``images`` (raw
    ``[C, H, W]`` arrays) repeated: the FCN sees each date alone, so a repeated date calibrates it."""
    normalise = Normalisation.from_card(card).apply
    for index in range(count):
        image = images[index % len(images)]
        row = rng.integers(0, max(1, image.shape[1] - PATCH_PX))
        col = rng.integers(0, max(1, image.shape[2] - PATCH_PX))
        patch = image[:, row:row + PATCH_PX, col:col + PATCH_PX]
        yield normalise(np.repeat(patch[None], dates, axis=0))[None]


def int8_model(network: FcnConvLstm, card: ModelCard, images: Sequence[np.ndarray], opset: int,
               seed: int = 0) -> tuple[onnx.ModelProto, float]:
    """The joined int8-FCN + float32-temporal model, and its share of class pixels equal to the
    float32 network's on patches not used for calibration (raises below ``MIN_EQUAL_CLASS_PIXELS``)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    rng = np.random.default_rng(seed)
    bands, dates = len(card.bands), max(card.sequence_length, 1)
    axes = {0: "batch", 1: "time", 3: "height", 4: "width"}
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        steps_path, int8_path, temporal_path = (Path(folder) / n for n in ("steps.onnx", "int8.onnx", "t.onnx"))
        example = torch.rand(1, dates, bands, 64, 64)
        torch.onnx.export(_DateSteps(network), (example,), str(steps_path), dynamo=False, opset_version=opset,
                          input_names=["images"], output_names=["steps"],
                          dynamic_axes={"images": axes, "steps": axes})
        with torch.no_grad():
            steps_example = network.date_steps(example)
        torch.onnx.export(torch.jit.script(_Temporal(network)), (steps_example,), str(temporal_path),
                          dynamo=False, opset_version=opset, input_names=["steps"],
                          output_names=["probabilities"],
                          dynamic_axes={"steps": axes, "probabilities": {0: "batch", 2: "height", 3: "width"}})
        patches = calibration_patches(images, card, CALIBRATION_PATCHES, dates, rng)

        class Reader(CalibrationDataReader):
            def get_next(self) -> dict | None:
                patch = next(patches, None)
                return None if patch is None else {"images": patch}

        quantize_static(str(steps_path), str(int8_path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        # the FCN's names get a prefix so that they cannot clash with the temporal stage's (whose Loop body
        # refers to its outer names, which add_prefix would not follow)
        fcn = onnx.compose.add_prefix(onnx.load(str(int8_path)), "fcn/", rename_inputs=False, rename_outputs=False)
        joined = onnx.compose.merge_models(fcn, onnx.load(str(temporal_path)), io_map=[("steps", "steps")])
    equal = _equal_class_pixels(network, joined, card, images, dates, rng)
    if equal < MIN_EQUAL_CLASS_PIXELS:
        raise QuantisationError(f"the int8 variant agrees with the float32 model on {equal:.2%} of the class "
                                f"pixels (< {MIN_EQUAL_CLASS_PIXELS:.0%}); nothing was written")
    return joined, equal


def _equal_class_pixels(network: FcnConvLstm, model: onnx.ModelProto, card: ModelCard,
                        images: Sequence[np.ndarray], dates: int, rng: np.random.Generator) -> float:
    import onnxruntime

    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    equal, total = 0, 0
    for patch in calibration_patches(images, card, 4, dates, rng):
        with torch.no_grad():
            expected = network(torch.from_numpy(patch)).numpy()
        actual = session.run(["probabilities"], {"images": patch})[0]
        if card.is_binary:
            same = (expected >= card.threshold) == (actual >= card.threshold)
        else:
            same = expected.argmax(axis=1) == actual.argmax(axis=1)
        equal, total = equal + int(same.sum()), total + same.size
    return equal / total
