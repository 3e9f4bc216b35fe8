"""Paper A's spatio-temporal network: a U-Net per date, two ConvLSTM layers over the dates."""

from __future__ import annotations

import torch
from torch import nn

from .convlstm import ConvLstm
from .unet import UNet, probabilities_from_logits


class FcnConvLstm(nn.Module):
    """FCN + two ConvLSTM layers + 1x1 conv: ``[B, T, C, H, W] -> [B, K, H, W]``.

    The FCN turns each date into an l_c-channel PMap (l_c = K); the ConvLSTM layers
    read the PMaps in time order; the last hidden state, through a 1x1 convolution and a
    sigmoid (K == 1) or softmax (K > 1), is the single up-to-date probability map
    (paper A, section 2 and figure 1).

    Args:
        in_channels: bands C of each date.
        num_classes: K; 1 for a binary map such as roads.
        depth, base_channels: the U-Net's (see ``UNet``).
        hidden_channels: ConvLSTM hidden width; ``None`` takes l_c as paper A does.
        kernel_size: ConvLSTM kernel.
        num_layers: ConvLSTM layers (paper A: two).
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1,
        depth: int = 4,
        base_channels: int = 64,
        hidden_channels: int | None = None,
        kernel_size: int = 3,
        num_layers: int = 2,
    ) -> None:
        super().__init__()
        hidden = num_classes if hidden_channels is None else hidden_channels
        self.fcn = UNet(in_channels, num_classes, depth, base_channels)
        self.lstms = nn.ModuleList(
            ConvLstm(num_classes if layer == 0 else hidden, hidden, kernel_size)
            for layer in range(num_layers)
        )
        self.head = nn.Conv2d(hidden, num_classes, 1)

    def pmaps(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, T, C, H, W]`` -> per-date FCN probability maps ``[B, T, K, H, W]``."""
        batch, time = images.shape[0], images.shape[1]
        flat = images.reshape(batch * time, images.shape[2], images.shape[3], images.shape[4])
        pmaps = self.fcn(flat)
        return pmaps.reshape(batch, time, pmaps.shape[1], pmaps.shape[2], pmaps.shape[3])

    def logits_from_pmaps(self, pmaps: torch.Tensor) -> torch.Tensor:
        """PMap sequence ``[B, T, K, H, W]`` -> unnormalised scores ``[B, K, H, W]``."""
        sequence = pmaps
        for lstm in self.lstms:
            sequence, _ = lstm(sequence)
        return self.head(sequence[:, -1])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, T, C, H, W]`` scaled images, dates in time order, T >= 1
        -> ``[B, K, H, W]`` probabilities in [0, 1]."""
        return probabilities_from_logits(self.logits_from_pmaps(self.pmaps(images)))
