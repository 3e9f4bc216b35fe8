"""The class map written row block by row block: a median filter over the blocks equals one over the whole map,
its no data where the probability map's is."""

import numpy as np
import pytest
from scipy.ndimage import median_filter

from timeseg.core.class_map import NO_CLASS, ClassRows


@pytest.mark.parametrize("median_px, blocks", [(7, [5, 1, 30, 2, 17, 45]), (3, [100]), (5, [1] * 100), (0, [40, 60])])
def test_median_rows_in_blocks_equal_the_whole_maps_median(median_px, blocks):
    rng = np.random.default_rng(median_px)
    labels = rng.integers(0, 4, (sum(blocks), 37)).astype(np.uint8)
    labels[rng.random(labels.shape) < 0.1] = NO_CLASS
    written = np.full_like(labels, 200)
    rows = ClassRows(lambda row, part: written.__setitem__(slice(row, row + len(part)), part), median_px,
                     len(labels))
    start = 0
    for size in blocks:
        rows.add(start, labels[start:start + size])
        start += size
    shifted = np.where(labels == NO_CLASS, 0, labels + 1)
    smoothed = median_filter(shifted, size=median_px, mode="nearest") if median_px else shifted
    # no data where it was, and nowhere else (the probability map's)
    kept = np.where(shifted == 0, 0, np.where(smoothed == 0, shifted, smoothed))
    assert np.array_equal(written, np.where(kept == 0, NO_CLASS, kept - 1))
    assert np.array_equal(written == NO_CLASS, labels == NO_CLASS)
