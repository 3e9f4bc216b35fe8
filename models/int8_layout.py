"""The road network with channel counts that onnxruntime's fast int8 convolution takes, for the int8 variant.

MLAS (onnxruntime 1.32, x86) runs an int8 convolution on its fast kernel only when the input channels
are a multiple of ``INPUT_CHANNEL_MULTIPLE`` and the output channels at least ``MIN_OUTPUT_CHANNELS``;
other convolutions take a path several times slower per multiply (measured on the shipped road model,
one thread, 5 dates of 256 px: the date gate's 8 -> 1 convolution 8.7 ms against 6.9 ms for a 16 -> 16
one with 18 times its multiplies; the first ConvLSTM layer's 13 -> 32 gate convolution 16.9 ms against
9.7 ms padded to 16 inputs). ``int8_layout`` pads those convolutions with zero weights: every added
input is multiplied by 0 and every added output is never read, so the network computes exactly what it
did. The images get one zero band (3 -> 4, ``padded_channels``) in the exported graph, once per tile.

onnxruntime has no int8 CPU kernel for transposed convolutions: the U-Net's up-sampling ran in float32,
in NCHW, between dequantise, quantise and layout transposes (about 30 ms of a 168 ms tile). ``ShuffleUp``
computes the same up-sampling (to float rounding: its products are summed in another order) as a 1x1
convolution and a pixel shuffle written in channels-last order, which onnxruntime runs on the int8 kernel
and as one uint8 transpose, its NHWC layout kept throughout.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from .networks import FcnConvLstm
from .networks.fcn_convlstm import DateGate

INPUT_CHANNEL_MULTIPLE = 4
MIN_OUTPUT_CHANNELS = 16


def padded_channels(channels: int) -> int:
    """``channels`` rounded up to ``INPUT_CHANNEL_MULTIPLE``."""
    return channels + -channels % INPUT_CHANNEL_MULTIPLE


def padded_conv(conv: nn.Conv2d, inputs_at: Sequence[int], in_channels: int, out_channels: int) -> nn.Conv2d:
    """``conv`` with ``in_channels`` inputs and ``out_channels`` outputs: its input channel ``k`` read at
    ``inputs_at[k]``, its outputs first; every other weight and bias is 0."""
    padded = nn.Conv2d(in_channels, out_channels, conv.kernel_size, conv.stride, conv.padding,
                       bias=conv.bias is not None)
    with torch.no_grad():
        padded.weight.zero_()
        padded.weight[: conv.out_channels, list(inputs_at)] = conv.weight
        if conv.bias is not None:
            padded.bias.zero_()
            padded.bias[: conv.out_channels] = conv.bias
    return padded


class WideDateGate(nn.Module):
    """A ``DateGate`` whose convolutions have ``MIN_OUTPUT_CHANNELS`` outputs (the added ones all 0), its
    share read from the first: ``[N, C', H, W]`` -> ``[N, 1, H, W]``."""

    def __init__(self, gate: DateGate, inputs_at: Sequence[int], in_channels: int) -> None:
        super().__init__()
        first, last = gate.layers[0], gate.layers[2]
        width = max(first.out_channels, MIN_OUTPUT_CHANNELS)
        self.layers = nn.Sequential(
            padded_conv(first, inputs_at, in_channels, width), nn.ReLU(),
            padded_conv(last, range(first.out_channels), width, max(last.out_channels, MIN_OUTPUT_CHANNELS)))

    def forward(self, date: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.layers(date)[:, :1])


class ShuffleUp(nn.Module):
    """A transposed convolution of kernel 2 and stride 2 (the U-Net's up-sampling), computed as a 1x1
    convolution to its four output phases and a pixel shuffle: ``[N, C, H, W]`` -> ``[N, C', 2H, 2W]``.

    ``out[:, c, 2i + a, 2j + b] = sum_k x[:, k, i, j] * W[k, c, a, b] + bias[c]``, the 1x1 convolution's
    output channel ``(a, b, c)``. The shuffle is written on channels-last tensors (the permutes around
    it cancel the ones onnxruntime puts around its NHWC int8 convolutions), so that it is a single copy
    of runs of ``2 C'`` values.
    """

    def __init__(self, up: nn.ConvTranspose2d) -> None:
        super().__init__()
        if up.kernel_size != (2, 2) or up.stride != (2, 2) or up.padding != (0, 0) or up.bias is None:
            raise ValueError("ShuffleUp computes a transposed convolution of kernel 2, stride 2, no padding, a bias")
        self.out_channels = up.out_channels
        self.phases = nn.Conv2d(up.in_channels, 4 * up.out_channels, 1)
        with torch.no_grad():  # up.weight: [C, C', a, b] -> [(a, b, C'), C, 1, 1]
            self.phases.weight.copy_(up.weight.permute(2, 3, 1, 0).reshape(4 * up.out_channels, up.in_channels, 1, 1))
            self.phases.bias.copy_(up.bias.repeat(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        phases = self.phases(x).permute(0, 2, 3, 1)  # [N, H, W, (a, b, C')]
        batch, height, width = x.shape[0], x.shape[2], x.shape[3]
        # [N, H, W, a, (b, C')] -> [N, H, a, W, (b, C')], that is [N, 2H, 2W, C'] (row 2i + a, column 2j + b)
        rows = phases.reshape(batch, height, width, 2, 2 * self.out_channels).permute(0, 1, 3, 2, 4)
        return rows.reshape(batch, 2 * height, 2 * width, self.out_channels).permute(0, 3, 1, 2)


def int8_layout(network: FcnConvLstm) -> FcnConvLstm:
    """A copy of ``network`` that computes the same, for images padded to ``padded_channels(C)`` bands
    with zeros, with every convolution the int8 variant runs in a shape MLAS's fast kernel takes.

    Its steps are ``[PMap (K), context (E'), share]`` with E' >= E: the added context maps are
    sigmoid(0) = 0.5 everywhere and read with weight 0, so that the first ConvLSTM layer's input
    (K + E' steps and its hidden state) is a multiple of ``INPUT_CHANNEL_MULTIPLE``; so is the date
    gate's (the padded bands and the K + E' steps) when the hidden width is too (the shipped model's 8).
    Paper A's network (no context maps) keeps its K steps. The U-Net up-samples with ``ShuffleUp``."""
    padded = copy.deepcopy(network)
    for step in padded.fcn.up:
        step.up = ShuffleUp(step.up)
    bands, step_channels = network.fcn.down[0][0].in_channels, network.step_channels
    classes, hidden = network.head.out_channels, network.lstms[0].cell.hidden_channels
    first = padded.fcn.down[0][0]
    padded.fcn.down[0][0] = padded_conv(first, range(bands), padded_channels(bands), first.out_channels)
    if network.context is not None:  # paper A's network (no context) has no channels to add here
        step_channels = padded_channels(network.step_channels + hidden) - hidden
        context = network.context
        padded.context = padded_conv(context, range(context.in_channels), context.in_channels,
                                     step_channels - classes)
        padded.step_channels = step_channels
        cell = padded.lstms[0].cell
        steps_at = [*range(network.step_channels), *range(step_channels, step_channels + hidden)]
        cell.gates = padded_conv(cell.gates, steps_at, step_channels + hidden, cell.gates.out_channels)
    if network.gate is not None:  # it reads the date's padded bands and its steps
        image_channels = padded_channels(bands)
        gate_at = [*range(bands), *range(image_channels, image_channels + network.step_channels)]
        padded.gate = WideDateGate(network.gate, gate_at, image_channels + step_channels)
    return padded
