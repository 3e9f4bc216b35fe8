"""The map averaged over the tile seen at several scales.

A road is a line one or two pixels wide at 10 m, and the network answers a little differently when the
same ground is seen larger or smaller: run on the tile resampled to 0.75, 1 and 1.5 times its size, each
answer resampled back and the three averaged, it is an ensemble of three views for the price of about
3.8 runs (0.56 + 1 + 2.25 times the pixels). On the real held-out areas the shipped road model gains
0.02 F1 from it through the engine (0.03 on whole windows), about what the 8 orientations gain at half
their cost, and the selection strips, where such rules are chosen, confirm it where they did not
confirm the orientations (docs/models.md). The two do not add up: averaged over both, the map scores
as with either.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .tiling import TILE_ALIGN_PX

# the number of scales asked -> the scales run, each a factor of the tile's side; chosen on the selection
# strips among sets of 0.5-2 (docs/models.md)
SCALE_SETS: dict[int, tuple[float, ...]] = {1: (1.0,), 3: (0.75, 1.0, 1.5)}
SCALE_COUNTS = tuple(SCALE_SETS)


def padded_side(side: int) -> int:
    """``side`` rounded up to a multiple of ``TILE_ALIGN_PX`` (a multiple of the networks' downsampling), so that
    any network that takes the tile takes it resampled."""
    return -(-side // TILE_ALIGN_PX) * TILE_ALIGN_PX


def resampling_matrix(source: int, target: int) -> np.ndarray:
    """``[target, source]`` float32 weights that resample a line of ``source`` pixels to ``target``:
    linear interpolation between pixel centres (edges held), and when shrinking a triangle filter as
    wide as the pixels that fall into one, so that nothing aliases (as torch's bilinear with antialias)."""
    factor = target / source
    width = max(1.0, 1.0 / factor)  # the filter's half-width, in source pixels
    centres = (np.arange(target) + 0.5) / factor - 0.5
    weights = np.maximum(0.0, 1.0 - np.abs(np.arange(source)[None, :] - centres[:, None]) / width)
    edge = centres < 0  # held at the first and last pixel, as the interpolation of a clamped coordinate
    weights[edge] = 0
    weights[edge, 0] = 1
    edge = centres > source - 1
    weights[edge] = 0
    weights[edge, -1] = 1
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def resampled(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """``array`` ``[..., h, w]`` resampled to ``[..., height, width]`` (``resampling_matrix`` on each axis)."""
    rows = resampling_matrix(array.shape[-2], height)
    columns = resampling_matrix(array.shape[-1], width)
    return np.ascontiguousarray(rows @ array.astype(np.float32, copy=False) @ columns.T)


def averaged_over_scales(run: Callable[[np.ndarray], np.ndarray], images: np.ndarray, count: int) -> np.ndarray:
    """``run`` (``[B, T, C, h, w]`` -> ``[B, K, h, w]`` probabilities) on ``images`` seen at each of
    ``SCALE_SETS[count]``, each answer resampled back to ``h x w``, averaged: ``[B, K, h, w]`` float32."""
    if count not in SCALE_SETS:
        raise ValueError(f"scales must be one of {', '.join(map(str, SCALE_COUNTS))}, not {count}")
    height, width = images.shape[-2:]
    total = None
    for scale in SCALE_SETS[count]:
        if scale == 1.0:
            answer = run(images).astype(np.float32)
        else:  # resampled to exactly the scale, mirrored out to a side the network takes, cut back after
            seen_height, seen_width = round(height * scale), round(width * scale)
            seen = resampled(images, seen_height, seen_width)
            margins = [(0, 0)] * (seen.ndim - 2) + [(0, padded_side(seen_height) - seen_height),
                                                    (0, padded_side(seen_width) - seen_width)]
            answer = run(np.pad(seen, margins, mode="reflect"))[..., :seen_height, :seen_width]
            answer = resampled(answer, height, width)
        total = answer if total is None else total + answer
    return total / len(SCALE_SETS[count])
