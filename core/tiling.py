"""Tiles with overlap over a raster grid, and the weight window that blends them.

Tiles start every ``tile_size - overlap`` pixels; the last row and column of tiles are
moved back so that every tile lies inside the raster (when it is at least one tile
large). Each tile's prediction is weighted by a window that is zero in the outer
quarter of the overlap, rises as a cosine over the middle half, and is one inside; on
sides that touch the raster's edge it stays one. Neighbouring windows thus hand over
smoothly (no seam), and no pixel takes a prediction from within ``overlap // 4`` of a
tile's inner border, where the tile lacks context.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tile:
    row: int
    col: int
    height: int
    width: int
    top_edge: bool
    bottom_edge: bool
    left_edge: bool
    right_edge: bool


def _starts(length: int, tile: int, stride: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def tile_grid(height: int, width: int, tile_size: int, overlap: int) -> list[Tile]:
    """Tiles in row-major order covering ``height x width``."""
    if not 0 <= overlap < tile_size:
        raise ValueError(f"overlap must lie in [0, tile size), got {overlap} for tile size {tile_size}")
    stride = tile_size - overlap
    rows, cols = _starts(height, tile_size, stride), _starts(width, tile_size, stride)
    return [
        Tile(r, c, min(tile_size, height - r), min(tile_size, width - c),
             r == 0, r + tile_size >= height, c == 0, c + tile_size >= width)
        for r in rows
        for c in cols
    ]


def _ramp(length: int, overlap: int, start_edge: bool, end_edge: bool) -> np.ndarray:
    """1-D weights ``[length]``: 0 / cosine rise / 1 / cosine fall / 0 (see module docstring)."""
    weights = np.ones(length, dtype=np.float64)
    dead = overlap // 4
    rise = max(overlap - 2 * dead, 0)
    if rise:
        curve = 0.5 - 0.5 * np.cos(np.pi * (np.arange(rise) + 0.5) / rise)
    else:
        curve = np.zeros(0)
    profile = np.concatenate([np.zeros(dead), curve])[:length]
    if not start_edge:
        weights[: len(profile)] = profile
    if not end_edge:
        weights[length - len(profile):] = np.minimum(weights[length - len(profile):], profile[::-1])
    return weights


def blend_window(tile: Tile, overlap: int) -> np.ndarray:
    """Weight ``[height, width]`` float32 of a tile's prediction (read-only: one array is shared by
    every tile of the same size and edges)."""
    return _window(tile.height, tile.width, overlap, tile.top_edge, tile.bottom_edge, tile.left_edge,
                   tile.right_edge)


@functools.lru_cache(maxsize=64)  # a grid's tiles have at most 9 kinds of edges and 4 sizes
def _window(height: int, width: int, overlap: int, top: bool, bottom: bool, left: bool, right: bool) -> np.ndarray:
    window = np.outer(_ramp(height, overlap, top, bottom), _ramp(width, overlap, left, right)).astype(np.float32)
    window.flags.writeable = False
    return window
