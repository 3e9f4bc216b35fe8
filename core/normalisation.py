"""Raw pixel values -> the float input a model expects, as its card says."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.model_card import ModelCard


def scale_pixels(
    pixels: np.ndarray,
    input_scale: float,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> np.ndarray:
    """``[..., C, h, w]`` raw values -> float32 ``input_scale * x``, then per band
    ``(x - mean) / std`` when both are given."""
    scaled = pixels.astype(np.float32) * np.float32(input_scale)
    if mean is not None and std is not None:
        scaled = (scaled - np.asarray(mean, np.float32)[:, None, None]) / np.asarray(std, np.float32)[:, None, None]
    return scaled


def scale_for_card(pixels: np.ndarray, card: ModelCard) -> np.ndarray:
    """``scale_pixels`` with the card's ``input_scale`` and standardisation."""
    return scale_pixels(pixels, card.input_scale, card.standardization_mean, card.standardization_std)
