"""The simulator: georeferenced, deterministic, roads that grow, clouds that hide them."""

import datetime as dt

import numpy as np
import pytest
import rasterio

from timeseg.core.dates import detect_date
from timeseg.core.true_colour import TCI_SATURATION
from timeseg.models.simulator import simulate_scene
from timeseg.models.simulator.imaging import true_colour


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


# The real Sentinel-2 L1C sample of research/real_check.py (T33UUU, 2017-02-16), docs/real_sentinel2.md.
REAL_MEAN = np.array([82.8, 85.5, 105.8])
REAL_STD = np.array([22.4, 15.6, 13.8])
REAL_NEIGHBOUR_DIFFERENCE = np.array([2.52, 1.75, 1.57])


def test_cloud_free_dates_have_the_texture_and_contrast_of_a_real_scene(tmp_path):
    from timeseg.research.real_check import clear_statistics

    paths = [path for seed in (500, 501, 502)
             for year_paths in simulate_scene(tmp_path / str(seed), seed, size=256).tci_paths.values()
             for path in year_paths]
    stats = clear_statistics(paths)
    np.testing.assert_allclose(stats.neighbour_difference, REAL_NEIGHBOUR_DIFFERENCE, rtol=0.2)
    np.testing.assert_allclose(stats.mean, REAL_MEAN, rtol=0.15)
    # version 2 had [35.1, 23.7, 26.3]: far more contrast than the real scene
    assert np.all(np.array(stats.std) < 1.35 * REAL_STD)


def test_some_villages_lie_where_no_road_passes_and_others_on_roads():
    from timeseg.models.simulator.landscape import Cover, make_landscape, road_distance

    far, near = [], []
    for seed in range(6):
        land = make_landscape(128, np.random.default_rng(seed))
        for period in (0, 1):
            distance = road_distance(land.roads_of(period), 128)[land.cover[period] == Cover.SETTLEMENT]
            far.append((distance > 10).sum())
            near.append((distance < 2).sum())
    settled = sum(far) + sum(near)
    assert sum(far) > 0.25 * settled and sum(near) > 0.25 * settled
    assert sum(f > 0 for f in far) >= 6  # in most scenes and periods, not in a lucky one


def test_faint_tracks_are_roads_in_the_labels(small_scene):
    from osgeo import ogr

    land = small_scene.landscape
    tracks = [r for r in land.roads if r.width_px <= 1.1 and 0.3 <= r.contrast <= 0.6]
    assert len(tracks) >= 3
    source = ogr.Open(str(small_scene.labels_path))
    for period, year in enumerate(small_scene.years):
        layer = source.GetLayerByName(f"roads_{year}")
        starts = {tuple(np.round(f.GetGeometryRef().GetPoint_2D(0), 3)) for f in layer}
        assert layer.GetFeatureCount() == len(land.roads_of(period))
        for track in land.roads_of(period):
            assert tuple(np.round(small_scene.transform * tuple(track.points[0]), 3)) in starts


def test_field_margins_streams_and_tree_lines_are_drawn_but_are_not_roads():
    from timeseg.models.simulator.imaging import ground_reflectance
    from timeseg.models.simulator.landscape import Cover, Margin, make_landscape, road_distance

    lined, streams, nir_drop = [], 0, []
    for seed in range(4):
        land = make_landscape(128, np.random.default_rng(seed))
        ground = ground_reflectance(land, 1, 60, np.random.default_rng(0))
        off_road = road_distance(land.roads_of(1), 128) > 3
        edge = np.zeros(land.field_id.shape, dtype=bool)
        edge[:, :-1] |= land.field_id[:, :-1] != land.field_id[:, 1:]
        edge[:-1] |= land.field_id[:-1] != land.field_id[1:]
        lined.append((land.margin > 0)[edge & (land.cover[1] == Cover.FIELD)].mean())
        hedge = (land.margin == Margin.HEDGE) & (land.cover[1] == Cover.FIELD) & off_road
        open_field = (land.cover[1] == Cover.FIELD) & (land.margin == 0) & off_road
        if hedge.any():  # hedgerows are darker than the fields they line, in red
            assert ground[2][hedge].mean() < ground[2][open_field].mean()
        for stream in land.streams:
            streams += 1
            assert stream.width_px < 2.5
            assert not any(stream is road for road in land.roads)
        if land.streams:  # water: dark in the near infrared along the stream
            window, coverage, _ = land.line_coverage(land.streams[0])
            centre = (coverage > 0.9) & off_road[window]
            nir_drop.append(ground[3][window][centre].mean() / ground[3][open_field].mean())
    assert np.mean(lined) > 0.15 and sorted(lined)[1] > 0.05  # a share of the field edges in most scenes
    assert streams >= 4 and max(nir_drop) < 0.8


def test_bright_shores_line_some_waters_and_are_not_roads():
    from scipy import ndimage

    from timeseg.models.simulator.imaging import ground_reflectance
    from timeseg.models.simulator.landscape import Cover, make_landscape, road_distance

    lined = 0
    for seed in range(8):
        land = make_landscape(128, np.random.default_rng(seed))
        cover = land.cover[-1]
        shore = cover == Cover.SHORE
        if not shore.any():
            continue
        lined += 1
        water = cover == Cover.WATER
        assert ndimage.distance_transform_edt(~water)[shore].max() <= 3  # a narrow band at the water's edge
        ground = ground_reflectance(land, 1, 60, np.random.default_rng(0))
        off_road = road_distance(land.roads_of(1), 128) > 3
        assert ground[2][shore & off_road].mean() > 2 * ground[2][water & off_road].mean()  # bright beside dark
    assert 2 <= lined <= 7  # some scenes' waters, not all


@pytest.mark.parametrize("option,value,said", [("--size", "0", "--size must be between 64 and 4096 pixels, not 0"),
                                               ("--size", "-5", "--size must be between 64 and 4096 pixels"),
                                               ("--dates", "0", "--dates must be between 1 and 60 per period")])
def test_simulate_refuses_sizes_and_counts_it_cannot_make(tmp_path, capsys, option, value, said):
    """numpy's 'zero-size array' and empty period folders, before: one line saying what to give, nothing written."""
    from timeseg.cli import main

    assert main(["simulate", "--output", str(tmp_path / "scene"), option, value]) == 1
    assert said in capsys.readouterr().err and not (tmp_path / "scene").exists()
