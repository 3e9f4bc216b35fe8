"""Weighted blending of tile predictions, streamed one row of tiles at a time.

Tiles arrive in row-major order (``core.tiling.tile_grid``). The blender keeps only the
rows that later tiles can still touch: ``[C, rows, width]`` float32 sums and weights, at
most about ``tile_size + stride`` rows, so memory grows with the raster's width, never
with its height.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from .tiling import Tile, blend_window


class StreamingBlender:
    """Accumulate ``prediction * window``; hand out finished rows as soon as no tile can add to them."""

    def __init__(self, tiles: Sequence[Tile], channels: int, width: int, height: int, overlap: int,
                 tile_size: int) -> None:
        self.overlap, self.tile_size = overlap, tile_size
        self.channels = channels
        self.width = width
        self.height = height
        row_starts = sorted({t.row for t in tiles})
        # rows before the next tile row's start are final once the current tile row is complete
        self._final_after = {start: end for start, end in zip(row_starts, [*row_starts[1:], height])}
        self._remaining = {start: sum(1 for t in tiles if t.row == start) for start in row_starts}
        self._first_row = 0
        self._sums = np.zeros((channels, 0, width), np.float32)
        self._weights = np.zeros((0, width), np.float32)
        self._valid = np.zeros((0, width), bool)

    def _grow(self, end_row: int) -> None:
        extra = end_row - self._first_row - self._weights.shape[0]
        if extra > 0:
            self._sums = np.concatenate([self._sums, np.zeros((self.channels, extra, self.width), np.float32)], 1)
            self._weights = np.concatenate([self._weights, np.zeros((extra, self.width), np.float32)])
            self._valid = np.concatenate([self._valid, np.zeros((extra, self.width), bool)])

    def add(self, tile: Tile, prediction: np.ndarray, valid: np.ndarray
            ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Add a tile's ``[C, tile_size, tile_size]`` prediction and validity ``[tile_size, tile_size]`` (of the
        whole tile: its part on the grid is cut here); yield finished ``(first_row, blended [C, n, width],
        valid [n, width])`` blocks."""
        self._grow(tile.row + tile.height)
        window = blend_window(tile, self.overlap, self.tile_size)
        r, c = tile.row - self._first_row, tile.col
        part = (slice(tile.skip_rows, tile.skip_rows + tile.height), slice(tile.skip_cols, tile.skip_cols + tile.width))
        self._sums[:, r : r + tile.height, c : c + tile.width] += prediction[:, part[0], part[1]] * window
        self._weights[r : r + tile.height, c : c + tile.width] += window
        self._valid[r : r + tile.height, c : c + tile.width] |= valid[part]
        self._remaining[tile.row] -= 1
        if self._remaining[tile.row] == 0:
            yield self._flush(self._final_after[tile.row])

    def _flush(self, end_row: int) -> tuple[int, np.ndarray, np.ndarray]:
        count = end_row - self._first_row
        with np.errstate(invalid="ignore", divide="ignore"):
            blended = self._sums[:, :count] / self._weights[None, :count]
        valid = self._valid[:count]
        blended[:, ~valid] = np.nan
        first = self._first_row
        self._sums, self._weights = self._sums[:, count:], self._weights[count:]
        self._valid = self._valid[count:]
        self._first_row = end_row
        return first, blended, valid
