"""Deepness segmentation models run as they are: a one-date model in the engine, the dock and Processing.

The test models are made here with onnx.helper in Deepness's form: one input ``[1, 3, 64, 64]``
(static batch and size), one output of class probabilities, its metadata as Deepness writes it
(``model_type`` Segmentor, ``class_names`` as a dict, ``resolution`` in cm, ``tiles_overlap`` in
percent, ``standardization_mean``/``std``, ``seg_thresh``). Their networks are 1x1 convolutions,
so the expected probability of every pixel is known in closed form.
"""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest
import rasterio

from tests_support import undated_copy
from timeseg.cli import main

MEAN, STD = [0.4, 0.4, 0.4], [0.2, 0.25, 0.3]
WEIGHTS = np.array([[1.5, -2.0, 0.5]], np.float32)  # one output channel: P(water)
BIAS = np.array([-0.3], np.float32)
THRESHOLD = 0.4


def deepness_model(path, weights: np.ndarray, bias: np.ndarray, class_names: dict, final: str, **metadata):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    classes = weights.shape[0]
    nodes = [helper.make_node("Conv", ["input", "w", "b"], ["logits"]),
             helper.make_node(final, ["logits"], ["output"], **({"axis": 1} if final == "Softmax" else {}))]
    graph = helper.make_graph(
        nodes, "deepness_like",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, classes, 64, 64])],
        [numpy_helper.from_array(weights.reshape(classes, 3, 1, 1), "w"), numpy_helper.from_array(bias, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    values = {"model_type": "Segmentor", "class_names": class_names, "resolution": 1000, "tiles_overlap": 25,
              "standardization_mean": MEAN, "standardization_std": STD, **metadata}
    for key, value in values.items():
        model.metadata_props.add(key=key, value=json.dumps(value))
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def water_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("deepness") / "water.onnx"
    return deepness_model(path, WEIGHTS, BIAS, {"0": "water"}, "Sigmoid", seg_thresh=THRESHOLD)


def expected_water(tci_path) -> np.ndarray:
    """P(water) of every pixel of a true-colour raster, by the model's formula."""
    with rasterio.open(tci_path) as dataset:
        pixels = dataset.read().astype(np.float32)
    standardised = (pixels / 255 - np.array(MEAN, np.float32)[:, None, None]) / np.array(STD, np.float32)[:, None, None]
    logits = np.tensordot(WEIGHTS[0], standardised, axes=1) + BIAS[0]
    return 1 / (1 + np.exp(-logits))


def test_the_card_of_a_deepness_model(water_model):
    from timeseg.core.runtime import load_model

    model = load_model(water_model, "cpu")
    card = model.card
    assert card.class_names == ["background", "water"] and card.is_binary
    assert card.bands == ["band 1", "band 2", "band 3"] and card.input_scale == pytest.approx(1 / 255)
    assert card.resolution == 10.0 and card.tile_size == 64 and card.tiles_overlap == 16
    assert card.threshold == THRESHOLD and card.sequence_length == 1 and not card.dynamic_time
    assert model.single_date and model.fixed_batch == 1 and model.fixed_tile_size == 64


def test_a_segmentation_model_without_metadata_runs_with_deepness_defaults(small_scene, tmp_path, capsys):
    """Deepness runs a model without metadata once told it segments; TimeSeg refused it ("no TimeSeg model
    card"). Its defaults: values / 255, no standardisation, threshold 0.5, the rasters' resolution."""
    import onnx

    bare = tmp_path / "bare.onnx"
    model = onnx.load(str(deepness_model(bare, WEIGHTS, BIAS, {"0": "water"}, "Sigmoid")))
    del model.metadata_props[:]
    onnx.save(model, str(bare))
    raster = small_scene.tci_paths[2019][-1]
    assert main(["segment", "--model", str(bare), "--output", str(tmp_path / "out"), "--precision", "fp32",
                 str(raster)]) == 0
    assert "bare.onnx has no metadata: run as a Deepness segmentation model with Deepness's defaults" in \
        capsys.readouterr().err
    with rasterio.open(raster) as dataset:
        logits = np.tensordot(WEIGHTS[0], dataset.read().astype(np.float32) / 255, axes=1) + BIAS[0]
    with rasterio.open(tmp_path / "out" / "probability.tif") as probability, \
            rasterio.open(tmp_path / "out" / "classes.tif") as classes:
        p = probability.read(1)
        assert np.abs(p - 1 / (1 + np.exp(-logits))).max() < 1e-5
        assert np.array_equal(classes.read(1), (p >= 0.5).astype(np.uint8))


def test_the_overlap_a_run_uses_is_said_where_it_is_not_the_cards(water_model, capsys):
    """25 % of 64 px is 16 px, run at 32 px (tiles step by multiples of 32 px): said by info and the dock's card
    (they said 16 px only)."""
    from timeseg.core.runtime import load_model
    from timeseg.ui.model_panel import describe_card

    assert main(["info", str(water_model)]) == 0
    out = capsys.readouterr().out
    assert "tiles_overlap: 16\n" in out and "tiles_overlap as run: 32 (the tiles step by multiples of 32 px)" in out
    words = describe_card(load_model(water_model, "cpu").card)
    assert "Tiles 64 px, overlap 16 px (32 px as run: the tiles step by multiples of 32 px)." in words


def test_engine_runs_the_last_date_through_a_deepness_model(water_model, small_scene, tmp_path, capsys):
    rasters = small_scene.tci_paths[2019]  # three dates: the one-date model takes the last
    assert main(["segment", "--model", str(water_model), "--output", str(tmp_path / "out"), "--device", "cpu",
                 "--precision", "fp32", *map(str, rasters)]) == 0
    out, err = capsys.readouterr()
    assert "1 date (" in out
    last = small_scene.acquisitions[2019][-1].date
    assert (f"warning: the model reads 1 date ({last}); 2 others given are not used (choose the clearest date: "
            "the model reads one)") in err
    with rasterio.open(tmp_path / "out" / "probability.tif") as probability, \
            rasterio.open(tmp_path / "out" / "classes.tif") as classes, rasterio.open(rasters[-1]) as reference:
        p, c = probability.read(1), classes.read(1)
        assert probability.transform == reference.transform and probability.crs == reference.crs
        assert classes.tags()["class_names"] == "background,water"
    expected = expected_water(rasters[-1])
    assert np.abs(p - expected).max() < 1e-5  # a 1x1 network: every tile and blend gives the same value
    assert np.array_equal(c, (expected >= THRESHOLD).astype(np.uint8))


def test_a_multi_class_softmax_deepness_model(small_scene, tmp_path):
    weights = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], np.float32)
    model = deepness_model(tmp_path / "rgb.onnx", weights, np.zeros(3, np.float32),
                           {"0": "red", "1": "green", "2": "blue"}, "Softmax", seg_thresh=0.05)  # none dropped
    rasters = small_scene.tci_paths[2016][-1:]
    assert main(["segment", "--model", str(model), "--output", str(tmp_path / "out"), *map(str, rasters)]) == 0
    with rasterio.open(rasters[0]) as dataset:
        standardised = (dataset.read().astype(np.float32) / 255 - np.array(MEAN)[:, None, None]) / \
            np.array(STD)[:, None, None]
    with rasterio.open(tmp_path / "out" / "classes.tif") as classes:
        top_two = np.sort(standardised, axis=0)[-2:]
        clear = top_two[1] - top_two[0] > 1e-4  # where float32 and float64 could pick different classes, either
        assert clear.mean() > 0.99
        assert np.array_equal(classes.read(1)[clear], standardised.argmax(axis=0)[clear])
        assert classes.tags()["class_names"] == "red,green,blue"


def test_a_deepness_model_that_gives_logits_is_read_through_a_softmax(small_scene, tmp_path, capsys):
    """The same network without its last softmax: its values beyond 0..1 are read as logits, said once, and the
    probabilities written are those of the network with the softmax."""
    weights = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], np.float32)
    rasters = [str(p) for p in small_scene.tci_paths[2016][-1:]]
    for final in ("Softmax", "Identity"):
        model = deepness_model(tmp_path / f"{final}.onnx", weights, np.zeros(3, np.float32),
                               {"0": "red", "1": "green", "2": "blue"}, final)
        assert main(["segment", "--model", str(model), "--output", str(tmp_path / final), *rasters]) == 0
    said = capsys.readouterr().err
    assert said.count("logits rather than probabilities: they were read through a softmax") == 1
    with rasterio.open(tmp_path / "Softmax" / "probability.tif") as softmax, \
            rasterio.open(tmp_path / "Identity" / "probability.tif") as logits:
        assert np.allclose(logits.read(), softmax.read(), atol=1e-5, equal_nan=True)
    # one class, its first tiles' logits inside 0..1 (a dark left half), the others beyond: all read through a
    # sigmoid, judged before any tile was written (the first tiles were written raw)
    with rasterio.open(rasters[0]) as source:
        profile = source.profile
    profile.update(width=512, height=64, count=3)
    half = tmp_path / "half_20160901.tif"
    with rasterio.open(half, "w", **profile) as dataset:
        values = np.full((3, 64, 512), 25, np.uint8)
        values[:, :, 256:] = 255
        dataset.write(values)
    one = deepness_model(tmp_path / "one.onnx", np.ones((1, 3), np.float32), np.zeros(1, np.float32),
                         {"0": "bright"}, "Identity", standardization_mean=[0.0] * 3, standardization_std=[1.0] * 3)
    assert main(["segment", "--model", str(one), "--output", str(tmp_path / "one"), str(half)]) == 0
    with rasterio.open(tmp_path / "one" / "probability.tif") as probability:
        left = probability.read(1)[:, :200]
    assert np.allclose(left, 1 / (1 + np.exp(-3 * 25 / 255)), atol=2e-3)  # logit 0.29 (bf16 on AMX CPUs)


def test_logits_the_first_tiles_do_not_show_remake_the_whole_map(small_scene, tmp_path, monkeypatch):
    """Logits beyond 0..1 in a tile that the first look misses (a QA's bright 20 px patch: the map was raw logits
    above it and probabilities below, a seam): the maps are made again, every tile read as logits."""
    from timeseg.core import segment

    with rasterio.open(small_scene.tci_paths[2016][-1]) as source:
        profile = source.profile
    profile.update(width=512, height=64, count=3)
    patch = tmp_path / "patch_20160901.tif"
    with rasterio.open(patch, "w", **profile) as dataset:
        values = np.full((3, 64, 512), 25, np.uint8)
        values[:, 20:40, 480:500] = 255  # in the last tiles only
        dataset.write(values)
    monkeypatch.setattr(segment, "LOGIT_PROBE_TILES", 1)  # the first tile alone is looked at before writing
    one = deepness_model(tmp_path / "one.onnx", np.ones((1, 3), np.float32), np.zeros(1, np.float32),
                         {"0": "bright"}, "Identity", standardization_mean=[0.0] * 3, standardization_std=[1.0] * 3)
    assert main(["segment", "--model", str(one), "--output", str(tmp_path / "one"), "--precision", "fp32",
                 str(patch)]) == 0
    with rasterio.open(tmp_path / "one" / "probability.tif") as probability:
        p = probability.read(1)
    assert np.allclose(p[:, :400], 1 / (1 + np.exp(-3 * 25 / 255)), atol=1e-5)  # not the raw 0.294
    assert np.allclose(p[25:35, 485:495], 1 / (1 + np.exp(-3.0)), atol=1e-5)


def _standardised(path) -> np.ndarray:
    """``[3, H, W]`` of a true-colour raster as the test models standardise it."""
    with rasterio.open(path) as dataset:
        return (dataset.read().astype(np.float32) / 255 - np.array(MEAN, np.float32)[:, None, None]) / \
            np.array(STD, np.float32)[:, None, None]


def test_seg_thresh_and_seg_small_segment_map_the_classes_as_deepness_does(small_scene, tmp_path):
    """Deepness drops each class below seg_thresh before taking the likeliest (none left: class 0), so two softmax
    channels at seg_thresh 0.3 map P >= 0.5; and it median-filters the class map over seg_small_segment pixels.
    Before, TimeSeg took the plain likeliest of 3 classes (60 % of a QA's pixels differed), P >= 0.3 of two
    (21 %), and no filter."""
    from scipy.ndimage import median_filter

    raster = small_scene.tci_paths[2016][-1]
    standardised = _standardised(raster)
    three = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], np.float32) * 0.5
    models = {
        "three": deepness_model(tmp_path / "three.onnx", three, np.zeros(3, np.float32),
                                {"0": "red", "1": "green", "2": "blue"}, "Softmax", seg_thresh=0.36),
        "two": deepness_model(tmp_path / "two.onnx", three[:2], np.zeros(2, np.float32),
                              {"0": "red", "1": "green"}, "Softmax", seg_thresh=0.3),
        "smoothed": deepness_model(tmp_path / "smoothed.onnx", three, np.zeros(3, np.float32),
                                   {"0": "red", "1": "green", "2": "blue"}, "Softmax", seg_thresh=0.36,
                                   seg_small_segment=6),
    }
    maps = {}
    for name, model in models.items():
        assert main(["segment", "--model", str(model), "--output", str(tmp_path / name), "--precision", "fp32",
                     str(raster)]) == 0
        with rasterio.open(tmp_path / name / "classes.tif") as classes:
            maps[name] = classes.read(1)
            assert name == "two" or classes.tags()["threshold"] == "0.36"
    logits = np.tensordot(three, standardised, axes=1)
    p = np.exp(logits) / np.exp(logits).sum(axis=0)
    expected = np.where(p >= 0.36, p, 0).argmax(axis=0)
    clear = (np.abs(p - 0.36) > 1e-4).all(axis=0) & (np.abs(np.sort(p, 0)[-1] - np.sort(p, 0)[-2]) > 1e-4)
    assert 0.05 < (expected != p.argmax(axis=0))[clear].mean()  # the rule matters on this scene
    assert np.array_equal(maps["three"][clear], expected[clear])
    two = np.exp(logits[:2]) / np.exp(logits[:2]).sum(axis=0)
    clear_two = np.abs(two[1] - 0.5) > 1e-4
    assert ((two[1] >= 0.3) != (two[1] >= 0.5))[clear_two].mean() > 0.05
    assert np.array_equal(maps["two"][clear_two], (two[1] >= 0.5)[clear_two])
    # seg_small_segment 6: Deepness filters over 7 px (odd), the classes + 1 with no data 0, edges repeated
    smoothed = median_filter(maps["three"] + 1, size=7, mode="nearest") - 1  # the test raster has no no-data
    assert (smoothed != maps["three"]).mean() > 0.01 and np.array_equal(maps["smoothed"], smoothed)


def test_a_deepness_model_reads_the_first_bands_of_rasters_of_more_and_an_alpha_band_masks(water_model, small_scene,
                                                                                             tmp_path, capsys):
    """Deepness reads a raster's first bands: an RGBA picture (its alpha masking, as the README says) and an
    RGB + NIR raster whose bands are named run a 3-band model on their first three, the NIR said unread, and no
    "name no bands" warning (they were refused: "name each band", which a Deepness model's band 1..3 cannot use)."""
    from rasterio.enums import ColorInterp

    source = small_scene.tci_paths[2019][-1]
    with rasterio.open(source) as dataset:
        rgb, profile = dataset.read(), dataset.profile
    profile.update(count=4, nodata=None)  # no nodata value: the alpha band is the mask
    alpha = np.full(rgb.shape[1:], 255, np.uint8)
    alpha[:, :10] = 0  # a transparent strip
    rgba, rgbn = tmp_path / "rgba_20190901.tif", tmp_path / "rgbn_20190901.tif"
    with rasterio.open(rgba, "w", **profile) as dataset:
        dataset.write(np.concatenate([rgb, alpha[None]]))
        dataset.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    with rasterio.open(rgbn, "w", **profile) as dataset:
        dataset.write(np.concatenate([rgb, rgb[:1] // 2]))
        dataset.descriptions = ("B4", "B3", "B2", "B8")
        dataset.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.undefined]
    maps = {}
    for path in (rgba, rgbn):
        assert main(["segment", "--model", str(water_model), "--output", str(tmp_path / path.stem), "--precision",
                     "fp32", str(path)]) == 0, capsys.readouterr().err
        with rasterio.open(tmp_path / path.stem / "probability.tif") as probability:
            maps[path.stem] = probability.read(1)
    err = capsys.readouterr().err
    assert "the model reads 3 bands: the rasters' first 3 bands were read, as Deepness reads them; band 4 not" in err
    assert err.count("band 4 not") == 1 and "name no bands" not in err  # the alpha band is not 'unread'
    expected = expected_water(source)
    assert np.abs(maps["rgbn_20190901"] - expected).max() < 1e-5
    assert np.isnan(maps["rgba_20190901"][:, :10]).all()
    assert np.abs(maps["rgba_20190901"][:, 10:] - expected[:, 10:]).max() < 1e-5


def test_deepness_models_refuse_what_they_cannot_do(water_model, small_scene, tmp_path, capsys):
    rasters = [str(p) for p in small_scene.tci_paths[2019]]
    # 16-bit images: the words of a Deepness model ("as the product the model was trained on holds them (uint8)")
    with rasterio.open(rasters[-1]) as source:
        profile, values = source.profile, source.read()
    profile.update(dtype="uint16")
    wide = tmp_path / "wide_20190901.tif"
    with rasterio.open(wide, "w", **profile) as out:
        out.write(values.astype(np.uint16) * 100)
    assert main(["segment", "--model", str(water_model), "--output", str(tmp_path / "o"), str(wide)]) == 1
    assert ("the rasters hold uint16 values; a Deepness model reads 8-bit images (0..255, divided by 255): give them "
            "as 8-bit (gdal_translate -ot Byte -scale MIN MAX 0 255") in capsys.readouterr().err
    assert main(["segment", "--model", str(water_model), "--output", str(tmp_path / "o"), "--tile-size", "128",
                 *rasters]) == 1
    assert "this model takes tiles of exactly 64 px" in capsys.readouterr().err
    assert main(["segment", "--model", str(water_model), "--output", str(tmp_path / "o"), "--scales", "3",
                 *rasters]) == 1
    assert ("this model takes tiles of exactly 64 px, so it cannot see them at other scales: average over 1 scale"
            in capsys.readouterr().err) and not (tmp_path / "o").exists()
    detector = deepness_model(tmp_path / "cars.onnx", WEIGHTS, BIAS, {"0": "car"}, "Sigmoid", model_type="Detector")
    assert main(["segment", "--model", str(detector), "--output", str(tmp_path / "o"), *rasters]) == 1
    assert "this is a Deepness detector model; TimeSeg runs Deepness segmentation models" in capsys.readouterr().err
    # its resolution given in metres where Deepness asks for centimetres: 10 m rasters at 0.1 m, refused at once
    metres = deepness_model(tmp_path / "metres.onnx", WEIGHTS, BIAS, {"0": "water"}, "Sigmoid", resolution=10)
    assert main(["segment", "--model", str(metres), "--output", str(tmp_path / "o"), *rasters]) == 1
    err = capsys.readouterr().err
    assert ("the rasters are at 10 m per pixel, the model works at 0.1 m: resampled 100 times finer, the outputs "
            "would be 9,600 x 9,600 px" in err and "Deepness cards give it in centimetres" in err)
    assert "resample them first" not in err and err.count("the rasters are at 10 m per pixel") == 1
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("side, element, message", [
    (48, "FLOAT", "a Deepness model of 64 x 48 px tiles; TimeSeg, as Deepness, runs square tiles"),
    (64, "FLOAT16", "a Deepness model whose input is tensor(float16); TimeSeg, as Deepness, gives it float32"),
    (64, "UINT8", "a Deepness model whose input is tensor(uint8); TimeSeg, as Deepness, gives it float32"),
])
def test_a_deepness_input_timeseg_cannot_feed_is_refused_when_the_model_is_opened(side, element, message, tmp_path,
                                                                                capsys):
    """Non-square tiles and inputs other than float32 were taken, then failed mid-run on onnxruntime's cut-off
    "Got invalid dimensions for input: input for the following indices"."""
    import onnx
    from onnx import TensorProto, helper

    kind = getattr(TensorProto, element)
    graph = helper.make_graph(
        [helper.make_node("Cast", ["input"], ["floats"], to=TensorProto.FLOAT),
         helper.make_node("ReduceMean", ["floats"], ["mean"], axes=[1], keepdims=1),
         helper.make_node("Sigmoid", ["mean"], ["output"])], "odd_input",
        [helper.make_tensor_value_info("input", kind, [1, 3, 64, side])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, 64, side])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    for key, value in {"model_type": "Segmentor", "class_names": {"0": "bright"}}.items():
        model.metadata_props.add(key=key, value=json.dumps(value))
    onnx.save(model, str(tmp_path / "odd.onnx"))
    assert main(["info", str(tmp_path / "odd.onnx")]) == 1
    assert message in capsys.readouterr().err


def test_an_onnxruntime_error_keeps_the_line_that_says_what_is_wrong():
    from timeseg.core.atomic import one_line

    error = RuntimeError("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Got invalid dimensions for input: input for the "
                         "following indices\n index: 3 Got: 64 Expected: 48\n Please fix either the inputs or the "
                         "model.")
    assert one_line(error).endswith("following indices index: 3 Got: 64 Expected: 48 Please fix either the inputs "
                                    "or the model.")


@pytest.mark.parametrize("metadata, message", [
    ({"class_names": {"0": "a", "1": "b", "2": "c"}}, "class_names lists 3 classes, the network gives 1 channel:"),
    ({"standardization_mean": [0.4, 0.4]}, "standardization_mean must list one number per input channel \\(3\\)"),
    ({"resolution": "abc"}, "resolution must be a number, not 'abc'"),
    ({"seg_thresh": 2}, "seg_thresh between 0 and 1"),
    ({"tiles_overlap": 100}, "tiles_overlap from 0 to 99 %"),
    ({"tiles_overlap": -10}, "tiles_overlap from 0 to 99 %"),
])
def test_deepness_metadata_that_cannot_be_right_is_refused_before_the_run(metadata, message, small_scene, tmp_path,
                                                                           capsys):
    values = {"class_names": {"0": "water"}, **metadata}
    names = values.pop("class_names")
    model = deepness_model(tmp_path / "odd.onnx", WEIGHTS, BIAS, names, "Sigmoid", **values)
    assert main(["info", str(model)]) == 1  # the card is checked when the model is opened, run or not
    assert re.search(message, capsys.readouterr().err)
    code = main(["segment", "--model", str(model), "--output", str(tmp_path / "o"),
                 *map(str, small_scene.tci_paths[2019])])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1, err
    assert re.search(message, err[0]) and err[0].endswith("fix the model's metadata"), err[0]
    assert not (tmp_path / "o").exists()


def test_deepness_metadata_as_other_exporters_write_it_is_read(small_scene, tmp_path, capsys):
    """A tiles_size that the network's fixed input contradicts (the network's wins), a scalar standard
    deviation (every channel's) and metadata written as plain words, not JSON."""
    import onnx

    from timeseg.core.runtime import load_model

    model = deepness_model(tmp_path / "odd.onnx", WEIGHTS, BIAS, {"0": "water"}, "Sigmoid", tiles_size=128,
                           standardization_std=0.2)
    loaded = onnx.load(str(model))
    for prop in loaded.metadata_props:
        if prop.key == "model_type":
            prop.value = "Segmentor"  # not '"Segmentor"'
    onnx.save(loaded, str(model))
    card = load_model(model, "cpu").card
    assert card.tile_size == 64 and card.standardization_std == [0.2, 0.2, 0.2]
    assert main(["segment", "--model", str(model), "--output", str(tmp_path / "o"),
                 *map(str, small_scene.tci_paths[2019][-1:])]) == 0, capsys.readouterr().err


def test_a_deepness_model_in_processing(water_model, small_scene, tmp_path, provider):
    import processing

    result = processing.run("timeseg:segment", {
        "INPUT": [str(p) for p in small_scene.tci_paths[2019]], "MODEL": str(water_model), "DEVICE": 1,
        "PRECISION": 1,  # fp32: the exact numbers (auto may take bf16)
        "OUTPUT_PROBABILITY": str(tmp_path / "p.tif"), "OUTPUT_CLASSES": str(tmp_path / "c.tif")})
    with rasterio.open(result["OUTPUT_PROBABILITY"]) as probability:
        assert np.abs(probability.read(1) - expected_water(small_scene.tci_paths[2019][-1])).max() < 1e-5


@pytest.fixture
def deepness_dock(qgis_iface, qgis_new_project):
    """The plugin's dock, open in a new project; unloaded after the test."""
    from tests_support import load_plugin_package

    plugin = load_plugin_package().classFactory(qgis_iface)
    plugin.initGui()
    plugin.toggle_dock(True)
    yield plugin.dock
    plugin.unload()


def run_in_the_dock(dock) -> None:
    """Click Run segmentation and wait (2 minutes at most) for the run to end."""
    from qgis.core import QgsApplication

    dock.controls.run_button.click()
    deadline = time.monotonic() + 120
    while dock.task is not None and time.monotonic() < deadline:
        QgsApplication.processEvents()
        time.sleep(0.02)


def test_a_deepness_model_in_the_dock(water_model, small_scene, tmp_path, deepness_dock):
    from qgis.core import QgsProject, QgsRasterLayer

    dock = deepness_dock
    layers = [QgsRasterLayer(str(p), p.stem) for year in small_scene.years for p in small_scene.tci_paths[year]]
    QgsProject.instance().addMapLayers(layers)
    dock.model_panel.model_widget.setFilePath(str(water_model))
    assert "Deepness" in dock.model_panel.card_label.text() and "one date" in dock.model_panel.card_label.text()
    dock.options.output_widget.setFilePath(str(tmp_path / "results"))
    dock.options.device_combo.setCurrentIndex(dock.options.device_combo.findData("cpu"))
    for layer in layers:
        dock.table.set_checked(layer.id())
    assert dock.warning_label.text() == ""
    run_in_the_dock(dock)
    assert dock.task is None and "Results in" in dock.controls.status_label.text(), \
        dock.controls.status_label.text()
    project = QgsProject.instance()
    assert project.mapLayersByName("water classes 2016") and project.mapLayersByName("water change 2016-2019")
    # a model of three classes: which class's change to map is the analyst's choice, in Compare
    rgb = deepness_model(tmp_path / "rgb.onnx", np.eye(3, dtype=np.float32), np.zeros(3, np.float32),
                         {"0": "red", "1": "green", "2": "blue"}, "Softmax")
    dock.model_panel.model_widget.setFilePath(str(rgb))
    run_in_the_dock(dock)
    status = dock.controls.status_label.text()
    assert ("no change map: the model finds 3 classes; map the change of one with Compare (below), the "
            "periods' class layers and the class") in status, status
    assert project.mapLayersByName("rgb classes 2019") and not project.mapLayersByName("rgb change 2016-2019")
    # a model chosen but refused: the red line points at the Model panel's reason (it said "Choose a TimeSeg
    # model." of a model chosen), and the multi-class Deepness model's threshold is open (it drops classes)
    assert dock.options.threshold_spin.isEnabled()
    detector = deepness_model(tmp_path / "cars.onnx", WEIGHTS, BIAS, {"0": "car"}, "Sigmoid",
                              model_type="Detector")
    dock.model_panel.model_widget.setFilePath(str(detector))
    assert "Deepness detector model" in dock.model_panel.card_label.text()
    assert "This model cannot be used: the Model panel says why" in dock.warning_label.text()


def test_classes_of_other_models_are_drawn_in_the_colours_maps_give_them():
    """Deepness's zoo names land cover: water blue, vegetation green, bare soil brown, shadow dark; a name with
    no known word keeps the palette's colour."""
    from timeseg.core.outputs import PALETTE, class_colours

    colours = class_colours(["background", "open water", "vegetation", "bare soil", "shadow", "quarry"])
    assert colours[1][:3] == (40, 110, 220) and colours[2][:3] == (90, 180, 70)
    assert colours[3][:3] == (170, 120, 80) and colours[4][:3] == (60, 60, 70)
    assert colours[5] == PALETTE[5] and colours[0] == (0, 0, 0, 0) and colours[255][3] == 0


def test_one_undated_image_runs_and_two_need_their_dates(water_model, small_scene, tmp_path, capsys):
    """A Deepness user's orthophoto has no date, and a one-image run needs none (it said: "no date in the name
    or tags of ortho.tif"); several images still need theirs, which order them."""
    ortho = undated_copy(small_scene.tci_paths[2019][-1], tmp_path)
    assert main(["segment", "--model", str(water_model), "--output", str(tmp_path / "out"), "--device", "cpu",
                 "--precision", "fp32", str(ortho)]) == 0
    assert "1 date (undated) on CPU" in capsys.readouterr().out
    with rasterio.open(tmp_path / "out" / "probability.tif") as probability:
        assert np.abs(probability.read(1) - expected_water(ortho)).max() < 1e-5
        assert "dates" not in probability.tags()
    assert '<temporal enabled="0"' in (tmp_path / "out" / "probability.qml").read_text()
    other = tmp_path / "other"
    other.mkdir()
    second = undated_copy(small_scene.tci_paths[2019][0], other)
    assert main(["segment", "--model", str(water_model), "--output", str(tmp_path / "two"), str(ortho),
                 str(second)]) == 1
    assert "no date in the name or tags of ortho.tif: put its date in its name (ortho_20210617.tif)" in \
        capsys.readouterr().err
    assert not (tmp_path / "two").exists()


def test_one_undated_image_through_the_road_model_says_undated_where_it_names_dates(small_scene, tmp_path, capsys):
    from timeseg.core.model_card import SHIPPED_ROAD_MODEL

    ortho = undated_copy(small_scene.tci_paths[2019][-1], tmp_path)
    assert main(["segment", "--model", str(SHIPPED_ROAD_MODEL), "--output", str(tmp_path / "out"), str(ortho)]) == 0
    out, err = capsys.readouterr()
    assert "dates harmonised to the model's training images: undated" in err and "1 date (undated)" in out
    assert "None" not in out + err


def test_an_undated_image_is_refused_by_a_model_that_reads_the_days_of_a_year(small_scene, tmp_path):
    from timeseg.core.model_card import SHIPPED_CROP_MODEL
    from timeseg.core.raster_stack import DatedRaster
    from timeseg.core.segment import SegmentRequest, segment_preflight

    ortho = undated_copy(small_scene.reflectance_paths[2019][-1], tmp_path)
    problems, _ = segment_preflight(SegmentRequest([DatedRaster(ortho, None)], SHIPPED_CROP_MODEL, tmp_path / "out"))
    assert ("ortho.tif has no date, and the model reads the days of a year's dates: put its date in its name "
            "(image_20210617.tif) or give it (--dates; in Processing: Dates)") in problems


def test_one_undated_image_in_processing(water_model, small_scene, tmp_path, provider):
    import processing
    from qgis.core import QgsProject

    ortho = undated_copy(small_scene.tci_paths[2019][-1], tmp_path)
    result = processing.runAndLoadResults("timeseg:segment", {
        "INPUT": [str(ortho)], "MODEL": str(water_model), "DEVICE": 1, "PRECISION": 1,
        "OUTPUT_PROBABILITY": str(tmp_path / "p.tif"), "OUTPUT_CLASSES": str(tmp_path / "c.tif")})
    with rasterio.open(result["OUTPUT_PROBABILITY"]) as probability:
        assert np.abs(probability.read(1) - expected_water(ortho)).max() < 1e-5
    # named by the model and what, without the dates' span (it read "water probability None..None")
    assert [layer.source() for layer in QgsProject.instance().mapLayersByName("water probability")] == \
        [str(tmp_path / "p.tif")]
    assert QgsProject.instance().mapLayersByName("water classes")
    # the legend titled by the band, as in the dock, without QGIS's "(Gray)" beside the colour ramp
    from qgis.core import QgsLayerTreeModel

    root = QgsProject.instance().layerTreeRoot()
    node = root.findLayer(QgsProject.instance().mapLayersByName("water probability")[0].id())
    model = QgsLayerTreeModel(root)
    assert model.layerLegendNodes(node)[0].data(0) == "Band 1: P(water)"


def test_one_undated_layer_in_the_dock(water_model, small_scene, tmp_path, deepness_dock):
    """One layer ticked alone runs without a date, its period its name; ticked with another, it needs its date."""
    from qgis.core import QgsProject, QgsRasterLayer

    from timeseg.ui.layer_table import DATE

    dock = deepness_dock
    ortho = QgsRasterLayer(str(undated_copy(small_scene.tci_paths[2019][-1], tmp_path)), "ortho")
    dated = QgsRasterLayer(str(small_scene.tci_paths[2019][0]), "dated")
    QgsProject.instance().addMapLayers([ortho, dated])
    dock.model_panel.model_widget.setFilePath(str(water_model))
    dock.options.output_widget.setFilePath(str(tmp_path / "results"))
    dock.options.device_combo.setCurrentIndex(dock.options.device_combo.findData("cpu"))
    dock.table.set_checked(ortho.id())
    dock.table.set_checked(dated.id())
    assert "Give a date to: ortho" in dock.warning_label.text()
    editor = dock.table.cellWidget(dock.table._row_of(ortho.id()), DATE)
    assert "A layer ticked alone runs without one" in editor.toolTip() and "red" in editor.styleSheet()
    dock.table.set_checked(dated.id(), False)
    assert dock.warning_label.text() == "" and "red" not in editor.styleSheet()  # alone: nothing blocks
    dock.table.set_checked(dated.id())
    assert "red" in editor.styleSheet()
    QgsProject.instance().removeMapLayer(dated.id())  # the other layer gone: ortho is ticked alone again
    assert dock.warning_label.text() == "" and "red" not in editor.styleSheet()
    run_in_the_dock(dock)
    assert "ortho: 1 date on CPU" in dock.controls.status_label.text(), dock.controls.status_label.text()
    [classes] = QgsProject.instance().mapLayersByName("water classes ortho")
    assert not classes.temporalProperties().isActive()  # no date: shown whatever the Temporal Controller's time
    with rasterio.open(classes.source()) as written:
        assert written.shape == (ortho.height(), ortho.width())
        assert np.array_equal(written.read(1), (expected_water(ortho.source()) >= THRESHOLD).astype(np.uint8))
