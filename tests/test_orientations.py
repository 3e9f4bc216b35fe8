"""The map averaged over a tile's orientations (core.orientations), and the engine's --orientations."""

import numpy as np
import pytest
import rasterio

from timeseg.core.orientations import _back, _oriented, averaged_over_orientations, orientations
from timeseg.core.raster_stack import DatedRaster
from timeseg.core.segment import SegmentRequest, segment


def test_each_orientation_is_turned_back_exactly():
    images = np.arange(2 * 3 * 2 * 4 * 4, dtype=np.float32).reshape(2, 3, 2, 4, 4)  # [B, T, C, h, w]
    assert len(set(orientations(8))) == 8 and orientations(2) == ((0, False), (0, True))
    for turns, mirrored in orientations(8):
        assert np.array_equal(_back(_oriented(images, turns, mirrored), turns, mirrored), images)
    with pytest.raises(ValueError, match="orientations must be one of 1, 2, 4, 8, not 3"):
        orientations(3)


def test_a_network_that_answers_alike_in_every_orientation_is_unchanged_and_one_that_does_not_is_averaged():
    rng = np.random.default_rng(0)
    images = rng.random((2, 3, 2, 8, 8), dtype=np.float32)

    def same_everywhere(batch):  # the last date's first band: turned, it turns alike
        return batch[:, -1, :1] * 1.0

    for count in (1, 2, 4, 8):
        np.testing.assert_allclose(averaged_over_orientations(same_everywhere, images, count),
                                   same_everywhere(images), atol=1e-7)

    def leans_right(batch):  # P rises from left to right, whatever the image: mirrored and back, it cancels
        ramp = np.arange(batch.shape[-1], dtype=np.float32) / (batch.shape[-1] - 1)
        return np.broadcast_to(ramp, (len(batch), 1, *batch.shape[-2:])).copy()

    np.testing.assert_allclose(averaged_over_orientations(leans_right, images, 2), 0.5, atol=1e-7)
    assert averaged_over_orientations(leans_right, images, 1).std() > 0.3


def test_the_engine_averages_the_orientations_asked(local_model, small_scene, tmp_path):
    """--orientations 8 on the test model: probabilities in 0..1 on the same grid, a map near the plain run's
    but not the same (a random-weight network answers each orientation differently); a bad count is refused."""
    rasters = [DatedRaster(p, a.date) for p, a in zip(small_scene.tci_paths[2019], small_scene.acquisitions[2019])]
    maps = {}
    for count in (1, 8):
        result = segment(SegmentRequest(rasters, local_model, tmp_path / str(count), device="cpu", precision="fp32",
                                        orientations=count))
        with rasterio.open(result.probability_path) as dataset:
            maps[count] = dataset.read(1)
    assert maps[8].shape == maps[1].shape and 0 <= maps[8].min() and maps[8].max() <= 1
    assert 0 < np.abs(maps[8] - maps[1]).max() < 0.2
    from timeseg.core.segment import SegmentError

    with pytest.raises(SegmentError, match="the orientations must be one of 1, 2, 4, 8, not 3"):
        segment(SegmentRequest(rasters, local_model, tmp_path / "bad", orientations=3))
