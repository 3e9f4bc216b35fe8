"""An int8 variant of an exported FCN + ConvLSTM model, for the CPU (``timeseg export --precision int8``).

The scripted whole-model graph cannot be quantised (onnxruntime's shape inference breaks the
U-Net's skip Sequence), so the network is exported in two parts: the per-date FCN
(``date_steps``, traced: plain Conv/Relu/MaxPool and the up-sampling's reshapes), quantised whole, its
PMap, context and date-gate convolutions included, statically with onnxruntime's tools (QDQ, per-channel
int8 weights, uint8 activations calibrated on real patches), and the temporal stage
(``logits_from_steps``, scripted: it takes any number of dates).
onnxruntime's tools do not enter the temporal stage's Loop, so its gate convolutions carry their
own quantise/dequantise pairs (``Int8GateConv``), which onnxruntime fuses into ``QLinearConv``
inside the Loop; the cell's arithmetic (sigmoids, tanh, the cell state) stays float32.
``onnx.compose`` joins the two parts into one file with the usual ``images`` input and
``probabilities`` output, so the engine runs it like any TimeSeg model. Both parts are exported from
``int8_layout``'s copy of the network, which computes the same with its convolutions padded with zero
weights to the channel counts of onnxruntime's fast int8 kernel (the images get a zero band in the graph)
and its transposed convolutions, which have no int8 CPU kernel, as 1x1 convolutions and pixel shuffles.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from ..core.harmonisation import Harmonisation, harmonised
from ..core.model_card import ModelCard
from ..core.normalisation import Normalisation
from ..core.runtime import quiet_options
from .int8_layout import int8_layout, padded_channels
from .networks import FcnConvLstm
from .networks.unet import probabilities_from_logits

CALIBRATION_PATCHES = 48
PATCH_PX = 256
MIN_EQUAL_CLASS_PIXELS = 0.99  # of the float32 model's, on patches not used for calibration


class QuantisationError(RuntimeError):
    """The int8 variant would differ too much from the float32 model; nothing was written."""


GATE_RANGE_QUANTILE = 0.9999  # of the gate convolutions' outputs on the calibration patches
HIDDEN_SCALE = 1 / 127  # uint8 around 128: the gates read probabilities and hidden states, all in [-1, 1]


class Int8GateConv(nn.Module):
    """A ConvLSTM gate convolution as onnxruntime's ``QLinearConv`` will compute it, written as
    quantise/dequantise pairs that export to ONNX QDQ nodes: ``[B, C + hidden, H, W]`` (values in
    [-1, 1]) -> ``[B, 4 * hidden, H, W]`` gate pre-activations, clipped to ``output_range``."""

    def __init__(self, conv: nn.Conv2d, output_range: tuple[float, float]) -> None:
        super().__init__()
        self.conv = conv
        self.input_scale = HIDDEN_SCALE
        weight = conv.weight.detach()
        self.register_buffer("weight_scale", (weight.abs().amax(dim=(1, 2, 3)) / 127).clamp_min(1e-8).float())
        self.register_buffer("weight_zero", torch.zeros(weight.shape[0], dtype=torch.int32))
        low, high = min(output_range[0], 0.0), max(output_range[1], 0.0)
        self.output_scale = max(high - low, 1e-6) / 255
        self.output_zero = int(round(-low / self.output_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.fake_quantize_per_tensor_affine(x, self.input_scale, 128, 0, 255)
        weight = torch.fake_quantize_per_channel_affine(self.conv.weight, self.weight_scale, self.weight_zero,
                                                        0, -128, 127)
        out = nn.functional.conv2d(x, weight, self.conv.bias, padding=self.conv.padding)
        return torch.fake_quantize_per_tensor_affine(out, self.output_scale, self.output_zero, 0, 255)


def gate_ranges(network: FcnConvLstm, patches: Sequence[np.ndarray]) -> list[tuple[float, float]]:
    """Per ConvLSTM layer, the (low, high) ``GATE_RANGE_QUANTILE`` range of its gate convolution's
    outputs over ``patches`` (normalised ``[1, T, C, H, W]``)."""
    outputs: list[list[torch.Tensor]] = [[] for _ in network.lstms]
    hooks = [lstm.cell.gates.register_forward_hook(lambda _m, _i, out, k=k: outputs[k].append(out.flatten()))
             for k, lstm in enumerate(network.lstms)]
    try:
        with torch.no_grad():
            for patch in patches:
                network(torch.from_numpy(patch))
    finally:
        for hook in hooks:
            hook.remove()
    ranges = []
    for values in outputs:
        sample = torch.cat(values)[:: max(1, sum(v.numel() for v in values) // 4_000_000)]
        ranges.append((float(sample.quantile(1 - GATE_RANGE_QUANTILE)), float(sample.quantile(GATE_RANGE_QUANTILE))))
    return ranges


def with_int8_gates(network: FcnConvLstm, ranges: Sequence[tuple[float, float]]) -> FcnConvLstm:
    """A copy of ``network`` whose ConvLSTM gate convolutions are ``Int8GateConv``."""
    copied = copy.deepcopy(network)
    for lstm, output_range in zip(copied.lstms, ranges):
        lstm.cell.gates = Int8GateConv(lstm.cell.gates, output_range)
    return copied


class _DateSteps(nn.Module):
    def __init__(self, network: FcnConvLstm, band_padding: int = 0) -> None:
        super().__init__()
        self.network = network
        self.band_padding = band_padding  # zero bands added to the images (``int8_layout``)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, T, C, H, W]`` -> ``[B, T, K + E (+ 1), H, W]``."""
        return self.network.date_steps(nn.functional.pad(images, (0, 0, 0, 0, 0, self.band_padding)))


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
    ``[C, H, W]`` arrays, each harmonised first when the card says so) repeated: the FCN sees each date
    alone, so a repeated date calibrates it."""
    normalise = Normalisation.from_card(card).apply
    harmonisation = Harmonisation.from_card(card.harmonisation)
    images = [harmonised(image[None], harmonisation)[0] for image in images]
    for index in range(count):
        image = images[index % len(images)]
        row = rng.integers(0, max(1, image.shape[1] - PATCH_PX))
        col = rng.integers(0, max(1, image.shape[2] - PATCH_PX))
        patch = image[:, row:row + PATCH_PX, col:col + PATCH_PX]
        yield normalise(np.repeat(patch[None], dates, axis=0))[None]


def export_temporal(network: FcnConvLstm, steps_example: torch.Tensor, path: Path, opset: int) -> None:
    """The temporal stage alone as ONNX, scripted so that it takes any number of dates: input
    ``steps`` ``[B, T, K + E (+ 1), H, W]`` (``steps_example``, as ``date_steps`` gives them) ->
    ``probabilities`` ``[B, K, H, W]``."""
    axes = {0: "batch", 1: "time", 3: "height", 4: "width"}
    torch.onnx.export(torch.jit.script(_Temporal(network)), (steps_example,), str(path), dynamo=False,
                      opset_version=opset, input_names=["steps"], output_names=["probabilities"],
                      dynamic_axes={"steps": axes, "probabilities": {0: "batch", 2: "height", 3: "width"}})


def int8_model(network: FcnConvLstm, card: ModelCard, images: Sequence[np.ndarray], opset: int,
               seed: int = 0) -> tuple[onnx.ModelProto, float]:
    """The joined int8 model (FCN and gate convolutions), and its share of class pixels equal to the
    float32 network's on patches not used for calibration (raises below ``MIN_EQUAL_CLASS_PIXELS``)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    rng = np.random.default_rng(seed)
    bands, dates = len(card.bands), max(card.sequence_length, 1)
    axes = {0: "batch", 1: "time", 3: "height", 4: "width"}
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        steps_path, int8_path, temporal_path = (Path(folder) / n for n in ("steps.onnx", "int8.onnx", "t.onnx"))
        layout = int8_layout(network)  # the same network, in the shapes of onnxruntime's fast int8 kernels
        date_steps = _DateSteps(layout, padded_channels(bands) - bands)
        example = torch.rand(1, dates, bands, 64, 64)
        torch.onnx.export(date_steps, (example,), str(steps_path), dynamo=False, opset_version=opset,
                          input_names=["images"], output_names=["steps"],
                          dynamic_axes={"images": axes, "steps": axes})
        ranges = gate_ranges(network, list(calibration_patches(images, card, CALIBRATION_PATCHES // 4, dates, rng)))
        with torch.no_grad():
            steps_example = date_steps(example)
        export_temporal(with_int8_gates(layout, ranges), steps_example, temporal_path, opset)
        patches = calibration_patches(images, card, CALIBRATION_PATCHES, dates, rng)

        class Reader(CalibrationDataReader):
            def get_next(self) -> dict | None:
                patch = next(patches, None)
                return None if patch is None else {"images": patch}

        with _quantiser_advice_dropped():
            quantize_static(str(steps_path), str(int8_path), Reader(), quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        # the FCN's names get a prefix so that they cannot clash with the temporal stage's (whose Loop body
        # refers to its outer names, which add_prefix would not follow)
        fcn = onnx.compose.add_prefix(onnx.load(str(int8_path)), "fcn/", rename_inputs=False, rename_outputs=False)
        joined = onnx.compose.merge_models(fcn, onnx.load(str(temporal_path)), io_map=[("steps", "steps")])
        shapes_read_quantised(joined.graph)
    equal = _equal_class_pixels(network, joined, card, images, dates, rng)
    if equal < MIN_EQUAL_CLASS_PIXELS:
        raise QuantisationError(f"the int8 variant agrees with the float32 model on {equal:.2%} of the class "
                                f"pixels (< {MIN_EQUAL_CLASS_PIXELS:.0%}); nothing was written")
    return joined, equal


@contextlib.contextmanager
def _quantiser_advice_dropped() -> Iterator[None]:
    """onnxruntime's quantiser advises its pre-processing on the root logger, which installs a stderr
    handler when there is none: two lines the analyst who trains a model cannot act on. Dropped here;
    every other record passes."""
    root = logging.getLogger()
    handler = logging.NullHandler()  # a handler, so that logging.warning installs none of its own

    def not_advice(record: logging.LogRecord) -> bool:
        return "pre-process" not in record.getMessage()

    root.addHandler(handler)
    root.addFilter(not_advice)
    try:
        yield
    finally:
        root.removeFilter(not_advice)
        root.removeHandler(handler)


def shapes_read_quantised(graph: onnx.GraphProto) -> None:
    """Every ``Shape`` that reads a dequantised tensor reads its quantised original instead (same shape), in
    place. onnxruntime keeps a ``DequantizeLinear`` that a ``Shape`` reads, and runs it: a float copy of the
    whole tensor for its size alone (the U-Net's crop and the up-sampling's reshapes: 7 ms of a tile)."""
    dequantised_from = {node.output[0]: node.input[0] for node in graph.node if node.op_type == "DequantizeLinear"}
    for node in graph.node:
        if node.op_type == "Shape" and node.input[0] in dequantised_from:
            node.input[0] = dequantised_from[node.input[0]]


def _equal_class_pixels(network: FcnConvLstm, model: onnx.ModelProto, card: ModelCard,
                        images: Sequence[np.ndarray], dates: int, rng: np.random.Generator) -> float:
    import onnxruntime

    session = onnxruntime.InferenceSession(model.SerializeToString(), quiet_options(onnxruntime),
                                           providers=["CPUExecutionProvider"])
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
