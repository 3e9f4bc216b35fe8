"""Edges of the data drawn into training patches, read as the engine reads beyond them.

The engine's tiles start on a lattice anchored on the ground, so a tile reaches up to 31 px beyond a
raster's edge, and a swath's edge (oblique to the grid) crosses rasters; there a date has no data, which
a harmonising model (every true-colour model ``make model`` ships) reads as an overcast sky, white
(``core.harmonisation.UNSEEN``). A network trained only on patches wholly inside images took the step
from the image to white for a line: the false road along the data's edges (docs/models.md). These
patches teach it that the step is no road: beyond the edge the dates read ``fill`` and are not valid
(left out of the loss); the pixels next to it keep their labels.
"""

from __future__ import annotations

import numpy as np

MAX_DEPTH_SHARE = 0.3  # an edge lies at most this share of the patch's side in from the patch's border
OBLIQUE_DEGREES = 25.0  # a swath's edge: up to this angle off the grid's rows or columns
SOME_DATES_SHARE = 0.3  # edges where only some dates end (another orbit's swath); else every date ends there
SWATH_SHARE, CORNER_SHARE = 0.3, 0.15  # of the edges: a swath's, a raster's corner; the rest a raster's side


def beyond_edge(side: int, rng: np.random.Generator) -> np.ndarray:
    """``[side, side]`` bool, True beyond an edge of the data: one side's strip (a raster's edge), two
    adjacent sides' (a raster's corner) or a half-plane cut by a slightly oblique line (a swath's edge)."""
    rows, cols = np.mgrid[0:side, 0:side].astype(np.float32) + 0.5
    kind = rng.random()
    if kind < SWATH_SHARE:  # a swath's edge: a line within OBLIQUE_DEGREES of a side, the side's strip beyond it
        angle = np.deg2rad(rng.uniform(-OBLIQUE_DEGREES, OBLIQUE_DEGREES))
        depth = rng.uniform(1, MAX_DEPTH_SHARE * side)
        offset = (cols - side / 2) * np.tan(angle)
        beyond = rows < depth + offset
    else:
        beyond = rows < int(rng.integers(1, int(MAX_DEPTH_SHARE * side) + 1))
        if kind < SWATH_SHARE + CORNER_SHARE:  # a corner: the next side too
            beyond |= cols < int(rng.integers(1, int(MAX_DEPTH_SHARE * side) + 1))
    return np.ascontiguousarray(np.rot90(beyond, int(rng.integers(4))))


def with_data_edge(pixels: np.ndarray, valid: np.ndarray, fill: float, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dates ``[T, C, h, w]`` and their validity ``[T, h, w]`` with an edge of the data drawn in:
    ``fill`` (raw value) and not valid beyond it, on every date or (``SOME_DATES_SHARE`` of sequences of 2
    dates or more) on a random part of them. Also returns where each date reads ``fill``, ``[T, h, w]`` bool."""
    dates = len(pixels)
    beyond = beyond_edge(pixels.shape[-1], rng)
    ending = np.ones(dates, bool)
    if dates > 1 and rng.random() < SOME_DATES_SHARE:
        ending = np.zeros(dates, bool)
        ending[rng.choice(dates, size=int(rng.integers(1, dates)), replace=False)] = True
    cut = ending[:, None, None] & beyond[None]
    return np.where(cut[:, None], fill, pixels).astype(pixels.dtype), valid & ~cut, cut
