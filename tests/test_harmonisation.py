"""Radiometric harmonisation: L1C and L2A true colour of one real scene reach the model nearly alike,
thick cloud does not move a date's stretch, overcast dates are left as they are, and the engine harmonises
each date as the card says."""

import datetime as dt

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from tests_support import edit_card
from timeseg.core.area import parse_area
from timeseg.core.harmonisation import (
    UNSEEN,
    Harmonisation,
    date_tables,
    harmonised,
    histogram_percentiles,
    looked_up,
    model_table,
    sample_windows,
    samples_of_dates,
    stack_tables,
)
from timeseg.core.model_card import ModelCardError, read_model_card
from timeseg.core.raster_stack import DatedRaster, RasterStack
from timeseg.core.segment import SegmentRequest, segment
from timeseg.models.real_scene import T33UUU
from timeseg.models.road_scores import l2a_like
from timeseg.models.weather import cloud_opacity, overcast_date

# the real training scenes' land (timeseg-research harmonise, 2026-12-05)
TARGET = Harmonisation(target_low=(28.0, 43.0, 52.0), target_high=(94.0, 92.0, 106.0))


@pytest.fixture(scope="module")
def real_tci():
    """A 384 px window of the real L1C scene T33UUU (winter, north-east Germany): ``[3, H, W]`` uint8."""
    with rasterio.open(T33UUU.image) as dataset:
        return dataset.read(window=Window(600, 200, 384, 384))


def test_l1c_and_l2a_of_one_scene_reach_the_model_nearly_alike(real_tci):
    l1c, l2a = real_tci.astype(float), l2a_like(real_tci).astype(float)
    before = np.abs(l1c - l2a).mean()
    after = np.abs(harmonised(real_tci[None], TARGET)[0].astype(float)
                   - harmonised(l2a_like(real_tci)[None], TARGET)[0].astype(float)).mean()
    assert before > 20 and after < 3, (before, after)


def test_each_band_lands_on_the_target_percentiles(real_tci):
    out = harmonised(real_tci[None], TARGET)[0]
    low, high = np.percentile(out.reshape(3, -1), [2, 90], axis=1)
    np.testing.assert_allclose(low, TARGET.target_low, atol=2)
    np.testing.assert_allclose(high, TARGET.target_high, atol=2)


def test_percentiles_from_histograms_equal_numpys(real_tci):
    """The histogram percentiles of the kept pixels are ``np.percentile``'s, interpolation included."""
    values = real_tci.reshape(3, -1)
    kept = np.random.default_rng(1).random(values.shape[1]) < 0.3
    ours = histogram_percentiles(values, kept, (2.0, 37.5, 90.0))
    np.testing.assert_allclose(ours, np.percentile(values[:, kept], [2.0, 37.5, 90.0], axis=1), atol=1e-9)


def test_thick_cloud_over_part_of_a_date_does_not_change_its_stretch(real_tci):
    """Pixels at or above ``bright_limit`` in a band (thick cloud, snow) are left out of the statistics.
    Thinner, greyer cloud is not, and moves the stretch: real-check's cloud table measures what that costs."""
    opacity = cloud_opacity(real_tci.shape[1:], 0.4, np.random.default_rng(0)) > 0.2
    cloudy = real_tci.copy()
    cloudy[:, opacity] = np.array([238, 244, 250], np.uint8)[:, None]
    tables = [TARGET.table(*samples_of_dates(date[None])[0]) for date in (real_tci, cloudy)]
    assert 0.25 < opacity.mean() < 0.6
    # over the land's values (this winter scene: 50-125) the stretch moves by a few DN only: the land the
    # clouds leave is not quite the whole land
    assert np.abs(tables[0].astype(int) - tables[1])[:, 20:140].max() <= 5


def test_an_overcast_date_is_left_as_it_is():
    rng = np.random.default_rng(1)
    for _ in range(4):  # white and grey overcast (cloud tops 0.7 to 1.0 of full brightness)
        overcast = np.clip(overcast_date((200, 200), rng, 255), 1, 255).astype(np.uint8)
        assert TARGET.table(*samples_of_dates(overcast[None])[0]) is None
        assert np.array_equal(harmonised(overcast[None], TARGET), overcast[None])


def test_nodata_stays_apart_and_the_model_reads_it_as_overcast(real_tci):
    dates = real_tci[None].copy()
    dates[:, :, :40] = 0  # a strip without data
    table = TARGET.table(*samples_of_dates(dates)[0])
    assert (table[:, 0] == 0).all() and (table[:, 1:] >= 1).all()
    # what the model reads: the stretch, and white where the date has no data, on any date, even one left as is
    out = harmonised(dates, TARGET)
    assert (out[:, :, :40] == UNSEEN).all() and np.array_equal(out[0, :, 40:], looked_up(table, dates[0])[:, 40:])
    assert np.array_equal(model_table(None, 3)[:, 1:], np.tile(np.arange(1, 256, dtype=np.uint8), (3, 1)))
    assert (model_table(None, 3)[:, 0] == UNSEEN).all()


def test_training_reads_a_dates_no_data_as_the_engine_does(real_tci, tmp_path):
    """Fitting a harmonising model (the Train panel) reads a date's no data as overcast too."""
    from timeseg.models.dataset import OpenSite, Site
    from timeseg.models.labels import LabelSource

    dates = real_tci.copy()
    dates[:, :, :40] = 0  # beyond a swath's edge
    profile = dict(driver="GTiff", width=384, height=384, count=3, dtype="uint8", crs="EPSG:32633",
                   transform=rasterio.Affine(10, 0, 400000, 0, -10, 5900000))
    image, labels = tmp_path / "2019-06-01.tif", tmp_path / "labels.tif"
    with rasterio.open(image, "w", **profile) as dataset:
        dataset.write(dates)
    with rasterio.open(labels, "w", **{**profile, "count": 1}) as dataset:
        dataset.write(np.zeros((1, 384, 384), np.uint8))
    site = Site((DatedRaster(image, dt.date(2019, 6, 1)),), LabelSource(labels, "raster"))
    with OpenSite(site, TARGET) as opened:
        pixels, valid, _ = opened.read(0, 0, 384)
    assert not valid[0, :, :40].any() and (pixels[0, :, :, :40] == UNSEEN).all()
    assert np.array_equal(pixels[0, :, :, 40:], harmonised(dates[None], TARGET)[0, :, :, 40:])


def test_samples_cover_a_small_raster_whole_and_a_large_one_on_block_aligned_windows():
    assert sample_windows(500, 700) == [Window(0, 0, 700, 500)]
    windows = sample_windows(10980, 10980)
    assert len(windows) == 16 and all(w.col_off % 256 == 0 and w.row_off % 256 == 0 for w in windows)
    assert all(w.col_off + w.width <= 10980 and w.row_off + w.height <= 10980 for w in windows)


def test_a_small_place_in_a_large_raster_of_no_data_is_harmonised_as_alone(real_tci, tmp_path):
    """A 384 px place pasted into a 3000 px raster of no data: the 4 x 4 windows miss it (its date was left
    unstretched without a word: road IoU 0.81 against the place alone in a QA run); the denser windows find
    it, and the engine reads it through the same tables as the place alone."""
    large = np.zeros((3, 3000, 3000), np.uint8)
    large[:, 1300:1684, 1300:1684] = real_tci
    assert samples_of_dates(large[None])[0][1].sum() == 384 * 384  # the whole place, nothing else
    assert np.array_equal(date_tables(TARGET, samples_of_dates(large[None]))[0],
                          date_tables(TARGET, samples_of_dates(real_tci[None]))[0])
    profile = dict(driver="GTiff", width=3000, height=3000, count=3, dtype="uint8", crs="EPSG:32633",
                   transform=rasterio.Affine(10, 0, 400000, 0, -10, 5898880), nodata=0, tiled=True,
                   compress="deflate")
    with rasterio.open(tmp_path / "large.tif", "w", **profile) as dataset:
        dataset.write(large)
    with RasterStack([DatedRaster(tmp_path / "large.tif", dt.date(2019, 6, 1))]) as stack:
        [table] = stack_tables(TARGET, stack)
    assert np.array_equal(table, date_tables(TARGET, samples_of_dates(real_tci[None]))[0])


def test_engine_harmonises_each_date_as_the_card_says(local_model, real_tci, tmp_path):
    """A model whose card harmonises, on raw rasters, gives what the same model without it gives on the
    rasters harmonised beforehand (one date left as it is: overcast)."""
    rng = np.random.default_rng(2)
    dates = np.stack([real_tci[:, :96, :96], l2a_like(real_tci)[:, 96:192, 96:192],
                      np.clip(overcast_date((96, 96), rng, 255), 1, 255).astype(np.uint8)])
    # the corner on the tiles' lattice: no tile reaches outside, where the two models read no data unlike
    profile = dict(driver="GTiff", width=96, height=96, count=3, dtype="uint8", crs="EPSG:32633",
                   transform=rasterio.Affine(10, 0, 400000, 0, -10, 5898880), nodata=0)

    def rasters(stack: np.ndarray, folder: str) -> list[DatedRaster]:
        (tmp_path / folder).mkdir()
        out = []
        for day, date in enumerate(stack, start=1):
            path = tmp_path / folder / f"2019-06-0{day}.tif"
            with rasterio.open(path, "w", **profile) as dataset:
                dataset.write(date)
            out.append(DatedRaster(path, dt.date(2019, 6, day)))
        return out

    harmonising = edit_card(local_model, tmp_path / "harmonising.onnx", harmonisation=TARGET.to_card())
    assert read_model_card(harmonising).harmonisation == TARGET.to_card()
    on_raw = segment(SegmentRequest(rasters(dates, "raw"), harmonising, tmp_path / "a", device="cpu"))
    on_harmonised = segment(SegmentRequest(rasters(harmonised(dates, TARGET), "pre"), local_model,
                                           tmp_path / "b", device="cpu"))
    plain = segment(SegmentRequest(rasters(dates, "plain"), local_model, tmp_path / "c", device="cpu"))
    with rasterio.open(on_raw.probability_path) as a, rasterio.open(on_harmonised.probability_path) as b, \
            rasterio.open(plain.probability_path) as c:
        # the same inputs to the last bit, so the same answers; and not those of the rasters as they are
        assert np.array_equal(a.read(), b.read()) and not np.array_equal(a.read(), c.read())


def test_an_area_of_interest_or_a_batch_window_takes_the_whole_rasters_stretch(real_tci, tmp_path):
    """The statistics come from the whole rasters, so the windows ``timeseg batch`` cuts a place into,
    and any area of interest, are stretched alike (no seams between windows)."""
    big = np.tile(real_tci, (1, 4, 4))  # 1536 px: sampled on 16 windows
    profile = dict(driver="GTiff", width=1536, height=1536, count=3, dtype="uint8", crs="EPSG:32633",
                   transform=rasterio.Affine(10, 0, 400000, 0, -10, 5900000), nodata=0, tiled=True,
                   blockxsize=256, blockysize=256)
    rasters = []
    for day, date in enumerate((big, l2a_like(big)), start=1):
        path = tmp_path / f"2019-06-0{day}.tif"
        with rasterio.open(path, "w", **profile) as dataset:
            dataset.write(date)
        rasters.append(DatedRaster(path, dt.date(2019, 6, day)))
    with RasterStack(rasters) as stack:
        whole = stack_tables(TARGET, stack)
        stack.restrict(parse_area("400100,5887000,401000,5888000", stack.grid))  # a corner of 90 x 100 px
        assert (stack.grid.width, stack.grid.height) == (90, 100)
        part = stack_tables(TARGET, stack)
    assert all(table is not None for table in whole)
    assert all(np.array_equal(a, b) for a, b in zip(whole, part))


def test_a_card_with_a_broken_harmonisation_is_refused_in_one_line(local_model, tmp_path):
    broken = edit_card(local_model, tmp_path / "broken.onnx", harmonisation={"target_low": [1, 2, 3]})
    with pytest.raises(ModelCardError, match="harmonisation"):
        read_model_card(broken)
    short = edit_card(local_model, tmp_path / "short.onnx",
                      harmonisation={**TARGET.to_card(), "target_low": [28.0], "target_high": [94.0]})
    with pytest.raises(ModelCardError, match="one target per band"):
        read_model_card(short)


def test_the_dock_says_the_shipped_road_model_harmonises_and_shows_its_real_numbers():
    from timeseg.core.model_card import SHIPPED_ROAD_MODEL
    from timeseg.ui.model_panel import describe_card

    card = read_model_card(SHIPPED_ROAD_MODEL)
    real = card.metrics["real_heldout"]
    text = describe_card(card)
    assert Harmonisation.from_card(card.harmonisation).target_high[0] > Harmonisation.from_card(
        card.harmonisation).target_low[0]
    assert "first stretched onto those of its training images" in text
    low, high = real["l1c_tci"]["f1_interval"]
    assert f"F1 {real['l1c_tci']['f1']:.2f} (95 % interval {low:.2f}-{high:.2f}) on L1C, " in text
    assert f"{real['l2a_tci']['f1']:.2f} (95 % interval " in text
    assert abs(real["l1c_tci"]["f1"] - real["l2a_tci"]["f1"]) < 0.01  # the two conventions alike


def test_the_dock_reads_a_card_without_or_with_a_broken_interval():
    import dataclasses

    from timeseg.core.model_card import SHIPPED_ROAD_MODEL
    from timeseg.ui.model_panel import describe_card

    card = read_model_card(SHIPPED_ROAD_MODEL)
    real = card.metrics["real_heldout"]
    for bounds in (None, ["low", None], [0.5]):
        entry = {**real["l1c_tci"], "f1_interval": bounds}
        text = describe_card(dataclasses.replace(card, metrics={**card.metrics, "real_heldout": {**real,
                                                                                               "l1c_tci": entry}}))
        assert f"F1 {real['l1c_tci']['f1']:.2f} on L1C, " in text
