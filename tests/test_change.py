"""Change maps: codes, nodata, hysteresis, speckle removal, and the new-road length."""

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

from timeseg.cli import main as core_main
from timeseg.core.change import (
    NEW,
    NODATA,
    NONE,
    REMOVED,
    ChangeError,
    ChangeOptions,
    compute_change,
)
from timeseg.core.change_lines import change_lines
from timeseg.core.raster_stack import Grid

TRANSFORM = from_origin(400_000, 1_600_000, 10, 10)


def write(path, data, nodata, transform=TRANSFORM):
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[1], height=data.shape[0], count=1,
                       dtype=data.dtype.name, crs=CRS.from_epsg(32628), transform=transform,
                       nodata=nodata) as dataset:
        dataset.write(data[None])
    return path


@pytest.fixture
def periods(tmp_path):
    before = np.zeros((40, 60), np.uint8)
    before[10, 5:55] = 1  # an old road, 50 px
    before[30, 40:50] = 1  # a road that disappears
    after = before.copy()
    after[30, 40:50] = 0
    after[20:22, 10:40] = 1  # a new road, 30 px long and 2 px wide
    after[35, 5] = 1  # one-pixel speckle
    after[0:3, 0:3] = 255  # nodata corner
    return write(tmp_path / "before.tif", before, 255), write(tmp_path / "after.tif", after, 255)


def test_codes_and_summary(periods, tmp_path):
    before, after = periods
    summary = compute_change(before, after, tmp_path / "change.tif", ChangeOptions(min_patch_pixels=0))
    with rasterio.open(tmp_path / "change.tif") as dataset:
        change = dataset.read(1)
        assert dataset.transform == TRANSFORM and dataset.colormap(1)[NEW][:3] == (230, 20, 20)
    assert (change[20:22, 10:40] == NEW).all() and change[35, 5] == NEW
    assert (change[30, 40:50] == REMOVED).all()
    assert (change[10, 5:55] == NONE).all() and (change[0:3, 0:3] == NODATA).all()
    assert summary.pixels == {"none": 40 * 60 - 61 - 10 - 9, "new": 61, "removed": 10, "nodata": 9}
    assert summary.area_m2["new"] == 61 * 100
    assert summary.removed_length_m == pytest.approx(90, abs=10)
    saved = json.loads((tmp_path / "change.json").read_text())
    assert saved["pixels"]["new"] == 61 and saved["pixel_size_m"] == 10
    # what it was made from and how, wherever the summary is read from
    assert (saved["before"], saved["after"]) == (str(before.absolute()), str(after.absolute()))
    assert saved["lines"]["path"] == str((tmp_path / "change.gpkg").absolute())
    # class maps read no probability threshold: none is recorded as used
    assert saved["options"] == {"target_class": 1, "high": None, "low": None, "min_patch_pixels": 0,
                                "tolerance_px": 1}
    assert saved["dates"] == {"before": [], "after": []}  # these maps carry no dates
    assert not summary.warnings


def test_maps_of_two_thresholds_and_a_map_partly_without_data_are_said(periods, tmp_path):
    """Class maps made at thresholds 0.3 and 0.5 (their tags say so): a warning, and the JSON records both (a
    change of threshold showed as 14 % more removed roads, silently, and the summary could not tell). A map
    without data over a fifth of it (a cloud on every date of a period): said in a warning, in the dock's message
    bar, and drawn grey (it was transparent, like 'nothing changed')."""
    from timeseg.core.qml import NO_DATA_GREY
    from timeseg.ui.results import change_message

    before, after = periods
    for path, threshold in ((before, "0.3"), (after, "0.5")):
        with rasterio.open(path, "r+") as dataset:
            dataset.update_tags(threshold=threshold)
    with rasterio.open(after, "r+") as dataset:
        values = dataset.read(1)
        values[:, 48:] = 255  # 12 of 60 columns
        dataset.write(values, 1)
    summary = compute_change(before, after, tmp_path / "change.tif", ChangeOptions(min_patch_pixels=0))
    folder = tmp_path.name
    assert f"warning: {folder}/before.tif is cut at threshold 0.3, {folder}/after.tif at 0.5: a road called at " \
           "one and not the other shows as change; make both periods at one threshold (--high for a probability " \
           "map)" in summary.warnings
    saved = json.loads((tmp_path / "change.json").read_text())
    assert saved["thresholds"] == {"before": 0.3, "after": 0.5}
    # against a probability map, cut here at --high: the same (it was silent: 8.7 % more removed lines in a QA run)
    with rasterio.open(after) as dataset:
        probability = np.where(dataset.read(1) == 1, 0.9, 0.1).astype(np.float32)
    later = write(tmp_path / "after_probability.tif", probability, None)
    mixed = compute_change(before, later, tmp_path / "mixed.tif", ChangeOptions(min_patch_pixels=0, high=0.6))
    assert any(" is cut at threshold 0.3, " in w and " at 0.6: " in w for w in mixed.warnings), mixed.warnings
    unseen = [w for w in summary.warnings if "of the map has no data in a period" in w]
    assert unseen == ["warning: 20% of the map has no data in a period (outside its rasters' data or its area, or "
                      "white on all its dates): no change can be seen there, drawn grey"]
    assert change_message(summary.lines()).endswith("; 20% of the map has no data in a period")
    style = (tmp_path / "change.qml").read_text()
    assert f'nodataColor="{",".join(map(str, NO_DATA_GREY))}"' in style


def test_segment_records_the_threshold_of_its_class_map(local_model, small_scene, tmp_path):
    """A binary model's class map tags the threshold it was made at (for change to compare)."""
    from timeseg.core.dates import dated_rasters
    from timeseg.core.segment import SegmentRequest, segment

    rasters = dated_rasters(small_scene.tci_paths[2019])
    result = segment(SegmentRequest(rasters, local_model, tmp_path / "out", device="cpu", threshold=0.3))
    with rasterio.open(result.classes_path) as dataset:
        assert dataset.tags()["threshold"] == "0.3"


def test_thresholds_on_class_maps_are_said_to_be_unused(periods, tmp_path):
    before, after = periods
    summary = compute_change(before, after, tmp_path / "change.tif", ChangeOptions(low=0.3))
    assert summary.warnings == ["warning: --low reads probability maps; these are class maps, so it was not used"]
    summary = compute_change(before, after, tmp_path / "change.tif", ChangeOptions(high=0.3, low=0.2))
    assert summary.warnings == ["warning: --high and --low read probability maps; these are class maps, so they "
                                "were not used"]
    assert json.loads((tmp_path / "change.json").read_text())["options"]["high"] is None


def test_periods_that_share_dates_are_said_to_overlap(periods, tmp_path):
    """The maps of June+September and of September alone: compared, with a warning naming the shared date."""
    before, after = periods
    for path, dates in ((before, "2021-06-17,2021-09-25"), (after, "2021-09-25")):
        with rasterio.open(path, "r+") as dataset:
            dataset.update_tags(dates=dates)
    summary = compute_change(before, after, tmp_path / "change.tif", ChangeOptions())
    assert ("warning: the periods overlap: before.tif is of 2021-06-17 to 2021-09-25, after.tif of 2021-09-25, both "
            "with 2021-09-25: what changed in between is partly hidden; give each period its own dates"
            ) in [w.replace(f"{tmp_path.name}/", "") for w in summary.warnings]


def test_new_and_removed_roads_as_lines(periods, tmp_path):
    """<name>.gpkg, layer lines: one line per road piece, lengths in metres adding up to the summary's."""
    from osgeo import ogr

    before, after = periods
    summary = compute_change(before, after, tmp_path / "change.tif", ChangeOptions(min_patch_pixels=3))
    source = ogr.Open(str(tmp_path / "change.gpkg"))
    layer = source.GetLayerByName("lines")
    assert layer.GetSpatialRef().GetAuthorityCode(None) == "32628"
    features = [(f.GetField("change"), f.GetField("length_m"), f.GetGeometryRef().Clone()) for f in layer]
    new = [f for f in features if f[0] == "new"]
    removed = [f for f in features if f[0] == "removed"]
    assert len(removed) == 1 and removed[0][1] == pytest.approx(90, abs=0.01)  # 10 px in a row, 9 steps of 10 m
    assert sum(length for _, length, _ in new) == pytest.approx(summary.new_length_m, rel=1e-6)
    assert sum(length for _, length, _ in removed) == pytest.approx(summary.removed_length_m, rel=1e-6)
    ends = {removed[0][2].GetPoint_2D(0), removed[0][2].GetPoint_2D(removed[0][2].GetPointCount() - 1)}
    assert ends == {(400_000 + 40.5 * 10, 1_600_000 - 30.5 * 10), (400_000 + 49.5 * 10, 1_600_000 - 30.5 * 10)}
    saved = json.loads((tmp_path / "change.json").read_text())
    assert saved["lines"]["removed"] == 1 and saved["lines"]["path"].endswith("change.gpkg")


def test_min_patch_drops_speckle(periods, tmp_path):
    before, after = periods
    summary = compute_change(before, after, tmp_path / "change.tif", ChangeOptions(min_patch_pixels=3))
    assert summary.pixels["new"] == 60
    assert summary.new_length_m == pytest.approx(300, abs=20)  # the 30 px road, its 2 px width ignored


def test_hysteresis_on_probabilities(tmp_path):
    before = np.zeros((20, 30), np.float32)
    after = np.zeros((20, 30), np.float32)
    after[5, 2:20] = 0.45  # weak, but connected to a strong pixel: kept
    after[5, 10] = 0.9
    after[15, 2:20] = 0.45  # weak and alone: dropped
    b = write(tmp_path / "pb.tif", before, float("nan"))
    a = write(tmp_path / "pa.tif", after, float("nan"))
    plain = compute_change(b, a, tmp_path / "plain.tif", ChangeOptions(high=0.6, min_patch_pixels=0))
    hysteresis = compute_change(b, a, tmp_path / "hyst.tif", ChangeOptions(high=0.6, low=0.4, min_patch_pixels=0))
    assert plain.pixels["new"] == 1 and hysteresis.pixels["new"] == 18
    # probability maps given: each line's mean P is the later map's own (it was left empty)
    from osgeo import ogr

    source = ogr.Open(str(tmp_path / "hyst.gpkg"))  # kept: its layer dies with it
    [mean] = [feature.GetField("mean_probability") for feature in source.GetLayerByName("lines")]
    assert mean == pytest.approx((17 * 0.45 + 0.9) / 18, abs=1e-4)


def test_a_road_found_a_pixel_aside_is_the_same_road(tmp_path, capsys):
    """The tolerance: a road one pixel aside on the other date is no change; two pixels aside, it is."""
    before = np.zeros((30, 60), np.uint8)
    after = np.zeros((30, 60), np.uint8)
    before[10, 5:55], after[11, 5:55] = 1, 1  # the same road, found a pixel lower in the later period
    after[20, 5:25] = 1  # a new road, 20 px
    before[25, 30:50], after[27, 30:50] = 1, 1  # 2 px aside: beyond a tolerance of 1
    b, a = write(tmp_path / "b.tif", before, 255), write(tmp_path / "a.tif", after, 255)
    pixelwise = compute_change(b, a, tmp_path / "c0.tif", ChangeOptions(min_patch_pixels=0, tolerance_px=0))
    assert (pixelwise.pixels["new"], pixelwise.pixels["removed"]) == (90, 70)
    summary = compute_change(b, a, tmp_path / "c1.tif", ChangeOptions(min_patch_pixels=0))  # the default: 1
    with rasterio.open(tmp_path / "c1.tif") as dataset:
        change = dataset.read(1)
    assert (change[20, 5:25] == NEW).all() and (change[27, 30:50] == NEW).all() and (change[25, 30:50] == REMOVED).all()
    assert (summary.pixels["new"], summary.pixels["removed"]) == (40, 20)
    assert (change[9:13, 5:55] == NONE).all()
    assert core_main(["change", "--before", str(b), "--after", str(a), "--output", str(tmp_path / "c2.tif"),
                      "--min-patch", "0", "--tolerance", "2"]) == 0
    assert json.loads((tmp_path / "c2.json").read_text())["pixels"]["removed"] == 0
    with pytest.raises(SystemExit):
        core_main(["change", "--before", str(b), "--after", str(a), "--output", str(tmp_path / "c3.tif"),
                   "--tolerance", "11"])
    assert "--tolerance: must be between 0 and 10" in capsys.readouterr().err and not (tmp_path / "c3.tif").exists()


def test_a_map_of_one_date_is_warned_of(periods, tmp_path, capsys):
    """Between single dates much of the change is false: the summary, the JSON and the command say so."""
    before, after = periods
    for path, dates in ((before, "2016-06-01"), (after, "2019-05-02,2019-06-11")):
        with rasterio.open(path, "r+") as dataset:
            dataset.update_tags(dates=dates)
    summary = compute_change(before, after, tmp_path / "change.tif")
    assert len(summary.warnings) == 1
    assert f"{before.parent.name}/before.tif was made from one date" in summary.warnings[0]
    assert summary.lines()[-1] == summary.warnings[0]
    assert json.loads((tmp_path / "change.json").read_text())["warnings"] == summary.warnings
    assert core_main(["change", "--before", str(before), "--after", str(after),
                      "--output", str(tmp_path / "c.tif")]) == 0
    assert "before.tif was made from one date" in capsys.readouterr().out


def test_before_on_another_grid_is_warped(tmp_path):
    after = np.zeros((20, 20), np.uint8)
    before = np.zeros((10, 10), np.uint8)  # 20 m pixels over the same area
    after[4:6, :] = 1
    before[2, :] = 1
    a = write(tmp_path / "a.tif", after, 255)
    b = write(tmp_path / "b.tif", before, 255, from_origin(400_000, 1_600_000, 20, 20))
    summary = compute_change(b, a, tmp_path / "c.tif")
    assert summary.pixels["new"] == 0 and summary.pixels["removed"] == 0
    resampled = [w for w in summary.warnings if "is not on the grid of" in w]
    assert resampled == [f"warning: {tmp_path.name}/b.tif is not on the grid of {tmp_path.name}/a.tif (another CRS, "
                         "pixel size or corner): it was resampled onto it, so roads along its pixels' edges may show "
                         "as change; for a cleaner change map, give both periods' rasters on one grid (gdalwarp)"]
    with pytest.raises(ChangeError, match="^the change map is a GeoTIFF: name it newroads.tif$"):
        compute_change(b, a, tmp_path / "newroads")
    assert not (tmp_path / "newroads").exists()
    earlier = write(tmp_path / "e.tif", after, 255)  # on the later map's grid: no such warning
    assert not [w for w in compute_change(earlier, a, tmp_path / "same.tif").warnings if "grid" in w]
    moved = write(tmp_path / "m.tif", after, 255, from_origin(400_030, 1_600_000, 10, 10))  # 3 pixels east
    assert not [w for w in compute_change(moved, a, tmp_path / "moved.tif").warnings if "grid" in w]


def _web_mercator_at_60_north():
    from rasterio.warp import transform as transform_points

    xs, ys = transform_points("EPSG:4326", "EPSG:3857", [11.0], [60.0])
    return from_origin(xs[0], ys[0], 20, 20)


@pytest.mark.parametrize("epsg,grid,metres_per_pixel", [
    (4326, lambda: from_origin(10.0, 0.001, 1e-4, 1e-4), 11.13),  # the equator: 1e-4 degree is about 11.1 m
    (3857, _web_mercator_at_60_north, 10.0),  # 60 degrees north: 20 units are 10 ground metres, not 20
])
def test_lengths_are_ground_metres(tmp_path, epsg, grid, metres_per_pixel):
    """Maps in degrees and in the web maps' Mercator: lengths and areas in metres on the ground."""
    after = np.zeros((20, 120), np.uint8)
    after[10, 10:110] = 1  # a new road of 100 pixels, west to east

    def write_map(path, data):
        with rasterio.open(path, "w", driver="GTiff", width=120, height=20, count=1, dtype="uint8",
                           crs=CRS.from_epsg(epsg), transform=grid(), nodata=255) as dataset:
            dataset.write(data[None])
        return path

    summary = compute_change(write_map(tmp_path / "b.tif", np.zeros_like(after)),
                             write_map(tmp_path / "a.tif", after), tmp_path / "c.tif")
    assert summary.pixel_size_m == pytest.approx(metres_per_pixel, rel=0.005)
    assert summary.new_length_m == pytest.approx(99 * metres_per_pixel, rel=0.02)
    assert summary.area_m2["new"] == pytest.approx(100 * metres_per_pixel**2, rel=0.01)


def test_lengths_in_degrees_follow_the_road_where_a_degree_of_longitude_is_shorter(tmp_path):
    """At 60 degrees north a pixel of 1e-4 degree is 5.6 m across and 11.1 m along: a road north to south
    is 11.1 m per pixel in the summary as in its lines (not the pixel's mean size)."""
    after = np.zeros((120, 20), np.uint8)
    after[10:110, 10] = 1  # 100 pixels, north to south

    def write_map(path, data):
        with rasterio.open(path, "w", driver="GTiff", width=20, height=120, count=1, dtype="uint8",
                           crs=CRS.from_epsg(4326), transform=from_origin(10.0, 60.006, 1e-4, 1e-4),
                           nodata=255) as dataset:
            dataset.write(data[None])
        return path

    output = tmp_path / "c.tif"
    summary = compute_change(write_map(tmp_path / "b.tif", np.zeros_like(after)),
                             write_map(tmp_path / "a.tif", after), output)
    assert summary.new_length_m == pytest.approx(99 * 11.13, rel=0.01)
    assert json.loads(output.with_suffix(".json").read_text())["new_length_m"] == pytest.approx(99 * 11.13, rel=0.01)


def test_no_overlap_and_missing_files_are_clear_errors(tmp_path, capsys):
    a = write(tmp_path / "a.tif", np.zeros((10, 10), np.uint8), 255)
    far = write(tmp_path / "far.tif", np.zeros((10, 10), np.uint8), 255, from_origin(900_000, 100_000, 10, 10))
    with pytest.raises(ChangeError, match="does not overlap"):
        compute_change(far, a, tmp_path / "c.tif")
    assert not (tmp_path / "c.tif").exists()
    assert core_main(["change", "--before", str(tmp_path / "nope.tif"), "--after", str(a),
                      "--output", str(tmp_path / "c.tif")]) == 1
    assert "raster not found" in capsys.readouterr().err


def test_line_length_of_a_diagonal():
    mask = np.zeros((30, 30), bool)
    for i in range(20):
        mask[5 + i, 5 + i] = True
    grid = Grid(CRS.from_epsg(32628), TRANSFORM, 30, 30)
    [line] = change_lines(mask, np.zeros_like(mask), grid, None, None)
    assert line.length_m == pytest.approx(19 * np.sqrt(2) * 10, rel=0.01)


@pytest.mark.parametrize("degrees", [0, 20, 30, 60])
def test_a_straight_road_at_any_angle_is_measured_at_its_length(degrees):
    """A road 3 px wide and 200 px long at 0, 20, 30 or 60 degrees: its line measures 200 px within 3 px, what its
    ends' widths leave uncertain (pixel by pixel, the staircase made a road at 30 degrees 7.7 % long)."""
    from scipy.ndimage import binary_dilation
    from skimage.draw import line as draw_line

    mask = np.zeros((300, 300), bool)
    angle = np.radians(degrees)
    (r0, c0), (r1, c1) = (50, 50), (50 + round(200 * np.sin(angle)), 50 + round(200 * np.cos(angle)))
    mask[draw_line(r0, c0, r1, c1)] = True
    mask = binary_dilation(mask, np.ones((3, 3), bool))
    grid = Grid(CRS.from_epsg(32628), TRANSFORM, 300, 300)
    [line] = change_lines(mask, np.zeros_like(mask), grid, None, None)
    assert line.length_m == pytest.approx(np.hypot(r1 - r0, c1 - c0) * 10, abs=30)
    assert len(line.vertices) < len(line.pixels) / 5  # straightened: not a vertex per pixel


def test_change_check_on_a_real_pair_with_nothing_built(small_scene, tmp_path):
    """``timeseg-research change-check``: the shipped road model on Inn in June and September 2021, where every
    change is false; a tolerance of 1 px takes out a good part of it, and never adds change anywhere."""
    from timeseg.core.model_card import SHIPPED_ROAD_MODEL
    from timeseg.research.change_check import run

    pixelwise, default = run(SHIPPED_ROAD_MODEL, tmp_path, small_scene.folder, tolerances=(0, 1))
    assert 0 < default.real_new_km < 0.8 * pixelwise.real_new_km
    assert default.real_removed_km < 0.8 * pixelwise.real_removed_km
    assert default.sample_removed_km <= pixelwise.sample_removed_km
    assert 0 <= default.sample_precision <= 1 and 0 <= default.sample_recall <= 1


def test_a_map_is_named_with_its_folder_also_in_the_current_folder(tmp_path, monkeypatch):
    from timeseg.core.change import shown

    monkeypatch.chdir(tmp_path)
    assert shown(Path("far_classes.tif")) == f"{tmp_path.name}/far_classes.tif"  # was "/far_classes.tif"
    assert shown(Path("2019/classes.tif")) == "2019/classes.tif"


def test_maps_of_more_than_two_classes_need_the_class_to_follow(tmp_path, capsys):
    """Crop maps (other, meadow, wheat, maize): without --class the change of "meadow" (class 1, a road map's
    default) was mapped without a word; now refused with the classes to choose from; with --class 3 the maize
    fields sown and given up are mapped, pixel by pixel."""
    before = np.zeros((30, 30), np.uint8)
    before[:10, :10] = 3  # maize
    after = before.copy()
    after[:10, :10] = 2  # now wheat
    after[20:, 20:] = 3  # maize sown
    paths = []
    for name, values in (("before", before), ("after", after)):
        path = write(tmp_path / f"{name}.tif", values, 255)
        with rasterio.open(path, "r+") as dataset:
            dataset.update_tags(class_names="other,meadow,wheat,maize")
        paths.append(path)
    with pytest.raises(ChangeError, match=r"^these maps hold 4 classes \(other, meadow, wheat, maize\): give the "
                                          r"class whose change to map \(1 for meadow, \.\.\.: --class on the "
                                          r"command line, Class in Processing\)$"):
        compute_change(*paths, tmp_path / "c.tif")
    summary = compute_change(*paths, tmp_path / "c.tif", ChangeOptions(target_class=3, tolerance_px=0,
                                                                      min_patch_pixels=1))
    assert summary.pixels["new"] == 100 and summary.pixels["removed"] == 100
    assert summary.lines()[:2] == ["new maize: 100 px, 1.00 ha", "removed maize: 100 px, 1.00 ha"]  # no "km"
    assert core_main(["change", "--before", str(paths[0]), "--after", str(paths[1]), "--output",
                      str(tmp_path / "d.tif")]) == 1
    assert "give the class whose change to map" in capsys.readouterr().err


def test_maps_of_two_models_are_refused_and_a_models_variants_are_one_model(small_scene, local_model, tmp_path,
                                                                            capsys):
    """A map of this year by a model fitted to the area against last year's by the shipped model: the change
    would be mostly the models'. Each map names its model in its tags; a precision variant is the same model."""
    import shutil

    import torch

    from tests_support import TEST_CARD
    from timeseg.core.runtime import model_fingerprint
    from timeseg.models.checkpoint import build_network, save_checkpoint
    from timeseg.models.export import export_checkpoint
    from timeseg.models.settings import NetworkConfig

    torch.manual_seed(4)
    config = NetworkConfig(depth=1, base_channels=4, hidden_channels=2)
    save_checkpoint(tmp_path / "other.pt", build_network(config), config, TEST_CARD, "final", 0, {})
    export_checkpoint(tmp_path / "other.pt", tmp_path / "other.onnx")
    for year, model in ((2016, local_model), (2019, tmp_path / "other.onnx"), (2020, local_model)):
        paths = [str(p) for p in small_scene.tci_paths[min(year, 2019)]]
        assert core_main(["segment", "--model", str(model), "--output", str(tmp_path / str(year)), *paths]) == 0
    with rasterio.open(tmp_path / "2016" / "classes.tif") as classes:
        assert classes.tags()["model"] == "local.onnx"
        assert classes.tags()["model_sha256"] == model_fingerprint(local_model)
    with pytest.raises(ChangeError, match=r"2016/classes.tif and 2019/classes.tif were made by local.onnx and "
                                          r"other.onnx: compare maps made by the same model \(run the earlier "
                                          r"period again with other.onnx\)"):
        compute_change(tmp_path / "2016" / "classes.tif", tmp_path / "2019" / "classes.tif", tmp_path / "c.tif")
    assert not list(tmp_path.glob("c*"))
    compute_change(tmp_path / "2016" / "classes.tif", tmp_path / "2020" / "classes.tif", tmp_path / "d.tif")
    with rasterio.open(tmp_path / "2020" / "classes.tif", "r+") as classes:  # as made by last year's release
        classes.update_tags(model_sha256="0123456789abcdef")
    with pytest.raises(ChangeError, match=r"were made by two versions of local.onnx: compare maps made by the"):
        compute_change(tmp_path / "2016" / "classes.tif", tmp_path / "2020" / "classes.tif", tmp_path / "e.tif")
    # a map made before maps named their model: compared, with a warning, and the models in the summary
    with rasterio.open(tmp_path / "2016" / "classes.tif") as source:
        profile, values, tags = source.profile, source.read(), source.tags()
    with rasterio.open(tmp_path / "old_classes.tif", "w", **profile) as old:
        old.write(values)
        old.update_tags(**{k: v for k, v in tags.items() if k not in ("model", "model_sha256")})
    summary = compute_change(tmp_path / "old_classes.tif", tmp_path / "2019" / "classes.tif", tmp_path / "f.tif")
    assert any("old_classes.tif does not say which model made it" in w and "if not other.onnx" in w
               for w in summary.warnings)
    assert json.loads((tmp_path / "f.json").read_text())["models"] == {"before": None, "after": "other.onnx"}
    # its int8 file beside it is the same model; a file of the same name retrained is another
    shutil.copyfile(local_model, tmp_path / "local.onnx")
    (tmp_path / "local.int8.onnx").write_bytes(b"int8 bytes")
    assert model_fingerprint(tmp_path / "local.int8.onnx") == model_fingerprint(local_model)
    assert model_fingerprint(tmp_path / "other.onnx") != model_fingerprint(local_model)
