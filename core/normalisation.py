"""Raw pixel values -> the float input a model expects, as its card says."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .model_card import ModelCard


@dataclass(frozen=True)
class Normalisation:
    """``x * input_scale``, then per band ``(x - mean) / std`` when both are given
    (mean and std in scaled units)."""

    input_scale: float
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    @classmethod
    def from_card(cls, card: ModelCard) -> Normalisation:
        mean = tuple(card.standardization_mean) if card.standardization_mean is not None else None
        std = tuple(card.standardization_std) if card.standardization_std is not None else None
        return cls(card.input_scale, mean, std)

    def apply(self, pixels: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``[..., C, h, w]`` raw values -> float32 model input of the same shape (into ``out`` when given)."""
        # in place: one new array, not three (each fresh array costs its page faults, most of the time here)
        if out is None:
            scaled = pixels.astype(np.float32)
        else:
            scaled = out
            np.copyto(scaled, pixels, casting="unsafe")
        scaled *= np.float32(self.input_scale)
        if self.mean is not None and self.std is not None:
            scaled -= np.asarray(self.mean, np.float32)[:, None, None]
            scaled /= np.asarray(self.std, np.float32)[:, None, None]
        return scaled
