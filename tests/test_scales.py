"""The map averaged over a tile seen at several scales (core.scales), and the engine's --scales."""

import numpy as np
import pytest
import rasterio

from timeseg.core.raster_stack import DatedRaster
from timeseg.core.scales import averaged_over_scales, padded_side, resampled, resampling_matrix
from timeseg.core.segment import SegmentError, SegmentRequest, segment


def test_resampling_keeps_levels_and_ramps_and_shrinks_without_aliasing():
    for source, target in ((256, 192), (256, 384), (192, 256), (384, 256)):
        weights = resampling_matrix(source, target)
        assert weights.shape == (target, source) and np.allclose(weights.sum(axis=1), 1) and weights.min() >= 0
    ramp = np.broadcast_to(np.arange(256, dtype=np.float32), (256, 256))  # column index, in pixels
    for side in (192, 384):
        seen = resampled(ramp, side, side)
        centres = (np.arange(side) + 0.5) * 256 / side - 0.5  # each new pixel's centre, in old columns
        inside = (centres > 1) & (centres < 254)
        np.testing.assert_allclose(seen[0, inside], centres[inside], atol=0.02)  # shrunk: the filter's own lean
    # one-pixel stripes shrunk to 0.75: plain interpolation keeps them 0.33 from grey, the filter 0.14
    stripes = np.tile(np.array([0.0, 1.0], np.float32), (64, 32))
    assert np.abs(resampled(stripes, 48, 48)[4:-4, 4:-4] - 0.5).max() < 0.15
    assert [padded_side(side) for side in (192, 256, 384, 72, 1)] == [192, 256, 384, 96, 32]


def test_a_network_that_answers_alike_at_every_scale_is_unchanged_and_one_that_does_not_is_averaged():
    rng = np.random.default_rng(0)
    images = np.broadcast_to(rng.random((2, 3, 2, 1, 1), dtype=np.float32), (2, 3, 2, 64, 64)).copy()
    seen_sides = []

    def last_band(batch):  # a flat image stays flat at any scale
        seen_sides.append(batch.shape[-1])
        return batch[:, -1, :1] * 1.0

    np.testing.assert_allclose(averaged_over_scales(last_band, images, 3), images[:, -1, :1], atol=1e-6)
    assert seen_sides == [64, 64, 96]  # 0.75 x 64 = 48 px, mirrored out to 64 (a side the networks take)

    for side in (96, 200):  # any tile: the ground seen at 0.75 and 1.5 exactly (72 px mirrored out to 96, ...)
        ramp = np.broadcast_to(np.arange(side, dtype=np.float32), (1, 1, 3, side, side)).copy()
        seen_sides.clear()
        averaged = averaged_over_scales(last_band, ramp, 3)[0, 0]
        assert seen_sides == [padded_side(round(side * 0.75)), side, padded_side(round(side * 1.5))]
        np.testing.assert_allclose(averaged[:, 2:-2], ramp[0, 0, 0][:, 2:-2], atol=0.02)  # each view cut back

    def side_in_tiles(batch):  # answers how large it sees the tile: the three answers averaged
        return np.full((len(batch), 1, *batch.shape[-2:]), batch.shape[-1] / 256, np.float32)

    images = np.zeros((1, 1, 3, 256, 256), np.float32)
    np.testing.assert_allclose(averaged_over_scales(side_in_tiles, images, 3), (0.75 + 1 + 1.5) / 3, atol=1e-6)
    np.testing.assert_allclose(averaged_over_scales(side_in_tiles, images, 1), 1.0)
    with pytest.raises(ValueError, match="scales must be one of 1, 3, not 2"):
        averaged_over_scales(side_in_tiles, images, 2)


def test_the_engine_averages_the_scales_asked(local_model, small_scene, tmp_path):
    """--scales 3 on the test model: probabilities in 0..1 on the same grid and georeferencing, a map near the
    plain run's but not the same; a bad count is refused before anything is written."""
    rasters = [DatedRaster(p, a.date) for p, a in zip(small_scene.tci_paths[2019], small_scene.acquisitions[2019])]
    maps, grids = {}, {}
    for count in (1, 3):
        result = segment(SegmentRequest(rasters, local_model, tmp_path / str(count), device="cpu", precision="fp32",
                                        scales=count))
        with rasterio.open(result.probability_path) as dataset:
            maps[count], grids[count] = dataset.read(1), (dataset.transform, dataset.crs, dataset.shape)
    assert grids[3] == grids[1] and 0 <= np.nanmin(maps[3]) and np.nanmax(maps[3]) <= 1
    assert 0 < np.nanmax(np.abs(maps[3] - maps[1])) < 0.3
    with pytest.raises(SegmentError, match="the scales must be one of 1, 3, not 2"):
        segment(SegmentRequest(rasters, local_model, tmp_path / "bad", scales=2))
    assert not (tmp_path / "bad").exists()
