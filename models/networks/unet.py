"""U-Net FCN of paper A (section 2): one dated image -> a probability map (PMap)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _conv(in_channels: int, out_channels: int, batch_norm: bool) -> list[nn.Module]:
    """A 3x3 convolution, batch normalisation if asked, and a ReLU."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    return [*layers, nn.ReLU(inplace=True)]


def _double_conv(in_channels: int, out_channels: int, batch_norm: bool = False) -> nn.Sequential:
    """Two 3x3 convolutions, each followed by a ReLU (the contracting step of paper A)."""
    return nn.Sequential(*_conv(in_channels, out_channels, batch_norm), *_conv(out_channels, out_channels, batch_norm))


class _UpStep(nn.Module):
    """Transposed conv halving the channels, concatenation with the skip, one 3x3 conv."""

    def __init__(self, in_channels: int, batch_norm: bool = False) -> None:
        super().__init__()
        out_channels = in_channels // 2
        self.up = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        self.conv = nn.Sequential(*_conv(2 * out_channels, out_channels, batch_norm))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([self.up(x), skip], dim=1))


class UNet(nn.Module):
    """Paper A's U-Net: ``[N, C, H, W]`` image -> ``[N, K, H, W]`` PMap.

    Args:
        in_channels: input bands C (3 for Sentinel-2 true colour).
        num_classes: PMap channels l_c = K. ``K == 1`` is a binary map (sigmoid),
            ``K > 1`` a per-class map (softmax over K).
        depth: number of resolution levels; the image is pooled ``depth - 1`` times.
        base_channels: channels of the first level, doubled at each pooling step.
        batch_norm: batch normalisation after each convolution (not in paper A; trains
            much faster on mixed real and simulated data).

    Any H and W work: the input is edge-padded to a multiple of
    ``2 ** (depth - 1)`` and the output cropped back.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1,
        depth: int = 4,
        base_channels: int = 64,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError("depth must be at least 1")
        self.num_classes = num_classes
        self.size_multiple = 2 ** (depth - 1)
        widths = [base_channels * 2**level for level in range(depth)]
        self.down = nn.ModuleList(
            _double_conv(c_in, c_out, batch_norm) for c_in, c_out in zip([in_channels, *widths[:-1]], widths)
        )
        self.up = nn.ModuleList(_UpStep(width, batch_norm) for width in reversed(widths[1:]))
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    @property
    def feature_channels(self) -> int:
        """Channels of ``features``: the first level's width."""
        return self.head.in_channels

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C, H, W]`` -> unnormalised scores ``[N, K, H, W]``."""
        return self.head(self.features(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C, H, W]`` -> the last decoder level's features ``[N, base_channels, H, W]``."""
        height, width = x.shape[-2], x.shape[-1]
        m = self.size_multiple
        pad_h = (m - height % m) % m
        pad_w = (m - width % m) % m
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        skips = []
        for level, block in enumerate(self.down):
            if level > 0:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        for i, step in enumerate(self.up):  # deepest skip first
            x = step(x, skips[len(skips) - 2 - i])
        return x[..., :height, :width]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C, H, W]`` image (scaled bands) -> ``[N, K, H, W]`` probabilities in [0, 1]."""
        return probabilities_from_logits(self.logits(x))


def probabilities_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Sigmoid for one channel (binary), softmax over dim 1 otherwise; in float32 when the
    logits come from bf16 training (``models.training.compute_precision``), so that
    probabilities near 0 and 1 keep their gradients."""
    if logits.dtype == torch.bfloat16:
        logits = logits.float()
    if logits.shape[1] == 1:
        return torch.sigmoid(logits)
    return torch.softmax(logits, dim=1)
