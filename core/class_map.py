"""The class map from blended probabilities, row block by row block as the blender finishes them: the card's
class rule, and, for a Deepness model whose card asks for it, Deepness's median filter over the classes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .model_card import ModelCard

NO_CLASS = 255  # the class map's no data


def class_labels(card: ModelCard, blended: np.ndarray, threshold: float, valid: np.ndarray) -> np.ndarray:
    """``[C, n, width]`` probabilities (NaN: no data) -> ``[n, width]`` uint8 classes, ``NO_CLASS`` where
    ``valid`` is False or a probability is NaN. Two classes: P >= ``threshold``. More: the likeliest; for a
    Deepness model, of the classes at ``threshold`` or above (none: class 0), as Deepness maps them."""
    if card.is_binary:
        labels = (blended[0] >= threshold).astype(np.uint8)  # NaN compares False; it becomes NO_CLASS below
    else:
        scores = np.nan_to_num(blended, nan=-1.0)
        if card.deepness_classes:
            scores = np.where(scores >= threshold, scores, 0.0)
        labels = scores.argmax(axis=0).astype(np.uint8)
    labels[~valid | np.isnan(blended).any(axis=0)] = NO_CLASS
    return labels


class ClassRows:
    """Rows of the class map on their way to ``write(first_row, labels)``: at once, or, with ``median_px``
    (odd, 3 or more), through a median filter of that size over the classes and no data, as Deepness's
    ``seg_small_segment`` cleans its maps (OpenCV's ``medianBlur`` over class + 1, no data 0, edges
    repeated), its no data kept where it was. A row leaves once the ``median_px // 2`` rows below it have
    come, or with the map's last row."""

    def __init__(self, write: Callable[[int, np.ndarray], None], median_px: int, height: int) -> None:
        self.write, self.height = write, height
        self.reach = median_px // 2 if median_px >= 3 else 0
        self.size = 2 * self.reach + 1
        self.held = np.zeros((0, 0), np.uint8)  # rows [self.first, self.first + len(held)) as class + 1
        self.first = self.done = 0  # the first row held; the first row not yet written

    def add(self, first_row: int, labels: np.ndarray) -> None:
        """``[n, width]`` classes of rows from ``first_row`` (the rows come in order, each once)."""
        if not self.reach:
            self.write(first_row, labels)
            return
        shifted = np.where(labels == NO_CLASS, 0, labels.astype(np.uint16) + 1).astype(np.uint8)
        gap = first_row - (self.first + len(self.held))  # rows no tile covered: no data
        parts = [self.held] if self.held.size else []
        if gap > 0:
            parts.append(np.zeros((gap, labels.shape[1]), np.uint8))
        self.held = np.concatenate([*parts, shifted])
        last = first_row + len(labels)
        ready = self.height if last >= self.height else last - self.reach
        if ready <= self.done:
            return
        from scipy.ndimage import median_filter

        smoothed = median_filter(self.held, size=self.size, mode="nearest")
        rows = slice(self.done - self.first, ready - self.first)
        out, before = smoothed[rows], self.held[rows]
        # no data stays where it was and nowhere else: the class map's no data is the probability map's (and an
        # area's outside), where Deepness's filter moves it by a few pixels along its edges
        out = np.where(before == 0, 0, np.where(out == 0, before, out))
        self.write(self.done, np.where(out == 0, NO_CLASS, out - 1).astype(np.uint8))
        self.done = ready
        keep_from = max(0, self.done - self.reach)  # the rows a later row's filter still reads
        self.held = self.held[keep_from - self.first:]
        self.first = keep_from
