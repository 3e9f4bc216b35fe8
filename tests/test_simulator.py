"""The simulator: georeferenced, deterministic, roads that grow, clouds that hide them."""

import datetime as dt

import numpy as np
import rasterio

from timeseg.core.dates import detect_date
from timeseg.models.simulator import simulate_scene
from timeseg.models.simulator.imaging import TCI_SATURATION, true_colour


def read(path):
    with rasterio.open(path) as dataset:
        return dataset.read(), dataset.profile, dataset.tags()


def test_scene_is_georeferenced_dated_sentinel2_like(small_scene):
    assert small_scene.years == (2016, 2019)
    for year in small_scene.years:
        paths = small_scene.tci_paths[year]
        assert len(paths) == 3
        dates = [detect_date(p) for p in paths]
        assert dates == sorted(dates) and all(d.year == year for d in dates)
        data, profile, tags = read(paths[0])
        assert data.shape == (3, 96, 96) and data.dtype == np.uint8
        assert profile["crs"].to_epsg() == 32628 and profile["transform"].a == 10.0
        assert profile["transform"].e == -10.0 and profile["nodata"] == 0
        assert tags["ACQUISITION_DATE"] == dates[0].isoformat()
        assert data.min() >= 1  # 0 is nodata in a TCI
    refl, profile, _ = read(small_scene.reflectance_paths[2019][0])
    assert refl.shape == (4, 96, 96) and refl.dtype == np.uint16


def test_same_seed_same_scene_other_seed_other_scene(tmp_path):
    a = simulate_scene(tmp_path / "a", seed=11, size=48, dates_per_period=2)
    b = simulate_scene(tmp_path / "b", seed=11, size=48, dates_per_period=2)
    c = simulate_scene(tmp_path / "c", seed=12, size=48, dates_per_period=2)
    np.testing.assert_array_equal(read(a.tci_paths[2019][1])[0], read(b.tci_paths[2019][1])[0])
    assert not np.array_equal(read(a.tci_paths[2019][1])[0], read(c.tci_paths[2019][1])[0])


def test_roads_of_the_later_period_include_the_earlier_ones_and_new_ones(small_scene):
    from osgeo import ogr

    source = ogr.Open(str(small_scene.labels_path))
    early = source.GetLayerByName("roads_2016")
    late = source.GetLayerByName("roads_2019")
    assert late.GetFeatureCount() > early.GetFeatureCount() > 0
    built = [f.GetField("built") for f in late]
    assert "between periods" in built and "before" in built
    assert source.GetLayerByName("mangroves") is not None


def test_true_colour_follows_the_tci_scaling():
    toa = np.zeros((4, 1, 3), np.float32)
    toa[2, 0] = [0.0, TCI_SATURATION / 2, 1.0]  # B04 -> red
    red = true_colour(toa)[0, 0]
    assert red.tolist() == [1, 128, 255]


def test_clouds_hide_the_ground_on_some_dates(tmp_path):
    scene = simulate_scene(tmp_path / "cloudy", seed=2, size=128, dates_per_period=5)
    cloudy = [a for a in scene.acquisitions[2016] if a.cloud_cover > 0.2]
    assert cloudy, "seed 2 has cloudy dates in 2016"
    for path, acquisition in zip(scene.tci_paths[2016], scene.acquisitions[2016]):
        data = read(path)[0]
        white = (data.min(axis=0) > 200).mean()
        if acquisition.cloud_cover > 0.2:
            assert white > 0.5 * acquisition.cloud_cover
        elif acquisition.cloud_cover == 0:
            assert white < 0.02
    assert scene.acquisitions[2016][0].date > dt.date(2016, 1, 1)
