"""The int8 variant's network in the shapes of onnxruntime's fast int8 convolution (``models.int8_layout``)."""

from __future__ import annotations

import onnx
import pytest
import torch

from timeseg.core.model_card import SHIPPED_ROAD_MODEL
from timeseg.models.int8_layout import (
    INPUT_CHANNEL_MULTIPLE,
    MIN_OUTPUT_CHANNELS,
    ShuffleUp,
    int8_layout,
    padded_channels,
)
from timeseg.models.networks import FcnConvLstm


def test_the_shuffled_up_sampling_is_the_transposed_convolution():
    torch.manual_seed(1)
    up = torch.nn.ConvTranspose2d(6, 3, 2, stride=2)
    x = torch.randn(2, 6, 5, 7)  # odd sizes, so that rows and columns cannot be swapped unseen
    with torch.no_grad():
        expected, got = up(x), ShuffleUp(up)(x)
    assert got.shape == expected.shape == (2, 3, 10, 14)
    assert (got - expected).abs().max() < 1e-5 and expected.std() > 0.1
    with pytest.raises(ValueError, match="kernel 2, stride 2"):
        ShuffleUp(torch.nn.ConvTranspose2d(6, 3, 3, stride=2))


@pytest.mark.parametrize(("context", "hidden", "gate", "batch_norm"),
                         [(4, 8, True, False), (4, 4, False, False), (0, 4, True, False), (2, 5, True, True)])
def test_the_padded_network_computes_what_the_network_computes(context, hidden, gate, batch_norm):
    torch.manual_seed(0)
    network = FcnConvLstm(3, 1, depth=2, base_channels=8, hidden_channels=hidden, context_channels=context,
                          batch_norm=batch_norm, date_gate=gate)
    for parameter in network.parameters():  # every weight away from 0, so that a misplaced one shows
        parameter.data.uniform_(-0.5, 0.5)
    network.eval()
    padded = int8_layout(network).eval()
    images = torch.rand(2, 3, 3, 40, 24)
    padded_images = torch.nn.functional.pad(images, (0, 0, 0, 0, 0, padded_channels(3) - 3))
    with torch.no_grad():
        expected, got = network(images), padded(padded_images)
        steps, padded_steps = network.date_steps(images), padded.date_steps(padded_images)
    assert got.shape == expected.shape == (2, 1, 40, 24)
    assert (got - expected).abs().max() < 1e-5
    assert expected.std() > 1e-3 and steps.std() > 0.05  # maps that vary, not constants both could agree on
    # the PMap and the real context maps are where they were (to float rounding: the up-sampling sums its
    # products in another order); the share is the last step
    channels = network.step_channels
    assert (padded_steps[:, :, :channels] - steps[:, :, :channels]).abs().max() < 1e-5
    if gate:
        assert (padded_steps[:, :, -1] - steps[:, :, -1]).abs().max() < 1e-6
    assert padded.fcn.down[0][0].in_channels == 4
    if context:
        assert (padded.lstms[0].cell.gates.in_channels % INPUT_CHANNEL_MULTIPLE) == 0
    if gate:  # its first convolution reads the padded bands and the steps (aligned when the steps are)
        first, last = padded.gate.layers[0], padded.gate.layers[2]
        assert first.in_channels == 4 + padded.step_channels and last.in_channels % INPUT_CHANNEL_MULTIPLE == 0
        assert first.out_channels >= MIN_OUTPUT_CHANNELS and last.out_channels >= MIN_OUTPUT_CHANNELS


def test_the_shipped_int8_variant_has_the_layout():
    """Every 3x3 convolution of the shipped int8 file (FCN, date gate and the ConvLSTM gates in the Loop)
    reads a multiple of 4 channels and writes at least 16, and it up-samples without a (float32)
    transposed convolution: it was exported with ``int8_layout``; no ``Shape`` reads a dequantised copy."""
    model = onnx.load(str(SHIPPED_ROAD_MODEL.with_name("roads.int8.onnx")))

    def initialisers(graph: onnx.GraphProto):  # and constants, in the graph and its subgraphs (the Loop's)
        yield from graph.initializer
        for node in graph.node:
            if node.op_type == "Constant":
                yield node.attribute[0].t
            for attribute in node.attribute:
                if attribute.type == onnx.AttributeProto.GRAPH:
                    yield from initialisers(attribute.g)

    kernels = [tuple(w.dims) for w in initialisers(model.graph) if len(w.dims) == 4 and tuple(w.dims[2:]) == (3, 3)]
    assert len(kernels) >= 15  # the U-Net's, the date gate's two and the two ConvLSTM gates'
    assert all(inputs % INPUT_CHANNEL_MULTIPLE == 0 and outputs >= MIN_OUTPUT_CHANNELS
               for outputs, inputs, _, _ in kernels), kernels
    nodes = model.graph.node
    assert not [node.name for node in nodes if node.op_type == "ConvTranspose"]
    assert [node.name for node in nodes if node.op_type == "Transpose"]  # the up-sampling's pixel shuffles
    dequantised = {node.output[0] for node in nodes if node.op_type == "DequantizeLinear"}
    assert not [node.name for node in nodes if node.op_type == "Shape" and node.input[0] in dequantised]
