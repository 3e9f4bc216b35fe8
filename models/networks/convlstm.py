"""Convolutional LSTM (Shi et al. 2015): an LSTM whose gates are convolutions."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn


class ConvLstmGates(NamedTuple):
    """Gate activations of one step, each ``[B, hidden, H, W]`` (paper B, eq. 1-2)."""

    input: torch.Tensor  # i_t, sigmoid
    forget: torch.Tensor  # f_t, sigmoid
    modulation: torch.Tensor  # j_t (often called g_t), tanh
    output: torch.Tensor  # o_t, sigmoid


class ConvLstmCell(nn.Module):
    """One ConvLSTM step ``(x_t, h_{t-1}, c_{t-1}) -> (h_t, c_t)``.

    All four gates come from one convolution over ``[x_t, h_{t-1}]``; the forget
    gate's bias starts at 1 as in paper B (section 3.1), so the cell remembers at first.
    """

    __constants__ = ["hidden_channels"]  # for TorchScript: the exported gates are cut at fixed channels

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.hidden_channels = hidden_channels
        self.gates = nn.Conv2d(
            in_channels + hidden_channels, 4 * hidden_channels, kernel_size, padding=kernel_size // 2
        )
        with torch.no_grad():
            self.gates.bias.zero_()
            self.gates.bias[hidden_channels : 2 * hidden_channels].fill_(1.0)

    def initial_state(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero ``(h, c)``, each ``[B, hidden, H, W]``, for an input step ``x`` ``[B, C, H, W]``."""
        zeros = x.new_zeros(x.shape[0], self.hidden_channels, x.shape[2], x.shape[3])
        return zeros, zeros

    def gate_activations(
        self, x: torch.Tensor, h: torch.Tensor
    ) -> ConvLstmGates:
        """Gates for input ``x`` ``[B, C, H, W]`` and previous hidden state ``h``."""
        gates, n = self.gates(torch.cat([x, h], dim=1)), self.hidden_channels
        i, f, j, o = (gates.narrow(1, k * n, n) for k in range(4))
        return ConvLstmGates(torch.sigmoid(i), torch.sigmoid(f), torch.tanh(j), torch.sigmoid(o))

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` ``[B, C, H, W]``, ``state = (h, c)`` -> new ``(h, c)``, each ``[B, hidden, H, W]``."""
        h, c = state
        gates = self.gate_activations(x, h)
        c = gates.forget * c + gates.input * gates.modulation
        h = gates.output * torch.tanh(c)
        return h, c


class ConvLstm(nn.Module):
    """A ConvLSTM layer run over a sequence: ``[B, T, C, H, W] -> [B, T, hidden, H, W]``."""

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.cell = ConvLstmCell(in_channels, hidden_channels, kernel_size)

    def forward(self, sequence: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, T, C, H, W]`` (T >= 1, time order) -> hidden states ``[B, T, hidden, H, W]``
        and the final cell state ``c_T`` ``[B, hidden, H, W]``."""
        state = self.cell.initial_state(sequence.select(1, 0))
        hidden_states = []
        for t in range(sequence.shape[1]):
            state = self.cell(sequence.select(1, t), state)
            hidden_states.append(state[0])
        return torch.stack(hidden_states, dim=1), state[1]
