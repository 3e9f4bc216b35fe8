"""Paper B's cloud-robust classifier: a ConvLSTM encodes the sequence both ways."""

from __future__ import annotations

import torch
from torch import nn

from .convlstm import ConvLstm
from .unet import probabilities_from_logits


class BiConvLstmClassifier(nn.Module):
    """``[B, T, C, H, W] -> [B, K, H, W]`` class probabilities (softmax over K).

    One ConvLSTM reads the observations forwards, another the reversed sequence; their
    final cell states c_T are concatenated (2 x hidden channels) and a 3x3 convolution
    maps them to K classes (paper B, section 3.2 and figure 1). All observations go
    in, cloudy or not: there is no cloud mask.

    Args:
        in_channels: bands C of each observation (paper B: 13 Sentinel-2 bands).
        num_classes: K crop classes.
        hidden_channels: recurrent cells r (paper B: 256).
        kernel_size: 3 throughout, as in paper B.
    """

    def __init__(
        self,
        in_channels: int = 13,
        num_classes: int = 2,
        hidden_channels: int = 256,
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        self.forward_lstm = ConvLstm(in_channels, hidden_channels, kernel_size)
        self.backward_lstm = ConvLstm(in_channels, hidden_channels, kernel_size)
        self.head = nn.Conv2d(2 * hidden_channels, num_classes, kernel_size, padding=kernel_size // 2)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, T, C, H, W]`` -> unnormalised class scores ``[B, K, H, W]``."""
        _, forward_cell = self.forward_lstm(images)
        _, backward_cell = self.backward_lstm(torch.flip(images, dims=[1]))
        return self.head(torch.cat([forward_cell, backward_cell], dim=1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, T, C, H, W]`` observations in time order, T >= 1 -> ``[B, K, H, W]``."""
        return probabilities_from_logits(self.logits(images))
