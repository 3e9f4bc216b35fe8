"""Bad inputs and faults, table-driven, through the command line, the Python API and Processing.

Each case starts from a workspace holding inputs and the results of an earlier good run, and
asserts the exit code (or exception), the one-line message that says what to do, and that
every file of the workspace is byte-for-byte what it was: nothing left behind (no partial
file, no lock, no folder), no earlier result or input lost or changed.
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from tests_support import ROOT, edit_card
from timeseg.cli import main

PROGRESS_LINE = r"^\s*\d+% tile \d+ of \d+$"
SEGMENT_FILES = ["classes.qml", "classes.tif", "probability.qml", "probability.tif"]


# --- the workspace ---------------------------------------------------------------------------
@dataclass
class Workspace:
    root: Path
    model: Path
    models: Path  # broken and special models
    inputs: list[Path]  # five dated rasters of 2019 (uint8 true colour, 96 px)
    earlier_inputs: list[Path]  # three of 2016
    results: Path  # earlier results: seg/{probability,classes}.tif, 2016/classes.tif, change.tif(+json)

    @property
    def seg(self) -> Path:
        return self.results / "seg"

    @property
    def before(self) -> Path:
        return self.results / "2016" / "classes.tif"

    @property
    def after(self) -> Path:
        return self.seg / "classes.tif"

    def raster(self, name: str, data: np.ndarray, *, transform=None, crs="like", nodata=0) -> Path:
        """A raster in the inputs folder, on the inputs' grid unless told otherwise."""
        with rasterio.open(self.inputs[0]) as reference:
            profile = dict(driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                           dtype=data.dtype.name, transform=transform or reference.transform,
                           crs=reference.crs if crs == "like" else crs, nodata=nodata)
        path = self.inputs[0].parent / name
        with rasterio.open(path, "w", **profile) as dataset:
            dataset.write(data)
        return path

    def tci(self) -> np.ndarray:
        with rasterio.open(self.inputs[-1]) as dataset:
            return dataset.read()


def snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under ``root``: path -> content hash ('dir' for folders)."""
    return {str(p.relative_to(root)): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def template(tmp_path_factory, local_model):
    """Inputs, models and the results of earlier good runs, made once; each case gets a copy."""
    from timeseg.models.simulator import simulate_scene

    root = tmp_path_factory.mktemp("faults")
    scene = simulate_scene(root / "scene", seed=5, size=96, dates_per_period=5)
    inputs = root / "inputs"
    inputs.mkdir()
    for year in scene.years:
        for path in scene.tci_paths[year][-3 if year == 2016 else -5:]:
            shutil.copy(path, inputs / path.name)
    shutil.rmtree(root / "scene")
    models = root / "models"
    models.mkdir()
    model = models / "roads.onnx"
    shutil.copy(local_model, model)
    (models / "corrupt.onnx").write_bytes(b"\x08\x01garbage")
    edit_card(model, models / "three_classes.onnx", class_names=["background", "road", "track"])
    edit_card(model, models / "zero_std.onnx", standardization_std=[0.0, 0.12, 0.1])
    edit_card(model, models / "wrong_types.onnx", tile_size="big")
    edit_card(model, models / "two_bands.onnx", bands=["B04", "B03"], standardization_mean=[0.3, 0.3],
              standardization_std=[0.1, 0.1])
    edit_card(model, models / "not_segmentation.onnx", model_type="detection")
    edit_card(model, models / "false_colour.onnx", bands=["B08", "B04", "B03"])
    edit_card(model, models / "bad_json.onnx", raw_threshold="{half")
    edit_card(model, models / "float_input.onnx", input_dtype="float32")
    _foreign_model(models / "foreign.onnx")
    results = root / "results"
    rasters_2019 = sorted(inputs.glob("*2019*"))
    rasters_2016 = sorted(inputs.glob("*2016*"))
    for argv in (["segment", "--model", str(model), "--output", str(results / "seg"), *map(str, rasters_2019)],
                 ["segment", "--model", str(model), "--output", str(results / "2016"), *map(str, rasters_2016)],
                 ["change", "--before", str(results / "2016" / "classes.tif"),
                  "--after", str(results / "seg" / "classes.tif"), "--output", str(results / "change.tif")]):
        assert main(argv) == 0
    return root


def _foreign_model(path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    identity = helper.make_model(helper.make_graph(
        [helper.make_node("Identity", ["images"], ["probabilities"])], "g",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, None)]))
    onnx.save(identity, str(path))


@pytest.fixture
def ws(template, tmp_path) -> Workspace:
    root = tmp_path / "ws"
    shutil.copytree(template, root)
    inputs = root / "inputs"
    return Workspace(root, root / "models" / "roads.onnx", root / "models", sorted(inputs.glob("*2019*")),
                     sorted(inputs.glob("*2016*")), root / "results")


def run_cli(argv: list[str], capsys) -> tuple[int, list[str]]:
    """Exit code and the lines on stderr that are not progress."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as stop:  # argparse's usage errors
        code = stop.code
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if line.strip() and not _is_progress(line)]


def _is_progress(line: str) -> bool:
    import re

    return re.match(PROGRESS_LINE, line) is not None or line.startswith("running ")


def assert_refused(code: int, lines: list[str], expected_code: int, message: str) -> None:
    import re

    assert code == expected_code, lines
    assert len(lines) == 1, f"expected one line, got {lines}"
    assert "Traceback" not in lines[0]
    assert re.search(message, lines[0]), lines[0]


# --- command line: segment ------------------------------------------------------------------
def seg(ws: Workspace, *rasters: Path, model: Path | None = None, output: Path | None = None, extra=()) -> list:
    return ["segment", "--model", model or ws.model, "--output", output or ws.seg, *extra,
            *(rasters or ws.inputs)]


def _text_file(ws: Workspace) -> list:
    fake = ws.inputs[0].parent / "S2_SIM_20191231_TCI.tif"
    fake.write_text("not a raster")
    return seg(ws, *ws.inputs[:2], fake)


def _undated(ws: Workspace) -> list:
    return seg(ws, ws.raster("scene.tif", ws.tci()), *ws.inputs[1:])  # no date in its name, no tags


def _mixed_types(ws: Workspace) -> list:
    wide = ws.raster("S2_SIM_20191230_TCI.tif", ws.tci().astype(np.uint16) * 200)
    return seg(ws, *ws.inputs, wide)


def _floats(ws: Workspace) -> list:
    """Float rasters to a model of other bands than true colour: only true-colour models read other data
    types (as reflectance, tests/test_true_colour.py)."""
    floats = (ws.raster(f"F_2019120{i}.tif", ws.tci().astype(np.float32)) for i in range(1, 4))
    return seg(ws, *floats, model=ws.models / "false_colour.onnx")


def _one_band(ws: Workspace) -> list:
    return seg(ws, *(ws.raster(f"G_2019120{i}.tif", ws.tci()[:1]) for i in range(1, 4)))


def _no_crs(ws: Workspace) -> list:
    bare = ws.raster("N_20191230.tif", ws.tci(), crs=None)
    return seg(ws, *ws.inputs[:2], bare)


def _no_crs_first(ws: Workspace) -> list:
    """The earliest date (the outputs' grid) without a CRS: the EPSG offered is the other dates'."""
    bare = ws.raster("N_20190101.tif", ws.tci(), crs=None)
    return seg(ws, bare, *ws.inputs[:2])


def _world_file_only(ws: Workspace) -> list:
    """An EO Browser style picture: placed by a world file, its CRS said nowhere."""
    bare = ws.raster("W_20191230.tif", ws.tci(), crs=None)
    bare.with_suffix(".tfw").write_text("10\n0\n0\n-10\n500005\n1600005\n")
    return seg(ws, *ws.inputs[:2], bare)


def _far_away(ws: Workspace) -> list:
    far = ws.raster("FAR_20191230.tif", ws.tci(), transform=from_origin(100_000, 100_000, 10, 10))
    return seg(ws, *ws.inputs[:2], far)


def _all_nodata(ws: Workspace) -> list:  # left out when enough dates are left (test_a_date_without_data_...)
    empty = ws.raster("E_20191230.tif", np.zeros_like(ws.tci()))
    return seg(ws, ws.inputs[0], empty)


def _all_zero_undeclared(ws: Workspace) -> list:  # a true-colour date wholly beyond its swath, nodata undeclared
    empty = ws.raster("Z_20191230.tif", np.zeros_like(ws.tci()), nodata=None)
    return seg(ws, ws.inputs[0], empty)


def _no_date_with_data(ws: Workspace) -> list:
    empty = [ws.raster(f"E_2019123{day}.tif", np.zeros_like(ws.tci())) for day in (0, 1)]
    return seg(ws, *empty)


def _output_is_a_file(ws: Workspace) -> list:
    blocker = ws.root / "blocker"
    blocker.write_text("")
    return seg(ws, output=blocker / "out")


def _output_holds_an_input(ws: Workspace) -> list:
    named = ws.inputs[0].parent / "probability.tif"
    shutil.copy(ws.inputs[0], named)
    from timeseg.core.dates import date_from_name

    dates = ",".join([*(str(date_from_name(path)) for path in ws.inputs[:2]), "2019-12-31"])
    return seg(ws, *ws.inputs[:2], named, extra=["--dates", dates], output=ws.inputs[0].parent)


def _cut_short(ws: Workspace, keep: float) -> list:
    """The last date copied with only the first ``keep`` of its bytes, as an interrupted download leaves it."""
    data = ws.inputs[-1].read_bytes()
    cut = ws.inputs[0].parent / "CUT_20191231.tif"
    cut.write_bytes(data[: int(len(data) * keep)])
    return seg(ws, *ws.inputs[:3], cut)


def _two_cut_short(ws: Workspace) -> list:
    """Two dates cut short: both named at once, not one per try."""
    cuts = []
    for name, source in (("CUT_20191230.tif", ws.inputs[-2]), ("CUT_20191231.tif", ws.inputs[-1])):
        data = source.read_bytes()
        cuts.append(ws.inputs[0].parent / name)
        cuts[-1].write_bytes(data[: int(len(data) * 0.8)])
    return seg(ws, *ws.inputs[:2], *cuts)


def _reference_elsewhere(ws: Workspace) -> list:
    return seg(ws, *ws.inputs[:3], extra=["--reference", ws.inputs[4]])


def _live_lock(ws: Workspace) -> list:
    (ws.seg / ".timeseg.lock").write_text(f"{os.getppid()} other-run\n")  # pytest's parent: alive
    return seg(ws)


SEGMENT_CASES: dict[str, tuple[Callable[[Workspace], list], int, str]] = {
    "raster missing": (lambda ws: seg(ws, *ws.inputs[:2], ws.root / "S2_20191231.tif"), 1, "raster not found"),
    "text file as raster": (_text_file, 1, "is not a raster GDAL can read"),
    "no date": (_undated, 1, "no date in the name or tags of scene.tif: put its date in its name"),
    "dates count": (lambda ws: seg(ws, extra=["--dates", "2019-01-01,2019-02-01"]), 1,
                    "2 dates for 5 rasters: give one date per raster"),
    "one date for two": (lambda ws: seg(ws, *ws.inputs[:2], extra=["--dates", "2019-01-01"]), 1,
                         "1 date for 2 rasters: give one date per raster"),
    "dates format": (lambda ws: seg(ws, *ws.inputs[:2], extra=["--dates", "2019-01-01,01/02/2019"]), 1,
                     "is not a date like 2019-03-31"),
    "duplicate dates": (lambda ws: seg(ws, *ws.inputs[:2], extra=["--dates", "2019-01-01,2019-01-01"]), 1,
                        "have the same date 2019-01-01: give each date once"),
    "one date": (lambda ws: seg(ws, ws.inputs[0]), 1, "1 date given, the model needs at least 2: add dates"),
    "model missing": (lambda ws: seg(ws, model=ws.root / "nothing.onnx"), 1, "model file not found"),
    "a folder as the model": (lambda ws: seg(ws, model=ws.models), 1,
                              "models is a folder: give the model's .onnx file"),
    "a file name as the output folder": (lambda ws: seg(ws, output=ws.root / "result.tif"), 1,
                                         "the output is a folder \\(for probability.tif and classes.tif\\) and "
                                         "result.tif names a file: give a folder$"),
    "a folder as a raster": (lambda ws: seg(ws, *ws.inputs[:2], ws.results), 1, "results is a folder, not a raster "
                             "or a Sentinel-2 product \\(.SAFE\\): give the raster files in it$"),
    "reference missing": (lambda ws: seg(ws, extra=["--reference", ws.root / "nothing.tif"]), 1,
                          "reference raster not found: .*nothing.tif$"),
    "corrupt model": (lambda ws: seg(ws, model=ws.models / "corrupt.onnx"), 1,
                      "corrupt.onnx is not a readable ONNX model .*: give a model exported by"),
    "foreign model": (lambda ws: seg(ws, model=ws.models / "foreign.onnx"), 1, "no TimeSeg model card"),
    "card classes vs network": (lambda ws: seg(ws, model=ws.models / "three_classes.onnx"), 1,
                                "network gives 1 output channels, its card's 3 classes need 3"),
    "card zero std": (lambda ws: seg(ws, model=ws.models / "zero_std.onnx"), 1,
                      "standardization_std must be above 0 for every band; re-export"),
    "card wrong types": (lambda ws: seg(ws, model=ws.models / "wrong_types.onnx"), 1,
                         "tile_size must be a positive whole number"),
    "card bands vs network": (lambda ws: seg(ws, model=ws.models / "two_bands.onnx"), 1,
                              "the network reads 3 bands, its card names 2"),
    "card model type": (lambda ws: seg(ws, model=ws.models / "not_segmentation.onnx"), 1,
                        "model_type is 'detection', TimeSeg runs 'segmentation' models"),
    "card not JSON": (lambda ws: seg(ws, model=ws.models / "bad_json.onnx"), 1, "'threshold' is not valid JSON"),
    "batch size -1": (lambda ws: seg(ws, extra=["--batch-size", "-1"]), 2, "--batch-size: must be between 1 and 64"),
    "batch size 0": (lambda ws: seg(ws, extra=["--batch-size", "0"]), 2, "--batch-size: must be between 1 and 64"),
    "batch size text": (lambda ws: seg(ws, extra=["--batch-size", "four"]), 2, "'four' is not a whole number"),
    "tile size 8192": (lambda ws: seg(ws, extra=["--tile-size", "8192"]), 2, "must be between 32 and 2048, not 8192"),
    "tile size 8": (lambda ws: seg(ws, extra=["--tile-size", "8"]), 2, "must be between 32 and 2048, not 8"),
    "overlap -1": (lambda ws: seg(ws, extra=["--overlap", "-1"]), 2, "--overlap: must be at least 0"),
    "overlap above tile": (lambda ws: seg(ws, extra=["--overlap", "64"]), 1,
                           "overlap 64 must be below the tile size 64: give a smaller overlap"),
    "threads 0": (lambda ws: seg(ws, extra=["--threads", "0"]), 2, "--threads: must be between 1 and 1024"),
    "max dates below minimum": (lambda ws: seg(ws, extra=["--max-dates", "1"]), 1,
                                "max dates 1 is below the model's minimum of 2: give a larger --max-dates"),
    "max dates with all": (lambda ws: seg(ws, extra=["--max-dates", "2", "--date-selection", "all"]), 1,
                           "contradict each other: choose last or even"),
    "even without max dates": (lambda ws: seg(ws, extra=["--date-selection", "even"]), 1,
                               "date selection 'even' chooses among the dates only with --max-dates N"),
    "device name": (lambda ws: seg(ws, extra=["--device", "gpu"]), 2, "invalid choice: 'gpu'"),
    "cuda without provider": (lambda ws: seg(ws, extra=["--device", "cuda"]), 1,
                              "GPU \\(CUDA\\) was asked for but this onnxruntime has no CUDA provider"),
    # a TCI stretched to 16 bits among TCIs: read as reflectance (a true-colour model), it is far too bright
    "mixed data types": (_mixed_types, 1, "the rasters hold uint16 values up to \\d+ .99th percentile., too bright for "
                                          "Sentinel-2 reflectance"),
    "float rasters, uint8 model": (_floats, 1, "the rasters hold float32 values, the model wants uint8"),
    "one band": (_one_band, 1, "the rasters have 1 band, the model wants 3"),
    "no CRS": (_no_crs, 1, "N_20191230.tif has no coordinate reference system: its pixels are placed but no CRS "
                           "says where; give it its CRS, e.g. gdal_translate -a_srs EPSG:32628 N_20191230.tif "
                           "N_20191230_crs.tif \\(the other dates are in it\\)$"),
    "no CRS, the earliest date": (_no_crs_first, 1, "N_20190101.tif has no coordinate reference system: .*"
                                                    "gdal_translate -a_srs EPSG:32628 N_20190101.tif "
                                                    "N_20190101_crs.tif \\(the other dates are in it\\)$"),
    "world file, no CRS": (_world_file_only, 1, "W_20191230.tif has no coordinate reference system: its world file "
                           "places it but does not say in which CRS; give it the CRS of its export, e.g. "
                           "gdal_translate -a_srs EPSG:3857 W_20191230.tif W_20191230_crs.tif"),
    "no overlap": (_far_away, 1, "FAR_20191230.tif does not overlap S2_SIM_\\d+_TCI.tif, the raster on whose grid "
                   "the dates are read: give dates of one place$"),
    "all nodata date": (_all_nodata, 1, "E_20191230.tif holds no data over the reference raster \\(every pixel is "
                        "nodata\\): 1 date left, the model needs at least 2: add dates$"),
    "all zero date, nodata undeclared": (_all_zero_undeclared, 1, "Z_20191230.tif holds no data over the reference"),
    "no date with data": (_no_date_with_data, 1, "E_20191230.tif, E_20191231.tif hold no data over the reference "
                          "raster \\(every pixel is nodata\\): give dates that cover it$"),
    "output folder is a file": (_output_is_a_file, 1,
                                "cannot create the output folder .*a file is in the way\\): choose another folder$"),
    "output overwrites an input": (_output_holds_an_input, 1, "probability.tif is one of the inputs"),
    "cut short": (lambda ws: _cut_short(ws, 0.8), 1, "CUT_20191231.tif is damaged or cut short: its pixels cannot "
                  "be read \\(.+\\); copy or download it again$"),
    "cut short to its header": (lambda ws: _cut_short(ws, 0.1), 1, "CUT_20191231.tif is damaged or cut short"),
    "two cut short": (_two_cut_short, 1, "CUT_20191230.tif and CUT_20191231.tif are damaged or cut short: their "
                      "pixels cannot be read \\(.+, CUT_20191230.tif\\); copy or download them again$"),
    "reference not used": (_reference_elsewhere, 1,
                           "the reference .* is not one of the dated rasters given: give one of them$"),
    "another run writing": (_live_lock, 1, "another TimeSeg run is writing into .*: wait for it to finish"),
    "no subcommand": (lambda ws: [], 2, "the following arguments are required: command"),
    "an option between the rasters": (lambda ws: seg(ws, ws.inputs[0], extra=[]) + ["--threads", "1", ws.inputs[1]],
                                      2, "unrecognized arguments: .*S2_SIM_\\d+_TCI.tif: give the options before the "
                                      "rasters or after all of them"),
    "unknown option": (lambda ws: seg(ws, extra=["--colour", "red"]), 2, "unrecognized arguments: --colour"),
}


@pytest.mark.parametrize("case", SEGMENT_CASES)
def test_segment_refuses(case, ws, capsys):
    argv_of, expected_code, message = SEGMENT_CASES[case]
    if case == "cuda without provider":
        import onnxruntime

        assert "CUDAExecutionProvider" not in onnxruntime.get_available_providers()  # CI: CPU-only wheel
    argv = argv_of(ws)
    before = snapshot(ws.root)
    code, lines = run_cli(argv, capsys)
    assert_refused(code, lines, expected_code, message)
    assert snapshot(ws.root) == before


# --- command line: change and info ----------------------------------------------------------
def change(ws: Workspace, before: Path | None = None, after: Path | None = None, output: Path | None = None,
           extra=()) -> list:
    return ["change", "--before", before or ws.before, "--after", after or ws.after,
            "--output", output or ws.results / "change.tif", *extra]


def _rgb_before(ws: Workspace) -> list:
    return change(ws, before=ws.inputs[0])


def _crops_vs_roads(ws: Workspace) -> list:
    crops = ws.raster("crops.tif", np.ones((1, 96, 96), np.uint8), nodata=255)
    with rasterio.open(crops, "r+") as dataset:
        dataset.update_tags(class_names="other,meadow,maize")
    return change(ws, before=crops)


def _change_far(ws: Workspace, later_map: bool = False) -> list:
    """A copy of a map (of the earlier period, or the later one with its dates) at another place."""
    with rasterio.open(ws.after if later_map else ws.before) as dataset:
        far = ws.raster("far_classes.tif", dataset.read(), transform=from_origin(100_000, 100_000, 10, 10),
                        nodata=255)
        with rasterio.open(far, "r+") as copy:
            copy.update_tags(**dataset.tags())
    return change(ws, before=far) if not later_map else change(ws, before=far, after=ws.before)


CHANGE_CASES: dict[str, tuple[Callable[[Workspace], list], int, str]] = {
    "output is before": (lambda ws: change(ws, output=ws.before), 1, "is one of the inputs"),
    "output is after": (lambda ws: change(ws, output=ws.after), 1, "is one of the inputs"),
    "output is JSON": (lambda ws: change(ws, output=ws.results / "x.json"), 1,
                       "x.json is the name of the summary or the lines: give the change raster a .tif name"),
    "summary would overwrite an input": (
        lambda ws: change(ws, before=ws.results / "change.json", output=ws.results / "change.tif"), 1,
        "is one of the inputs"),
    "RGB image": (_rgb_before, 1, "has 3 bands of uint8, not a class map: give a classes.tif"),
    "crop map vs road map": (_crops_vs_roads, 1, "inputs/crops.tif holds other, meadow, maize and seg/classes.tif "
                             "holds background, road: compare maps made by the same model"),
    "high 5": (lambda ws: change(ws, extra=["--high", "5"]), 2, "--high: must be between 0 and 1, not 5"),
    "low above high": (lambda ws: change(ws, extra=["--high", "0.5", "--low", "0.7"]), 1,
                       "the lower threshold 0.7 must be below the threshold 0.5"),
    "class not in the maps": (lambda ws: change(ws, extra=["--class", "3"]), 1,
                              "class 3 is not in these maps \\(classes 0 to 1: background, road\\)"),
    "min patch -1": (lambda ws: change(ws, extra=["--min-patch", "-1"]), 2, "--min-patch: must be between 0 and"),
    "before missing": (lambda ws: change(ws, before=ws.results / "nothing.tif"), 1, "raster not found"),
    "no overlap": (_change_far, 1, "inputs/far_classes.tif does not overlap seg/classes.tif: give maps of the same "
                   "place"),
    "another place, periods swapped": (lambda ws: _change_far(ws, later_map=True), 1,
                                       "inputs/far_classes.tif does not overlap 2016/classes.tif: give maps of the "
                                       "same place$"),
    "periods swapped": (lambda ws: change(ws, before=ws.after, after=ws.before), 1,
                        "the earlier map seg/classes.tif is of 2019-\\d\\d-\\d\\d to 2019-\\d\\d-\\d\\d, after the "
                        "later map 2016/classes.tif \\(2016-\\d\\d-\\d\\d to 2016-\\d\\d-\\d\\d\\): swap them$"),
    "one map twice": (lambda ws: change(ws, before=ws.after), 1,
                      "the earlier and the later map are the same file \\(.*seg/classes.tif\\): give the maps of two "
                      "periods$"),
    "another run writing": (
        lambda ws: ((ws.results / ".timeseg.lock").write_text(f"{os.getppid()} x\n"), change(ws))[1], 1,
        "another TimeSeg run is writing into"),
    "info missing model": (lambda ws: ["info", ws.root / "nothing.onnx"], 1, "model file not found"),
    "info corrupt model": (lambda ws: ["info", ws.models / "corrupt.onnx"], 1, "is not a readable ONNX model"),
    "info broken card": (lambda ws: ["info", ws.models / "three_classes.onnx"], 1, "output channels"),
}


@pytest.mark.parametrize("case", CHANGE_CASES)
def test_change_and_info_refuse(case, ws, capsys):
    argv_of, expected_code, message = CHANGE_CASES[case]
    argv = argv_of(ws)
    before = snapshot(ws.root)
    code, lines = run_cli(argv, capsys)
    assert_refused(code, lines, expected_code, message)
    assert snapshot(ws.root) == before


# --- faults of the machine: file-size limit, SIGTERM, a second run, a stale lock ------------
def _timeseg(argv: list, limit_bytes: int | None = None) -> subprocess.Popen:
    def limit() -> None:
        if limit_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.Popen([sys.executable, "-m", "timeseg", *map(str, argv)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=limit, cwd=ROOT)


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip() and not _is_progress(line)]


@pytest.mark.parametrize("command", ["segment", "change"])
def test_file_size_limit_while_writing(command, ws):
    """GDAL's write errors used to pass silently (segment) or end in a segfault (change)."""
    argv = seg(ws) if command == "segment" else change(ws)
    before = snapshot(ws.root)
    limit = 6_000 if command == "segment" else 1_000  # a few blocks, or the header: the write fails part-way
    process = _timeseg(argv, limit_bytes=limit)
    _, stderr = process.communicate(timeout=120)
    lines = _errors(stderr)
    assert process.returncode == 1, stderr
    assert len(lines) == 1 and "File too large" in lines[0] and "raise the file-size limit" in lines[0], lines
    assert snapshot(ws.root) == before


def _run_until_writing(ws, *extra: str) -> tuple[subprocess.Popen, str, dict[str, str]]:
    """A long ``timeseg segment`` (5 dates, 32 px tiles) started and writing: its process, the progress read so
    far, and the workspace as it was before."""
    big = [ws.raster(f"B_2019120{i}.tif", np.tile(ws.tci(), (1, 4, 4))) for i in range(1, 6)]
    argv = seg(ws, *big, extra=["--tile-size", "32", "--overlap", "8", "--batch-size", "1", *extra])
    before = snapshot(ws.root)
    process = _timeseg(argv)
    deadline = time.monotonic() + 60
    seen = ""
    while "tile" not in seen and time.monotonic() < deadline:  # wait until it is writing
        seen += process.stderr.readline()
    return process, seen, before


def test_sigterm_mid_run(ws):
    process, seen, before = _run_until_writing(ws, "--threads", "1")
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, seen + stderr
    assert _errors(stderr) == ["terminated; no output was kept, earlier results are unchanged"]
    assert snapshot(ws.root) == before


def test_an_output_folder_deleted_during_the_run_is_said_to_be_gone(tmp_path):
    """GDAL's error on a run's temporary file whose folder was deleted meanwhile: the folder is named, not the
    temporary file ('.../.probability.tif.14890-a25d0aae.partial: No such file or directory')."""
    from rasterio.errors import RasterioIOError

    from timeseg.core.atomic import one_line

    gone = tmp_path / "gone" / ".probability.tif.14890-a25d0aae.partial"
    assert one_line(RasterioIOError(f"{gone}: No such file or directory")) == (
        f"the output folder {gone.parent} was deleted or moved during the run: nothing of the run was kept; run again")
    gone.parent.mkdir()  # the folder is there: another cause, said as GDAL says it
    assert one_line(RasterioIOError(f"{gone}: No such file or directory")).endswith("No such file or directory")


def test_write_errors_name_the_output_and_say_what_to_do(tmp_path):
    """A temporary file is named by the output it was to become; SQLite's 'disk I/O error' (a GeoPackage under a
    file-size limit, or on a full disk) gets the advice of a full disk (it was told to check the folder)."""
    import errno

    from timeseg.core.atomic import _advice, os_error_message

    partial = tmp_path / ".probability.tif.17770-b69665d0.partial"
    assert os_error_message(OSError(errno.EACCES, "Permission denied"), partial) == (
        f"cannot write {tmp_path / 'probability.tif'} (Permission denied): choose a folder you can write to")
    assert _advice("disk I/O error") == "free some space (or raise the file-size limit) or choose another folder"


@pytest.mark.parametrize("gap_s", [0.05, 0.2])
def test_a_second_ctrl_c_while_the_first_cleans_up_changes_nothing(ws, gap_s):
    """Ctrl-C twice (the impatient analyst): one 'interrupted' line, exit 130, nothing kept (the second raised
    again inside the clean-up and the process aborted, exit 134, in 4 of 5 QA tries at 0.05 s)."""
    process, seen, before = _run_until_writing(ws)
    process.send_signal(signal.SIGINT)
    time.sleep(gap_s)
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, seen + stderr
    assert _errors(stderr) == ["interrupted; no output was kept, earlier results are unchanged"], stderr
    assert snapshot(ws.root) == before


def test_a_rerun_drops_the_statistics_gdal_kept_of_the_maps_it_replaces(ws, capsys):
    """QGIS and gdalinfo -stats keep a map's statistics beside it (.aux.xml): they describe the old pixels, so
    they go with the old map; a refused run keeps both."""
    from osgeo import gdal

    classes = ws.seg / "classes.tif"

    def mean_gdal_reports() -> float:  # computed once, then read from the .aux.xml
        return float(gdal.Info(str(classes), stats=True, format="json")["bands"][0]["mean"])

    def mean() -> float:
        with rasterio.open(classes) as dataset:
            return float(dataset.read(1, masked=True).mean())

    assert mean_gdal_reports() == pytest.approx(mean(), abs=1e-3)
    statistics = ws.seg / "classes.tif.aux.xml"
    kept = statistics.read_bytes()
    code, _ = run_cli(seg(ws, extra=["--tile-size", "8"]), capsys)  # refused: below the smallest tile
    assert code == 2 and statistics.read_bytes() == kept
    earlier_mean = mean()
    code, _ = run_cli(seg(ws, extra=["--threshold", "0.99" if earlier_mean > 0.5 else "0.01"]), capsys)
    assert code == 0 and not statistics.exists()
    assert abs(mean() - earlier_mean) > 0.5  # the old statistics would be wrong
    assert mean_gdal_reports() == pytest.approx(mean(), abs=1e-3)


def test_two_runs_into_one_folder(ws):
    """The first run holds the folder (paused while it writes); the second stops at once; the first
    then finishes intact."""
    big = [ws.raster(f"B_2019120{i}.tif", np.tile(ws.tci(), (1, 3, 3))) for i in range(1, 4)]
    first = _timeseg(seg(ws, *big, extra=["--tile-size", "32", "--overlap", "8", "--threads", "1"]))
    deadline = time.monotonic() + 60
    while not (ws.seg / ".timeseg.lock").exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    first.send_signal(signal.SIGSTOP)
    try:
        second = _timeseg(seg(ws))
        _, second_err = second.communicate(timeout=60)
    finally:
        first.send_signal(signal.SIGCONT)
    _, first_err = first.communicate(timeout=120)
    assert second.returncode == 1 and _errors(second_err)[0].startswith("error: another TimeSeg run is writing")
    assert first.returncode == 0, first_err
    with rasterio.open(ws.seg / "classes.tif") as classes:
        assert classes.shape == (288, 288)  # the first run's result, complete
    assert sorted(p.name for p in ws.seg.iterdir()) == SEGMENT_FILES


def test_a_stale_lock_is_taken_over(ws, capsys):
    dead = subprocess.Popen(["true"])
    dead.wait()
    (ws.seg / ".timeseg.lock").write_text(f"{dead.pid} {dead.pid}-crashed\n")
    # what the killed run left (qgis_process has no SIGTERM handler), and another run's file, kept
    (ws.seg / f".probability.tif.{dead.pid}-crashed.partial").write_bytes(bytes(1000))
    (ws.seg / f".probability.tif.{dead.pid}-crashed.partial.aux.xml").write_text("<PAMDataset/>")
    (ws.seg / ".notes.txt.1-other.partial").write_text("not the crashed run's")
    code, lines = run_cli(seg(ws, *ws.inputs[:3]), capsys)
    assert code == 0 and lines == [], lines
    assert sorted(p.name for p in ws.seg.iterdir()) == sorted([*SEGMENT_FILES, ".notes.txt.1-other.partial"])


def test_a_stale_lock_taken_over_by_two_runs_at_once_goes_to_one(tmp_path, monkeypatch):
    """Runs A and B both find one stale lock; A takes it over first. B, which read the stale lock before A's
    came, must not remove A's (it unlinked it by name: both wrote into the folder, 2 of 10 QA rounds)."""
    from timeseg.core.atomic import LOCK_NAME, OutputError, _FolderLock

    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = f"{dead.pid} {dead.pid}-crashed\n"
    (tmp_path / LOCK_NAME).write_text(stale)
    first = _FolderLock(tmp_path, "a-run")  # A took it over
    assert (tmp_path / LOCK_NAME).read_text().split()[1] == "a-run"
    reads = iter([stale])  # B's first read of the lock saw the stale one, before A's was made
    real_read_text = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: next(reads, None) or real_read_text(self, *a, **k))
    with pytest.raises(OutputError, match="another TimeSeg run is writing into"):
        _FolderLock(tmp_path, "b-run")
    monkeypatch.undo()
    assert (tmp_path / LOCK_NAME).read_text().split()[1] == "a-run"  # A's lock, given back
    assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK_NAME]
    first.release()


def test_what_a_stopped_batchs_workers_left_goes_and_a_live_runs_lock_stays(tmp_path):
    """A batch's local workers killed mid-task (Ctrl-C to the terminal's process group) leave locks and partial
    files in their task folders: removed once the cluster is closed (they stayed until a rerun); a live run's stay."""
    from timeseg.core.atomic import LOCK_NAME, remove_stale_locks

    dead = subprocess.Popen(["true"])
    dead.wait()
    stopped, running = tmp_path / "alpha" / "2016", tmp_path / "beta" / "2019"
    for folder, pid in ((stopped, dead.pid), (running, os.getpid())):
        folder.mkdir(parents=True)
        (folder / LOCK_NAME).write_text(f"{pid} {pid}-run\n")
        (folder / f".classes.tif.{pid}-run.partial").write_bytes(bytes(10))
    remove_stale_locks(tmp_path)
    assert list(stopped.iterdir()) == []
    assert sorted(p.name for p in running.iterdir()) == [f".classes.tif.{os.getpid()}-run.partial", LOCK_NAME]


# --- the Python API ---------------------------------------------------------------------------
def _request(ws: Workspace, **changes):
    from timeseg.core.dates import dated_rasters
    from timeseg.core.segment import SegmentRequest

    return SegmentRequest(dated_rasters(ws.inputs), ws.model, **{"output_dir": ws.seg, **changes})


API_CASES: dict[str, tuple[Callable[[Workspace], dict], str]] = {
    "same path for both outputs": (lambda ws: dict(probability_path=ws.seg / "x.tif", classes_path=ws.seg / "x.tif"),
                                   "is given for two outputs: give each output its own name"),
    "output is an input": (lambda ws: dict(probability_path=ws.inputs[0]), "is one of the inputs"),
    "output is a folder": (lambda ws: dict(classes_path=ws.results), "is a folder: give a file name"),
    "batch size 0": (lambda ws: dict(batch_size=0), "the batch size must be between 1 and 64, not 0"),
    "batch size text": (lambda ws: dict(batch_size="4"), "the batch size must be a whole number, not '4'"),
    "tile size huge": (lambda ws: dict(tile_size=100_000), "the tile size must be between 32 and 2048"),
    "device": (lambda ws: dict(device="gpu"), "--device must be one of auto, cpu, cuda, not 'gpu'"),
    "date selection": (lambda ws: dict(date_selection="first"), "must be one of auto, all, last, even"),
    "threads": (lambda ws: dict(threads=-2), "the number of threads must be between 1 and 1024"),
    "no output": (lambda ws: dict(output_dir=None), "give an output folder \\(or both output files\\)"),
}


@pytest.mark.parametrize("case", API_CASES)
def test_api_refuses(case, ws):
    from timeseg.core.segment import SegmentError, segment

    changes_of, message = API_CASES[case]
    request = _request(ws, **changes_of(ws))
    before = snapshot(ws.root)
    with pytest.raises(SegmentError, match=message):
        segment(request)
    assert snapshot(ws.root) == before


def test_api_cancel_keeps_earlier_results(ws):
    from timeseg.core.segment import Cancelled, segment

    calls = []
    request = _request(ws, tile_size=32, overlap=8, cancelled=lambda: calls.append(1) or len(calls) > 3)
    before = snapshot(ws.root)
    with pytest.raises(Cancelled):
        segment(request)
    assert snapshot(ws.root) == before


def test_api_write_failure_of_the_second_output(ws, monkeypatch):
    """The classes file fails to write: neither output is kept, the earlier pair stays."""
    from timeseg.core import outputs
    from timeseg.core.atomic import OutputError
    from timeseg.core.segment import segment

    original = outputs.GeoTiffWriter.write

    def failing(self, data, window):
        if "classes" in self.path.name:
            raise OutputError("cannot write classes.tif (No space left on device): free some space")
        original(self, data, window)

    monkeypatch.setattr(outputs.GeoTiffWriter, "write", failing)
    before = snapshot(ws.root)
    with pytest.raises(OutputError, match="No space left"):
        segment(_request(ws))
    assert snapshot(ws.root) == before


def test_api_failure_between_the_two_renames(ws, monkeypatch):
    """The outputs of a run are committed together: a failed second rename puts the earlier pair back."""
    from timeseg.core import atomic
    from timeseg.core.segment import segment

    renames = []
    real_replace = os.replace

    def flaky(source, target):
        renames.append(Path(target).name)
        if Path(source).name.endswith(".partial") and Path(target).name == "classes.tif":
            raise OSError(28, "No space left on device", str(target))
        real_replace(source, target)

    monkeypatch.setattr(atomic.os, "replace", flaky)
    before = snapshot(ws.root)
    with pytest.raises(atomic.OutputError, match="No space left on device"):
        segment(_request(ws))
    assert "probability.tif" in renames  # the first output had been renamed, and was taken back
    assert snapshot(ws.root) == before


def test_api_change_over_its_own_input(ws):
    from timeseg.core.change import ChangeError, compute_change

    before = snapshot(ws.root)
    with pytest.raises(ChangeError, match="is one of the inputs"):
        compute_change(ws.before, ws.after, ws.after)
    assert snapshot(ws.root) == before


# --- NaN, inf and nodata; tiles without data ------------------------------------------------
def test_nan_and_inf_are_masked_not_spread(ws):
    """Float rasters with a NaN patch in every date, inf in one date and nodata=NaN declared: the
    patch is nodata in both outputs, nothing else is."""
    from timeseg.core.dates import dated_rasters
    from timeseg.core.segment import SegmentRequest, segment

    paths = []
    for index, source in enumerate(ws.inputs[:3]):
        with rasterio.open(source) as dataset:
            data = dataset.read().astype(np.float32)
        data[:, 40:60, 40:60] = np.nan  # 400 bad pixels in every date
        if index == 1:
            data[:, 10:20, 10:20] = np.inf  # bad in one date only: the others still see it
        paths.append(ws.raster(f"NAN_2019120{index + 1}.tif", data, nodata=np.nan))
    result = segment(SegmentRequest(dated_rasters(paths), ws.models / "float_input.onnx", ws.root / "nan"))
    with rasterio.open(result.probability_path) as probability, rasterio.open(result.classes_path) as classes:
        p, c = probability.read(1), classes.read(1)
    bad = np.zeros(p.shape, bool)
    bad[40:60, 40:60] = True
    assert np.isnan(p[bad]).all() and (c[bad] == 255).all()
    assert np.isfinite(p[~bad]).all() and (c[~bad] != 255).all()


@pytest.mark.parametrize("nodata", [0, None])  # declared, or not (some Sentinel-2 files do not declare theirs)
def test_tiles_without_data_are_skipped(ws, nodata):
    from timeseg.core.dates import dated_rasters
    from timeseg.core.segment import SegmentRequest, segment

    paths = []
    for index, source in enumerate(ws.inputs[:2]):
        with rasterio.open(source) as dataset:
            data = np.zeros((3, 288, 288), np.uint8)
            data[:, :96, :96] = np.maximum(dataset.read(), 1)  # data only in the top-left corner
        paths.append(ws.raster(f"CORNER_2019120{index + 1}.tif", data, nodata=nodata))
    result = segment(SegmentRequest(dated_rasters(paths), ws.model, ws.root / f"corner_{nodata}", tile_size=64,
                                    overlap=32))
    assert result.tiles_total == 64 and result.tiles_run == 9  # tiles start every 32 px; 3 x 3 touch the corner
    with rasterio.open(result.classes_path) as classes:
        c = classes.read(1)
    from timeseg.core.segment import white_on_every_date

    corner = np.stack([rasterio.open(path).read(window=rasterio.windows.Window(0, 0, 96, 96)) for path in paths])
    clouded = white_on_every_date(corner, corner.any(axis=1))  # the simulator's clouds, over both dates there
    assert (c[:96, :96][~clouded] != 255).all() and (c[96:, :] == 255).all() and (c[:, 96:] == 255).all()


@pytest.mark.parametrize("nodata", [0, None])
def test_a_date_without_data_is_left_out_with_a_warning(ws, capsys, nodata):
    """A date wholly beyond its swath among dates with data: the run leaves it out, says so in one
    warning line, and writes what the other dates alone give, dated by them."""
    empty = ws.raster("E_20191215.tif", np.zeros_like(ws.tci()), nodata=nodata)
    code = main(["segment", "--model", str(ws.model), "--output", str(ws.root / "with"),
                 *map(str, [*ws.inputs[:2], empty, ws.inputs[2]])])
    err = capsys.readouterr().err
    assert code == 0
    assert "warning: E_20191215.tif holds no data over the reference raster (every pixel is nodata): left out, " \
        "the model runs on the 3 dates left" in err
    assert main(["segment", "--model", str(ws.model), "--output", str(ws.root / "without"),
                 *map(str, ws.inputs[:3])]) == 0
    for name in ("probability.tif", "classes.tif"):
        with rasterio.open(ws.root / "with" / name) as kept, rasterio.open(ws.root / "without" / name) as alone:
            assert np.array_equal(kept.read(), alone.read(), equal_nan=True)
            assert kept.tags()["dates"] == alone.tags()["dates"] and "2019-12-15" not in kept.tags()["dates"]


# --- Processing (the provider fixture: conftest) ---------------------------------------------

def _segment_parameters(ws: Workspace, **changes) -> dict:
    return {"INPUT": [str(p) for p in ws.inputs], "MODEL": str(ws.model), "DEVICE": 1,
            "OUTPUT_PROBABILITY": str(ws.seg / "probability.tif"), "OUTPUT_CLASSES": str(ws.seg / "classes.tif"),
            **changes}


PROCESSING_CASES: dict[str, tuple[str, Callable[[Workspace], dict], str]] = {
    "same path for both outputs": ("timeseg:segment", lambda ws: _segment_parameters(
        ws, OUTPUT_CLASSES=str(ws.seg / "probability.tif")), "is given for two outputs"),
    "output is an input": ("timeseg:segment", lambda ws: _segment_parameters(
        ws, OUTPUT_PROBABILITY=str(ws.inputs[0])), "is one of the inputs"),
    "broken card": ("timeseg:segment", lambda ws: _segment_parameters(
        ws, MODEL=str(ws.models / "zero_std.onnx")), "standardization_std must be above 0"),
    "tile size too large": ("timeseg:segment", lambda ws: _segment_parameters(ws, TILE_SIZE=8192),
                            "the tile size must be between 32 and 2048"),
    "change over its input": ("timeseg:change", lambda ws: {
        "BEFORE": str(ws.before), "AFTER": str(ws.after), "OUTPUT": str(ws.before)}, "is one of the inputs"),
    "change of an RGB image": ("timeseg:change", lambda ws: {
        "BEFORE": str(ws.inputs[0]), "AFTER": str(ws.after), "OUTPUT": str(ws.results / "change.tif")},
        "not a class map"),
}


@pytest.mark.parametrize("case", PROCESSING_CASES)
def test_processing_refuses(case, ws, provider):
    import processing
    from qgis.core import QgsProcessingException

    algorithm, parameters_of, message = PROCESSING_CASES[case]
    parameters = parameters_of(ws)
    before = snapshot(ws.root)
    with pytest.raises(QgsProcessingException, match=message):
        processing.run(algorithm, parameters)
    assert snapshot(ws.root) == before


@pytest.mark.parametrize("units_per_pixel", [20, 10])
def test_web_mercator_rasters_are_measured_on_the_ground(ws, capsys, units_per_pixel):
    """EPSG:3857 at 60 degrees north, where a ground metre is 2 of its units: 20-unit pixels are 10 m and
    run as they are; 10-unit pixels are 5 m and are resampled to 10 m, 20 units."""
    from rasterio.warp import transform as transform_points

    xs, ys = transform_points("EPSG:4326", "EPSG:3857", [11.0], [60.0])
    stack = [ws.raster(f"M_2019120{i}.tif", ws.tci(), crs="EPSG:3857",
                       transform=from_origin(xs[0], ys[0], units_per_pixel, units_per_pixel)) for i in range(1, 3)]
    output = ws.root / f"mercator_{units_per_pixel}"
    assert main(["segment", "--model", str(ws.model), "--output", str(output), *map(str, stack)]) == 0
    resampled = "warning: the rasters are at 5 m per pixel, the model works at 10 m: they are resampled to 10 m"
    assert (resampled in capsys.readouterr().err) == (units_per_pixel == 10)
    with rasterio.open(output / "classes.tif") as classes:
        assert classes.res == pytest.approx((20.0, 20.0), rel=0.001)  # 10 m on the ground at the centre
        assert classes.shape == ((96, 96) if units_per_pixel == 20 else (48, 48))


def test_each_date_at_another_resolution_is_named(ws, capsys):
    """A 20 m date among 10 m ones is resampled onto the 10 m grid and named; a 20 m reference (the earliest
    date) is named as the reference, not as all the rasters."""
    with rasterio.open(ws.inputs[0]) as reference:
        left, top = reference.transform.c, reference.transform.f
    coarse = ws.raster("C_20191230.tif", ws.tci()[:, ::2, ::2], transform=from_origin(left, top, 20, 20))
    early = ws.raster("C_20190101.tif", ws.tci()[:, ::2, ::2], transform=from_origin(left, top, 20, 20))
    shifted = ws.raster("C_20191231.tif", ws.tci(), transform=from_origin(left + 5, top, 10, 10))  # half a pixel
    moved = ws.raster("C_20191229.tif", ws.tci(), transform=from_origin(left + 300, top, 10, 10))  # 30 pixels
    for rasters, expected in (
            ([*ws.inputs[:2], moved], f"warning: C_20191229.tif covers another extent than {ws.inputs[0].name}: its "
                                      "pixels are read as they are, and where it has none the other dates make the "
                                      f"map; 31% of it lies beyond {ws.inputs[0].name} and is not mapped (the outputs "
                                      "take the grid of the earliest date, or of --reference: give --reference "
                                      "C_20191229.tif to map it)"),
            ([*ws.inputs[:2], shifted], f"warning: C_20191231.tif is not on the grid of {ws.inputs[0].name} "
                                        "(another CRS, pixel size, or pixels offset): it is resampled onto it"),
            ([*ws.inputs[:2], coarse], "warning: C_20191230.tif is at 20 m per pixel: it is resampled to the "
                                       "outputs' 10 m"),
            ([early, *ws.inputs[:2]], "warning: C_20190101.tif (the reference) is at 20 m per pixel, the model "
                                      "works at 10 m: they are resampled to 10 m and the outputs are on that grid "
                                      "(roads narrower than their pixels mostly vanish: expect far fewer found)")):
        output = ws.root / f"mixed_{len(expected)}"
        assert main(["segment", "--model", str(ws.model), "--output", str(output), *map(str, rasters)]) == 0
        warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: C_")]
        assert warnings == [expected]
        with rasterio.open(output / "classes.tif") as classes:
            assert classes.res == (10.0, 10.0)


def test_a_date_whose_pixels_differ_by_float_rounding_is_read_as_it_is(ws, capsys):
    """gdalwarp writes 10 m pixels as 10.000000000000002 m: the same grid, read without a warp or a warning,
    and the map is the one of the exact copy."""
    with rasterio.open(ws.inputs[0]) as reference:
        left, top = reference.transform.c, reference.transform.f
    rounded = ws.raster("R_20191229.tif", ws.tci(), transform=rasterio.Affine(
        10.000000000000002, 0, left, 0, -10.000000000000002, top))
    exact = ws.raster("E_20191229.tif", ws.tci(), transform=from_origin(left, top, 10, 10))
    for name, third in (("rounded", rounded), ("exact", exact)):
        assert main(["segment", "--model", str(ws.model), "--output", str(ws.root / name),
                     *map(str, [*ws.inputs[:2], third])]) == 0
        assert "warning" not in capsys.readouterr().err
    with rasterio.open(ws.root / "rounded" / "probability.tif") as a, rasterio.open(
            ws.root / "exact" / "probability.tif") as b:
        assert np.array_equal(a.read(), b.read(), equal_nan=True)


def test_a_jpeg_compressed_date_is_said_to_blur_roads(ws, capsys):
    """Lossy compression (a JPEG-compressed GeoTIFF): run, with a warning that says what it costs and what to give."""
    with rasterio.open(ws.inputs[0]) as source:
        profile, data = source.profile, source.read()
    lossy = ws.inputs[0].parent / "J_20191229.tif"
    with rasterio.open(lossy, "w", **(profile | {"compress": "jpeg", "photometric": "ycbcr", "tiled": True,
                                                 "blockxsize": 64, "blockysize": 64, "nodata": None})) as target:
        target.write(data)
    assert main(["segment", "--model", str(ws.model), "--output", str(ws.root / "jpeg"), *map(str, ws.inputs[1:3]),
                 str(lossy)]) == 0
    assert ("warning: J_20191229.tif is stored with lossy compression (JPEG): it blurs roads one or two pixels wide"
            ) in capsys.readouterr().err


def test_lossy_jpeg_2000_and_geopackage_tiles_are_told_from_lossless_ones(ws, tmp_path):
    """A JPEG 2000 not compressed reversibly and a GeoPackage of JPEG tiles (GDAL's defaults for both) are lossy
    (a QA run: road IoU 0.93 and 0.72 against the lossless file, without a word), and one of colour-quantised PNG
    tiles (PNG8: IoU 0.84); their lossless forms are not."""
    from osgeo import gdal

    from timeseg.core.raster_stack import lossy_storage

    source = str(ws.inputs[0])
    copies = {"lossy.jp2": ("JP2OpenJPEG", ["QUALITY=25"]), "lossless.jp2": ("JP2OpenJPEG", ["REVERSIBLE=YES",
                                                                                             "QUALITY=100"]),
              "jpeg.gpkg": ("GPKG", ["TILE_FORMAT=JPEG"]), "png.gpkg": ("GPKG", ["TILE_FORMAT=PNG"]),
              "jpeg.tif": ("GTiff", ["COMPRESS=JPEG"]), "deflate.tif": ("GTiff", ["COMPRESS=DEFLATE"]),
              "lossless_webp.tif": ("GTiff", ["COMPRESS=WEBP", "WEBP_LOSSLESS=YES"]),
              "lossy_webp.tif": ("GTiff", ["COMPRESS=WEBP"])}
    found = {}
    for name, (driver, options) in copies.items():
        assert gdal.Translate(str(tmp_path / name), source, format=driver, creationOptions=options) is not None
        with rasterio.open(tmp_path / name) as dataset:
            found[name] = lossy_storage(dataset)
    # GDAL quantises the tiles that the image fills (its edge tiles, partly transparent, stay RGBA): 600 px
    assert gdal.Translate(str(tmp_path / "png8.gpkg"), source, format="GPKG", width=600, height=600,
                          creationOptions=["TILE_FORMAT=PNG8"]) is not None
    with rasterio.open(tmp_path / "png8.gpkg") as dataset:
        found["png8.gpkg"] = lossy_storage(dataset)
    with rasterio.open(f"GPKG:{tmp_path / 'jpeg.gpkg'}:jpeg") as table:  # a table named, as GDAL names it
        found["GPKG:jpeg.gpkg:jpeg"] = lossy_storage(table)
    assert found == {"lossy.jp2": "JPEG 2000", "lossless.jp2": "", "jpeg.gpkg": "JPEG", "png.gpkg": "",
                     "png8.gpkg": "PNG of 256 colours",
                     "jpeg.tif": "JPEG", "deflate.tif": "", "lossless_webp.tif": "", "lossy_webp.tif": "WebP",
                     "GPKG:jpeg.gpkg:jpeg": "JPEG"}


def test_rasters_inside_a_zip_or_a_geopackage_run_as_the_files_do(ws, tmp_path, capsys):
    """A raster inside a zip as GDAL and QGIS name it (/vsizip//tmp/a.zip/b.tif: pathlib cut it to a relative
    path, "raster not found") and a GeoPackage's raster table (GPKG:a.gpkg:table: "raster not found") give the
    map the files give."""
    import zipfile

    from osgeo import gdal

    with zipfile.ZipFile(tmp_path / "download.zip", "w") as archive:
        archive.write(ws.inputs[0], ws.inputs[0].name)
    gpkg = tmp_path / "dates.gpkg"
    for path in ws.inputs[1:3]:
        gdal.Translate(str(gpkg), str(path), format="GPKG", creationOptions=[f"RASTER_TABLE={path.stem}",
                                                                           "APPEND_SUBDATASET=YES", "TILE_FORMAT=PNG"])
    inside = [f"/vsizip/{tmp_path / 'download.zip'}/{ws.inputs[0].name}",
              *(f"GPKG:{gpkg}:{path.stem}" for path in ws.inputs[1:3])]
    assert inside[0].startswith("/vsizip//")
    for name, rasters in (("inside", inside), ("files", map(str, ws.inputs[:3]))):
        assert main(["segment", "--model", str(ws.model), "--output", str(tmp_path / name), *rasters]) == 0, \
            capsys.readouterr().err
    with rasterio.open(tmp_path / "inside" / "classes.tif") as a, \
            rasterio.open(tmp_path / "files" / "classes.tif") as b:
        assert np.array_equal(a.read(), b.read()) and a.transform == b.transform
    # the GeoPackage itself holds two rasters: which one is asked for (it was "tuple index out of range")
    assert main(["segment", "--model", str(ws.model), "--output", str(tmp_path / "whole"), "--dates",
                 "2019-12-19", str(gpkg)]) == 1
    assert (f"error: dates.gpkg holds 2 rasters: give one of them as GDAL names it (GPKG:{gpkg}:"
            in capsys.readouterr().err)


def test_a_paletted_picture_and_one_placed_by_ground_control_points_are_told_what_to_do(ws, tmp_path, capsys):
    """A paletted picture (one band of colour indexes) is told to expand its colours; a picture placed only by
    ground control points (no CRS of its own) to be warped (both were told only the band count, or to georeference
    it)."""
    from osgeo import gdal

    source = str(ws.inputs[0])
    paletted = tmp_path / "paletted_20191229.tif"
    gdal.Translate(str(paletted), gdal.Translate("/vsimem/p.tif", source, bandList=[1]), format="GTiff")
    with rasterio.open(paletted, "r+") as dataset:
        dataset.write_colormap(1, {value: (value, 255 - value, 0, 255) for value in range(256)})
    placed = tmp_path / "gcps_20191229.tif"
    from rasterio.control import GroundControlPoint

    with rasterio.open(source) as dataset:
        data, crs, transform = dataset.read(), dataset.crs, dataset.transform
    with rasterio.open(placed, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=3,
                       dtype="uint8") as dataset:
        dataset.write(data)
    with rasterio.open(placed, "r+") as dataset:
        rows_cols = [(0, 0), (0, data.shape[2]), (data.shape[1], 0), (data.shape[1], data.shape[2])]
        dataset.gcps = ([GroundControlPoint(row, col, *(transform * (col, row))) for row, col in rows_cols], crs)
    with rasterio.open(placed) as dataset:
        assert dataset.gcps[0] and dataset.crs is None
    for path, words in ((paletted, "a paletted picture: expand its colours first (gdal_translate -expand rgb IN "
                                   "OUT.tif)"),
                        (placed, "gcps_20191229.tif is placed by ground control points only: warp it onto a grid "
                                 "first, e.g. gdalwarp gcps_20191229.tif gcps_20191229_warped.tif")):
        assert main(["segment", "--model", str(ws.model), "--output", str(tmp_path / path.stem), str(path)]) == 1
        assert words in capsys.readouterr().err


def test_coarser_rasters_are_resampled_with_a_warning(ws, capsys):
    """60 m rasters on a 10 m model: resampled to 10 m over the same extent, said in one warning line."""
    small = ws.tci()[:, ::6, ::6]
    with rasterio.open(ws.inputs[0]) as reference:
        left, top = reference.transform.c, reference.transform.f
    coarse = [ws.raster(f"C_2019120{i}.tif", small, transform=from_origin(left, top, 60, 60)) for i in range(1, 4)]
    code = main(["segment", "--model", str(ws.model), "--output", str(ws.root / "coarse"), *map(str, coarse)])
    err = capsys.readouterr().err
    assert code == 0 and "warning: the rasters are at 60 m per pixel, the model works at 10 m: they are " \
        "resampled to 10 m and the outputs are on that grid (roads narrower than their pixels mostly vanish" in err
    with rasterio.open(ws.root / "coarse" / "classes.tif") as classes:
        assert classes.res == (10.0, 10.0) and classes.shape == (96, 96)
        assert (classes.transform.c, classes.transform.f) == (left, top)

