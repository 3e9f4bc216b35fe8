"""The dock driven as an analyst does: tick dated layers, run, wait, look at the project."""

import json
import re
import shutil
import time
from pathlib import Path

import pytest
from qgis.core import (
    QgsApplication,
    QgsPalettedRasterRenderer,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsSingleBandPseudoColorRenderer,
    QgsTask,
)
from qgis.PyQt.QtCore import QEvent, Qt
from qgis.PyQt.QtWidgets import QPushButton

from tests_support import load_plugin_package, write_digital_numbers


@pytest.fixture(scope="module")
def two_periods(tmp_path_factory):
    """Ten small dated rasters: five of 2016, five of 2019."""
    from timeseg.models.simulator import simulate_scene

    return simulate_scene(tmp_path_factory.mktemp("dock_scene"), seed=8, size=64, dates_per_period=5)


@pytest.fixture
def dock(qgis_iface, qgis_new_project, two_periods, local_model, tmp_path):
    from qgis.core import QgsSettings

    QgsSettings().remove("timeseg")  # what an earlier test's runs left for the next session: each starts afresh
    plugin = load_plugin_package().classFactory(qgis_iface)
    plugin.initGui()
    plugin.toggle_dock(True)
    dock = plugin.dock
    layers = []
    for year in two_periods.years:
        for path in two_periods.tci_paths[year]:
            layers.append(QgsRasterLayer(str(path), path.stem))
    QgsProject.instance().addMapLayers(layers)
    dock.model_panel.model_widget.setFilePath(str(local_model))
    dock.options.output_widget.setFilePath(str(tmp_path / "results"))
    dock.options.device_combo.setCurrentIndex(dock.options.device_combo.findData("cpu"))
    yield dock, layers
    plugin.unload()


def wait_for(dock, seconds=120):
    deadline = time.monotonic() + seconds
    while dock.task is not None and time.monotonic() < deadline:
        QgsApplication.processEvents()
        time.sleep(0.02)
    assert dock.task is None, "the task did not finish"
    QgsApplication.processEvents()  # what the dock says once the task is over (the message bar's line)


def tick_all(dock, layers):
    for layer in layers:
        dock.table.set_checked(layer.id())


def _compare_after_a_run(dock, layers):
    """Every layer ticked and run: the project and the Compare panel, its two periods' class maps to choose."""
    tick_all(dock, layers)
    dock.controls.run_button.click()
    wait_for(dock)
    return QgsProject.instance(), dock.compare_panel


def test_table_follows_the_project_with_detected_dates(dock, two_periods):
    dock, layers = dock
    assert dock.table.rowCount() == 10
    chosen, undated = dock.table.checked_layers()
    assert chosen == [] and undated == []
    tick_all(dock, layers)
    chosen, _ = dock.table.checked_layers()
    assert sorted(c.date for c in chosen) == sorted(a.date for y in two_periods.years
                                                   for a in two_periods.acquisitions[y])
    assert {c.period for c in chosen} == {"2016", "2019"}
    layers[0].setName("renamed layer")
    assert dock.table.item(0, 0).text() == "renamed layer"
    QgsProject.instance().removeMapLayer(layers[-1].id())
    assert dock.table.rowCount() == 9
    # each date shown whole ("2021-06-" before), and room for 4 rows however much the dock says below
    editor = dock.table.cellWidget(0, 1)
    assert dock.table.columnWidth(1) >= editor.sizeHint().width()
    assert dock.table.minimumHeight() >= 4 * dock.table.rowHeight(0) + dock.table.horizontalHeader().height()


def test_long_file_names_wrap_within_the_dock(dock):
    """A product's name (60 characters without a space) in a message set the dock's least width, which cut every
    panel at its right edge: it breaks after its separators now, and the label still reads as it was set."""
    dock, _ = dock
    name = "S2A_MSIL1C_20230103T103021_N0400_R108_T32UPU_20230103T122512.SAFE"
    for label in (dock.controls.status_label, dock.warning_label, dock.model_panel.card_label):
        label.setText(f"{name} holds no true-colour image")
        assert label.text() == f"{name} holds no true-colour image"
        assert label.minimumSizeHint().width() < label.fontMetrics().horizontalAdvance(name) / 2
    # a message copied (Ctrl+C) is its text as set: a path copied from it works
    from qgis.PyQt.QtCore import Qt
    from qgis.PyQt.QtTest import QTest
    from qgis.PyQt.QtWidgets import QApplication

    dock.warning_label.select_all()
    QTest.keyClick(dock.warning_label, Qt.Key_C, Qt.ControlModifier)
    assert QApplication.clipboard().text() == f"{name} holds no true-colour image"
    assert dock.warning_label.selectedText() == f"{name} holds no true-colour image"
    assert dock.table.textElideMode() == Qt.ElideMiddle
    # the period column as wide as a period needs (it took 104 px for "2016"): the names get the rest
    period_width, needed = dock.table.columnWidth(2), dock.table.fontMetrics().horizontalAdvance("2019/2020")
    assert needed < period_width <= needed + 20


def test_a_long_message_in_a_panel_is_shown_whole(dock):
    """A long status in the Compare and Train panels (group boxes) kept its one-line height in QGIS: a training's
    warning was cut after a few lines, its advice unseen until the dock was resized (a QA's screenshots under
    Xvfb: 122 px shown of 197 needed; 197 of 197 now). The labels hold the height their lines need at their
    width as their least height (offscreen Qt lays the panels out right either way: this is what is asserted)."""
    dock, _ = dock
    text = " ".join(["Warning: the new model scores below the starting model on your held-out part."] * 8)
    for label in (dock.compare_panel.status_label, dock.train_panel.controls.status_label):
        label.resize(300, 20)
        label.setText(text)
        assert label.minimumHeight() == label.heightForWidth(300) > 5 * label.fontMetrics().height()


def test_card_and_warnings(dock):
    dock, layers = dock
    dock.options.orientations_combo.setCurrentIndex(dock.options.orientations_combo.findData(8))
    tick_all(dock, layers)
    dock.options.scales_combo.setCurrentIndex(dock.options.scales_combo.findData(3))
    assert {(request.orientations, request.scales)
            for request in dock.parameters().segment_requests().values()} == {(8, 3)}
    dock.table.set_all_checked(False)
    assert "Finds road" in dock.model_panel.card_label.text() and "Tiles 64 px" in dock.model_panel.card_label.text()
    assert dock.options.tile_spin.value() == 64 and dock.options.overlap_spin.value() == 32
    dock.table.set_checked(layers[0].id())  # one date of 2016: the model needs two
    assert "Period 2016: 1 date given, the model needs at least 2: add dates" in dock.warning_label.text()
    tick_all(dock, layers)
    assert dock.warning_label.text() == "" and dock.notice_label.text() == ""


def test_run_segmentation_adds_styled_layers_in_groups(dock, two_periods):
    dock, layers = dock
    tick_all(dock, layers)
    dock.controls.run_button.click()
    assert dock.task is not None and not dock.controls.run_button.isEnabled()
    running = dock.task
    dock.run()  # a second start (not by the disabled button): the first run goes on, alone
    assert dock.task is running
    wait_for(dock)
    assert dock.controls.progress.value() == 100, dock.controls.status_label.text()
    project = QgsProject.instance()
    root = project.layerTreeRoot()
    groups = [g.name() for g in root.children() if g.nodeType() == 0]
    assert groups == ["local change 2016-2019", "local 2019", "local 2016"]
    reference = layers[0]
    for period in ("2016", "2019"):
        group = root.findGroup(f"local {period}")
        names = sorted(child.layer().name() for child in group.children())
        assert names == [f"local classes {period}", f"local probability {period}"]
        classes = project.mapLayersByName(f"local classes {period}")[0]
        probability = project.mapLayersByName(f"local probability {period}")[0]
        # the styles come from the .qml files core wrote beside the rasters
        assert isinstance(classes.renderer(), QgsPalettedRasterRenderer)
        assert [(c.value, c.label, c.color.name(), c.color.alpha()) for c in classes.renderer().classes()] == [
            (0, "background (see-through)", "#000000", 0), (1, "road", "#ff9600", 255),
            (255, "no data", "#d7d7d7", 255)]  # no data grey, and listed: it was drawn as "not road"
        assert classes.renderer().nodataColor().getRgb() == (215, 215, 215, 255)
        assert isinstance(probability.renderer(), QgsSingleBandPseudoColorRenderer)
        for layer in (classes, probability):
            assert layer.crs() == reference.crs() and layer.extent() == reference.extent()
        dates = sorted(a.date for a in two_periods.acquisitions[int(period)])
        time_range = classes.temporalProperties().fixedTemporalRange()
        assert classes.temporalProperties().isActive()
        assert (time_range.begin().date().toPyDate(), time_range.end().date().toPyDate()) == (dates[0], dates[-1])
    # by default only the change and the latest classes are visible
    assert not root.findGroup("local 2016").isVisible()
    assert root.findLayer(project.mapLayersByName("local classes 2019")[0].id()).isVisible()
    assert not root.findLayer(project.mapLayersByName("local probability 2019")[0].id()).isVisible()
    # the legends' titles name the band, without QGIS's "(Gray)" beside the probability's colour ramp
    from qgis.core import QgsLayerTreeModel

    model = QgsLayerTreeModel(root)
    titles = {name: model.layerLegendNodes(root.findLayer(project.mapLayersByName(name)[0].id()))[0].data(0)
              for name in ("local probability 2019", "local classes 2019", "local change 2016-2019")}
    assert titles == {"local probability 2019": "Band 1: P(road)", "local classes 2019": "Band 1: class",
                      "local change 2016-2019": "Band 1: change"}
    change = project.mapLayersByName("local change 2016-2019")[0]
    assert [(c.label, c.color.name(), c.color.alpha()) for c in change.renderer().classes()] == [
        ("no change (see-through)", "#000000", 0), ("new", "#e61414", 255), ("removed", "#1e50e6", 255),
        ("no data", "#d7d7d7", 255)]  # the legend lists what is drawn grey
    assert change.renderer().nodataColor().getRgb() == (215, 215, 215, 255)  # not seen: grey, not 'no change'
    lines = project.mapLayersByName("local new and removed lines 2016-2019")[0]
    summary = json.loads(Path(change.source()).with_suffix(".json").read_text())
    assert lines.featureCount() == summary["lines"]["new"] + summary["lines"]["removed"]
    assert [f.name() for f in lines.fields()][-3:] == ["change", "length_m", "mean_probability"]
    assert root.findLayer(change.id()).isVisible() and root.findLayer(lines.id()).isVisible()
    # the change and its lines over both periods' dates, for the Temporal Controller
    both = sorted(a.date for year in (2016, 2019) for a in two_periods.acquisitions[year])
    for layer in (change, lines):
        span = layer.temporalProperties().fixedTemporalRange()
        assert layer.temporalProperties().isActive(), layer.name()
        assert (span.begin().date().toPyDate(), span.end().date().toPyDate()) == (both[0], both[-1])
    assert "new:" in dock.controls.status_label.text()
    # the message bar gives both halves of the change
    assert any("Change 2016-2019: new: " in m and "; removed: " in m for m in dock.iface.messageBar().get_messages(3))
    # a second run replaces the first's layers and goes on top
    assert dock.parameters().change.tolerance_px == 1
    dock.options.change_tolerance_spin.setValue(0)  # the change map pixel by pixel
    assert dock.parameters().change.tolerance_px == 0
    count = len(project.mapLayers())
    dock.controls.run_button.click()
    wait_for(dock)
    assert len(project.mapLayers()) == count
    assert [g.name() for g in root.children() if g.nodeType() == 0] == groups
    assert len(project.mapLayersByName("local classes 2019")) == 1


def test_a_period_of_one_date_is_warned_of_false_change(dock):
    from timeseg.core.model_card import SHIPPED_ROAD_MODEL

    dock, layers = dock
    dock.model_panel.model_widget.setFilePath(str(SHIPPED_ROAD_MODEL))  # it takes one date or more
    one_2016 = next(layer for layer in layers if "2016" in layer.name())
    tick_all(dock, [one_2016, *(layer for layer in layers if "2019" in layer.name())])
    dock.controls.run_button.click()
    wait_for(dock)
    status = dock.controls.status_label.text()
    assert "2016/classes.tif was made from one date" in status and "2019/classes.tif was" not in status, status


def test_reflectance_layers_run_as_true_colour(dock, two_periods, tmp_path):
    """Layers of Sentinel-2 digital numbers (uint16, as SNAP exports B04, B03, B02) with the road model: no
    preflight problem, a run whose status says how they were read, and its layers in the project."""
    from timeseg.core.model_card import SHIPPED_ROAD_MODEL

    dock, _ = dock
    dock.model_panel.model_widget.setFilePath(str(SHIPPED_ROAD_MODEL))
    layers = []
    for path in two_periods.tci_paths[2019]:
        target = write_digital_numbers(path, tmp_path / path.name.replace("TCI", "B432"))
        layers.append(QgsRasterLayer(str(target), target.stem))
    QgsProject.instance().addMapLayers(layers)
    tick_all(dock, layers)
    assert dock.problems() == []
    assert "Period 2019: " in dock.notice_label.text() and "read as reflectance x 10000" in dock.notice_label.text()
    dock.controls.run_button.click()
    wait_for(dock)
    status = dock.controls.status_label.text()
    assert "read as reflectance x 10000" in status, status
    assert len(QgsProject.instance().mapLayersByName("roads classes 2019")) == 1


def test_a_date_without_data_is_left_out_and_named(dock, two_periods, tmp_path):
    """A 2019 layer wholly beyond its swath (all 0, nodata undeclared) ticked with the other 2019 dates: no
    preflight problem, a notice before Run and the status after it that name the date left out, and a run
    on the others."""
    import numpy as np
    import rasterio

    dock, layers = dock
    source = two_periods.tci_paths[2019][0]
    empty = tmp_path / source.name.replace("_SIM_", "_EMPTY_")  # the same date
    with rasterio.open(source) as dataset:
        profile = dataset.profile | {"nodata": None}
    with rasterio.open(empty, "w", **profile) as dataset:
        dataset.write(np.zeros((profile["count"], profile["height"], profile["width"]), np.uint8))
    layer = QgsRasterLayer(str(empty), empty.stem)
    QgsProject.instance().addMapLayer(layer)
    tick_all(dock, [layer, *(other for other in layers if "2019" in other.name() and other.source() != str(source))])
    assert dock.problems() == [] and dock.warning_label.text() == ""
    left_out = (f"{empty.name} holds no data over the reference raster (every pixel is nodata): left out, the model "
                "runs on the 4 dates left")
    assert dock.notice_label.text() == f"Period 2019: {left_out}"
    dock.controls.run_button.click()
    wait_for(dock)
    status = dock.controls.status_label.text()
    assert left_out in status, status
    assert "2019: 4 dates on" in status, status
    assert [name for name in (layer.name() for layer in QgsProject.instance().mapLayers().values())
            if name.endswith("classes 2019")]


def test_cancel_leaves_nothing_behind(dock, tmp_path):
    dock, layers = dock
    tick_all(dock, layers)
    before = set(QgsProject.instance().mapLayers())
    dock.options.tile_spin.setValue(32)  # many small tiles: time to cancel
    dock.options.overlap_spin.setValue(8)
    dock.controls.run_button.click()
    ended = []  # QGIS 3.22 tells of a cancelled task as "Task failed: <its description>": it says why
    dock.task.statusChanged.connect(lambda status, task=dock.task: ended.append((status, task.description())))
    dock.controls.cancel_button.click()
    wait_for(dock)
    assert "Cancelled" in dock.controls.status_label.text()
    assert ended[-1] == (QgsTask.Terminated, "TimeSeg segmentation: cancelled, nothing of this run kept")
    assert set(QgsProject.instance().mapLayers()) == before
    results = tmp_path / "results"
    assert not results.exists() or list(results.rglob("*")) == []  # no file, no partial, no lock, no folder


def test_compare_two_class_layers(dock, tmp_path):
    dock, layers = dock
    tick_all(dock, layers)
    dock.controls.run_button.click()
    wait_for(dock)
    project = QgsProject.instance()
    before_count = len(project.mapLayers())
    dock.compare_panel.before_combo.setLayer(project.mapLayersByName("local classes 2016")[0])
    dock.compare_panel.after_combo.setLayer(project.mapLayersByName("local classes 2019")[0])
    # only TimeSeg class layers are offered: the inputs, probabilities and changes are not
    combo = dock.compare_panel.before_combo
    offered = {combo.layer(i).name() for i in range(combo.count()) if combo.layer(i) is not None}
    assert offered == {"local classes 2016", "local classes 2019"}
    dock.options.min_patch_spin.setValue(0)  # the dock's change options hold for Compare too
    dock.options.change_tolerance_spin.setValue(0)
    dock.compare_panel.compare_button.click()
    assert dock.compare_panel.task is not None  # in the background
    deadline = time.monotonic() + 60
    while dock.compare_panel.task is not None and time.monotonic() < deadline:
        QgsApplication.processEvents()
        time.sleep(0.02)
    assert len(project.mapLayers()) == before_count + 2, dock.controls.status_label.text()  # change and lines
    assert project.layerTreeRoot().findGroup(
        "compare change local classes 2016 -> local classes 2019") is not None
    # the earlier run's groups stay, unticked, under the comparison
    groups = [g for g in project.layerTreeRoot().children() if g.nodeType() == 0]
    assert [(g.name(), g.isVisible()) for g in groups][:2] == [
        ("compare change local classes 2016 -> local classes 2019", True), ("local change 2016-2019", False)]
    [change] = (tmp_path / "results").glob("run_*/change_local-classes-2016_local-classes-2019.tif")
    options = json.loads(change.with_suffix(".json").read_text())["options"]
    assert (options["min_patch_pixels"], options["tolerance_px"]) == (0, 0)
    assert not dock.compare_panel.class_combo.isEnabled()  # a road map: its one class, shown
    combo = dock.compare_panel.class_combo
    assert combo.currentText() == "1: road" and combo.currentData() is None
    # said under the Compare button, and Open output folder opens where it wrote
    assert dock.compare_panel.status_label.text().endswith(f"Results in {change.parent}")
    assert dock.last_output == change.parent


def test_a_comparison_adds_nothing_to_the_next_project_and_a_cancelled_one_keeps_nothing(dock, tmp_path,
                                                                                          monkeypatch):
    """Compare, then Project > New before it ends: the new project gets no layer of it (it got the comparison's
    change and lines), the status says where the map is; cancelled (as unloading the plugin cancels it), no file
    is kept (they were all written after the unload)."""
    dock, layers = dock
    project, panel = _compare_after_a_run(dock, layers)

    def compare_and(step) -> None:
        panel.before_combo.setLayer(project.mapLayersByName("local classes 2016")[0])
        panel.after_combo.setLayer(project.mapLayersByName("local classes 2019")[0])
        panel.compare_button.click()
        step()
        deadline = time.monotonic() + 60
        while panel.task is not None and time.monotonic() < deadline:
            QgsApplication.processEvents()
            time.sleep(0.02)

    import timeseg.core.change as change_module

    computed = change_module.compute_change

    def cancelled_while_written(*args, **kwargs):  # the Cancel (the plugin unloading) comes as the files are written
        made = computed(*args, **kwargs)
        panel.task.cancel()
        return made

    monkeypatch.setattr(change_module, "compute_change", cancelled_while_written)
    compare_and(lambda: None)
    assert panel.status_label.text() == "Compare cancelled; nothing was kept."
    monkeypatch.setattr(change_module, "compute_change", computed)
    assert not list((tmp_path / "results").glob("run_*/change_local-classes*"))
    compare_and(project.clear)
    assert project.mapLayers() == {}
    [change] = (tmp_path / "results").glob("run_*/change_local-classes-2016_local-classes-2019.tif")
    assert panel.status_label.text() == ("The project this comparison was started in was closed: its map was not "
                                         f"added to this one. It is in {change.parent}")


def test_compare_names_the_layers_of_maps_it_refuses_before_starting(dock, tmp_path):
    """Maps of two models: refused at once, under the Compare button, naming the layers (not their files)."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    dock, _ = dock
    maps = []
    for year, fingerprint in ((2016, "0123456789abcdef"), (2019, "fedcba9876543210")):
        path = tmp_path / str(year) / "classes.tif"
        path.parent.mkdir()
        with rasterio.open(path, "w", driver="GTiff", width=20, height=20, count=1, dtype="uint8", nodata=255,
                           crs="EPSG:32628", transform=from_origin(320_000, 1_780_000, 10, 10)) as dataset:
            dataset.write(np.zeros((1, 20, 20), np.uint8))
            dataset.update_tags(class_names="background,road", timeseg_output="classes", model=f"m{year}.onnx",
                                model_sha256=fingerprint)
        maps.append(QgsRasterLayer(str(path), f"roads {year}"))
    QgsProject.instance().addMapLayers(maps)
    panel = dock.compare_panel
    panel.before_combo.setLayer(maps[0])
    panel.after_combo.setLayer(maps[1])
    panel.compare_button.click()
    assert panel.task is None
    assert panel.status_label.text() == ('Not compared: "roads 2016" and "roads 2019" were made by m2016.onnx and '
                                         "m2019.onnx: compare maps made by the same model (run the earlier period "
                                         "again with m2019.onnx)")
    assert not list((tmp_path / "results").glob("run_*/change_*"))


def test_compare_offers_the_classes_of_maps_of_more_than_two(dock, tmp_path):
    """Two crop maps (other, meadow, wheat, maize): Compare offers their classes but "other", and maps the
    change of the one chosen (before: meadow's, without a word)."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    dock, _ = dock
    maps = []
    for year, sown in ((2016, 2), (2019, 3)):
        path = tmp_path / f"crops_{year}.tif"
        with rasterio.open(path, "w", driver="GTiff", width=20, height=20, count=1, dtype="uint8", nodata=255,
                           crs="EPSG:32628", transform=from_origin(320_000, 1_780_000, 10, 10)) as dataset:
            dataset.write(np.full((1, 20, 20), sown, np.uint8))
            dataset.update_tags(class_names="other,meadow,wheat,maize", timeseg_output="classes")
        maps.append(QgsRasterLayer(str(path), f"crops classes {year}"))
    QgsProject.instance().addMapLayers(maps)
    panel = dock.compare_panel
    panel.before_combo.setLayer(maps[0])
    panel.after_combo.setLayer(maps[1])
    assert [panel.class_combo.itemText(i) for i in range(panel.class_combo.count())] == [
        "1: meadow", "2: wheat", "3: maize"]
    panel.class_combo.setCurrentIndex(2)
    panel.compare_button.click()
    deadline = time.monotonic() + 60
    while panel.task is not None and time.monotonic() < deadline:
        QgsApplication.processEvents()
        time.sleep(0.02)
    [change] = (tmp_path / "results").glob("run_*/change_crops-classes-2016_crops-classes-2019.tif")
    summary = json.loads(change.with_suffix(".json").read_text())
    assert summary["options"]["target_class"] == 3 and summary["pixels"]["new"] == 400
    # its legend names the class followed (it said "new" and "removed" of any class)
    style = change.with_suffix(".qml").read_text()
    assert 'label="new maize"' in style and 'label="removed maize"' in style


def test_unloading_during_a_run_cancels_quietly(qgis_iface, qgis_new_project, two_periods, local_model, tmp_path,
                                               capsys):
    plugin = load_plugin_package().classFactory(qgis_iface)
    plugin.initGui()
    plugin.toggle_dock(True)
    dock = plugin.dock
    layers = [QgsRasterLayer(str(p), p.stem) for year in two_periods.years for p in two_periods.tci_paths[year]]
    QgsProject.instance().addMapLayers(layers)
    dock.model_panel.model_widget.setFilePath(str(local_model))
    dock.options.output_widget.setFilePath(str(tmp_path / "results"))
    dock.options.tile_spin.setValue(32)
    dock.options.overlap_spin.setValue(8)
    tick_all(dock, layers)
    dock.controls.run_button.click()
    assert dock.task is not None
    import gc

    from timeseg.ui.core_task import _DETACHED

    plugin.unload()
    del dock
    gc.collect()  # the dock and its hold on the task gone: the task is held until its finished() ran (a training's
    # label folder was removed by Python's finaliser, with a ResourceWarning)
    deadline = time.monotonic() + 60
    while QgsApplication.taskManager().countActiveTasks() and time.monotonic() < deadline:
        QgsApplication.processEvents()
        time.sleep(0.02)
    QgsApplication.processEvents()
    assert QgsApplication.taskManager().countActiveTasks() == 0 and not _DETACHED  # finished() ran
    assert "Traceback" not in capsys.readouterr().err
    results = tmp_path / "results"
    assert not results.exists() or list(results.rglob("*")) == []


def test_missing_onnxruntime_is_explained(dock, monkeypatch):
    import numpy as np

    from timeseg.ui import dependencies

    dock, _ = dock
    monkeypatch.setattr(dependencies.importlib.util, "find_spec",
                        lambda name: None if name == "onnxruntime" else object())
    monkeypatch.setattr(dependencies, "cuda_gpu_present", lambda: False)
    import sys

    monkeypatch.setattr(sys, "base_prefix", sys.prefix)  # QGIS's own Python, not a virtual environment
    assert not dock.check_dependencies()
    assert "-m pip install --user" in dock.dependency_label.text()
    monkeypatch.setattr(dock.model_panel, "card", None)  # no card is read without onnxruntime
    assert dock.preflight()[0] == ["onnxruntime is missing: click Install missing packages above, then restart QGIS"]
    assert dock.dependency_label.text().split("\n")[1].endswith(" onnxruntime==1.32.0 numpy==" + np.__version__)
    assert not dock.controls.run_button.isEnabled()
    assert Qt.TextSelectableByMouse & dock.dependency_label.textInteractionFlags()
    # the install button runs exactly that pinned command with the Python QGIS runs, then says to restart
    ran = []

    class Completed:
        returncode, stdout, stderr = 0, "Successfully installed onnxruntime-1.32.0", ""

    monkeypatch.setattr("subprocess.run", lambda command, **kwargs: ran.append(command) or Completed())
    assert dock.install_button.isVisibleTo(dock)
    dock.install_button.click()
    deadline = time.monotonic() + 30
    while dock.install_task is not None and time.monotonic() < deadline:
        QgsApplication.processEvents()
        time.sleep(0.02)
    from timeseg.core import runtime

    assert ran == [[runtime.python_for_pip(), "-m", "pip", "install", *ran[0][4:-2], "onnxruntime==1.32.0",
                    f"numpy=={np.__version__}"]]  # the numpy there held: onnx's dependencies would pull numpy 2
    assert "Restart QGIS" in dock.dependency_label.text()
    assert not dock.install_button.isVisibleTo(dock)  # installed: nothing more to click until QGIS restarts
    monkeypatch.setattr(dependencies, "cuda_gpu_present", lambda: True)
    assert dependencies.to_install() == ["onnxruntime-gpu==1.31.1"]


def test_a_layer_without_a_date_asks_for_one(dock, tmp_path):
    import datetime as dt

    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    dock, layers = dock
    path = tmp_path / "mosaic.tif"
    with rasterio.open(path, "w", driver="GTiff", width=16, height=16, count=3, dtype="uint8", crs="EPSG:32628",
                       transform=from_origin(320_000, 1_780_000, 10, 10)) as dataset:
        dataset.write(np.ones((3, 16, 16), np.uint8))
    undated = QgsRasterLayer(str(path), "mosaic")
    QgsProject.instance().addMapLayer(undated)
    dock.table.set_checked(undated.id())  # alone, it runs undated: this model needs more dates than one
    assert dock.warning_label.text() == "Period mosaic: 1 date given, the model needs at least 2: add dates"
    dock.table.set_checked(layers[0].id())  # with others, it needs its date, which orders it among theirs
    assert "Give a date to: mosaic" in dock.warning_label.text()
    dock.table.set_checked(layers[0].id(), False)
    dock.table.set_date(undated.id(), dt.date(2018, 6, 1))
    chosen, missing = dock.table.checked_layers()
    assert missing == [] and [(c.date, c.period) for c in chosen] == [(dt.date(2018, 6, 1), "2018")]
    assert "Give a date" not in dock.warning_label.text()


def test_periods_of_two_places_are_refused_before_run_and_the_refusal_goes_when_mended(dock, tmp_path):
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    dock, layers = dock
    path = tmp_path / "elsewhere_20180601.tif"
    with rasterio.open(path, "w", driver="GTiff", width=16, height=16, count=3, dtype="uint8", crs="EPSG:32628",
                       transform=from_origin(100_000, 100_000, 10, 10)) as dataset:
        dataset.write(np.full((3, 16, 16), 90, np.uint8))
    elsewhere = QgsRasterLayer(str(path), "elsewhere_20180601")
    QgsProject.instance().addMapLayer(elsewhere)
    later = [layer for layer in layers if "2019" in layer.name()]
    for layer in [elsewhere, *later]:
        dock.table.set_checked(layer.id())
    refusal = (f"Periods 2018 and 2019 do not overlap (elsewhere_20180601.tif and {later[0].name()}.tif lie "
               "apart): tick the layers of one place")
    assert refusal in dock.warning_label.text().splitlines()
    dock.controls.run_button.click()
    assert dock.task is None and dock.controls.status_label.text() == "Not run: mend what the red lines above say."
    assert refusal in dock.warning_label.text().splitlines()  # said once, above Run
    dock.table.set_checked(elsewhere.id(), False)  # mended: what Run said goes with what it was about
    assert dock.warning_label.text() == "" and dock.controls.status_label.text() == ""
    # an option that a run would refuse is said as it is chosen, not only at Run
    a_file = tmp_path / "not_a_folder.txt"
    a_file.write_text("x")
    dock.options.output_widget.setFilePath(str(a_file))
    assert dock.warning_label.text() == f"The output folder {a_file} is a file: choose a folder."
    assert not dock.warning_label.isHidden()
    dock.options.output_widget.setFilePath(str(tmp_path / "results"))
    assert dock.warning_label.text() == ""
    # what is wrong for every period is said once, not once per period
    tick_all(dock, layers)
    model = tmp_path / "gone.onnx"
    shutil.copyfile(dock.model_panel.path, model)
    dock.model_panel.model_widget.setFilePath(str(model))
    model.unlink()
    dock.update_warnings()
    assert dock.warning_label.text() == f"Model file not found: {model}", dock.warning_label.text()
    # what is wrong for some periods is said once, naming them (it was said once per period)
    assert dock._by_period({"2018": ["small", "a.tif is dark"], "2019": ["small"], "2020": ["small", "late"]}) == [
        "Small", "Period 2018: a.tif is dark", "Period 2020: late"]
    assert dock._by_period({"2018": ["x", "y"], "2019": ["x"], "2020": ["y"]}) == [
        "Periods 2018, 2019: x", "Periods 2018, 2020: y"]


def test_shipped_models_are_offered_by_name(dock):
    from timeseg.core.model_card import SHIPPED_CROP_MODEL, SHIPPED_ROAD_MODEL

    dock, layers = dock
    combo = dock.model_panel.shipped_combo
    names = [combo.itemText(i) for i in range(combo.count())]
    assert names == ["Shipped: crops", "Shipped: roads", "Another model file…"]
    assert combo.currentIndex() == 2  # the fixture's own test model
    combo.activated.emit(0)
    assert dock.model_panel.model_widget.filePath() == str(SHIPPED_CROP_MODEL)
    assert "meadow" in dock.model_panel.card_label.text() and "B8A" in dock.model_panel.card_label.text()
    # what it was made for, and that no real image ever scored it
    assert dock.model_panel.card_label.text().startswith("Crop type per pixel from a year of 20 to 46 Sentinel-2 L1C")
    assert re.search(r"Trained and scored on simulated scenes only \(held-out accuracy 0\.\d\d, simulated\): not "
                     "measured on real imagery", dock.model_panel.card_label.text())
    assert dock.options.tile_spin.value() == 128
    assert not dock.options.threshold_spin.isEnabled()  # seven classes: the likeliest is the map
    # the true-colour layers of the project do not fit a 13-band model
    dock.table.set_checked(layers[0].id())
    assert "3 bands (10 of the model's missing), the model wants 13" in dock.warning_label.text()
    dock.model_panel.model_widget.setFilePath(str(SHIPPED_ROAD_MODEL))
    assert combo.currentIndex() == 1 and dock.options.threshold_spin.isEnabled()
    # the analyst reads the real numbers, the held-out areas' and those of a place never trained on
    text = dock.model_panel.card_label.text()
    assert "On real Sentinel-2 (held-out areas of 3 scenes" in text
    assert re.search(r"never trained on: F1 0\.\d\d-0\.\d\d with one clear date, 0\.\d\d with both", text), text
    # a trained model that scored below its starting model joins the chooser but is not chosen
    dock.model_panel.offer_model(SHIPPED_CROP_MODEL.with_name("worse.onnx"), choose=False)
    assert combo.itemText(2) == "Trained: worse" and combo.currentIndex() == 1
    assert dock.model_panel.model_widget.filePath() == str(SHIPPED_ROAD_MODEL)


def test_a_fine_tuned_model_worse_than_its_start_is_flagged_and_not_chosen(dock, tmp_path):
    from timeseg.core.model_card import SHIPPED_ROAD_MODEL
    from timeseg.models.fine_tune import FineTuneResult
    from timeseg.ui.training_task import TrainingOutcome

    dock, _ = dock
    dock.model_panel.model_widget.setFilePath(str(SHIPPED_ROAD_MODEL))
    worse = FineTuneResult(model_path=tmp_path / "roads_mine.onnx", checkpoint_path=tmp_path / "roads_mine.pt",
                           before={"f1": 0.40, "relaxed_f1": 0.55}, after={"f1": 0.45, "relaxed_f1": 0.50},
                           windows={})
    dock.train_panel.on_finished(TrainingOutcome(result=worse))
    status = dock.train_panel.controls.status_label.text()
    assert "Held-out part, before: F1 0.400 (roads within 2 px: 0.550)" in status
    assert "Warning: " + worse.verdict() in status
    combo = dock.model_panel.shipped_combo
    assert "Trained: roads_mine" in [combo.itemText(i) for i in range(combo.count())]
    assert dock.model_panel.model_widget.filePath() == str(SHIPPED_ROAD_MODEL)


def test_the_shipped_crop_model_runs_from_the_dock(qgis_iface, qgis_new_project, tmp_path):
    """An analyst's year of 13-band observations (every second date of a simulated crop scene)."""
    import rasterio

    from timeseg.models.crops import REGION_SEED
    from timeseg.models.simulator.crops import CROP_CLASSES, crop_schedule, simulate_crop_scene

    scene = simulate_crop_scene(tmp_path / "crops", 77, crop_schedule(2016, 46, REGION_SEED), 48)
    plugin = load_plugin_package().classFactory(qgis_iface)
    plugin.initGui()
    plugin.toggle_dock(True)
    try:
        dock = plugin.dock
        layers = [QgsRasterLayer(str(path), path.stem) for path in scene.image_paths[::2]]
        QgsProject.instance().addMapLayers(layers)
        dock.model_panel.shipped_combo.activated.emit(dock.model_panel.shipped_combo.findText("Shipped: crops"))
        dock.options.output_widget.setFilePath(str(tmp_path / "results"))
        dock.options.device_combo.setCurrentIndex(dock.options.device_combo.findData("cpu"))
        tick_all(dock, layers)
        assert dock.warning_label.text() == ""
        dock.controls.run_button.click()
        wait_for(dock)
        assert dock.controls.progress.value() == 100, dock.controls.status_label.text()
        classes = QgsProject.instance().mapLayersByName("crops classes 2016")[0]
        assert [c.label for c in classes.renderer().classes()] == [*CROP_CLASSES, "no data"]
        assert all(c.color.alpha() == 255 for c in classes.renderer().classes())  # every crop shows
        with rasterio.open(classes.source()) as predicted, rasterio.open(scene.labels_path) as truth:
            accuracy = (predicted.read(1) == truth.read(1)).mean()
        assert accuracy > 0.75
    finally:
        plugin.unload()


def test_period_folder_names_keep_every_script_and_its_marks():
    """A period's folder keeps letters of any script with their marks (Devanagari and Thai vowel signs became '-',
    'मार्च' -> 'म-र-च'; an 'Été' typed decomposed, 'E-te'); a path's separators and '..' still go."""
    import unicodedata

    from timeseg.core.definitions import folder_name

    assert [folder_name(text) for text in ("मार्च", "ฤดูร้อน", unicodedata.normalize("NFD", "Été 2019"), "秋",
                                           "2015/16", "../up")] == [
        "मार्च", "ฤดูร้อน", "Été-2019", "秋", "2015-16", "up"]


def test_ticking_periods_outputs_and_folders(dock, tmp_path):
    """Tick all / clear / one period; TimeSeg's own results are not offered as inputs; a period typed as
    '2015/16' keeps its name and writes into a safe folder; the output folder follows the project; Open output
    folder after a run."""
    from qgis.PyQt.QtXml import QDomDocument

    dock, layers = dock
    rows = dock.table.rowCount()
    dock.table.set_all_checked(True)
    assert len(dock.table.checked_layers()[0]) == rows
    dock.table.set_all_checked(False)
    period_button = next(b for b in dock.findChildren(QPushButton) if b.text() == "Period")
    period_button.menu().aboutToShow.emit()  # as its click fills it
    [in_2016] = [action for action in period_button.menu().actions() if action.text() == "2016"]
    in_2016.trigger()
    assert {layer.period for layer in dock.table.checked_layers()[0]} == {"2016"}
    assert dock.table.periods() == ["2016", "2019"]
    dock.table.set_period(layers[0].id(), "2015/16")
    dock.table.set_checked(layers[0].id())
    assert "2015/16" in {layer.period for layer in dock.table.checked_layers()[0]}  # as typed, in layer names
    parameters = dock.parameters()
    requests = parameters.segment_requests(lambda: False)
    assert requests["2015/16"].output_dir == parameters.output_dir / "2015-16"  # its folder: safe
    from timeseg.ui.results import period_span

    assert period_span("2016", "2019") == "2016-2019" and period_span("June 2021", "Sept 2021") == \
        "June 2021 to Sept 2021"  # the typed names kept: "June-2021-Sept-2021" was hard to read
    # names of other scripts stay apart (both were 'period': one map of both periods' dates, no change), and
    # two names typed apart that would share a folder are refused before the run
    tick_all(dock, layers)
    for layer in layers:
        dock.table.set_period(layer.id(), "春" if "2016" in layer.name() else "秋")
    assert sorted(dock.table.periods()) == ["春", "秋"] and not dock.table.period_clashes()
    for layer in layers:
        dock.table.set_period(layer.id(), "2019/20" if "2016" in layer.name() else "2019-20")
    assert dock.problems() == ["The periods '2019-20' and '2019/20' would write into one folder, 2019-20: name "
                               "them apart"]
    for layer in layers:
        dock.table.set_period(layer.id(), "2016" if "2016" in layer.name() else "2019")
    dock.table.set_all_checked(False)
    dock.table.set_checked(layers[0].id())
    dock.table.set_period(layers[0].id(), "2016")
    assert not dock.open_folder_button.isEnabled()
    tick_all(dock, layers)
    dock.controls.run_button.click()
    wait_for(dock)
    assert dock.open_folder_button.isEnabled() and dock.last_output.is_dir()
    assert dock.table.rowCount() == rows  # the results just added are not inputs
    project = QgsProject.instance()
    project.writeEntry("TimeSeg", "output_dir", str(tmp_path / "elsewhere"))
    project.readProject.emit(QDomDocument())
    assert dock.options.output_widget.filePath() == str(tmp_path / "elsewhere")


def test_the_empty_output_field_names_where_runs_go(dock, tmp_path):
    """Before any run: a project never saved sends runs (and trained models) to the temporary folder, and
    the empty fields say so, in short and in their tooltips in full; once saved, beside it."""
    import tempfile

    dock, _ = dock
    project = QgsProject.instance()
    # the results' folder field, and the trained model's file field (it said "a temporary folder", and
    # "saving the project moves the results")
    fields = {("timeseg_results", "", "results"): dock.options.output_widget,
              ("timeseg_models", "roads_<date>_<time>.onnx", "trained models"): dock.train_panel.output_widget}
    dock.options.output_widget.setFilePath("")
    for (name, file, what), field in fields.items():
        temporary = Path(tempfile.gettempdir()) / name / file if file else Path(tempfile.gettempdir()) / name
        assert field.lineEdit().placeholderText() == (f"{file} in a temporary folder" if file else
                                                      "a temporary folder")
        assert field.toolTip().endswith(f"\nEmpty: {temporary}, in a temporary folder (many systems empty it at "
                                        f"restart): saving the project moves the {what} beside it")
    assert dock.options.output_folder().parent == Path(tempfile.gettempdir()) / "timeseg_results"
    try:
        project.setFileName(str(tmp_path / "place" / "area.qgz"))
        for (name, file, _), field in fields.items():
            assert field.lineEdit().placeholderText() == f"{file} beside the project".strip()
            assert field.toolTip().endswith(f"\nEmpty: {tmp_path / 'place' / name / file}".rstrip("/"))
        assert dock.options.output_folder().parent == tmp_path / "place" / "timeseg_results"
        assert dock.train_panel.output_path().parent == tmp_path / "place" / "timeseg_models"
    finally:
        project.setFileName("")


def test_run_inside_a_polygon_layer(dock, tmp_path):
    """The Area option: inside the polygons of a layer, outside them nodata, only their extent written."""
    import rasterio
    from osgeo import ogr, osr
    from qgis.core import QgsVectorLayer

    dock, layers = dock
    extent = layers[0].extent()
    srs = osr.SpatialReference()
    srs.ImportFromWkt(layers[0].crs().toWkt())
    source = ogr.GetDriverByName("GPKG").CreateDataSource(str(tmp_path / "area.gpkg"))
    layer = source.CreateLayer("area", srs, ogr.wkbPolygon)
    x0, y1 = extent.xMinimum(), extent.yMaximum()
    ring = "POLYGON(({0} {1},{2} {1},{0} {3},{0} {1}))".format(x0 + 50, y1 - 50, x0 + 450, y1 - 450)
    feature = ogr.Feature(layer.GetLayerDefn())
    feature.SetGeometry(ogr.CreateGeometryFromWkt(ring))
    layer.CreateFeature(feature)
    source = None
    polygons = QgsVectorLayer(str(tmp_path / "area.gpkg"), "area", "ogr")
    QgsProject.instance().addMapLayer(polygons)
    tick_all(dock, layers)
    dock.options.area.set_kind("polygons")
    dock.options.area.layer_combo.setLayer(polygons)
    assert dock.problems() == []
    dock.controls.run_button.click()
    wait_for(dock)
    with rasterio.open(dock.last_output / "2019" / "classes.tif") as classes:
        values = classes.read(1)
        assert classes.shape == (40, 40)  # the triangle's extent, 400 m at 10 m
    assert values[0, 0] != 255 and values[-1, -1] == 255
    # the polygons removed: no other layer is taken in their place (QGIS's combo would take the next)
    other = QgsVectorLayer(str(tmp_path / "area.gpkg"), "another area", "ogr")
    QgsProject.instance().addMapLayer(other)
    QgsProject.instance().removeMapLayer(polygons.id())
    assert dock.options.area.layer_combo.currentLayer() is None
    assert dock.problems() == ["Choose the polygon layer that outlines the area."]
    # polygons, or the canvas, off the rasters: named as the analyst knows them (as the layer, as the canvas)
    far = QgsVectorLayer("Polygon?crs=EPSG:4326", "far area", "memory")
    far.dataProvider().addFeature(_polygon_feature("POLYGON((100 10, 101 10, 101 11, 100 10))"))
    far.updateExtents()
    QgsProject.instance().addMapLayer(far)
    dock.options.area.layer_combo.setLayer(far)
    assert dock.problems() == ['The polygons of "far area" lie outside the ticked layers: choose polygons over them.']
    canvas = dock.options.area.iface.mapCanvas()
    canvas.setDestinationCrs(layers[0].crs())
    canvas.setExtent(QgsRectangle(0, 0, 1000, 1000))
    dock.options.area.set_kind("canvas")
    assert dock.problems() == ["The map canvas shows none of the ticked layers: pan or zoom to them, or choose "
                               "another Area."]
    canvas.setExtent(layers[0].extent())
    assert dock.problems() == []


def test_every_control_has_a_tooltip(dock):
    from qgis.gui import QgsFileWidget, QgsMapLayerComboBox
    from qgis.PyQt.QtWidgets import QAbstractButton, QAbstractSpinBox, QComboBox, QTableWidget

    dock, _ = dock
    kinds = (QAbstractButton, QComboBox, QAbstractSpinBox, QgsFileWidget, QgsMapLayerComboBox, QTableWidget)
    silent = []
    for widget in dock.widget().findChildren(kinds):
        ancestors, parent = [], widget.parent()
        while parent is not None:
            ancestors.append(parent)
            parent = parent.parent()
        inside_file_widget = any(isinstance(a, (QgsFileWidget, QgsMapLayerComboBox)) for a in ancestors)
        inside_table = isinstance(widget.parent(), QTableWidget) or widget.parent().parent() is dock.table
        if widget.isVisibleTo(dock) and not widget.toolTip() and not inside_file_widget and not inside_table:
            silent.append(f"{type(widget).__name__} {widget.objectName() or getattr(widget, 'text', lambda: '')()}")
    assert silent == [], "\n".join(silent)


def test_a_rerun_replaces_its_results_and_leaves_the_analysts_own_group_of_that_name(dock):
    """The analyst's own group "local 2019" (a scratch layer of digitised roads in it) before a run of period
    2019: the run adds its own group, and the analyst's group and layer stay (they were deleted); a rerun
    replaces its earlier results, and keeps the layer the analyst put into that result group."""
    from qgis.core import QgsVectorLayer

    dock, layers = dock
    project = QgsProject.instance()
    root = project.layerTreeRoot()
    theirs = QgsVectorLayer("LineString?crs=EPSG:32628", "digitised roads", "memory")
    project.addMapLayer(theirs, False)
    root.addGroup("local 2019").addLayer(theirs)
    tick_all(dock, [layer for layer in layers if "2019" in layer.name()])
    for run in range(2):
        dock.controls.run_button.click()
        wait_for(dock)
        assert dock.controls.progress.value() == 100, dock.controls.status_label.text()
        if run == 0:  # as a version before the result-layer mark added it: still known by its file's tag
            project.mapLayersByName("local classes 2019")[0].removeCustomProperty("timeseg/result")
    assert project.mapLayer(theirs.id()) is not None
    assert len(project.mapLayersByName("local classes 2019")) == 1  # the rerun replaced the first run's
    mine = next(g for g in root.findGroups(True) if g.name() == "local 2019" and theirs.id() in g.findLayerIds())
    assert mine.findLayerIds() == [theirs.id()]
    # a layer of the analyst's moved into a result group survives the next rerun there
    result_group = next(g for g in root.findGroups(True) if g.name() == "local 2019" and g is not mine)
    kept = QgsVectorLayer("Point?crs=EPSG:32628", "my notes", "memory")
    project.addMapLayer(kept, False)
    result_group.addLayer(kept)
    dock.controls.run_button.click()
    wait_for(dock)
    assert project.mapLayer(kept.id()) is not None and len(project.mapLayersByName("local classes 2019")) == 1
    # a result layer the analyst renamed is theirs: the next rerun adds its own beside it
    renamed = project.mapLayersByName("local classes 2019")[0]
    renamed.setName("classes 2019 as sent to the client")
    dock.controls.run_button.click()
    wait_for(dock)
    assert project.mapLayer(renamed.id()) is renamed and len(project.mapLayersByName("local classes 2019")) == 1


def test_a_run_whose_project_was_closed_adds_nothing_to_the_next_one(dock):
    """Project > New while a run goes on: the run ends without adding its groups to the new project, and says
    where its maps are."""
    dock, layers = dock
    tick_all(dock, layers)
    dock.controls.run_button.click()
    assert dock.task is not None
    QgsProject.instance().clear()
    wait_for(dock)
    assert QgsProject.instance().layerTreeRoot().children() == []
    status = dock.controls.status_label.text()
    assert status.startswith("The project this run was started in was closed: its maps were not added to this one. "
                             "They are in "), status


def test_renaming_a_layer_after_the_plugin_is_unloaded_raises_nothing(qgis_iface, qgis_new_project, two_periods,
                                                                     monkeypatch):
    """Unloaded (Plugin Manager, Plugin Reloader), the dock's table must leave no slot on the project's layers:
    a rename raised "wrapped C/C++ object of type LayerTable has been deleted" once per reload."""
    import sys

    raised = []
    monkeypatch.setattr(sys, "excepthook", lambda *error: raised.append(error))
    layer = QgsRasterLayer(str(two_periods.tci_paths[2016][0]), "before")
    QgsProject.instance().addMapLayer(layer)
    for _ in range(2):
        plugin = load_plugin_package().classFactory(qgis_iface)
        plugin.initGui()
        plugin.toggle_dock(True)
        assert plugin.dock.table.rowCount() == 1
        plugin.unload()
        QgsApplication.sendPostedEvents(None, QEvent.DeferredDelete)  # the dock's deleteLater
    layer.setName("renamed after unloading")
    QgsApplication.processEvents()
    assert raised == []


def test_tables_and_zipped_rasters_run_web_maps_are_not_offered_one_file_twice_is_refused(dock, two_periods,
                                                                                          tmp_path):
    """A web map (XYZ) is not offered; a GeoPackage's raster table and a raster inside a zip run as files do
    (before: refused, and "not a raster GDAL can read" for the zip: pathlib cut /vsizip//tmp to a relative path);
    one file added twice under two names is refused with both names."""
    import datetime as dt
    import zipfile

    import numpy as np
    import rasterio
    from osgeo import gdal

    dock, layers = dock
    rows = dock.table.rowCount()
    xyz = QgsRasterLayer("type=xyz&url=https://tile.openstreetmap.org/%7Bz%7D/%7Bx%7D/%7By%7D.png&zmax=19&zmin=0",
                         "OSM 20210101 basemap", "wms")
    first, second = two_periods.tci_paths[2019][:2]
    gpkg = tmp_path / "images.gpkg"
    gdal.Translate(str(gpkg), str(first), format="GPKG", creationOptions=["RASTER_TABLE=june_20190601",
                                                                         "TILE_FORMAT=PNG"])
    table = QgsRasterLayer(f"GPKG:{gpkg}:june_20190601", "june_20190601")
    with zipfile.ZipFile(tmp_path / "download.zip", "w") as archive:
        archive.write(second, second.name)
    undated = tmp_path / "undated.tif"  # the image without its date tags: its archive's name dates it
    with rasterio.open(second) as source:
        with rasterio.open(undated, "w", **source.profile) as copy:
            copy.write(source.read())
    with zipfile.ZipFile(tmp_path / "S2_20190611.zip", "w") as archive:
        archive.write(undated, "TCI.tif")
    zipped = QgsRasterLayer(f"/vsizip/{tmp_path / 'download.zip'}/{second.name}", "zipped")
    dated_by_its_zip = QgsRasterLayer(f"/vsizip/{tmp_path / 'S2_20190611.zip'}/TCI.tif", "TCI")
    assert table.isValid() and zipped.isValid() and zipped.source().startswith("/vsizip//")
    copy = QgsRasterLayer(str(two_periods.tci_paths[2019][2]), "second copy")
    QgsProject.instance().addMapLayers([xyz, table, zipped, copy, dated_by_its_zip])
    assert dock.table.rowCount() == rows + 4  # not the web map
    def shown_date(layer):
        return dock.table.cellWidget(dock.table.layer_ids().index(layer.id()), 1).date().toPyDate()

    assert shown_date(dated_by_its_zip) == dt.date(2019, 6, 11)  # by its zip's name
    assert shown_date(table) == dt.date(2019, 6, 1)  # by its table's name
    original = next(layer for layer in layers if layer.source() == copy.source())
    dock.table.set_all_checked(False)
    dock.table.set_checked(original.id())
    dock.table.set_checked(copy.id())
    assert dock.warning_label.text() == f"{original.name()} and second copy are the same file: untick one"
    dock.table.set_all_checked(False)
    for layer, date in ((table, dt.date(2019, 6, 1)), (zipped, dt.date(2019, 6, 11))):
        dock.table.set_checked(layer.id())
        dock.table.set_date(layer.id(), date)
    assert dock.warning_label.text() == ""
    dock.controls.run_button.click()
    wait_for(dock)
    inside = dock.last_output / "2019" / "classes.tif"
    plain = [layer for layer in layers if layer.source() in (str(first), str(second))]
    dock.table.set_all_checked(False)
    for layer, date in zip(plain, (dt.date(2019, 6, 1), dt.date(2019, 6, 11))):
        dock.table.set_checked(layer.id())
        dock.table.set_date(layer.id(), date)
    dock.controls.run_button.click()
    wait_for(dock)
    with rasterio.open(inside) as of_table_and_zip, rasterio.open(dock.last_output / "2019" / "classes.tif") as files:
        assert np.array_equal(of_table_and_zip.read(), files.read())
        assert of_table_and_zip.transform == files.transform


def test_ticks_dates_and_periods_are_saved_with_the_project(dock, tmp_path):
    """Ticked layers, a date typed for a layer without one and a renamed period, saved with the project and
    opened again: the table shows them as they were (before: all unticked, dates and periods lost)."""
    import datetime as dt

    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    dock, layers = dock
    path = tmp_path / "mosaic.tif"
    with rasterio.open(path, "w", driver="GTiff", width=16, height=16, count=3, dtype="uint8", crs="EPSG:32628",
                       transform=from_origin(320_000, 1_780_000, 10, 10)) as dataset:
        dataset.write(np.ones((3, 16, 16), np.uint8))
    project = QgsProject.instance()
    undated = QgsRasterLayer(str(path), "mosaic")
    project.addMapLayer(undated)
    dock.table.set_checked(layers[0].id())
    dock.table.set_checked(undated.id())
    dock.table.set_date(undated.id(), dt.date(2018, 6, 1))
    dock.table.set_period(layers[0].id(), "before")
    first = next(c for c in dock.table.checked_layers()[0] if c.name == layers[0].name())
    saved = tmp_path / "project.qgz"
    assert project.write(str(saved))
    project.clear()
    assert dock.table.rowCount() == 0
    assert project.read(str(saved))
    chosen, undated_names = dock.table.checked_layers()
    assert undated_names == []
    assert sorted((c.name, c.date, c.period) for c in chosen) == sorted(
        [(first.name, first.date, "before"), ("mosaic", dt.date(2018, 6, 1), "2018")])


def test_a_remembered_model_that_is_gone_gives_way_to_the_shipped_one(qgis_iface, qgis_new_project, tmp_path):
    from qgis.core import QgsSettings

    from timeseg.core.model_card import SHIPPED_ROAD_MODEL
    from timeseg.ui.model_panel import SETTING

    QgsSettings().setValue(SETTING, str(tmp_path / "deleted.onnx"))
    plugin = load_plugin_package().classFactory(qgis_iface)
    plugin.initGui()
    plugin.toggle_dock(True)
    try:
        assert plugin.dock.model_panel.path == SHIPPED_ROAD_MODEL and plugin.dock.model_panel.card is not None
    finally:
        plugin.unload()
        QgsSettings().remove(SETTING)


def _polygon_feature(wkt: str):
    from qgis.core import QgsFeature, QgsGeometry

    feature = QgsFeature()
    feature.setGeometry(QgsGeometry.fromWkt(wkt))
    return feature


def test_a_session_across_projects(dock, two_periods, tmp_path):
    """Saved, moved and reopened: the output folder chosen is the project's at once and moves with it; the
    folder hints follow Open and New; a ticked layer whose file is gone is said on opening; a result group
    the analyst moved into a group of theirs survives the next run; a result whose file is gone is never offered
    as an input; Compare starts from the earliest period; the change options stay for the next session."""
    import shutil

    from qgis.core import QgsSettings

    dock, layers = dock
    project = QgsProject.instance()
    place = tmp_path / "place"
    (place / "inputs").mkdir(parents=True)
    copies = [shutil.copy(layer.source(), place / "inputs") for layer in layers]
    project.removeAllMapLayers()
    project.addMapLayers([QgsRasterLayer(str(path), Path(path).stem) for path in copies])
    project.write(str(place / "area.qgz"))
    dock.options.output_widget.setFilePath(str(place / "my_results"))  # chosen, never run: kept with the project
    assert project.write()
    for layer in project.mapLayers().values():
        dock.table.set_checked(layer.id())
    dock.options.min_patch_spin.setValue(20)
    dock.controls.run_button.click()
    wait_for(dock)
    assert project.write()
    # the project moved elsewhere with its results: the folder chosen moves with it
    moved = tmp_path / "moved"
    shutil.move(str(place), str(moved))
    project.clear()
    assert dock.options.output_widget.lineEdit().placeholderText() == "a temporary folder"  # New: no project
    assert project.read(str(moved / "area.qgz"))
    assert dock.options.output_widget.filePath() == str(moved / "my_results")
    assert dock.options.output_widget.lineEdit().placeholderText() == "beside the project"
    model_file = moved / "timeseg_models" / "roads_<date>_<time>.onnx"
    assert dock.train_panel.output_widget.toolTip().endswith(f"\nEmpty: {model_file}")
    # the analyst keeps the change group in a group of theirs; a date's file goes; a result's file goes
    root = project.layerTreeRoot()
    [change_group] = [g for g in root.children() if g.nodeType() == 0 and " change " in g.name()]
    archive = root.addGroup("Archive")
    archive.addChildNode(change_group.clone())
    root.removeChildNode(change_group)
    gone = next(layer.source() for layer in project.mapLayers().values() if "20160" in layer.name())
    for path in (Path(gone), Path(project.mapLayersByName("local classes 2016")[0].source())):
        path.unlink()
    assert project.write()
    project.clear()
    assert project.read(str(moved / "area.qgz"))
    assert f"raster not found: {gone}" in dock.warning_label.text()  # said on opening, not at Run
    offered = {dock.table.item(row, 0).text() for row in range(dock.table.rowCount())}
    assert not [name for name in offered if "local " in name], offered  # results, broken or not, are no inputs
    for layer in project.mapLayers().values():
        if "20160" in layer.name() and not layer.isValid():
            dock.table.set_checked(layer.id(), False)
    dock.controls.run_button.click()
    wait_for(dock)
    assert [node.name() for node in root.findGroup("Archive").findLayers()], "the archived change group was removed"
    # Compare offers the earliest period first, whatever the layers' order
    [before, after] = (dock.compare_panel.before_combo.currentLayer(), dock.compare_panel.after_combo.currentLayer())
    assert "2016" in before.name() and "2019" in after.name(), (before.name(), after.name())
    # the change options stay for the next session, as device and precision do
    assert int(QgsSettings().value("timeseg/min_patch")) == 20


def test_maps_that_cannot_be_added_free_the_dock_and_say_where_they_are(dock, monkeypatch):
    """Adding a finished run's maps fails (its folder deleted meanwhile: QGIS cannot open them): Run is free
    again and the status says why and where the maps are (the dock stayed 'Running' with Run disabled until the
    plugin was reloaded)."""
    import timeseg.ui.dock as dock_module

    def cannot_open(*args, **kwargs):
        raise OSError("QGIS cannot open /gone/2016/classes.tif")

    dock, layers = dock
    monkeypatch.setattr(dock_module, "add_period_layers", cannot_open)
    tick_all(dock, layers)
    dock.controls.run_button.click()
    wait_for(dock)
    status = dock.controls.status_label.text()
    assert status.startswith("The maps were made but could not be added: QGIS cannot open /gone/2016/classes.tif. "
                             f"They are in {dock.last_output}"), status
    assert dock.controls.run_button.isEnabled() and not dock.controls.cancel_button.isEnabled()


def test_a_run_and_a_comparison_started_together_write_into_folders_of_their_own(dock, tmp_path):
    """Run, then Compare within the same second: each its own run folder, both done (both took one folder, and
    one failed on the other's lock: 'another TimeSeg run is writing into ...')."""
    dock, layers = dock
    project, panel = _compare_after_a_run(dock, layers)
    panel.before_combo.setLayer(project.mapLayersByName("local classes 2016")[0])
    panel.after_combo.setLayer(project.mapLayersByName("local classes 2019")[0])
    dock.controls.run_button.click()
    panel.compare_button.click()
    deadline = time.monotonic() + 120
    while (dock.task is not None or panel.task is not None) and time.monotonic() < deadline:
        QgsApplication.processEvents()
        time.sleep(0.02)
    assert "another TimeSeg run" not in dock.controls.status_label.text() + panel.status_label.text()
    [compared] = (tmp_path / "results").glob("run_*/change_local-classes-2016_local-classes-2019.tif")
    runs = sorted((tmp_path / "results").glob("run_*/2019/classes.tif"))
    assert len(runs) == 2 and compared.parent not in {run.parent.parent for run in runs}


def test_results_and_models_in_the_temporary_folder_move_beside_the_project_once_it_is_saved(dock, tmp_path,
                                                                                              monkeypatch,
                                                                                              local_model):
    """A project never saved writes to the temporary folder, which many systems empty at restart: saving it
    moves the runs its layers read and the models trained in it beside the project file, the layers (names,
    styles) read the moved files, and the project file saved says so."""
    import shutil
    import tempfile

    from qgis.core import QgsRasterLayer

    dock, layers = dock
    system_temporary = tmp_path / "system_tmp"
    system_temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_temporary))
    project = QgsProject.instance()
    dock.options.output_widget.setFilePath("")
    tick_all(dock, [layer for layer in layers if "2019" in layer.name()])
    dock.controls.run_button.click()
    wait_for(dock)
    assert dock.controls.progress.value() == 100, dock.controls.status_label.text()
    classes = project.mapLayersByName("local classes 2019")[0]
    run = Path(classes.source()).parents[1]
    assert run.parent == system_temporary / "timeseg_results"
    renderer = classes.renderer().type()
    trained = system_temporary / "timeseg_models" / "roads_mine.onnx"
    trained.parent.mkdir()
    shutil.copy(local_model, trained)
    (system_temporary / "timeseg_models" / "roads_mine.pt").write_bytes(b"checkpoint")
    (system_temporary / "timeseg_models" / "roads_mine_other.onnx").write_bytes(b"another model")
    dock.model_panel.offer_model(trained)

    # a folder of the analyst's beside the runs, which a layer reads: theirs, not moved
    own = system_temporary / "timeseg_results" / "my_stuff"
    own.mkdir()
    shutil.copy(classes.source(), own / "mine.tif")
    mine = QgsRasterLayer(str(own / "mine.tif"), "mine")
    project.addMapLayer(mine)
    # saved in the temporary folder itself: beside it already, nothing moves (a QA's save renamed the run on
    # every save, and saved again, endlessly)
    assert project.write(str(system_temporary / "scratch.qgz"))
    assert run.is_dir() and Path(classes.source()).parents[1] == run
    saved = tmp_path / "place" / "area.qgz"
    saved.parent.mkdir()
    assert project.write(str(saved))
    project.clear()  # QGIS going on to another project at once (the second save was left to the event loop
    assert project.read(str(saved))  # and wrote into the next project: the saved file kept the old paths)
    classes = project.mapLayersByName("local classes 2019")[0]
    assert (own / "mine.tif").is_file() and Path(project.mapLayersByName("mine")[0].source()) == own / "mine.tif"
    beside = tmp_path / "place" / "timeseg_results" / run.name
    assert not run.exists() and beside.is_dir()
    assert Path(classes.source()) == beside / "2019" / "classes.tif" and classes.isValid()
    assert classes.name() == "local classes 2019" and classes.renderer().type() == renderer
    assert any("Moved 1 run folder and 1 trained model from the temporary folder to " in m
               for m in dock.iface.messageBar().get_messages(0))
    models = tmp_path / "place" / "timeseg_models"
    assert sorted(p.name for p in models.iterdir()) == ["roads_mine.onnx", "roads_mine.pt"]
    assert (system_temporary / "timeseg_models" / "roads_mine_other.onnx").is_file()  # not this model's
    assert dock.model_panel.path == models / "roads_mine.onnx"
    assert isinstance(classes, QgsRasterLayer)


def test_the_train_panel_does_not_offer_the_runs_results_as_labels(dock):
    """A run's classes map and its new and removed roads were offered as labels: a model's own map, or removed
    roads, taught as roads. A line layer of the analyst's is offered."""
    from qgis.core import QgsVectorLayer

    dock, layers = dock
    tick_all(dock, layers)
    dock.controls.run_button.click()
    wait_for(dock)
    project = QgsProject.instance()
    results = [layer for layer in project.mapLayers().values() if layer.customProperty("timeseg/result")]
    assert {layer.name() for layer in results} >= {"local classes 2019", "local new and removed lines 2016-2019"}
    roads = QgsVectorLayer("LineString?crs=EPSG:32628", "my roads", "memory")
    project.addMapLayer(roads)
    combo = dock.train_panel.labels_combo
    offered = {combo.layer(row) for row in range(combo.count())} - {None}
    assert roads in offered and not offered & set(results)


def test_the_status_says_which_step_a_run_is_at(dock, monkeypatch):
    """The status said "Running on periods 2016, 2019 ..." to the end of a run; it says each period, then the
    change map, as they begin."""
    dock, layers = dock
    shown = []
    real = dock._show_step
    monkeypatch.setattr(dock, "_show_step", lambda step: (real(step), shown.append(
        dock.controls.status_label.text())))
    tick_all(dock, layers)
    dock.controls.run_button.click()
    wait_for(dock)
    assert shown == ["Running: period 2016 (1 of 2) ...", "Running: period 2019 (2 of 2) ...",
                     "Running: the change map ..."]
    assert "Results in" in dock.controls.status_label.text()


def test_a_saved_projects_temporary_results_move_on_the_next_turn_of_the_event_loop(dock, tmp_path, monkeypatch):
    """Saved and left open (the usual case): the move waits for the save to be over (a .qgz is zipped after
    QGIS says it saved: saved again at once, the first save's zip came last and kept the old paths), then the
    project is saved again with the moved maps."""
    import tempfile

    dock, layers = dock
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "system_tmp"))
    (tmp_path / "system_tmp").mkdir()
    project = QgsProject.instance()
    dock.options.output_widget.setFilePath("")
    tick_all(dock, [layer for layer in layers if "2019" in layer.name()])
    dock.controls.run_button.click()
    wait_for(dock)
    saved = tmp_path / "place" / "area.qgz"
    saved.parent.mkdir()
    assert project.write(str(saved))
    classes = project.mapLayersByName("local classes 2019")[0]
    assert "system_tmp" in classes.source()  # not yet: the save is still going on
    first_save, content = saved.stat().st_mtime_ns, saved.read_bytes()
    for _ in range(5):
        QgsApplication.processEvents()
    # saved again, under the time of the analyst's own save: QGIS asks at the next save whether to overwrite
    # a project file changed on disk since it saved it
    assert saved.read_bytes() != content and saved.stat().st_mtime_ns == first_save
    assert Path(classes.source()).is_relative_to(tmp_path / "place" / "timeseg_results")
    apart = QgsProject()
    assert apart.read(str(saved), QgsProject.ReadFlags(QgsProject.FlagDontResolveLayers))
    [reread] = apart.mapLayersByName("local classes 2019")
    assert reread.source() == classes.source()


def test_a_cancelled_training_says_so_where_qgis_says_task_failed(qgis_iface):
    """QGIS 3.22 tells of a cancelled task of 5 s or more as "Task failed: <its description>"."""
    from timeseg.ui.training_task import TrainingTask

    task = TrainingTask(None, lambda outcome: None)
    task.cancel()
    task.cancel()  # said once
    assert task.isCanceled() and task.description() == "TimeSeg training: cancelled, no model written"


def test_the_dock_opens_whatever_its_saved_choices_hold(qgis_iface, qgis_new_project):
    """Saved choices edited by hand or by another version ("x" where a number was) are left at their defaults
    (the dock raised ValueError and never opened); good ones are restored."""
    from qgis.core import QgsSettings

    settings = QgsSettings()
    settings.remove("timeseg")
    for key, value in (("scales", "x"), ("orientations", ""), ("threshold", "high"), ("min_patch", "12")):
        settings.setValue(f"timeseg/{key}", value)
    plugin = load_plugin_package().classFactory(qgis_iface)
    plugin.initGui()
    try:
        plugin.toggle_dock(True)
        options = plugin.dock.options
        assert options.scales_combo.currentData() == 1 and options.orientations_combo.currentData() == 1
        threshold = options.threshold_spin
        assert options.min_patch_spin.value() == 12 and threshold.value() == threshold.minimum()  # the model's
    finally:
        plugin.unload()
        settings.remove("timeseg")
