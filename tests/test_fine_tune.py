"""Training on the analyst's own area (models.fine_tune), from the Python API, the command line,
Processing (processing.run and qgis_process) and the dock's Train panel."""

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sysconfig
import time

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from tests_support import ROOT, load_plugin_package, undated_copy, write_digital_numbers
from timeseg.cli import main
from timeseg.core.model_card import SHIPPED_ROAD_MODEL, read_model_card
from timeseg.core.raster_stack import DatedRaster, Grid
from timeseg.core.runtime import variant_path
from timeseg.models.fine_tune import (
    FineTuneError,
    area_window,
    fine_tune,
    held_out_centre_lines,
    labelled_split,
    split_windows,
)
from timeseg.models.labels import LabelSource
from timeseg.models.settings import FineTuneRequest


@pytest.fixture(scope="module")
def place(tmp_path_factory):
    """A 192 px simulated place, three dates of 2019, its roads as lines."""
    from timeseg.models.simulator import simulate_scene

    return simulate_scene(tmp_path_factory.mktemp("place"), seed=31, size=192, dates_per_period=3)


@pytest.fixture(scope="module")
def scratch_model(place, tmp_path_factory):
    """One epoch from scratch through the Python API."""
    output = tmp_path_factory.mktemp("trained") / "mine.onnx"
    rasters = [DatedRaster(p, a.date) for p, a in zip(place.tci_paths[2019], place.acquisitions[2019])]
    result = fine_tune(FineTuneRequest(rasters, LabelSource(place.labels_path, "lines", "roads_2019"), output,
                                       epochs=1, seed=1))
    return result


def request_defaults() -> tuple[int, float]:
    """The command line's epochs and minutes of a run on the analyst's area."""
    fields = {f.name: f.default for f in dataclasses.fields(FineTuneRequest)}
    return fields["epochs"], fields["minutes"]


def test_split_is_spatial_with_gaps():
    parts = split_windows(Window(10, 20, 400, 150))
    assert [int(parts[n].col_off) for n in ("train", "validation", "heldout")] == [10, 10 + 268 + 8, 10 + 268 + 38 + 16]
    assert all(int(p.row_off) == 20 and int(p.height) == 150 for p in parts.values())
    assert sum(int(p.width) for p in parts.values()) + 16 == 400
    with pytest.raises(FineTuneError, match="give at least 176 px"):
        split_windows(Window(0, 0, 100, 100))


def test_the_held_out_part_goes_to_the_end_that_holds_labels(place, tmp_path):
    """Labels short of the right end: the held-out part moves to the left end, the training part to the
    right; labels near one end only: no split holds labels in both parts."""
    from timeseg.core.raster_stack import Grid
    from timeseg.models.fine_tune import labelled_split

    with rasterio.open(place.tci_paths[2019][0]) as dataset:
        grid = Grid.of(dataset)
    area = Window(0, 0, grid.width, grid.height)
    labels = np.zeros((grid.height, grid.width), np.uint8)
    labels[:, [20, 100]] = 1  # columns 20 and 100 of 192: none in the right fifth
    path = tmp_path / "labels.tif"
    with rasterio.open(path, "w", driver="GTiff", width=grid.width, height=grid.height, count=1, dtype="uint8",
                       crs=grid.crs, transform=grid.transform) as dataset:
        dataset.write(labels, 1)
    windows = labelled_split(LabelSource(path, "raster"), grid, area)
    assert windows == split_windows(area, held_out_first=True)
    assert (windows["heldout"].col_off, windows["train"].col_off + windows["train"].width) == (0, 192)
    assert windows["heldout"].width + windows["validation"].width + windows["train"].width + 16 == 192
    labels[:, 100] = 0  # column 20 only
    with rasterio.open(path, "r+") as dataset:
        dataset.write(labels, 1)
    with pytest.raises(FineTuneError, match="do not reach both of its ends"):
        labelled_split(LabelSource(path, "raster"), grid, area)


def test_a_road_label_raster_is_scored_against_its_centre_lines_and_an_area_raster_is_not(place, tmp_path):
    """Roads given as a label raster (3 px wide, as a rasterised road layer) are scored within 2 px of their
    skeleton, which lies on the lines drawn 1 px wide; wide patches (a field, a mangrove) keep pixel scores."""
    from scipy import ndimage

    from timeseg.core.raster_stack import Grid
    from timeseg.models.labels import label_raster

    with rasterio.open(place.tci_paths[2019][0]) as dataset:
        grid, profile = Grid.of(dataset), dataset.profile | {"count": 1, "nodata": None}
    lines = LabelSource(place.labels_path, "lines", "roads_2019")
    window = Window(0, 0, grid.width, grid.height)
    drawn = held_out_centre_lines(lines, grid, window)

    def raster_of(labels: np.ndarray, name: str) -> LabelSource:
        with rasterio.open(tmp_path / name, "w", **profile) as target:
            target.write(labels[None])
        return LabelSource(tmp_path / name, "raster")

    roads = label_raster(lines, grid)
    skeleton = held_out_centre_lines(raster_of(roads, "roads.tif"), grid, window)
    assert skeleton is not None
    assert (ndimage.distance_transform_edt(~drawn)[skeleton] <= 1.5).mean() > 0.97  # on the lines, a pixel aside
    assert (ndimage.distance_transform_edt(~skeleton)[drawn] <= 1.5).mean() > 0.9  # and along all of them
    patches = ndimage.binary_dilation(roads == 1, iterations=6).astype(np.uint8)
    assert held_out_centre_lines(raster_of(patches, "patches.tif"), grid, window) is None
    assert held_out_centre_lines(raster_of(np.zeros_like(roads), "empty.tif"), grid, window) is None
    rasters = [DatedRaster(p, a.date) for p, a in zip(place.tci_paths[2019], place.acquisitions[2019])]
    fitted = fine_tune(FineTuneRequest(rasters, raster_of(roads, "roads.tif"), tmp_path / "r.onnx", epochs=1, seed=1))
    assert {"f1", "relaxed_f1"} <= set(fitted.after) and 0 <= fitted.after["relaxed_f1"] <= 1


def test_area_outside_the_rasters_is_refused(place):
    from timeseg.core.raster_stack import Grid

    with rasterio.open(place.tci_paths[2019][0]) as dataset:
        grid = Grid.of(dataset)
    left, bottom, right, top = grid.bounds
    assert area_window(grid, None) == Window(0, 0, 192, 192)
    with pytest.raises(FineTuneError, match="does not overlap"):
        area_window(grid, (right + 100, bottom, right + 500, top))


def test_scratch_training_writes_model_checkpoint_and_numbers(scratch_model, place):
    result = scratch_model
    assert result.before is None and set(result.after) >= {"iou", "f1", "relaxed_f1"}
    card = read_model_card(result.model_path)
    assert card.metrics["heldout_after"] == result.after and card.metrics["heldout_before"] is None
    assert "from scratch" in card.trained_on and "S2_SIM_2019" in card.trained_on
    assert card.bands == ["B04", "B03", "B02"]  # true colour, as the shipped model: the same layers run with it
    assert result.checkpoint_path.is_file() and result.model_path.with_suffix(".json").is_file()
    # its int8 variant beside it, the one the default precision runs on a CPU, with the same numbers
    assert result.int8_path == result.model_path.with_name("mine.int8.onnx") and result.int8_path.is_file()
    assert variant_path(result.model_path, "auto", gpu=False) == result.int8_path
    int8_card = read_model_card(result.int8_path)
    assert int8_card.precision == "int8" and int8_card.metrics["heldout_after"] == result.after
    assert int8_card.metrics["int8_equal_class_pixels"] >= 0.99
    held = result.windows["heldout"]
    assert held.col_off >= result.windows["validation"].col_off + result.windows["validation"].width + 8


def test_cancel_after_the_epochs_keeps_nothing_and_the_earlier_model(scratch_model, place, tmp_path):
    """Cancel while the held-out part is scored and the model written: the model already at that path stays."""
    import shutil

    from timeseg.models.training import TrainingCancelled, TrainingMonitor

    output = tmp_path / "mine.onnx"
    earlier = {output: scratch_model.model_path, output.with_suffix(".pt"): scratch_model.checkpoint_path,
               output.with_suffix(".json"): scratch_model.model_path.with_suffix(".json"),
               output.with_name("mine.int8.onnx"): scratch_model.int8_path}
    for copy, original in earlier.items():
        shutil.copyfile(original, copy)
    trained = []  # set once the last epoch of the last stage has ended: the cancel comes after the epochs

    def on_epoch(record):
        if record["stage"] == "sequence" and record["epoch"] == record["epochs"]:
            trained.append(True)

    rasters = [DatedRaster(p, a.date) for p, a in zip(place.tci_paths[2019], place.acquisitions[2019])]
    with pytest.raises(TrainingCancelled, match="while scoring the held-out part"):
        fine_tune(FineTuneRequest(rasters, LabelSource(place.labels_path, "lines", "roads_2019"), output, epochs=1,
                                  seed=2), TrainingMonitor(on_epoch, lambda: bool(trained)))
    assert trained and sorted(tmp_path.iterdir()) == sorted(earlier)
    for copy, original in earlier.items():
        assert copy.read_bytes() == original.read_bytes(), copy.name


def test_bands_of_a_model_trained_from_scratch():
    """Named bands are kept; 3 unnamed bands of uint8 are true colour; an alpha band is a mask, not read; others
    are numbered."""
    from types import SimpleNamespace

    from timeseg.models.fine_tune import scratch_band_names

    def stack(descriptions, colours, dtype):
        return SimpleNamespace(band_descriptions=lambda: [descriptions], band_colours=lambda: [colours],
                               band_count=len(descriptions), dtype=np.dtype(dtype))

    assert scratch_band_names(stack(["B2", "B3", "B4", "B8"], ["gray"] * 4, "uint16")) == ["B02", "B03", "B04", "B08"]
    assert scratch_band_names(stack([None] * 3, ["red", "green", "blue"], "uint8")) == ["B04", "B03", "B02"]
    assert scratch_band_names(stack([None] * 4, ["red", "green", "blue", "alpha"], "uint8")) == ["B04", "B03", "B02"]
    assert scratch_band_names(stack([None] * 3, ["gray"] * 3, "uint8")) == ["B04", "B03", "B02"]
    assert scratch_band_names(stack([None] * 3, ["gray"] * 3, "uint16")) == ["band1", "band2", "band3"]
    assert scratch_band_names(stack(["B4", "B4", None, None], ["gray"] * 4, "uint8")) == [
        "band1", "band2", "band3", "band4"]


def test_label_layers_not_saved_as_one_file_are_trained_on_as_qgis_shows_them(place, qgis_app, tmp_path):
    """A scratch layer, a filtered one and one with unsaved edits are written to a GeoPackage first;
    a saved file is read where it is."""
    from osgeo import ogr
    from qgis.core import QgsFeature, QgsVectorLayer

    from timeseg.core.raster_stack import Grid
    from timeseg.models.labels import label_raster
    from timeseg.ui.label_layers import label_source_of

    with rasterio.open(place.tci_paths[2019][0]) as dataset:
        grid = Grid.of(dataset)
    folder = tmp_path / "written"
    saved = QgsVectorLayer(f"{place.labels_path}|layername=roads_2019", "roads", "ogr")
    as_saved = label_source_of(saved, 3, folder)
    assert (as_saved.path, as_saved.layer, as_saved.kind) == (place.labels_path, "roads_2019", "lines")
    assert not folder.exists()
    roads = label_raster(as_saved, grid) == 1
    assert roads.sum() > 500

    scratch = QgsVectorLayer(f"LineString?crs={saved.crs().authid()}", "traced by hand", "memory")
    scratch.dataProvider().addFeatures([QgsFeature(feature) for feature in saved.getFeatures()])
    from_scratch = label_source_of(scratch, 3, folder)
    assert from_scratch.path.parent == folder and from_scratch.path.suffix == ".gpkg"
    assert np.array_equal(label_raster(from_scratch, grid) == 1, roads)

    names = [layer.GetName() for layer in ogr.Open(str(place.labels_path))]
    by_index = QgsVectorLayer(f"{place.labels_path}|layerid={names.index('roads_2019')}", "by index", "ogr")
    assert names.index("roads_2019") > 0 and by_index.isValid()
    assert np.array_equal(label_raster(label_source_of(by_index, 3, folder), grid) == 1, roads)

    filtered = QgsVectorLayer(f"{place.labels_path}|layername=roads_2019", "some roads", "ogr")
    filtered.setSubsetString("fid <= 2")
    kept = label_raster(label_source_of(filtered, 3, folder), grid) == 1
    assert 0 < kept.sum() < roads.sum() and not (kept & ~roads).any()

    edited = QgsVectorLayer(f"{place.labels_path}|layername=roads_2019", "roads being edited", "ogr")
    edited.startEditing()
    assert edited.deleteFeatures([feature.id() for feature in edited.getFeatures()][1:])
    left = label_raster(label_source_of(edited, 3, folder), grid) == 1
    assert 0 < left.sum() < roads.sum() and not (left & ~roads).any()
    edited.rollBack()
    assert place.labels_path.stat().st_size > 0 and QgsVectorLayer(
        f"{place.labels_path}|layername=roads_2019", "again", "ogr").featureCount() == saved.featureCount()


def test_progress_follows_the_time_budget_when_it_ends_a_stage_first():
    from timeseg.models.fine_tune import progress_percent

    # 5 minutes: the single-date stage has 210 s, the sequence stage 90 s
    assert progress_percent({"stage": "fcn", "epoch": 50, "epochs": 200, "seconds": 105.0}, 5.0) == pytest.approx(35)
    assert progress_percent({"stage": "fcn", "epoch": 150, "epochs": 200, "seconds": 105.0}, 5.0) \
        == pytest.approx(52.5)
    assert progress_percent({"stage": "fcn", "epoch": 90, "epochs": 200, "seconds": 212.0}, 5.0) == 70
    assert progress_percent({"stage": "sequence", "epoch": 10, "epochs": 66, "seconds": 45.0}, 5.0) \
        == pytest.approx(85)
    assert progress_percent({"stage": "sequence", "epoch": 33, "epochs": 66, "seconds": 45.0}, None) \
        == pytest.approx(85)
    assert progress_percent({"stage": "sequence", "epoch": 66, "epochs": 66, "seconds": 95.0}, 5.0) == 100


def test_a_model_worse_than_its_start_or_finding_nothing_is_called_so(scratch_model):
    from dataclasses import replace

    found = replace(scratch_model, before=None, after={"iou": 0.2, "f1": 0.3, "relaxed_f1": 0.4})
    assert found.verdict() is None  # from scratch: nothing to compare with
    better = replace(found, before={"iou": 0.2, "f1": 0.3, "relaxed_f1": 0.3})
    worse = replace(found, before={"iou": 0.2, "f1": 0.3, "relaxed_f1": 0.5})
    assert not better.worse_than_start and better.verdict() is None
    assert worse.worse_than_start
    assert worse.verdict().startswith("the new model scores below the starting model on your held-out part")
    nothing = replace(found, after={"iou": 0.0, "f1": 0.0, "relaxed_f1": 0.0})
    assert nothing.finds_nothing and not nothing.worse_than_start
    assert nothing.verdict().startswith("the new model finds none of the labels of your held-out part")
    for verdict in (worse.verdict(), nothing.verdict()):  # the likeliest cause: roads the labels leave out
        assert "Every road inside the area must be drawn, as a road left out is learnt as not-road" in verdict
    assert not replace(found, after={"iou": 0.0, "f1": 0.0, "relaxed_f1": 0.1}).finds_nothing
    kept = replace(better, after=better.before, kept_start=True)
    assert kept.verdict().startswith(f"no epoch of the fit scored above the starting model on your validation "
                                     f"part, so {kept.model_path.name} is the starting model: keep using it")
    assert "Every road inside the area must be drawn" in kept.verdict()


def test_a_fit_that_no_epoch_improves_on_the_validation_part_is_the_starting_model(scratch_model, place,
                                                                                  tmp_path, monkeypatch):
    """Every stage's start scored above any epoch on the validation part (set here; the training is real):
    the fitted model's weights are the starting model's, its held-out scores the same, and the verdict says so."""
    import torch

    import timeseg.models.training as training

    monkeypatch.setattr(training, "_start_scores", lambda *args: {"accuracy": 1.0, "iou": 1.0, "f1": 1.0})
    rasters = [DatedRaster(p, a.date) for p, a in zip(place.tci_paths[2019], place.acquisitions[2019])]
    result = fine_tune(FineTuneRequest(rasters, LabelSource(place.labels_path, "lines", "roads_2019"),
                                       tmp_path / "fitted.onnx", init_checkpoint=scratch_model.checkpoint_path,
                                       epochs=3, seed=2))
    start = torch.load(scratch_model.checkpoint_path, weights_only=True)["state_dict"]
    fitted = torch.load(result.checkpoint_path, weights_only=True)["state_dict"]
    assert all(torch.equal(start[name], fitted[name]) for name in start)
    assert result.kept_start and result.after == result.before
    assert result.verdict().startswith("no epoch of the fit scored above the starting model")


def test_from_scratch_no_stage_keeps_its_first_third_of_the_sequence_epochs(scratch_model, place, tmp_path,
                                                                         monkeypatch):
    """A fresh ConvLSTM's first epochs are never kept from scratch (the rule itself:
    tests/test_training.py); a trained one may keep any, and keeps its normalisation statistics."""
    import timeseg.models.fine_tune as fine_tune_module

    given = []

    def record_options(options, *args, **kwargs):
        given.append(options)
        raise KeyboardInterrupt  # stop before any training

    monkeypatch.setattr(fine_tune_module, "train", record_options)
    rasters = [DatedRaster(p, a.date) for p, a in zip(place.tci_paths[2019], place.acquisitions[2019])]
    labels = LabelSource(place.labels_path, "lines", "roads_2019")
    for start in (None, scratch_model.checkpoint_path):
        with pytest.raises(KeyboardInterrupt):
            fine_tune(FineTuneRequest(rasters, labels, tmp_path / "mine.onnx", init_checkpoint=start, epochs=30))
    assert [(o.fcn_epochs, o.sequence_epochs, o.warmup_epochs, o.frozen_statistics) for o in given] == [
        (30, 10, 3, False), (30, 10, 0, True)]
    assert not (tmp_path / "mine.onnx").exists()


def test_a_model_quantisation_would_change_runs_in_float32_and_no_stale_variant_stays(place, tmp_path,
                                                                                      monkeypatch):
    """When int8 would change more than 1 % of the classes the model is written without the variant, and
    the variants of the model it replaces, which ``--precision auto`` would otherwise run, are removed."""
    import timeseg.models.export as export
    from timeseg.models.quantise import QuantisationError

    output = tmp_path / "mine.onnx"
    stale = [output.with_name("mine.int8.onnx"), output.with_name("mine.fp16.onnx")]
    for path in stale:
        path.write_bytes(b"a variant of the model that was here before")

    def refuse(*args, **kwargs):
        raise QuantisationError("the int8 variant agrees with the float32 model on 97.00% of the class pixels")

    monkeypatch.setattr(export, "int8_variant", refuse)
    rasters = [DatedRaster(p, a.date) for p, a in zip(place.tci_paths[2019], place.acquisitions[2019])]
    result = fine_tune(FineTuneRequest(rasters, LabelSource(place.labels_path, "lines", "roads_2019"), output,
                                       epochs=1, seed=1))
    assert result.int8_path is None and read_model_card(output).precision == "fp32"
    assert not [path.name for path in stale if path.exists()]
    assert variant_path(output, "auto", gpu=False) == output


def test_fine_tuning_refuses_rasters_that_do_not_fit_the_model(place, scratch_model, tmp_path):
    single_band = tmp_path / "one_band_20190301.tif"
    with rasterio.open(place.tci_paths[2019][0]) as source:
        profile = {**source.profile, "count": 1}
        with rasterio.open(single_band, "w", **profile) as out:
            out.write(source.read(1), 1)
    request = FineTuneRequest([DatedRaster(single_band, place.acquisitions[2019][0].date)],
                              LabelSource(place.labels_path, "lines", "roads_2019"), tmp_path / "x.onnx",
                              init_checkpoint=scratch_model.checkpoint_path)
    with pytest.raises(FineTuneError, match="the rasters have 1 band, the model to fine-tune takes 3"):
        fine_tune(request)
    assert not (tmp_path / "x.onnx").exists()


def test_command_line_refuses_labels_off_the_rasters_empty_layers_and_parts_without_labels(place, tmp_path, capsys):
    from osgeo import ogr, osr

    far = tmp_path / "far.gpkg"
    source = ogr.GetDriverByName("GPKG").CreateDataSource(str(far))
    srs = osr.SpatialReference()
    with rasterio.open(place.tci_paths[2019][0]) as dataset:
        srs.ImportFromWkt(dataset.crs.to_wkt())
        left, bottom, right, top = dataset.bounds
    # a road off the rasters; one in the western tenth (the training part) only; one in the eastern tenth
    # (the held-out part) only: the area (the whole square raster) is cut from west to east
    west, east = left + (right - left) * 0.05, right - (right - left) * 0.05
    for name, wkt in (("far", f"LINESTRING ({right + 5000} {top}, {right + 6000} {bottom})"),
                      ("west_only", f"LINESTRING ({west} {top}, {west} {bottom})"),
                      ("east_only", f"LINESTRING ({east} {top}, {east} {bottom})")):
        layer = source.CreateLayer(name, srs, ogr.wkbLineString)
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetGeometry(ogr.CreateGeometryFromWkt(wkt))
        layer.CreateFeature(feature)
    source.CreateLayer("empty", srs, ogr.wkbLineString)
    # a polygon round the whole area (a layer of the traced area, not of the roads): every pixel a road
    outline = source.CreateLayer("outline", srs, ogr.wkbPolygon)
    feature = ogr.Feature(outline.GetLayerDefn())
    feature.SetGeometry(ogr.CreateGeometryFromWkt(
        f"POLYGON (({left - 100} {bottom - 100}, {right + 100} {bottom - 100}, {right + 100} {top + 100}, "
        f"{left - 100} {top + 100}, {left - 100} {bottom - 100}))"))
    outline.CreateFeature(feature)
    points = source.CreateLayer("points", srs, ogr.wkbPoint)  # points would be burnt as blobs of road
    mixed = source.CreateLayer("mixed", srs, ogr.wkbUnknown)  # lines and polygons in one layer
    for layer, wkt in ((points, f"POINT ({west} {top - 100})"), (mixed, f"LINESTRING ({west} {top}, {west} {bottom})"),
                       (mixed, f"POLYGON (({east} {top}, {east + 20} {top}, {east + 20} {bottom}, {east} {top}))")):
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetGeometry(ogr.CreateGeometryFromWkt(wkt))
        layer.CreateFeature(feature)
    source = None
    images = [str(p) for p in place.tci_paths[2019]]
    for layer_name, message in (("far", "no label lies on the rasters"), ("empty", "has no features"),
                                ("west_only", "the area's labels do not reach both of its ends"),
                                ("east_only", "the area's labels do not reach both of its ends"),
                                ("outline", "far.gpkg marks every pixel of the area as the class")):
        kind = "polygons" if layer_name == "outline" else "lines"
        code = main(["train", "--images", *images, "--labels", str(far), "--label-layer", layer_name, "--label-kind",
                     kind, "--output-model", str(tmp_path / "m.onnx")])  # no --output: the model's folder
        assert code == 1 and message in capsys.readouterr().err
    # a QGIS layer written to a file for the run is named as the analyst named it, not by that file
    with rasterio.open(images[0]) as dataset:
        grid = Grid(dataset.crs, dataset.transform, dataset.width, dataset.height)
    with pytest.raises(FineTuneError, match='^the label layer "empty roads" has no features: draw or load some'):
        labelled_split(LabelSource(far, "lines", "empty"), grid, Window(0, 0, grid.width, grid.height),
                       '"empty roads"')
    # a kind that is not the layer's: lines read as polygons would be 1 px wide, polygons read as lines filled
    for layer_name, kind, message in (("west_only", "polygons", "far.gpkg holds lines, not polygons: give the label "
                                       "kind lines"),
                                      ("outline", "lines", "far.gpkg holds polygons, not lines: give the label kind "
                                       "polygons"),
                                      ("points", "lines", "far.gpkg holds points; labels are lines (roads) or "
                                       "polygons"),
                                      ("mixed", "polygons", "far.gpkg holds both lines (1) and polygons (1): keep one "
                                       "kind")):
        code = main(["train", "--images", *images, "--labels", str(far), "--label-layer", layer_name, "--label-kind",
                     kind, "--output-model", str(tmp_path / "m.onnx")])
        assert code == 1 and message in capsys.readouterr().err
    # a crop map of classes 0..6 as labels; a raster given as a vector layer
    crops = tmp_path / "crops.tif"
    with rasterio.open(place.tci_paths[2019][0]) as dataset:
        profile = dataset.profile | {"count": 1, "nodata": 255}
    with rasterio.open(crops, "w", **profile) as dataset:
        dataset.write(np.arange(profile["width"] * profile["height"]).reshape(1, profile["height"],
                                                                              profile["width"]).astype(np.uint8) % 7)
    for labels, kind, message in (
            (crops, "raster", "crops.tif holds the classes 2, 3, 4, 5, 6 besides 0 and 1: fitting a model teaches it "
                              "one class (1) against the rest"),
            (crops, "lines", "crops.tif is a raster: give the label kind raster (--label-kind raster)"),
            (place.tci_paths[2019][0], "raster", f"{place.tci_paths[2019][0].name} holds 3 bands: a label raster is "
                                                 "one band of class codes")):
        code = main(["train", "--images", *images, "--labels", str(labels), "--label-kind", kind, "--output-model",
                     str(tmp_path / "m.onnx")])
        assert code == 1 and message in capsys.readouterr().err
    # a model to write where no folder can be: said before the training, not after it
    in_the_way = tmp_path / "notes.txt"
    in_the_way.write_text("a file")
    code = main(["train", "--images", *images, "--labels", str(place.labels_path), "--label-layer", "roads_2019",
                 "--output-model", str(in_the_way / "m.onnx")])
    assert code == 1 and f"cannot create the output folder {in_the_way} (a file is in the way)" in \
        capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()
    code = main(["train", "--images", *images, "--labels", str(place.labels_path), "--label-layer", "roads_2019",
                 "--output-model", str(tmp_path / "m.onnx"), "--extent", "1,2,3"])
    assert code == 1 and "--extent wants xmin,ymin,xmax,ymax" in capsys.readouterr().err
    # no --label-layer, and the first layer holds other geometries: the layer that fits is named
    code = main(["train", "--images", *images, "--labels", str(ROOT / "models/real/Inn_roads.gpkg"),
                 "--output-model", str(tmp_path / "m.onnx")])
    assert code == 1 and ("error: Inn_roads.gpkg's first layer, areas, holds polygons, not lines: give --label-layer "
                          "roads (its layers: areas (polygons), roads (lines), land_cover (polygons))"
                          ) in capsys.readouterr().err
    # the checkpoint it starts from, and TimeSeg's own models, are never written over (command line, Processing)
    start = tmp_path / "start.pt"
    shutil.copyfile(SHIPPED_ROAD_MODEL.with_suffix(".pt"), start)
    written = start.stat().st_mtime_ns
    for output, said in ((tmp_path / "start.onnx", "its checkpoint start.pt would replace the one it starts from"),
                         (SHIPPED_ROAD_MODEL.with_name("mine.onnx"), "holds TimeSeg's own models")):
        code = main(["train", "--images", *images, "--labels", str(place.labels_path), "--label-layer", "roads_2019",
                     "--init", str(start), "--output-model", str(output)])
        assert code == 1 and said in capsys.readouterr().err
    assert start.stat().st_mtime_ns == written and not SHIPPED_ROAD_MODEL.with_name("mine.onnx").exists()
    # a held-out site of one's own is not what an area's fit is scored on: refused, not ignored
    code = main(["train", "--images", *images, "--labels", str(place.labels_path), "--label-layer", "roads_2019",
                 "--output-model", str(tmp_path / "m.onnx"), "--validation-images", *images,
                 "--validation-labels", str(place.labels_path), "--output", str(tmp_path / "r")])
    assert code == 1 and ("error: --validation-images, --validation-labels, --output are not used with "
                          "--output-model, which holds out a part of your area itself") in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "r").exists()


def test_one_undated_image_trains_and_two_need_their_dates(place, tmp_path, capsys):
    """An orthophoto without a date is fitted on alone from the command line, as it is segmented alone; images
    of several dates are ordered by them and still need theirs."""
    ortho = undated_copy(place.tci_paths[2019][-1], tmp_path / "a")
    assert main(["train", "--images", str(ortho), "--labels", str(place.labels_path), "--label-layer", "roads_2019",
                 "--output-model", str(tmp_path / "ortho.onnx"), "--epochs", "1", "--seed", "1"]) == 0
    assert "held-out part of the area" in capsys.readouterr().out
    card = read_model_card(tmp_path / "ortho.onnx")
    assert "ortho.tif" in card.trained_on and 0 <= card.metrics["heldout_after"]["relaxed_f1"] <= 1
    second = undated_copy(place.tci_paths[2019][0], tmp_path / "b")
    assert main(["train", "--images", str(ortho), str(second), "--labels", str(place.labels_path), "--label-layer",
                 "roads_2019", "--output-model", str(tmp_path / "two.onnx"), "--epochs", "1"]) == 1
    assert "no date in the name or tags of ortho.tif" in capsys.readouterr().err
    assert not (tmp_path / "two.onnx").exists()


def test_processing_train_and_qgis_process(place, tmp_path, qgis_processing, qgis_iface):
    import processing
    from qgis.core import QgsApplication, QgsProcessingException, QgsProject, QgsVectorLayer

    plugin = load_plugin_package().classFactory(qgis_iface)
    plugin.initGui()
    try:
        roads = QgsVectorLayer(f"{place.labels_path}|layername=roads_2019", "roads", "ogr")
        assert roads.isValid()
        QgsProject.instance().addMapLayer(roads)
        algorithm = QgsApplication.processingRegistry().algorithmById("timeseg:train")
        assert tuple(algorithm.parameterDefinition(name).defaultValue() for name in ("EPOCHS", "MINUTES")) \
            == request_defaults()
        output = tmp_path / "processing.onnx"
        from qgis.core import QgsProcessingFeedback

        class Said(QgsProcessingFeedback):
            infos: list = []

            def pushInfo(self, text):  # noqa: N802
                self.infos.append(text)

        feedback = Said()
        ortho = undated_copy(place.tci_paths[2019][-1], tmp_path / "ortho")  # one image alone needs no date
        result = processing.run("timeseg:train", {
            "INPUT": [str(ortho)], "LABELS": roads, "LINE_WIDTH": 3,
            "FROM_SCRATCH": True, "EPOCHS": 1, "MINUTES": 0, "OUTPUT_MODEL": str(output)}, feedback=feedback)
        assert result["OUTPUT_MODEL"] == str(output)
        # the held-out scores in words, not as the scores' dict
        assert any(re.fullmatch(r"held-out part, after: F1 \d\.\d{3}( \(roads within 2 px: \d\.\d{3}\))?", line)
                   for line in feedback.infos), feedback.infos
        card = read_model_card(output)  # from scratch, as asked (an emptied model file gets its default back)
        assert "from scratch" in card.trained_on and "ortho" in card.trained_on
        assert card.metrics["heldout_before"] is None
        assert card.metrics["heldout_after"]
        with rasterio.open(place.tci_paths[2019][0]) as dataset:
            left, bottom, right, top = dataset.bounds
        with pytest.raises(QgsProcessingException, match="does not overlap the rasters"):
            processing.run("timeseg:train", {
                "INPUT": [str(p) for p in place.tci_paths[2019]], "LABELS": roads, "INIT_MODEL": "", "EPOCHS": 1,
                "EXTENT": f"{right + 1000},{right + 3000},{bottom},{top}",
                "OUTPUT_MODEL": str(tmp_path / "nothing.onnx")})
        assert not (tmp_path / "nothing.onnx").exists()
    finally:
        plugin.unload()
    assert QgsApplication.processingRegistry().providerById("timeseg") is None

    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "timeseg").symlink_to(ROOT)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "QGIS_CUSTOM_CONFIG_PATH": str(tmp_path / "qgis-config"),
           "QGIS_PLUGINPATH": str(plugins), "PYTHONPATH": sysconfig.get_paths()["purelib"]}
    subprocess.run(["qgis_process.bin", "plugins", "enable", "timeseg"], env=env, capture_output=True, timeout=300)
    headless = tmp_path / "headless.onnx"
    run = subprocess.run(["qgis_process.bin", "--json", "run", "timeseg:train", "--",
                          *[f"INPUT={p}" for p in place.tci_paths[2019]],
                          f"LABELS={place.labels_path}|layername=roads_2019", "EPOCHS=1", "FROM_SCRATCH=true",
                          f"OUTPUT_MODEL={headless}"], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert json.loads(run.stdout[run.stdout.index("{"):])["results"]["OUTPUT_MODEL"] == str(headless)
    assert "heldout_after" in read_model_card(headless).metrics


def test_dock_train_panel_then_run_the_new_model(place, qgis_iface, qgis_new_project, tmp_path):
    from qgis.core import QgsApplication, QgsProject, QgsRasterLayer, QgsVectorLayer

    plugin = load_plugin_package().classFactory(qgis_iface)
    plugin.initGui()
    plugin.toggle_dock(True)
    dock = plugin.dock
    try:
        layers = [QgsRasterLayer(str(p), p.stem) for p in place.tci_paths[2019]]
        roads = QgsVectorLayer(f"{place.labels_path}|layername=roads_2019", "roads 2019", "ogr")
        QgsProject.instance().addMapLayers([*layers, roads])
        for layer in layers:
            dock.table.set_checked(layer.id())
        panel = dock.train_panel
        # the labels are the analyst's choice; the dated images are not offered as labels
        assert panel.labels_combo.currentLayer() is None
        offered = {panel.labels_combo.layer(row) for row in range(panel.labels_combo.count())} - {None}
        assert offered == {roads}, [layer.name() for layer in offered]
        panel.controls.run_button.click()  # no labels: refused, and the refusal goes once they are chosen
        assert panel.task is None and panel.controls.status_label.text().startswith("Choose a label layer")
        panel.labels_combo.setLayer(roads)
        assert panel.controls.status_label.text() == ""
        # an image without a date ticked alone is trained on alone; beside the dated ones it needs its date
        ortho = QgsRasterLayer(str(undated_copy(place.tci_paths[2019][-1], tmp_path / "ortho")), "ortho")
        QgsProject.instance().addMapLayer(ortho)
        dock.table.set_all_checked(False)
        dock.table.set_checked(ortho.id())
        alone = panel.request(tmp_path)
        assert [(r.path.name, r.date) for r in alone.rasters] == [("ortho.tif", None)]
        assert alone.layer_names == ["ortho"]
        for layer in layers:
            dock.table.set_checked(layer.id())
        with pytest.raises(ValueError, match="^Give a date to: ortho$"):
            panel.request(tmp_path)
        dock.table.set_checked(ortho.id(), False)
        panel.start_combo.setCurrentIndex(panel.start_combo.findData("scratch"))
        # the command line's budget (the one make fine-tune-check measures), not a run of seconds
        assert (panel.epochs_spin.value(), panel.minutes_spin.value()) == request_defaults() == (200, 5)
        panel.epochs_spin.setValue(1)
        panel.output_widget.setFilePath(str(tmp_path / "from_dock.onnx"))
        panel.controls.run_button.click()
        deadline = time.monotonic() + 300
        shown = set()
        while panel.task is not None and time.monotonic() < deadline:
            QgsApplication.processEvents()
            shown.add(panel.controls.status_label.text())
            time.sleep(0.05)
        assert panel.task is None, "the training did not finish"
        # each epoch says where the run is and how long its training has left
        assert any(text.startswith("single date epoch 1/1: loss") and "training ends in about 1 min" in text
                   for text in shown), shown
        assert "Held-out part, after: F1" in panel.controls.status_label.text(), panel.controls.status_label.text()
        assert (tmp_path / "from_dock.onnx").is_file()
        # the new model is offered, chosen and ready to run
        assert dock.model_panel.shipped_combo.currentText() == "Trained: from_dock"
        assert dock.model_panel.card is not None and "heldout_after" in dock.model_panel.card.metrics
        # its card says what it was fitted on (the QGIS layer's name) and how it scored on the held-out part
        card_text = dock.model_panel.card_label.text()
        assert 'labels "roads 2019"' in card_text and re.search(r"on its held-out part, (F1 within 2 px|pixel F1) "
                                                               r"0\.\d\d after", card_text), card_text
        dock.options.output_widget.setFilePath(str(tmp_path / "results"))
        dock.options.device_combo.setCurrentIndex(dock.options.device_combo.findData("cpu"))
        dock.controls.run_button.click()
        deadline = time.monotonic() + 120
        while dock.task is not None and time.monotonic() < deadline:
            QgsApplication.processEvents()
            time.sleep(0.02)
        classes = [layer for layer in QgsProject.instance().mapLayers().values()
                   if "classes" in layer.name().lower() and "from_dock" in layer.name()]
        assert classes, [layer.name() for layer in QgsProject.instance().mapLayers().values()]
        with rasterio.open(classes[0].source()) as dataset:
            values = np.unique(dataset.read(1))
        assert set(values.tolist()) <= {0, 1, 255}
        # the run's results are not offered as labels (a model's own map taught as roads); its classes file added
        # by hand can be (corrected, say), its probability map (P, not classes) never
        offered = {panel.labels_combo.layer(row) for row in range(panel.labels_combo.count())} - {None}
        assert {layer.name() for layer in offered} == {"roads 2019"}
        by_hand = QgsRasterLayer(classes[0].source(), "corrected classes")
        QgsProject.instance().addMapLayer(by_hand)
        offered = {panel.labels_combo.layer(row) for row in range(panel.labels_combo.count())} - {None}
        assert by_hand in offered
        # the model the dock runs, and TimeSeg's own models, are never written over by a new fit
        written = (tmp_path / "from_dock.onnx").stat().st_mtime_ns
        for target, said in ((tmp_path / "from_dock.onnx", "Write the new model to another file: from_dock.onnx is "
                              "the model the dock runs"),
                             (SHIPPED_ROAD_MODEL.with_name("mine.onnx"), "Write the new model to another folder")):
            panel.output_widget.setFilePath(str(target))
            panel.controls.run_button.click()
            assert panel.task is None and panel.controls.status_label.text().startswith(said), \
                panel.controls.status_label.text()
        assert (tmp_path / "from_dock.onnx").stat().st_mtime_ns == written
        assert not SHIPPED_ROAD_MODEL.with_name("mine.onnx").exists()
        # the chosen labels removed: none is taken in their place (QGIS's combo would take the next layer)
        QgsProject.instance().removeMapLayer(roads.id())
        assert panel.labels_combo.currentLayer() is None
        # the chosen model's file written anew (here by hand) and offered: its card is read again
        shutil.copyfile(SHIPPED_ROAD_MODEL, tmp_path / "from_dock.onnx")
        dock.model_panel.offer_model(tmp_path / "from_dock.onnx", choose=False)
        assert "heldout_after" not in dock.model_panel.card.metrics
    finally:
        plugin.unload()


def _polygon_layer(path, wkt_crs, polygon_wkt):
    """A GeoPackage of one polygon, in the CRS ``wkt_crs``."""
    from osgeo import ogr, osr

    source = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    srs = osr.SpatialReference()
    srs.ImportFromWkt(wkt_crs)
    layer = source.CreateLayer("area", srs, ogr.wkbPolygon)
    feature = ogr.Feature(layer.GetLayerDefn())
    feature.SetGeometry(ogr.CreateGeometryFromWkt(polygon_wkt))
    layer.CreateFeature(feature)
    return LabelSource(path, "polygons")


def test_polygon_area_limits_labels_and_scores_to_its_inside(place, tmp_path):
    with rasterio.open(place.tci_paths[2019][0]) as dataset:
        left, bottom, right, top = dataset.bounds
        wkt = dataset.crs.to_wkt()
    # a triangle over the whole width: the area's extent is the raster's, its inside half of it
    area = _polygon_layer(tmp_path / "area.gpkg", wkt,
                          f"POLYGON (({left} {top}, {right} {top}, {right} {bottom}, {left} {top}))")
    rasters = [DatedRaster(p, a.date) for p, a in zip(place.tci_paths[2019], place.acquisitions[2019])]
    result = fine_tune(FineTuneRequest(rasters, LabelSource(place.labels_path, "lines", "roads_2019"),
                                       tmp_path / "inside.onnx", epochs=1, seed=2, area_polygons=area))
    assert "inside the polygons of area.gpkg" in read_model_card(result.model_path).trained_on
    outside = _polygon_layer(tmp_path / "outside.gpkg", wkt, f"POLYGON (({right + 100} {top}, {right + 900} {top}, "
                             f"{right + 900} {bottom}, {right + 100} {top}))")
    with pytest.raises(FineTuneError, match="area polygons do not overlap the rasters"):
        fine_tune(FineTuneRequest(rasters, LabelSource(place.labels_path, "lines", "roads_2019"),
                                  tmp_path / "none.onnx", epochs=1, area_polygons=outside))


def test_fitting_from_a_harmonising_model_trains_on_harmonised_images_and_keeps_it(scratch_model, place, tmp_path,
                                                                                     monkeypatch):
    """A model whose card harmonises each date (the shipped road model's does) is fitted on the analyst's
    images harmonised the same way, and the fitted model's card harmonises too."""
    import shutil

    import timeseg.models.training as training
    from timeseg.core.harmonisation import Harmonisation
    from timeseg.models.checkpoint import set_card_fields
    from timeseg.models.dataset import OpenSite, Site

    target = Harmonisation(target_low=(28.0, 43.0, 52.0), target_high=(94.0, 92.0, 106.0)).to_card()
    init = tmp_path / "init.pt"
    shutil.copy(scratch_model.checkpoint_path, init)
    set_card_fields(init, harmonisation=target)
    opened_with = []

    class RecordingSite(OpenSite):
        def __init__(self, site, harmonisation=None, *rest):
            opened_with.append(harmonisation)
            super().__init__(site, harmonisation, *rest)

    monkeypatch.setattr(training, "OpenSite", RecordingSite)
    rasters = [DatedRaster(p, a.date) for p, a in zip(place.tci_paths[2019], place.acquisitions[2019])]
    labels = LabelSource(place.labels_path, "lines", "roads_2019")
    result = fine_tune(FineTuneRequest(rasters, labels, tmp_path / "fitted.onnx", init_checkpoint=init, epochs=1,
                                       seed=1))
    assert read_model_card(result.model_path).harmonisation == target
    assert opened_with and all(h == Harmonisation.from_card(target) for h in opened_with)
    with OpenSite(Site(tuple(rasters), labels), Harmonisation.from_card(target)) as harmonised, \
            OpenSite(Site(tuple(rasters), labels)) as raw:
        assert any(table is not None for table in harmonised.tables)
        assert not np.array_equal(harmonised.read(0, 0, 64)[0], raw.read(0, 0, 64)[0])


def test_fitting_a_true_colour_model_on_reflectance_reads_it_as_true_colour(scratch_model, place, tmp_path,
                                                                           monkeypatch):
    """Sentinel-2 digital numbers (uint16) to fit a true-colour model: trained on their true colour (the
    engine's reading, core.true_colour), the fitted model stays a true-colour model and runs on them."""
    import shutil

    import timeseg.models.training as training
    from timeseg.core.segment import SegmentRequest, segment
    from timeseg.core.true_colour import TRUE_COLOUR_BANDS
    from timeseg.models.checkpoint import set_card_fields
    from timeseg.models.dataset import OpenSite

    init = tmp_path / "init.pt"
    shutil.copy(scratch_model.checkpoint_path, init)
    set_card_fields(init, bands=TRUE_COLOUR_BANDS, input_dtype="uint8")
    rasters = [DatedRaster(write_digital_numbers(tci, tmp_path / tci.name.replace("TCI", "B432")), acquisition.date)
               for tci, acquisition in zip(place.tci_paths[2019], place.acquisitions[2019])]
    read_types = []

    class RecordingSite(OpenSite):
        def read(self, row, col, size):
            pixels, valid, labels = super().read(row, col, size)
            read_types.append(pixels.dtype)
            return pixels, valid, labels

    monkeypatch.setattr(training, "OpenSite", RecordingSite)
    labels = LabelSource(place.labels_path, "lines", "roads_2019")
    result = fine_tune(FineTuneRequest(rasters, labels, tmp_path / "fitted.onnx", init_checkpoint=init, epochs=1,
                                       seed=1))
    card = read_model_card(result.model_path)
    assert card.bands == TRUE_COLOUR_BANDS and card.input_dtype == "uint8"
    assert read_types and set(read_types) == {np.dtype(np.uint8)}
    assert 0 <= result.after["f1"] <= 1 and 0 <= result.before["f1"] <= 1
    mapped = segment(SegmentRequest(rasters, result.model_path, tmp_path / "map", device="cpu"))
    assert any("read as reflectance x 10000" in warning for warning in mapped.warnings)
