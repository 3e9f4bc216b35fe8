"""The map averaged over the tile's orientations: its quarter turns and their mirror images.

A road or a field is the same seen turned or mirrored, but a trained network answers each
orientation a little differently. Run on the 8 orientations of a tile (the dihedral group of the
square: 4 quarter turns, each also mirrored) and turned back, the 8 maps average out much of each
one's error, as an ensemble of 8 networks would, at 8 times the model's time. On the real held-out
areas the shipped road model gains 0.03 F1 from it (docs/models.md); training already turns and
mirrors its patches (``models.dataset``), so no orientation is new to the network.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

ORIENTATION_COUNTS = (1, 2, 4, 8)
# (quarter turns, mirrored): the first N of these are run for N orientations: 2, the tile and its mirror
# image; 4, those and their half turns; 8, every quarter turn too
_ORDER = ((0, False), (0, True), (2, False), (2, True), (1, False), (1, True), (3, False), (3, True))


def orientations(count: int) -> tuple[tuple[int, bool], ...]:
    """The ``count`` orientations run, as (quarter turns, mirrored left-right)."""
    if count not in ORIENTATION_COUNTS:
        raise ValueError(f"orientations must be one of {', '.join(map(str, ORIENTATION_COUNTS))}, not {count}")
    return _ORDER[:count]


def _oriented(array: np.ndarray, turns: int, mirrored: bool) -> np.ndarray:
    """``array`` ``[..., h, w]`` mirrored left-right, then turned ``turns`` quarter turns anticlockwise."""
    array = array[..., ::-1] if mirrored else array
    return np.ascontiguousarray(np.rot90(array, turns, axes=(-2, -1)))


def _back(array: np.ndarray, turns: int, mirrored: bool) -> np.ndarray:
    """The inverse of ``_oriented``: ``array`` ``[..., h, w]`` turned back, then mirrored back."""
    array = np.rot90(array, -turns, axes=(-2, -1))
    return np.ascontiguousarray(array[..., ::-1] if mirrored else array)


def averaged_over_orientations(run: Callable[[np.ndarray], np.ndarray], images: np.ndarray,
                               count: int) -> np.ndarray:
    """``run`` (``[B, T, C, h, w]`` -> ``[B, K, h, w]`` probabilities, square tiles) on ``count``
    orientations of ``images``, each result turned back, averaged: ``[B, K, h, w]`` float32."""
    if count == 1:
        return run(images)
    total = None
    for turns, mirrored in orientations(count):
        answer = _back(run(_oriented(images, turns, mirrored)), turns, mirrored).astype(np.float32)
        total = answer if total is None else total + answer
    return total / count
