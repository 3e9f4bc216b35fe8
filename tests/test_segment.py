"""The tiled engine: outputs on the reference grid, seamless blending equal to a whole-image run."""

import datetime as dt
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import rasterio

from timeseg.cli import main as core_main
from timeseg.core.model_card import read_model_card
from timeseg.core.normalisation import Normalisation
from timeseg.core.raster_stack import DatedRaster, RasterStack
from timeseg.core.segment import Cancelled, SegmentError, SegmentRequest, segment
from timeseg.core.tiling import blend_window, tile_grid

ROADS = Path(__file__).resolve().parents[1] / "models/weights/roads.onnx"


def rasters_of(scene, year):
    return [DatedRaster(p, a.date) for p, a in zip(scene.tci_paths[year], scene.acquisitions[year])]


def test_tiles_cover_the_raster_and_windows_sum_to_one_inside():
    tiles = tile_grid(96, 150, 64, 32)
    total = np.zeros((96, 150))
    for tile in tiles:
        total[tile.row : tile.row + tile.height, tile.col : tile.col + tile.width] += blend_window(tile, 32, 64)
    assert (total > 0).all()
    assert max(t.col + t.width for t in tiles) == 150 and max(t.row + t.height for t in tiles) == 96


@pytest.mark.parametrize("origin", [(0, 0), (37, 101), (230, 5)])
def test_the_tiles_of_a_part_are_the_full_rasters_cut_to_it_and_start_on_the_lattice(origin):
    """A part of 150 x 200 px at ``origin`` in a 400 x 500 raster: its tiles are the full raster's that touch it,
    cut to it, with the full raster's blend windows; every tile starts on the 32 px lattice."""
    from timeseg.core.tiling import TILE_ALIGN_PX, aligned_overlap

    overlap = aligned_overlap(256, 30)
    assert overlap == 32 and (256 - overlap) % TILE_ALIGN_PX == 0
    assert aligned_overlap(512, 507) == 480  # a stride of 5 px would run 100 times the tiles: 32 px at least
    assert aligned_overlap(32, 8) == 8  # too small a tile to align: as asked
    full = tile_grid(400, 500, 256, overlap)
    part = tile_grid(150, 200, 256, overlap, origin, (400, 500))
    full_weights = np.zeros((400, 500))
    for tile in full:
        assert tile.row % TILE_ALIGN_PX == 0 and tile.col % TILE_ALIGN_PX == 0 and tile.skip_rows == 0
        full_weights[tile.row : tile.row + tile.height, tile.col : tile.col + tile.width] += blend_window(
            tile, overlap, 256)
    part_weights = np.zeros((150, 200))
    for tile in part:
        top, left = origin[0] + tile.row - tile.skip_rows, origin[1] + tile.col - tile.skip_cols
        assert top % (256 - overlap) == 0 and left % (256 - overlap) == 0  # a tile of the full raster
        part_weights[tile.row : tile.row + tile.height, tile.col : tile.col + tile.width] += blend_window(
            tile, overlap, 256)
    np.testing.assert_array_equal(part_weights, full_weights[origin[0] : origin[0] + 150, origin[1] : origin[1] + 200])
    assert (part_weights > 0).all()


def test_two_crops_of_one_grid_get_the_same_map_where_they_overlap(tmp_path):
    """Inn cut 11 px and 0 px from its corner (one 10 m grid): the tiles lie on one lattice on the ground, so
    the maps agree where the crops overlap (tiled from each crop's own corner, 23 % of the road pixels of
    either differed; 4 % now)."""
    from rasterio.windows import Window

    inn = Path(__file__).resolve().parents[1] / "models/real/Inn_20210925_TCI.tif"
    maps = []
    for offset in (0, 11):
        crop = tmp_path / f"crop{offset}_20210925.tif"
        with rasterio.open(inn) as source:
            window = Window(offset, offset, 300, 300)
            profile = source.profile | {"width": 300, "height": 300, "transform": source.window_transform(window)}
            with rasterio.open(crop, "w", **profile) as target:
                target.write(source.read(window=window))
        result = segment(SegmentRequest([DatedRaster(crop, dt.date(2021, 9, 25))], ROADS, tmp_path / f"out{offset}",
                                        device="cpu", precision="fp32"))
        with rasterio.open(result.classes_path) as dataset:
            maps.append(dataset.read(1))
    first, second = maps[0][11:, 11:], maps[1][:-11, :-11]
    inner = (slice(40, -40), slice(40, -40))  # away from both crops' edges, where their context differs
    roads = (first[inner] == 1) | (second[inner] == 1)
    assert roads.mean() > 0.03
    assert (first[inner] == second[inner])[roads].mean() > 0.93  # 0.77 before; tile borders differ still


def test_tiles_of_one_size_and_edges_share_one_window_that_cannot_be_changed():
    tiles = tile_grid(400, 400, 64, 16)  # tiles 1 and 2 are both inner tiles of the top row
    window = blend_window(tiles[1], 16, 64)
    assert blend_window(tiles[2], 16, 64).base is window.base
    assert window[0, 32] == 1.0 and window[40, 0] == 0.0  # one along the raster's top edge, 0 at the dead border
    with pytest.raises(ValueError):
        window[0, 0] = 2.0


def test_segment_writes_georeferenced_probability_and_classes(local_model, small_scene, tmp_path):
    rasters = rasters_of(small_scene, 2019)[::-1]  # any order: sorted by date inside
    result = segment(SegmentRequest(rasters, local_model, tmp_path, device="cpu", precision="fp32"))
    assert result.provider == "CPUExecutionProvider"
    assert result.dates == sorted(r.date for r in rasters)
    with rasterio.open(small_scene.tci_paths[2019][0]) as reference, \
            rasterio.open(result.probability_path) as probability, rasterio.open(result.classes_path) as classes:
        assert probability.crs == reference.crs and probability.transform == reference.transform
        assert probability.shape == reference.shape == classes.shape
        assert probability.dtypes == ("float32",) and classes.dtypes == ("uint8",)
        p = probability.read(1)
        c = classes.read(1)
        assert classes.colormap(1)[1][:3] == (255, 150, 0)
        assert classes.tags()["class_names"] == "background,road"
        assert classes.tags(1)["CLASS_0"] == "background" and classes.tags(1)["CLASS_1"] == "road"
    assert np.isfinite(p).all() and 0 <= p.min() and p.max() <= 1
    np.testing.assert_array_equal(c, (p >= 0.5).astype(np.uint8))
    # both maps with their QGIS styles
    assert sorted(x.name for x in tmp_path.iterdir()) == ["classes.qml", "classes.tif", "probability.qml",
                                                          "probability.tif"]


def test_stitched_tiles_equal_a_whole_image_run(local_model, small_scene, tmp_path):
    rasters = rasters_of(small_scene, 2019)  # the simulator's corners lie on the tiles' lattice
    result = segment(SegmentRequest(rasters, local_model, tmp_path, device="cpu", precision="fp32", tile_size=64,
                                    overlap=32))
    card = read_model_card(local_model)
    with RasterStack(rasters) as stack:
        pixels, _ = stack.read(rasterio.windows.Window(0, 0, 96, 96))
    session = onnxruntime.InferenceSession(str(local_model), providers=["CPUExecutionProvider"])
    (whole,) = session.run(None, {"images": Normalisation.from_card(card).apply(pixels)[None]})
    with rasterio.open(result.probability_path) as probability:
        stitched = probability.read(1)
    assert len(tile_grid(96, 96, 64, 32)) == 4
    np.testing.assert_allclose(stitched, whole[0, 0], atol=1e-5)


def test_where_every_date_is_white_the_maps_have_no_data(local_model, small_scene, tmp_path):
    """A thick cloud over the same 40 x 50 px on every date: no date shows the ground there, so the maps have no
    data there and the run says so (the map called it not-road, and a change map called its roads removed); the
    same cloud on one date only, or a white strip 4 px wide (a road, a roof), stays mapped."""
    rng = np.random.default_rng(0)
    paths = small_scene.tci_paths[2019]

    def clouded(folder: str, dates: list[int], rows: slice, cols: slice) -> list[DatedRaster]:
        from timeseg.core.dates import dated_rasters

        (tmp_path / folder).mkdir()
        for index, path in enumerate(paths):
            with rasterio.open(path) as source:
                pixels, profile = source.read(), source.profile
            if index in dates:
                block = pixels[:, rows, cols]
                pixels[:, rows, cols] = np.clip(235 + rng.normal(0, 6, block.shape), 0, 255).astype(np.uint8)
            with rasterio.open(tmp_path / folder / path.name, "w", **profile) as target:
                target.write(pixels)
        return dated_rasters([tmp_path / folder / path.name for path in paths])

    def classes(rasters: list[DatedRaster], name: str) -> tuple[np.ndarray, tuple[str, ...]]:
        result = segment(SegmentRequest(rasters, local_model, tmp_path / name, device="cpu"))
        with rasterio.open(result.classes_path) as dataset:
            return dataset.read(1), result.warnings

    every, every_warnings = classes(clouded("every", [0, 1, 2], slice(20, 60), slice(10, 60)), "out_every")
    assert (every[22:58, 12:58] == 255).all() and (every[:18] != 255).all() and (every[62:] != 255).all()
    [said] = [w for w in every_warnings if "of the area is white on every date (cloud, snow or bright sand)" in w]
    assert 38 * 48 / 96 ** 2 <= float(said.split("%")[0]) / 100 <= 40 * 50 / 96 ** 2  # less its edge, 3 x 3 smoothed
    one, one_warnings = classes(clouded("one", [1], slice(20, 60), slice(10, 60)), "out_one")
    strip, _ = classes(clouded("strip", [0, 1, 2], slice(0, 96), slice(40, 44)), "out_strip")
    assert (one != 255).all() and (strip != 255).all()
    assert not any("white on every date" in w for w in one_warnings)


def test_too_few_dates_are_refused(local_model, small_scene, tmp_path):
    with pytest.raises(SegmentError, match="1 date given, the model needs at least 2: add dates"):
        segment(SegmentRequest(rasters_of(small_scene, 2019)[:1], local_model, tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_four_named_bands_of_reflectance_give_the_map_of_their_true_colour(local_model, small_scene, tmp_path):
    """The simulator's reflectance rasters (B02, B03, B04, B08, named, digital numbers): the true-colour
    model reads B04, B03, B02 from them by name as its TCI, and maps what it maps on the TCIs
    (core.model_inputs); the warnings say both."""
    refl = [DatedRaster(p, a.date) for p, a in zip(small_scene.reflectance_paths[2019],
                                                    small_scene.acquisitions[2019])]
    ours = segment(SegmentRequest(refl, local_model, tmp_path / "refl", device="cpu"))
    theirs = segment(SegmentRequest(rasters_of(small_scene, 2019), local_model, tmp_path / "tci", device="cpu"))
    assert "read by their names or colours from the rasters' bands (B02, B03, B04, B08)" in ours.warnings[0]
    assert "read as reflectance x 10000" in ours.warnings[1]
    with rasterio.open(ours.probability_path) as a, rasterio.open(theirs.probability_path) as b:
        assert np.abs(a.read(1) - b.read(1)).mean() < 0.01
    with rasterio.open(ours.classes_path) as a, rasterio.open(theirs.classes_path) as b:
        assert (a.read(1) == b.read(1)).mean() > 0.99


def test_cancel_leaves_nothing_behind(local_model, small_scene, tmp_path):
    calls = []

    def cancelled():
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(Cancelled):
        segment(SegmentRequest(rasters_of(small_scene, 2019), local_model, tmp_path, batch_size=1,
                               cancelled=cancelled))
    assert list(tmp_path.iterdir()) == []


def test_progress_written_to_a_log_is_a_line_each_5_percent_and_each_new_step(capsys):
    """stderr is no terminal under pytest, as in a log file: a full tile's 2401 tiles were as many lines."""
    from timeseg.core.cli import _progress_reporter

    bar, update = _progress_reporter()
    with bar:
        for done in range(1, 226):
            update(done / 225, f"tile {done} of 225")
        update(1.0, "writing overviews")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "  0% tile 1 of 225" and lines[-2:] == ["100% tile 225 of 225", "100% writing overviews"]
    assert len(lines) == 22 and [int(line.split("%")[0]) // 5 for line in lines[:-1]] == list(range(21))


def test_command_line_segment_and_info(local_model, small_scene, tmp_path, capsys):
    paths = [str(p) for p in small_scene.tci_paths[2016]]
    assert core_main(["segment", "--model", str(local_model), "--output", str(tmp_path), "--device", "cpu",
                      *paths]) == 0
    out = capsys.readouterr().out
    assert "3 dates" in out and "on CPU" in out
    assert (tmp_path / "probability.tif").is_file()
    assert core_main(["info", str(local_model)]) == 0
    assert "class_names: [\"background\", \"road\"]" in capsys.readouterr().out
    # errors: one line on stderr, exit code 1
    assert core_main(["segment", "--model", str(local_model), "--output", str(tmp_path), "missing.tif"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "error: raster not found: missing.tif"
    assert core_main(["segment", "--model", str(local_model), "--output", str(tmp_path),
                      "--dates", "2019-01-01,2019-01-01", paths[0], paths[1]]) == 1
    assert "same date" in capsys.readouterr().err
    assert dt.date(2016, 1, 1) < small_scene.acquisitions[2016][0].date


def test_two_runs_at_once_give_the_same_maps_as_one(local_model, small_scene, tmp_path, monkeypatch):
    """On a CPU two batches run at once on one thread each (``cpu_threads``); the maps are those of
    one batch at a time, tile for tile."""
    from timeseg.core import runtime

    assert runtime.cpu_threads(4) == (2, 2) and runtime.cpu_threads(3) == (2, 1) and runtime.cpu_threads(1) == (1, 1)
    model = runtime.load_model(local_model, "cpu", threads=2)
    assert (model.runs_at_once, model.tiles_per_run) == (2, 1)  # a float32 model: one tile per run
    rasters = rasters_of(small_scene, 2019)
    maps = {}
    for runs in (1, 2):
        monkeypatch.setattr(runtime, "CPU_RUNS_AT_ONCE", runs)
        result = segment(SegmentRequest(rasters, local_model, tmp_path / str(runs), device="cpu", threads=2,
                                        tile_size=32, overlap=8, batch_size=1))
        assert result.tiles_run == result.tiles_total == len(tile_grid(96, 96, 32, 8))
        with rasterio.open(result.probability_path) as probability:
            maps[runs] = probability.read(1)
    np.testing.assert_allclose(maps[2], maps[1], atol=1e-6)


def test_reading_the_dates_at_once_and_compressing_on_several_threads_gives_the_same_files(
        local_model, small_scene, tmp_path, monkeypatch):
    """On a GPU machine the cores the model leaves read a tile's dates at once and compress the outputs
    (``engine_threads``); the maps are those of one reading thread, pixel for pixel."""
    from timeseg.core import runtime
    from timeseg.core import segment as segment_module

    assert runtime.engine_threads("cpu", 5, 16) == (1, 1)
    assert runtime.engine_threads("cuda", 5, 16) == (5, 14)
    assert runtime.engine_threads("cuda", 5, 4) == (2, 2) and runtime.engine_threads("cuda", 5, 2) == (1, 1)
    rasters = rasters_of(small_scene, 2019)
    maps = {}
    for threads in ((1, 1), (3, 4)):
        monkeypatch.setattr(segment_module, "engine_threads", lambda device, dates, asked, chosen=threads: chosen)
        result = segment(SegmentRequest(rasters, local_model, tmp_path / str(threads[0]), device="cpu",
                                        threads=2, tile_size=32, overlap=8, batch_size=3))
        with rasterio.open(result.probability_path) as probability, rasterio.open(result.classes_path) as classes:
            maps[threads] = probability.read(1), classes.read(1)
            assert probability.overviews(1) == classes.overviews(1)
    np.testing.assert_array_equal(maps[(3, 4)][0], maps[(1, 1)][0])
    np.testing.assert_array_equal(maps[(3, 4)][1], maps[(1, 1)][1])


def test_what_the_rasters_lack_is_said_before_too_few_dates(small_scene, tmp_path):
    """True-colour dates given to the crop-type model (13 bands, at least 20 dates): adding dates cannot mend
    the bands, so the bands come first, and every problem is in the one-line message."""
    crops = Path(__file__).resolve().parent.parent / "models" / "weights" / "crops.onnx"
    with pytest.raises(SegmentError) as refused:
        segment(SegmentRequest(rasters_of(small_scene, 2019), crops, tmp_path / "out", device="cpu"))
    problems = refused.value.problems
    assert problems[0].startswith("the rasters have 3 bands (10 of the model's missing), the model wants 13")
    assert problems[-1].startswith("3 dates given, the model needs at least")
    assert str(refused.value) == "; ".join(problems)
    assert not (tmp_path / "out").exists()


def test_where_a_date_has_no_data_the_model_reads_its_cards_no_data_value(local_model, small_scene, tmp_path):
    """A date whose west half lies beyond its swath, with a card that gives a no-data value (the crop model's:
    an opaque cloud): the map is the one of the same date holding that value there."""
    from tests_support import edit_card

    rasters = rasters_of(small_scene, 2019)
    fill = [200.0, 190.0, 180.0]
    edited = {}
    for name, west in (("cut", None), ("cloud", fill)):
        with rasterio.open(rasters[1].path) as source:
            values, profile = source.read(), source.profile
        values[:, :, :48] = 0 if west is None else np.array(west, np.uint8)[:, None, None]
        path = tmp_path / f"{name}_{rasters[1].path.name}"
        with rasterio.open(path, "w", **profile) as target:
            target.write(values)
        edited[name] = [rasters[0], DatedRaster(path, rasters[1].date), rasters[2]]
    filling = edit_card(local_model, tmp_path / "filling.onnx", no_data_value=fill)
    maps = {}
    for name, model in (("cut", filling), ("cloud", local_model), ("plain", local_model)):
        stack = edited["cut" if name == "plain" else name]
        result = segment(SegmentRequest(stack, model, tmp_path / name, device="cpu", precision="fp32"))
        with rasterio.open(result.probability_path) as dataset:
            maps[name] = dataset.read(1)
    np.testing.assert_allclose(maps["cut"], maps["cloud"], atol=1e-6)
    assert np.abs(maps["plain"] - maps["cloud"])[:, :40].max() > 1e-4  # read as 0 without the card's value
