"""Segmentation metrics from an accumulated confusion matrix: accuracy, IoU, F1."""

from __future__ import annotations

import numpy as np
import torch


class ConfusionMatrix:
    """Counts ``[K, K]`` (rows: truth, columns: prediction) over valid pixels.

    ``class_count`` is the number of classes K (2 for a binary map).
    """

    def __init__(self, class_count: int) -> None:
        self.counts = np.zeros((class_count, class_count), dtype=np.int64)

    def add(self, probabilities: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor,
            threshold: float = 0.5) -> None:
        """``probabilities`` ``[B, K', H, W]`` (K' = 1 binary), ``labels``/``valid`` ``[B, H, W]``."""
        if probabilities.shape[1] == 1:
            predicted = (probabilities[:, 0] >= threshold).long()
            labels = (labels == 1).long()  # HARD_NEGATIVE is not the class
        else:
            predicted = probabilities.argmax(dim=1)
        k = self.counts.shape[0]
        pairs = (labels[valid].long() * k + predicted[valid]).cpu().numpy()
        self.counts += np.bincount(pairs, minlength=k * k).reshape(k, k)

    def summary(self) -> dict[str, float]:
        """Pixel accuracy; IoU and F1 of the positive class (binary) or their class means."""
        counts = self.counts.astype(np.float64)
        true_positive = np.diag(counts)
        predicted = counts.sum(axis=0)
        actual = counts.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = true_positive / (predicted + actual - true_positive)
            f1 = 2 * true_positive / (predicted + actual)
        total = counts.sum()
        accuracy = float(true_positive.sum() / total) if total else float("nan")
        if len(counts) == 2:
            return {"accuracy": accuracy, "iou": float(iou[1]), "f1": float(f1[1])}
        result = {"accuracy": accuracy, "iou": float(np.nanmean(iou)), "f1": float(np.nanmean(f1))}
        result.update({f"f1_class_{k}": float(v) for k, v in enumerate(f1)})
        return result
