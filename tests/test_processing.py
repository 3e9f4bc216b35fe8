"""The Processing algorithms, run through processing.run as the toolbox and qgis_process do."""

import json

import numpy as np
import pytest
import rasterio

from tests_support import write_digital_numbers


def test_provider_lists_its_algorithms(provider):
    assert sorted(a.id() for a in provider.algorithms()) == ["timeseg:batch", "timeseg:change", "timeseg:segment",
                                                          "timeseg:train"]
    segment = provider.algorithm("segment")
    names = [p.name() for p in segment.parameterDefinitions()]
    assert names == ["INPUT", "PRODUCTS", "DATES", "MODEL", "DEVICE", "PRECISION", "ORIENTATIONS", "SCALES",
                     "TILE_SIZE", "OVERLAP", "THRESHOLD", "EXTENT", "MASK", "OUTPUT_PROBABILITY", "OUTPUT_CLASSES"]
    for algorithm in provider.algorithms():  # every algorithm and parameter explains itself
        assert len(algorithm.shortHelpString()) > 100, algorithm.id()
        for parameter in algorithm.parameterDefinitions():
            assert parameter.help(), f"{algorithm.id()} {parameter.name()}"
        assert algorithm.helpUrl().startswith("file://") and algorithm.helpUrl().endswith("/README.md")
    assert segment.parameterDefinition("MODEL").flags() & parameter.FlagOptional
    change = provider.algorithm("change")
    assert change.parameterDefinition("MIN_PATCH").defaultValue() == 6


def test_segment_without_a_model_uses_the_shipped_one(provider, small_scene, tmp_path):
    import processing
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback, QgsProject

    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    result = processing.run("timeseg:segment", {
        "INPUT": [str(p) for p in small_scene.tci_paths[2019]], "DEVICE": 1,
        "OUTPUT_PROBABILITY": str(tmp_path / "p.tif"), "OUTPUT_CLASSES": str(tmp_path / "c.tif")},
        context=context, feedback=QgsProcessingFeedback())
    with rasterio.open(result["OUTPUT_CLASSES"]) as classes:
        assert classes.tags()["class_names"] == "background,road"
    assert (tmp_path / "c.qml").is_file()
    from qgis.core import QgsProcessingException

    inputs = [str(p) for p in small_scene.tci_paths[2019]]
    with rasterio.open(result["OUTPUT_PROBABILITY"]) as one:
        one_view = np.nan_to_num(one.read(1))
    for views, name in (({"ORIENTATIONS": 8}, "o8"), ({"SCALES": 3}, "s3")):  # counts, not an enum's indexes
        averaged = processing.run("timeseg:segment", {
            "INPUT": inputs, "DEVICE": 1, **views,
            "OUTPUT_PROBABILITY": str(tmp_path / f"p_{name}.tif"), "OUTPUT_CLASSES": str(tmp_path / f"c_{name}.tif")},
            context=context, feedback=QgsProcessingFeedback())
        with rasterio.open(averaged["OUTPUT_PROBABILITY"]) as dataset:
            assert 0 < np.abs(one_view - np.nan_to_num(dataset.read(1))).mean() < 0.1, views
    for views, refusal in (({"SCALES": 2}, "SCALES: give 1 or 3, not 2"),
                           ({"ORIENTATIONS": 3}, "ORIENTATIONS: give 1, 2, 4, 8, not 3")):
        with pytest.raises(QgsProcessingException, match=refusal):
            processing.run("timeseg:segment", {"INPUT": inputs, **views, "OUTPUT_PROBABILITY": str(tmp_path / "p.tif"),
                                               "OUTPUT_CLASSES": str(tmp_path / "c.tif")})


def test_segment_warnings_reach_processing_feedback(provider, small_scene, tmp_path):
    """Reflectance rasters (digital numbers, uint16) through the toolbox: run with the shipped model,
    and the warning that says how they were read is in the algorithm's log."""
    import processing
    from qgis.core import QgsProcessingFeedback

    class Collected(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.warnings = []

        def pushWarning(self, text):  # noqa: N802
            self.warnings.append(text)

    paths = [write_digital_numbers(tci, tmp_path / tci.name.replace("TCI", "B432"))
             for tci in small_scene.tci_paths[2019]]
    feedback = Collected()
    result = processing.run("timeseg:segment", {
        "INPUT": [str(p) for p in paths], "DEVICE": 1, "OUTPUT_PROBABILITY": str(tmp_path / "p.tif"),
        "OUTPUT_CLASSES": str(tmp_path / "c.tif")}, feedback=feedback)
    assert any("uint16 values, read as reflectance x 10000" in w for w in feedback.warnings), feedback.warnings
    # each said once, without core's own "warning: " before Processing's
    assert len(set(feedback.warnings)) == len(feedback.warnings) and not any(
        w.startswith("warning:") for w in feedback.warnings), feedback.warnings
    with rasterio.open(result["OUTPUT_CLASSES"]) as classes:
        codes = classes.read(1)
    assert set(np.unique(codes)) <= {0, 1, 255} and 0.01 < (codes == 1).mean() < 0.5  # roads, not everything


def test_segment_then_change_through_processing_run(provider, local_model, small_scene, tmp_path):
    import processing

    results = {}
    for year in small_scene.years:
        results[year] = processing.run("timeseg:segment", {
            "INPUT": [str(p) for p in small_scene.tci_paths[year]],
            "MODEL": str(local_model), "DEVICE": 1, "TILE_SIZE": 0, "OVERLAP": -1,
            "OUTPUT_PROBABILITY": str(tmp_path / f"p{year}.tif"), "OUTPUT_CLASSES": str(tmp_path / f"c{year}.tif"),
        })
        with rasterio.open(results[year]["OUTPUT_PROBABILITY"]) as p, \
                rasterio.open(small_scene.tci_paths[year][0]) as ref:
            assert p.transform == ref.transform and p.crs == ref.crs
            assert np.nanmax(p.read(1)) <= 1
    change = processing.run("timeseg:change", {
        "BEFORE": results[2016]["OUTPUT_CLASSES"], "AFTER": results[2019]["OUTPUT_CLASSES"], "MIN_PATCH": 0,
        "OUTPUT": str(tmp_path / "change.tif")})
    with rasterio.open(change["OUTPUT"]) as dataset:
        assert set(np.unique(dataset.read(1))) <= {0, 1, 2, 255}
    assert (tmp_path / "change.json").is_file()
    # run without loading its results, the change asks to load nothing (its lines were loaded all the same);
    # loaded, the change and its lines are named by the periods' dates and styled as in the dock
    from qgis.core import (
        QgsCategorizedSymbolRenderer,
        QgsProcessingContext,
        QgsProcessingException,
        QgsProcessingFeedback,
        QgsProject,
    )

    stopped = QgsProcessingFeedback()
    stopped.cancel()  # Cancel honoured (it ran and wrote all its files), nothing kept
    with pytest.raises(QgsProcessingException, match="^cancelled; nothing was kept$"):
        processing.run("timeseg:change", {"BEFORE": results[2016]["OUTPUT_CLASSES"],
                                          "AFTER": results[2019]["OUTPUT_CLASSES"],
                                          "OUTPUT": str(tmp_path / "stopped.tif")}, feedback=stopped)
    assert not list(tmp_path.glob("stopped*"))
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    processing.run("timeseg:change", {"BEFORE": results[2016]["OUTPUT_CLASSES"],
                                      "AFTER": results[2019]["OUTPUT_CLASSES"], "OUTPUT": str(tmp_path / "c2.tif")},
                   context=context)
    assert context.layersToLoadOnCompletion() == {}
    processing.runAndLoadResults("timeseg:change", {
        "BEFORE": results[2016]["OUTPUT_CLASSES"], "AFTER": results[2019]["OUTPUT_CLASSES"],
        "OUTPUT": str(tmp_path / "c3.tif")})
    spans = ["..".join(str(d) for d in (min(dates), max(dates))) for dates in (
        [a.date for a in small_scene.acquisitions[year]] for year in small_scene.years)]
    [raster] = QgsProject.instance().mapLayersByName(f"change {spans[0]} -> {spans[1]}")
    [lines] = QgsProject.instance().mapLayersByName(f"new and removed lines {spans[0]} -> {spans[1]}")
    assert isinstance(lines.renderer(), QgsCategorizedSymbolRenderer)
    assert [c.value() for c in lines.renderer().categories()] == ["new", "removed"]
    for layer in (raster, lines):
        assert layer.temporalProperties().isActive()
        assert layer.temporalProperties().fixedTemporalRange().begin().date().toPyDate() == min(
            a.date for a in small_scene.acquisitions[2016])


def test_change_tolerance_through_processing(provider, tmp_path):
    """A road found a pixel lower in the later map: no change by default, 50 new and 50 removed pixel by pixel."""
    import processing
    from rasterio.crs import CRS
    from rasterio.transform import from_origin

    paths = []
    for name, row in (("before", 10), ("after", 11)):
        classes = np.zeros((30, 60), np.uint8)
        classes[row, 5:55] = 1
        paths.append(tmp_path / f"{name}.tif")
        with rasterio.open(paths[-1], "w", driver="GTiff", width=60, height=30, count=1, dtype="uint8",
                           crs=CRS.from_epsg(32628), transform=from_origin(400_000, 1_600_000, 10, 10),
                           nodata=255) as dataset:
            dataset.write(classes[None])
    for tolerance, expected in ((None, 0), (0, 50)):
        output = tmp_path / f"change_{tolerance}.tif"
        chosen = {} if tolerance is None else {"TOLERANCE": tolerance}
        processing.run("timeseg:change", {"BEFORE": str(paths[0]), "AFTER": str(paths[1]), "MIN_PATCH": 0,
                                          "OUTPUT": str(output), **chosen})
        pixels = json.loads(output.with_suffix(".json").read_text())["pixels"]
        assert (pixels["new"], pixels["removed"]) == (expected, expected)


def test_segment_errors_become_processing_errors(provider, local_model, small_scene, tmp_path):
    import processing
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match="2 dates for 3 rasters"):
        processing.run("timeseg:segment", {
            "INPUT": [str(p) for p in small_scene.tci_paths[2019]], "DATES": "2019-01-01,2019-02-01",
            "MODEL": str(local_model), "OUTPUT_PROBABILITY": str(tmp_path / "p.tif"),
            "OUTPUT_CLASSES": str(tmp_path / "c.tif")})


def test_a_layer_that_cannot_be_opened_is_named(provider, local_model, small_scene, tmp_path):
    """QGIS says only "Incorrect parameter value for INPUT" for a list of layers with one missing: the line
    names the file, whether it is missing or does not open, and what to give."""
    import processing
    from qgis.core import QgsProcessingException

    missing = tmp_path / "gone_20190301.tif"
    not_a_layer = tmp_path / "labels.gpkg"
    not_a_layer.write_text("not a GeoPackage")
    outputs = {"OUTPUT_PROBABILITY": str(tmp_path / "p.tif"), "OUTPUT_CLASSES": str(tmp_path / "c.tif")}
    with pytest.raises(QgsProcessingException, match=f"INPUT: {missing} not found: give a file that QGIS opens"):
        processing.run("timeseg:segment", {"INPUT": [str(small_scene.tci_paths[2019][0]), str(missing)],
                                           "MODEL": str(local_model), **outputs})
    with pytest.raises(QgsProcessingException, match=f"LABELS: {not_a_layer} cannot be opened as a layer"):
        processing.run("timeseg:train", {"INPUT": [str(small_scene.tci_paths[2019][0])], "LABELS": str(not_a_layer),
                                         "OUTPUT_MODEL": str(tmp_path / "m.onnx")})
    from tests_support import ROOT

    roads = ROOT / "models" / "real" / "Inn_roads.gpkg"
    with pytest.raises(QgsProcessingException, match=f"BEFORE: {roads} holds no raster: give a raster file or layer"):
        processing.run("timeseg:change", {"BEFORE": str(roads), "AFTER": str(small_scene.tci_paths[2019][0]),
                                          "OUTPUT": str(tmp_path / "change.tif")})
    assert sorted(path.name for path in tmp_path.iterdir()) == ["labels.gpkg"]  # nothing written


def test_outputs_under_other_formats_names_are_refused(provider, local_model, small_scene, tmp_path):
    """The engine writes GeoTIFFs: a .img or .sdat name would hold one under the wrong name."""
    import processing
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match="the outputs are GeoTIFFs: name them p.tif and c.tif"):
        processing.run("timeseg:segment", {
            "INPUT": [str(p) for p in small_scene.tci_paths[2019]], "MODEL": str(local_model), "DEVICE": 1,
            "OUTPUT_PROBABILITY": str(tmp_path / "p.img"), "OUTPUT_CLASSES": str(tmp_path / "c.sdat")})
    with pytest.raises(QgsProcessingException, match="^OUTPUT_PROBABILITY: a raster cannot be a memory layer: give "
                                                     "a .tif file"):
        processing.run("timeseg:segment", {
            "INPUT": [str(p) for p in small_scene.tci_paths[2019]], "MODEL": str(local_model), "DEVICE": 1,
            "OUTPUT_PROBABILITY": "memory:", "OUTPUT_CLASSES": str(tmp_path / "c.tif")})
    assert list(tmp_path.iterdir()) == []


def test_rasters_inside_a_zip_or_a_geopackage_given_as_text_run(provider, local_model, small_scene, tmp_path):
    """A script's INPUT with a zip's member and a GeoPackage's table as text (QGIS loads neither as a layer and
    said 'Incorrect parameter value'): read as GDAL reads them, the map of the files themselves."""
    import zipfile

    import processing
    from osgeo import gdal

    first, second = small_scene.tci_paths[2019][:2]
    with zipfile.ZipFile(tmp_path / "download.zip", "w") as archive:
        archive.write(first, first.name)
    gdal.Translate(str(tmp_path / "dates.gpkg"), str(second), format="GPKG",
                   creationOptions=[f"RASTER_TABLE={second.stem}", "TILE_FORMAT=PNG"])
    given = [f"/vsizip/{tmp_path / 'download.zip'}/{first.name}", f"GPKG:{tmp_path / 'dates.gpkg'}:{second.stem}"]
    inside = processing.run("timeseg:segment", {"INPUT": given, "MODEL": str(local_model), "DEVICE": 1,
                                                "OUTPUT_PROBABILITY": str(tmp_path / "p.tif"),
                                                "OUTPUT_CLASSES": str(tmp_path / "c.tif")})
    files = processing.run("timeseg:segment", {"INPUT": [str(first), str(second)], "MODEL": str(local_model),
                                               "DEVICE": 1, "OUTPUT_PROBABILITY": str(tmp_path / "p2.tif"),
                                               "OUTPUT_CLASSES": str(tmp_path / "c2.tif")})
    with rasterio.open(inside["OUTPUT_CLASSES"]) as a, rasterio.open(files["OUTPUT_CLASSES"]) as b:
        assert np.array_equal(a.read(), b.read())


def test_outputs_under_the_home_folder_go_there(provider, local_model, small_scene, tmp_path, monkeypatch):
    """~/maps/p.tif is under the home folder (it made a folder named ~ in QGIS's working folder)."""
    import processing

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    result = processing.run("timeseg:segment", {
        "INPUT": [str(p) for p in small_scene.tci_paths[2019]], "MODEL": str(local_model), "DEVICE": 1,
        "OUTPUT_PROBABILITY": "~/maps/p.tif", "OUTPUT_CLASSES": "~/maps/c.tif"})
    assert result["OUTPUT_CLASSES"] == str(tmp_path / "home" / "maps" / "c.tif")
    assert (tmp_path / "home" / "maps" / "p.tif").is_file() and not (tmp_path / "~").exists()


def test_processing_results_are_named_and_styled(provider, local_model, small_scene, tmp_path):
    """Loaded from the toolbox, the results carry the model and the dates in their names and their styles."""
    import processing
    from qgis.core import QgsPalettedRasterRenderer, QgsProject

    processing.runAndLoadResults("timeseg:segment", {
        "INPUT": [str(p) for p in small_scene.tci_paths[2019]], "MODEL": str(local_model), "DEVICE": 1,
        "OUTPUT_PROBABILITY": str(tmp_path / "p.tif"), "OUTPUT_CLASSES": str(tmp_path / "c.tif")})
    dates = sorted(a.date for a in small_scene.acquisitions[2019])
    classes = QgsProject.instance().mapLayersByName(f"local classes {dates[0]}..{dates[-1]}")
    assert len(classes) == 1 and isinstance(classes[0].renderer(), QgsPalettedRasterRenderer)
    assert [c.label for c in classes[0].renderer().classes()] == ["background (see-through)", "road", "no data"]
    assert QgsProject.instance().mapLayersByName(f"local probability {dates[0]}..{dates[-1]}")


def test_segment_inside_an_extent(provider, local_model, small_scene, tmp_path):
    import processing

    with rasterio.open(small_scene.tci_paths[2019][0]) as reference:
        left, top = reference.transform.c, reference.transform.f
    result = processing.run("timeseg:segment", {
        "INPUT": [str(p) for p in small_scene.tci_paths[2019]], "MODEL": str(local_model), "DEVICE": 1,
        "EXTENT": f"{left},{left + 300},{top - 200},{top} [{small_scene.crs.to_string()}]",
        "OUTPUT_PROBABILITY": str(tmp_path / "p.tif"), "OUTPUT_CLASSES": str(tmp_path / "c.tif")})
    with rasterio.open(result["OUTPUT_CLASSES"]) as classes:
        assert classes.shape == (20, 30) and classes.transform.c == left and classes.transform.f == top
    # the toolbox lists the layers in any order: the latest date first, in degrees, the extent in metres
    from osgeo import gdal

    latest = small_scene.tci_paths[2019][-1]
    degrees = tmp_path / latest.name
    gdal.Warp(str(degrees), str(latest), dstSRS="EPSG:4326")
    result = processing.run("timeseg:segment", {
        "INPUT": [str(degrees), *(str(p) for p in small_scene.tci_paths[2019][:-1])], "MODEL": str(local_model),
        "DEVICE": 1, "EXTENT": f"{left},{left + 300},{top - 200},{top} [{small_scene.crs.to_string()}]",
        "OUTPUT_PROBABILITY": str(tmp_path / "p2.tif"), "OUTPUT_CLASSES": str(tmp_path / "c2.tif")})
    with rasterio.open(result["OUTPUT_CLASSES"]) as classes:
        assert classes.shape == (20, 30) and classes.transform.c == left and classes.transform.f == top
        assert classes.crs == small_scene.crs



def test_segment_inside_a_scratch_polygon_layer(provider, local_model, small_scene, tmp_path):
    """The mask as QGIS shows it: a scratch layer of two squares; outside them is nodata."""
    import processing

    from tests_support import scratch_squares

    with rasterio.open(small_scene.tci_paths[2019][0]) as dataset:
        x0, y0 = dataset.transform.c, dataset.transform.f
    squares = scratch_squares(small_scene.crs.to_epsg(), x0, y0)
    result = processing.run("timeseg:segment", {
        "INPUT": [str(p) for p in small_scene.tci_paths[2019]], "MODEL": str(local_model), "DEVICE": 1,
        "MASK": squares, "OUTPUT_PROBABILITY": str(tmp_path / "p.tif"), "OUTPUT_CLASSES": str(tmp_path / "c.tif")})
    with rasterio.open(result["OUTPUT_CLASSES"]) as classes:
        codes = classes.read(1)
        assert classes.shape == (20, 60) and (classes.transform.c, classes.transform.f) == (x0 + 100, y0 - 200)
    assert (codes[:, :20] != 255).all() and (codes[:, 40:] != 255).all() and (codes[:, 20:40] == 255).all()
    # the layer as a feature source (the modeler's "Vector features", the toolbox's "Selected features only"):
    # whole, as the layer; its selection, the selected square alone (it was ignored: the whole raster was mapped)
    from qgis.core import QgsProcessingFeatureSourceDefinition, QgsProject

    QgsProject.instance().addMapLayer(squares)
    squares.selectByIds([min(feature.id() for feature in squares.getFeatures())])
    for selected, shape in ((False, (20, 60)), (True, (20, 20))):
        result = processing.run("timeseg:segment", {
            "INPUT": [str(p) for p in small_scene.tci_paths[2019]], "MODEL": str(local_model), "DEVICE": 1,
            "MASK": QgsProcessingFeatureSourceDefinition(squares.id(), selected),
            "OUTPUT_PROBABILITY": str(tmp_path / f"p{selected}.tif"),
            "OUTPUT_CLASSES": str(tmp_path / f"c{selected}.tif")})
        with rasterio.open(result["OUTPUT_CLASSES"]) as classes:
            assert classes.shape == shape and (classes.transform.c, classes.transform.f) == (x0 + 100, y0 - 200)
            assert (classes.read(1) != 255).all() if selected else True
    # read on QGIS's main thread, before the run's thread starts: removed from the project meanwhile (a layer
    # the analyst deletes while the run waits), the mask is still the one given (it failed with "wrapped C/C++
    # object of type QgsVectorLayer has been deleted", read from the run's thread)
    from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingFeedback

    algorithm = QgsApplication.processingRegistry().createAlgorithmById("timeseg:segment")
    context, feedback = QgsProcessingContext(), QgsProcessingFeedback()
    context.setProject(QgsProject.instance())
    parameters = {"INPUT": [str(p) for p in small_scene.tci_paths[2019]], "MODEL": str(local_model), "DEVICE": 1,
                  "MASK": squares.id(), "OUTPUT_PROBABILITY": str(tmp_path / "p_removed.tif"),
                  "OUTPUT_CLASSES": str(tmp_path / "c_removed.tif")}
    assert algorithm.prepare(parameters, context, feedback)
    QgsProject.instance().removeMapLayer(squares.id())
    results = algorithm.runPrepared(parameters, context, feedback)
    with rasterio.open(results["OUTPUT_CLASSES"]) as classes, rasterio.open(tmp_path / "cFalse.tif") as whole:
        assert np.array_equal(classes.read(), whole.read())


def test_each_algorithm_logs_its_own_engine_lines_and_the_logger_is_set_back(provider):
    """Two algorithms whose runs overlap (A starts, B starts, A ends, B ends) and a dock run's line on another
    thread: each feedback holds its own thread's lines only (the dock's went into the algorithm's log), and the
    logger is as it was once both end (it was left at INFO, not propagating, for the rest of the session)."""
    import logging
    import threading

    from qgis.core import QgsProcessingFeedback

    from timeseg.provider.base import engine_log_to

    logger = logging.getLogger("timeseg.core.segment")
    parent = logging.getLogger("timeseg")
    before = (parent.level, parent.propagate)
    feedbacks = {"a": QgsProcessingFeedback(), "b": QgsProcessingFeedback()}
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def algorithm(name: str, entered: threading.Event, wait_for: threading.Event | None,
                  leave_after: threading.Event | None) -> None:
        with engine_log_to(feedbacks[name]):
            entered.set()
            if wait_for is not None:
                wait_for.wait(10)
            logger.info("line of %s", name)
            if leave_after is not None:
                leave_after.wait(10)
        if name == "a":
            a_out.set()

    first = threading.Thread(target=algorithm, args=("a", a_in, b_in, None))
    second = threading.Thread(target=algorithm, args=("b", b_in, None, a_out))
    first.start()
    a_in.wait(10)
    second.start()
    logger.warning("warning: a dock run's line")  # this thread: neither algorithm's
    first.join(10)
    second.join(10)
    assert "line of a" in feedbacks["a"].textLog() and "line of b" not in feedbacks["a"].textLog()
    assert "line of b" in feedbacks["b"].textLog() and "line of a" not in feedbacks["b"].textLog()
    assert not any("dock run" in feedback.textLog() for feedback in feedbacks.values())
    assert (parent.level, parent.propagate) == before
