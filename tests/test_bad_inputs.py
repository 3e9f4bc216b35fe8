"""Every input a user can get wrong gets one clear message, and nothing is left half-written."""

import builtins
import datetime as dt

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

from tests_support import TEST_CARD as CARD
from tests_support import edit_card
from timeseg.cli import main as core_main
from timeseg.core.model_card import ModelCardError
from timeseg.core.raster_stack import DatedRaster, RasterStackError
from timeseg.core.runtime import RuntimeUnavailable, open_session
from timeseg.core.segment import SegmentError, SegmentRequest, segment, select_dates


def rasters_of(scene, year):
    return [DatedRaster(p, a.date) for p, a in zip(scene.tci_paths[year], scene.acquisitions[year])]


def write(path, data, transform=from_origin(320_000, 1_780_000, 10, 10), epsg=32628):
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                       dtype=data.dtype.name, crs=CRS.from_epsg(epsg), transform=transform, nodata=0) as dataset:
        dataset.write(data)
    return path


def test_duplicate_dates(local_model, small_scene, tmp_path):
    rasters = rasters_of(small_scene, 2019)
    twice = [rasters[0], DatedRaster(rasters[1].path, rasters[0].date)]
    with pytest.raises(SegmentError, match="have the same date .*: give each date once .two pieces or tiles of one "
                                           "day: mosaic them first"):
        segment(SegmentRequest(twice, local_model, tmp_path / "out"))
    one_file = [rasters[0], DatedRaster(rasters[0].path, rasters[0].date)]
    with pytest.raises(SegmentError, match=f"^{rasters[0].path.name} is given twice: give it once$"):
        segment(SegmentRequest(one_file, local_model, tmp_path / "out"))
    # an export cut into pieces that do not overlap (Earth Engine's): the same date is said, not "no overlap"
    with rasterio.open(rasters[0].path) as source:
        profile, data = source.profile, source.read()
    pieces = []
    for index, columns in enumerate((slice(0, 32), slice(32, 64))):
        path = tmp_path / f"piece-{index}.tif"
        corner = profile["transform"] * rasterio.Affine.translation(columns.start, 0)
        with rasterio.open(path, "w", **(profile | {"width": 32, "transform": corner})) as piece:
            piece.write(data[:, :, columns])
        pieces.append(DatedRaster(path, rasters[0].date))
    with pytest.raises(SegmentError, match="^piece-0.tif and piece-1.tif have the same date"):
        segment(SegmentRequest([*pieces, rasters[1]], local_model, tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_wrong_data_type(local_model, tmp_path):
    """Floats to a false-colour model (B08, B04, B03 in bytes): refused. (A true-colour model reads
    rasters of other types as reflectance: tests/test_true_colour.py.)"""
    model = edit_card(local_model, tmp_path / "false_colour.onnx", bands=["B08", "B04", "B03"])
    dates = [dt.date(2019, 1, 1), dt.date(2019, 2, 1)]
    floats = [DatedRaster(write(tmp_path / f"f{i}.tif", np.ones((3, 64, 64), np.float32)), d)
              for i, d in enumerate(dates)]
    with pytest.raises(SegmentError, match="hold float32 values, the model wants uint8"):
        segment(SegmentRequest(floats, model, tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_rasters_that_do_not_overlap(local_model, small_scene, tmp_path):
    rasters = rasters_of(small_scene, 2019)
    far = write(tmp_path / "far.tif", np.ones((3, 64, 64), np.uint8), from_origin(100_000, 100_000, 10, 10))
    with pytest.raises(RasterStackError, match="does not overlap .*, the raster on whose grid the dates are read"):
        segment(SegmentRequest([*rasters[:2], DatedRaster(far, dt.date(2019, 12, 1))], local_model, tmp_path))


def test_a_raster_in_another_crs_is_aligned(local_model, small_scene, tmp_path):
    """The third date reprojected to WGS 84: warped back onto the reference grid, no error."""
    from rasterio.warp import calculate_default_transform, reproject

    rasters = rasters_of(small_scene, 2019)
    with rasterio.open(rasters[2].path) as src:
        transform, width, height = calculate_default_transform(src.crs, "EPSG:4326", src.width, src.height,
                                                               *src.bounds)
        data = np.zeros((3, height, width), np.uint8)
        reproject(src.read(), data, src_transform=src.transform, src_crs=src.crs, dst_transform=transform,
                  dst_crs="EPSG:4326")
    wgs84 = tmp_path / "wgs84.tif"
    with rasterio.open(wgs84, "w", driver="GTiff", width=width, height=height, count=3, dtype="uint8",
                       crs="EPSG:4326", transform=transform, nodata=0) as dst:
        dst.write(data)
    result = segment(SegmentRequest([*rasters[:2], DatedRaster(wgs84, rasters[2].date)], local_model,
                                    tmp_path / "out"))
    with rasterio.open(result.probability_path) as out, rasterio.open(rasters[0].path) as ref:
        assert out.crs == ref.crs and out.transform == ref.transform and out.shape == ref.shape
    # the WGS 84 raster as the chosen reference: the outputs take its grid
    result = segment(SegmentRequest([*rasters[:2], DatedRaster(wgs84, rasters[2].date)], local_model,
                                    tmp_path / "out_wgs84", reference_path=wgs84))
    with rasterio.open(result.probability_path) as out:
        assert out.crs.to_epsg() == 4326 and out.transform == transform and out.shape == (height, width)


@pytest.mark.parametrize("stored", ["rows from south to north", "columns from east to west"])
def test_rasters_stored_south_up_are_read_north_up(local_model, small_scene, tmp_path, stored):
    """Each date written with its rows from south to north (a positive row step), or its columns from east
    to west: read turned north-up, said once per date; the maps equal the north-up rasters' pixel for
    pixel, on their north-up grid."""
    rasters = rasters_of(small_scene, 2019)
    south_up = []
    for raster in rasters:
        with rasterio.open(raster.path) as source:
            data, grid = source.read(), source.transform
            if stored == "rows from south to north":
                flipped = rasterio.Affine(grid.a, 0, grid.c, 0, -grid.e, grid.f + grid.e * source.height)
                data = data[:, ::-1]
            else:
                flipped = rasterio.Affine(-grid.a, 0, grid.c + grid.a * source.width, 0, grid.e, grid.f)
                data = data[:, :, ::-1]
            south_up.append(DatedRaster(write(tmp_path / raster.path.name, data.copy(), flipped,
                                              source.crs.to_epsg()), raster.date))
    expected = segment(SegmentRequest(rasters, local_model, tmp_path / "north_up"))
    result = segment(SegmentRequest(south_up, local_model, tmp_path / "south_up"))
    assert [w for w in result.warnings if "is stored with" in w] == [
        f"{r.path.name} is stored with its {stored}: it is read turned north-up, as the model sees the ground, and "
        "the outputs are north-up" for r in south_up]
    assert len(result.warnings) == len(expected.warnings) + len(rasters)
    for name in ("probability_path", "classes_path"):
        with rasterio.open(getattr(expected, name)) as north, rasterio.open(getattr(result, name)) as read:
            assert read.transform == north.transform and read.crs == north.crs
            np.testing.assert_array_equal(read.read(), north.read())
    # a change map between the north-up and the south-up maps: the same place, nothing changed
    from timeseg.core.change import compute_change

    summary = compute_change(expected.classes_path, result.classes_path, tmp_path / "change.tif")
    assert summary.pixels["new"] == summary.pixels["removed"] == 0


def test_a_rotated_geotransform_is_refused_with_how_to_warp_it(local_model, small_scene, tmp_path):
    rasters = rasters_of(small_scene, 2019)
    with rasterio.open(rasters[1].path) as source:
        grid = source.transform
        turned = rasterio.Affine(grid.a, 0.5, grid.c, 0.5, grid.e, grid.f)  # about 3 degrees off north
        rotated = write(tmp_path / rasters[1].path.name, source.read(), turned, source.crs.to_epsg())
    with pytest.raises(RasterStackError, match=f"^{rotated.name} has a rotated geotransform .its rows do not run "
                                               f"east-west.: warp it north-up first, e.g. gdalwarp {rotated.name} "
                                               "S2_SIM_20190516_TCI_north_up.tif$"):
        segment(SegmentRequest([rasters[0], DatedRaster(rotated, rasters[1].date), rasters[2]], local_model,
                               tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_a_date_missing_over_part_of_the_area_is_said_after_the_run(local_model, small_scene, tmp_path):
    """The middle date beyond a swath's edge over the left half (no data there): the run says afterwards
    that about half the area lacks a date, and how a model with a no-data value reads it; a full stack
    says nothing of it."""
    rasters = rasters_of(small_scene, 2019)
    with rasterio.open(rasters[1].path) as source:
        data = source.read()
        data[:, :, : source.width // 2] = 0
        cut = write(tmp_path / rasters[1].path.name, data, source.transform, source.crs.to_epsg())
    stack = [rasters[0], DatedRaster(cut, rasters[1].date), rasters[2]]
    result = segment(SegmentRequest(stack, local_model, tmp_path / "cut"))
    said = [w for w in result.warnings if "lacks one or more of the dates" in w]
    assert said == ["50% of the mapped area lacks one or more of the dates (beyond a swath's edge, or masked): "
                    "the map rests on fewer dates there and may be less sure"]
    model = edit_card(local_model, tmp_path / "no_data.onnx", no_data_value=[255, 255, 255])
    result = segment(SegmentRequest(stack, model, tmp_path / "cut_no_data"))
    assert any("masked); the model reads them there as its no-data value, an overcast date to it: " in w
               for w in result.warnings)
    full = segment(SegmentRequest(rasters, local_model, tmp_path / "full"))
    assert not any("lacks one or more of the dates" in w for w in full.warnings)
    # each pixel counted once, whatever the tiles' overlap: a strip of 7 of 96 columns (7.3 %)
    with rasterio.open(rasters[1].path) as source:
        data = source.read()
        data[:, :, 40:47] = 0
        (tmp_path / "strip").mkdir()
        strip = write(tmp_path / "strip" / rasters[1].path.name, data, source.transform, source.crs.to_epsg())
    stack = [rasters[0], DatedRaster(strip, rasters[1].date), rasters[2]]
    result = segment(SegmentRequest(stack, local_model, tmp_path / "strip_out"))
    assert [w[:4] for w in result.warnings if "lacks one or more" in w] == ["7% o"]
    # an area of interest where every date has data: nothing said, whatever the tiles read beside it
    with rasterio.open(cut) as source:
        left, bottom, right, top = source.bounds
    inside = f"{left + 600},{bottom + 100},{right - 100},{top - 100}"  # the right half, 10 px in
    result = segment(SegmentRequest([rasters[0], DatedRaster(cut, rasters[1].date), rasters[2]], local_model,
                                    tmp_path / "aoi", aoi=inside))
    assert not any("lacks one or more of the dates" in w for w in result.warnings)


def test_a_reference_in_degrees_far_from_the_equator_is_resampled_to_square_pixels_in_its_utm_zone(
        local_model, tmp_path):
    """Inn (47.6 N) warped to EPSG:4326 as gdalwarp does by default: its pixels are 8.7 m x 13 m on the ground,
    which the model never saw. The outputs are on square 10 m pixels of UTM zone 33N, on Sentinel-2's grid there
    (corners on multiples of 10 m), and the warning says so (before: the run kept the degrees without a word)."""
    from pathlib import Path

    from rasterio.warp import calculate_default_transform, reproject
    from rasterio.windows import Window

    inn = Path(__file__).resolve().parents[1] / "models/real/Inn_20210925_TCI.tif"
    with rasterio.open(inn) as source:
        window = Window(0, 0, 200, 200)
        bounds = source.window_bounds(window)
        transform, width, height = calculate_default_transform(source.crs, "EPSG:4326", 200, 200, *bounds)
        degrees = np.zeros((3, height, width), np.uint8)
        reproject(source.read(window=window), degrees, src_transform=source.window_transform(window),
                  src_crs=source.crs, dst_transform=transform, dst_crs="EPSG:4326")
    path = tmp_path / "inn_20210925.tif"
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=3, dtype="uint8",
                       crs="EPSG:4326", transform=transform, nodata=0) as target:
        target.write(degrees)
    rasters = [DatedRaster(path, dt.date(2021, 9, 25)), DatedRaster(path, dt.date(2021, 9, 26))]
    result = segment(SegmentRequest(rasters, local_model, tmp_path / "out", device="cpu"))
    with rasterio.open(result.classes_path) as out:
        assert out.crs.to_epsg() == 32633 and out.res == (10.0, 10.0)
        assert out.transform.c % 10 == 0 and out.transform.f % 10 == 0
        assert abs(out.width - 200) <= 12 and abs(out.height - 200) <= 12  # the footprint, turned a little
    assert result.warnings == ("the rasters are at 8.57 m x 12.9 m per pixel (degrees), the model works on square "
                               "pixels of 10 m: they are resampled to 10 m in UTM zone 33N (EPSG:32633) and the "
                               "outputs are on that grid",)


def test_missing_and_non_raster_files(local_model, tmp_path, capsys):
    text = tmp_path / "notes_20190101.tif"
    text.write_text("not a raster")
    with pytest.raises(RasterStackError, match="is not a raster GDAL can read"):
        segment(SegmentRequest([DatedRaster(text, dt.date(2019, 1, 1)), DatedRaster(text, dt.date(2019, 2, 1))],
                               local_model, tmp_path / "out"))
    assert core_main(["segment", "--model", str(local_model), "--output", str(tmp_path / "o"),
                      str(tmp_path / "nothing_20190101.tif")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "raster not found" in err and "Traceback" not in err
    for debug_first in (True, False):  # --debug before or after the command: the error is raised whole
        args = ["segment", "--model", str(local_model), "--output", str(tmp_path / "o"),
                str(tmp_path / "nothing_20190101.tif")]
        with pytest.raises(ValueError, match="raster not found"):
            core_main(["--debug", *args] if debug_first else [*args, "--debug"])


def test_corrupt_and_foreign_onnx_files(small_scene, tmp_path, capsys):
    import onnx
    from onnx import TensorProto, helper

    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x01garbage")
    identity = helper.make_model(helper.make_graph(
        [helper.make_node("Identity", ["images"], ["probabilities"])], "g",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, None)]))
    foreign = tmp_path / "foreign.onnx"
    onnx.save(identity, str(foreign))
    rasters = rasters_of(small_scene, 2019)
    with pytest.raises(ModelCardError, match="not a readable ONNX model"):
        segment(SegmentRequest(rasters, corrupt, tmp_path / "out"))
    with pytest.raises(ModelCardError, match="no TimeSeg model card"):
        segment(SegmentRequest(rasters, foreign, tmp_path / "out"))
    assert core_main(["info", str(foreign)]) == 1
    assert "no TimeSeg model card" in capsys.readouterr().err


def test_output_folder_problems(local_model, small_scene, tmp_path):
    rasters = rasters_of(small_scene, 2019)
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(SegmentError, match="cannot create the output folder"):
        segment(SegmentRequest(rasters, local_model, blocker / "out"))
    # an input named like an output, in the output folder
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    same = inputs / "probability.tif"
    same.write_bytes(rasters[0].path.read_bytes())
    with pytest.raises(SegmentError, match="is one of the inputs"):
        segment(SegmentRequest([DatedRaster(same, rasters[0].date), *rasters[1:]], local_model, inputs))
    assert sorted(p.name for p in inputs.iterdir()) == ["probability.tif"]


def test_no_disk_space(local_model, small_scene, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9, 1000))
    with pytest.raises(SegmentError, match="has 1 kB free, the outputs need about [0-9]+ kB"):  # not "0.0 GB"
        segment(SegmentRequest(rasters_of(small_scene, 2019), local_model, tmp_path / "out"))
    assert not (tmp_path / "out").exists()
    # /proc and /sys have no size at all: a system folder, not a full disk (as root, they pass os.access)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(0, 0, 0))
    with pytest.raises(SegmentError, match=rf"^{tmp_path} is a system folder that cannot hold files: choose another"):
        segment(SegmentRequest(rasters_of(small_scene, 2019), local_model, tmp_path / "out"))
    from timeseg.core.preflight import disk_size

    assert [disk_size(n) for n in (2.5e9, 340e6, 12_345)] == ["2.5 GB", "340.0 MB", "12 kB"]


def test_missing_onnxruntime_says_how_to_install(local_model, monkeypatch):
    real_import = builtins.__import__

    def no_onnxruntime(name, *args, **kwargs):
        if name == "onnxruntime":
            raise ImportError("No module named 'onnxruntime'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnxruntime)
    with pytest.raises(RuntimeUnavailable, match="-m pip install onnxruntime==1.32.0 numpy=="):
        open_session(local_model, "cpu")  # in this venv: no --user (pip refuses it in a venv), the numpy held


def test_cuda_asked_without_cuda_is_a_clear_error(local_model):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        assert open_session(local_model, "cuda").device == "cuda"
    else:
        with pytest.raises(RuntimeUnavailable, match="no CUDA provider"):
            open_session(local_model, "cuda")
        assert open_session(local_model, "auto").provider == "CPUExecutionProvider"


def test_date_selection_for_long_sequences():
    from timeseg.core.model_card import ModelCard

    card = ModelCard(**{**CARD, "min_sequence_length": 2})
    rasters = [DatedRaster(f"d{i}.tif", dt.date(2019, 1, 1) + dt.timedelta(days=10 * i)) for i in range(9)][::-1]
    assert [r.path for r in select_dates(rasters, card)] == [f"d{i}.tif" for i in range(9)]
    assert [r.path for r in select_dates(rasters, card, "last", 3)] == ["d6.tif", "d7.tif", "d8.tif"]
    assert [r.path for r in select_dates(rasters, card, "even", 3)] == ["d0.tif", "d4.tif", "d8.tif"]
    fixed = ModelCard(**{**CARD, "dynamic_time": False, "sequence_length": 4})
    assert len(select_dates(rasters, fixed)) == 4
    assert [r.path for r in select_dates(rasters, fixed, "even")] == ["d0.tif", "d3.tif", "d5.tif", "d8.tif"]
    with pytest.raises(SegmentError, match="below the model's minimum"):
        select_dates(rasters, card, "last", 1)
    with pytest.raises(SegmentError, match="chooses among the dates only with --max-dates"):  # it chose nothing
        select_dates(rasters, card, "even")


def test_rasters_too_small_for_the_models_view_are_warned_of(local_model, small_scene, tmp_path):
    """A 40 x 30 px cut (the model's tile: 64 px here, half of it the least): the map is made, and a warning
    says it is unreliable and what to give instead."""
    from rasterio.windows import Window

    small = []
    for raster in rasters_of(small_scene, 2019):
        with rasterio.open(raster.path) as source:
            window = Window(10, 10, 40, 30)
            profile = source.profile | {"width": 40, "height": 30, "transform": source.window_transform(window)}
            path = tmp_path / raster.path.name
            with rasterio.open(path, "w", **profile) as target:
                target.write(source.read(window=window))
        small.append(DatedRaster(path, raster.date))
    card_tile = CARD["tile_size"]
    result = segment(SegmentRequest(small, local_model, tmp_path / "out", device="cpu"))
    assert (f"the rasters are 40 x 30 px, less than the {card_tile // 2} px a side the model reads a pixel's "
            "surroundings in: the map is unreliable; give larger rasters (and cut them to your area: --aoi; in the "
            "dock and Processing, the area)"
            ) in result.warnings
    assert not segment(SegmentRequest(rasters_of(small_scene, 2019), local_model, tmp_path / "whole",
                                      device="cpu")).warnings


def test_a_one_year_model_refuses_dates_of_two_years_and_warns_of_a_part_of_one(local_model, small_scene, tmp_path):
    """A model that reads one calendar year's dates (the crop model): 2016's and 2019's together are refused,
    saying what to give; a year's dates over a few months run, with a warning."""
    from tests_support import edit_card

    yearly = edit_card(local_model, tmp_path / "yearly.onnx", one_year=True)
    both = rasters_of(small_scene, 2016) + rasters_of(small_scene, 2019)
    first, last = min(r.date for r in both), max(r.date for r in both)
    with pytest.raises(SegmentError, match=f"the dates run from {first} to {last}: the model reads one calendar "
                                           "year's dates; give one year's .each year as its own period."):
        segment(SegmentRequest(both, yearly, tmp_path / "out"))
    assert not (tmp_path / "out").exists()
    year = rasters_of(small_scene, 2019)  # January to December
    assert not segment(SegmentRequest(year, yearly, tmp_path / "year", device="cpu")).warnings
    part = year[:2]  # January to May
    result = segment(SegmentRequest(part, yearly, tmp_path / "part", device="cpu"))
    assert result.warnings == (f"the dates cover 5 months ({part[0].date} to {part[1].date}) of the year the model "
                               "reads: expect much lower accuracy (January to August scored 0.52 on simulated "
                               "scenes, the whole year 0.88)",)


def test_float_reflectance_for_a_model_of_digital_numbers_is_told_how_to_convert(local_model, small_scene, tmp_path):
    """A model of uint16 digital numbers (the crop model) given reflectance 0..1 in float (Earth Engine's): the
    refusal gives the conversion."""
    from tests_support import edit_card

    numbers = edit_card(local_model, tmp_path / "numbers.onnx", input_dtype="uint16")
    rasters = []
    for raster in rasters_of(small_scene, 2019):
        with rasterio.open(raster.path) as source:
            values, profile = source.read().astype(np.float32) / 255 * 0.3558, source.profile
        path = tmp_path / raster.path.name
        with rasterio.open(path, "w", **(profile | {"dtype": "float32", "nodata": None})) as target:
            target.write(values)
        rasters.append(DatedRaster(path, raster.date))
    with pytest.raises(SegmentError, match="the rasters hold float32 values, the model wants uint16: .*reflectance "
                                           "0..1 as digital numbers: gdal_translate -ot UInt16 -scale 0 1 0 10000"):
        segment(SegmentRequest(rasters, numbers, tmp_path / "out"))
