"""``timeseg batch`` on a dask LocalCluster of two worker processes: places, periods, changes, a place
that fails alone, a rerun that skips what is complete; and ``timeseg:batch`` through Processing."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from timeseg.cli import main


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    """Two simulated places of two periods (3 dates each) and a place whose second raster is broken."""
    from timeseg.models.simulator import simulate_scene

    root = tmp_path_factory.mktemp("batch")
    rows = ["place,period,path"]
    for place, seed in (("coast_a", 11), ("coast_b", 12)):
        scene = simulate_scene(root / place, seed=seed, size=64, dates_per_period=3)
        for year in scene.years:
            rows += [f"{place},{year},{path.relative_to(root)}" for path in scene.tci_paths[year]]
    (root / "broken_20190301.tif").write_text("not a raster")
    good = rows[1].split(",")[2]
    rows += [f"coast_c,2019,{good}", "coast_c,2019,broken_20190301.tif"]
    (root / "jobs.csv").write_text("\n".join(rows) + "\n")
    return root


def run_batch(places, local_model, output, capsys, *options: str) -> tuple[int, list[str], dict]:
    """Exit code, the lines of stderr then stdout (a line per place), and batch.json."""
    code = main(["batch", "--model", str(local_model), "--output", str(output), "--workers", "2",
                 "--device", "cpu", *options, str(places / "jobs.csv")])
    captured = capsys.readouterr()
    lines = captured.err.splitlines() + captured.out.splitlines()
    return code, lines, json.loads((output / "batch.json").read_text())


def test_batch_on_a_local_cluster(places, local_model, tmp_path, capsys):
    output = tmp_path / "out"
    code, lines, summary = run_batch(places, local_model, output, capsys)
    # one place failed, alone; the command says so in its last line and exits 1
    failure = next(line for line in lines if line.startswith("error: "))
    assert code == 1 and failure.startswith("error: 1 task failed, the others are done")
    assert "coast_c 2019: is not a raster" not in failure and "broken_20190301.tif is not a raster" in failure
    assert any(line.startswith("dask dashboard: http://") for line in lines)
    assert any("2/3 places done" in line or "3/3 places done" in line for line in lines)
    assert summary["workers"] == 2
    assert [f["place"] for f in summary["failed"]] == ["coast_c"]
    for place in ("coast_a", "coast_b"):
        report = summary["places"][place]
        assert not report["failed"] and set(report["periods"]) == {"2016", "2019"}
        assert set(report["changes"]) == {"change_2016_2019"}
        change = report["changes"]["change_2016_2019"]
        assert report["new_km"] == change["new_km"] >= 0
        for period in ("2016", "2019"):
            assert (output / place / period / "probability.tif").is_file()
        with rasterio.open(output / place / "change_2016_2019.tif") as dataset:
            codes = dataset.read(1)
        assert set(np.unique(codes)) <= {0, 1, 2, 255}
        assert int((codes == 1).sum()) == change["new_pixels"]
    assert not (output / "coast_c").exists() or not list((output / "coast_c").rglob("*.tif"))
    # a place without a change map has no length of change, not 0 km
    assert summary["places"]["coast_c"]["new_km"] is None and summary["places"]["coast_c"]["removed_km"] is None
    assert "coast_c: FAILED; no change map" in lines
    assert summary["class"] == "road"  # the class the change maps follow, in each place's line
    assert f"coast_a: ok; road lines new {summary['places']['coast_a']['new_km']:.2f} km, removed " \
        f"{summary['places']['coast_a']['removed_km']:.2f} km" in lines
    assert summary["new_km"] == pytest.approx(sum(summary["places"][p]["new_km"] for p in ("coast_a", "coast_b")))
    assert summary["removed_km"] == pytest.approx(sum(summary["places"][p]["removed_km"]
                                                      for p in ("coast_a", "coast_b")))
    # the worker's result is the engine's: the same pixels as timeseg segment on the same rasters
    rasters = sorted((places / "coast_a").glob("2019/*_TCI.tif"))
    assert main(["segment", "--model", str(local_model), "--output", str(tmp_path / "direct"), "--device", "cpu",
                 *map(str, rasters)]) == 0
    with rasterio.open(output / "coast_a" / "2019" / "classes.tif") as batch, \
            rasterio.open(tmp_path / "direct" / "classes.tif") as direct:
        assert np.array_equal(batch.read(), direct.read()) and batch.transform == direct.transform

    # a rerun skips every complete task and redoes only what is missing
    shutil.rmtree(output / "coast_b" / "2019")
    stamps = {p: p.stat().st_mtime_ns for p in (output / "coast_a").rglob("*.tif")}
    code, _, again = run_batch(places, local_model, output, capsys)
    assert code == 1 and [f["place"] for f in again["failed"]] == ["coast_c"]
    assert again["skipped"] == 4  # coast_a: both periods and the change; coast_b: 2016
    assert again["places"]["coast_b"]["periods"]["2019"]["skipped"] is False
    assert again["places"]["coast_b"]["changes"]["change_2016_2019"]["skipped"] is False
    assert {p: p.stat().st_mtime_ns for p in (output / "coast_a").rglob("*.tif")} == stamps
    assert again["places"]["coast_b"]["new_km"] == summary["places"]["coast_b"]["new_km"]
    # other change options: the periods are kept, every change map is made again
    code, _, third = run_batch(places, local_model, output, capsys, "--tolerance", "0")
    for place in ("coast_a", "coast_b"):
        assert all(period["skipped"] for period in third["places"][place]["periods"].values())
        assert third["places"][place]["changes"]["change_2016_2019"]["skipped"] is False
    # another precision: the maps are made again (the default is what ran above)
    code, _, fourth = run_batch(places, local_model, output, capsys, "--precision", "fp32")
    assert not any(period["skipped"] for period in fourth["places"]["coast_a"]["periods"].values())
    # more views averaged (--scales 3): made again, each period the engine's map with the same views; a rerun
    # with them finds them done
    code, _, fifth = run_batch(places, local_model, output, capsys, "--precision", "fp32", "--scales", "3")
    assert not any(period["skipped"] for period in fifth["places"]["coast_a"]["periods"].values())
    assert main(["segment", "--model", str(local_model), "--output", str(tmp_path / "scaled"), "--device", "cpu",
                 "--precision", "fp32", "--scales", "3", *map(str, rasters)]) == 0
    with rasterio.open(output / "coast_a" / "2019" / "probability.tif") as batch, \
            rasterio.open(tmp_path / "scaled" / "probability.tif") as direct, \
            rasterio.open(tmp_path / "direct" / "probability.tif") as one_scale:
        scaled = batch.read()  # the engine's within float rounding (other thread counts); the test model is flat
        assert np.abs(scaled - direct.read()).max() < 1e-4 and np.abs(scaled - one_scale.read()).max() > 1e-5
    code, _, sixth = run_batch(places, local_model, output, capsys, "--precision", "fp32", "--scales", "3")
    assert all(period["skipped"] for period in sixth["places"]["coast_a"]["periods"].values())


def test_bad_job_lists_are_refused_in_one_line(places, local_model, tmp_path, capsys):
    cases = {
        "place,date,file\na,2019,x.tif\n": "lacks the columns period, path: give a CSV with the header",
        "place,period,path\n../up,2019,x.tif\n": "place '../up' cannot be a folder name",
        "place,period,path\n": "lists no rasters",
    }
    code = main(["batch", "--model", str(local_model), "--output", str(tmp_path / "out"), str(tmp_path)])
    assert code == 1 and f"{tmp_path} is a folder: give the job list" in capsys.readouterr().err
    for text, message in cases.items():
        jobs = tmp_path / "jobs.csv"
        jobs.write_text(text)
        code = main(["batch", "--model", str(local_model), "--output", str(tmp_path / "out"), str(jobs)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 1 and len(err) == 1 and message in err[0], err
    code = main(["batch", "--model", str(local_model), "--output", str(tmp_path / "out"), "--scheduler",
                 "10.0.0.5:8786", str(places / "jobs.csv")])
    assert code == 1 and "is not an address like tcp://HOST:8786" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    # a batch writing into the folder already (its lock, of a live process): refused at once (both ran to the end,
    # and both failed on each other's tasks)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / ".timeseg.lock").write_text(f"{os.getpid()} another-run\n")
    code = main(["batch", "--model", str(local_model), "--output", str(tmp_path / "busy"), str(places / "jobs.csv")])
    assert code == 1 and f"another TimeSeg run is writing into {tmp_path / 'busy'}" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "busy").iterdir()) == [".timeseg.lock"]
    # --workers sizes only the local cluster: with a scheduler it was ignored without a word
    code = main(["batch", "--model", str(local_model), "--output", str(tmp_path / "out"), "--scheduler",
                 "tcp://10.0.0.5:8786", "--workers", "4", str(places / "jobs.csv")])
    assert code == 1 and "--workers sizes the local cluster, not the one at --scheduler" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    (tmp_path / "a_file").write_text("")
    code = main(["batch", "--model", str(local_model), "--output", str(tmp_path / "a_file"), str(places / "jobs.csv")])
    assert code == 1 and "a_file is a file: give a folder for the results (--output)" in capsys.readouterr().err
    # refused before a cluster starts, as segment refuses them: a folder under a file, a GPU this machine lacks
    code = main(["batch", "--model", str(local_model), "--output", str(tmp_path / "a_file" / "out"),
                 str(places / "jobs.csv")])
    assert code == 1 and "(a file is in the way)" in capsys.readouterr().err
    code = main(["batch", "--model", str(local_model), "--output", str(tmp_path / "out"), "--device", "cuda",
                 str(places / "jobs.csv")])
    assert code == 1 and "GPU (CUDA) was asked for but this onnxruntime has no CUDA provider" in \
        capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_batch_through_processing(places, local_model, tmp_path, provider):
    import processing
    from qgis.core import QgsProcessingException

    assert provider.algorithm("batch") is not None
    # one place fails alone: the algorithm fails once the others are done (qgis_process exits 1)
    with pytest.raises(QgsProcessingException, match=r"^1 task failed, the others are done \(see .*batch.json\); "
                                                     r"first: coast_c 2019: .*broken_20190301.tif is not a raster"):
        processing.run("timeseg:batch", {"JOBS": str(places / "jobs.csv"), "MODEL": str(local_model),
                                         "WORKERS": 2, "CLASS": 1, "OUTPUT": str(tmp_path / "out"),
                                         "DEVICE": 1, "PRECISION": 1, "SCALES": 3})  # cpu, fp32, 3 scales
    summary = json.loads((tmp_path / "out" / "batch.json").read_text())
    assert summary["workers"] == 2 and not summary["places"]["coast_a"]["failed"] and summary["class"] == "road"
    assert summary["places"]["coast_a"]["periods"]["2019"]["precision"] == "fp32"
    done = json.loads((tmp_path / "out" / "coast_a" / "2019" / "done.json").read_text())
    assert done["inputs"][-2:] == [["precision", "fp32"], ["views", 1, 3]]
    with pytest.raises(QgsProcessingException, match="^SCALES: give 1 or 3, not 2$"):
        processing.run("timeseg:batch", {"JOBS": str(places / "jobs.csv"), "MODEL": str(local_model),
                                         "SCALES": 2, "OUTPUT": str(tmp_path / "refused")})
    assert (tmp_path / "out" / "coast_b" / "change_2016_2019.tif").is_file()
    # Cancel stops it (it ran every task), with the progress bar following the tasks done until then
    from qgis.core import QgsProcessingFeedback

    class CancelledAfterOne(QgsProcessingFeedback):
        shares: list = []

        def setProgress(self, percent):  # noqa: N802
            self.shares.append(percent)
            self.cancel()

    feedback = CancelledAfterOne()
    with pytest.raises(QgsProcessingException, match="^cancelled; the tasks that had finished are kept"):
        processing.run("timeseg:batch", {"JOBS": str(places / "jobs.csv"), "MODEL": str(local_model),
                                         "WORKERS": 1, "OUTPUT": str(tmp_path / "stopped")}, feedback=feedback)
    assert len(feedback.shares) == 1 and 0 < feedback.shares[0] < 100
    assert not (tmp_path / "stopped" / "batch.json").exists()


def test_a_cancelled_batchs_task_on_this_process_stops_at_the_next_tile(places, local_model, tmp_path):
    """Processing's Cancel: the tasks of the cancelled batch running on this process's threads stop at their next
    tile and keep nothing (they ran to their end while Cancel waited: 23 s in a QA run); another batch's go on."""
    from timeseg.core.batch import STOPPED_RUNS, Settings, read_jobs, segment_period

    job = read_jobs(places / "jobs.csv")[0]
    settings = Settings(local_model, tmp_path / "out", "cpu", "fp32", 1, {}, "stopped-run")
    STOPPED_RUNS.add("stopped-run")
    try:
        report = segment_period(job, settings)
    finally:
        STOPPED_RUNS.discard("stopped-run")
    assert not report["ok"] and report["error"].startswith("cancel"), report
    assert not list((tmp_path / "out").rglob("*.tif"))
    other = segment_period(job, Settings(local_model, tmp_path / "out", "cpu", "fp32", 1, {}, "another-run"))
    assert other["ok"] and (tmp_path / "out" / job.place / job.period / "classes.tif").is_file()


def test_a_large_place_is_split_into_windows(small_scene, local_model, tmp_path, capsys):
    """A 288 px place with --window 128: nine window tasks (each with a halo of context) and one that puts
    their cores together; the map is the single-task map, and nothing of the windows is left. One of its
    dates holds no data (wholly beyond its swath): every window leaves it out, and the period's report
    and the progress say so once. A cloud white on every date lies across four windows: the share of the place
    it hides is said once (each window said its own share)."""
    folder = tmp_path / "big"
    folder.mkdir()
    rasters = []
    for path in small_scene.tci_paths[2019]:
        with rasterio.open(path) as source:
            profile, data = source.profile, np.tile(source.read(), (1, 3, 3))
        data[:, 100:170, 100:170] = 250  # 4900 px of 82944: 5.9 %
        profile.update(width=288, height=288)
        with rasterio.open(folder / path.name, "w", **profile) as target:
            target.write(data)
        rasters.append(folder / path.name)
    with rasterio.open(folder / "S2_SIM_20191231_TCI.tif", "w", **profile) as empty:
        empty.write(np.zeros_like(data))
    rasters.append(folder / "S2_SIM_20191231_TCI.tif")
    (folder / "jobs.csv").write_text("place,period,path\n" + "".join(f"big,2019,{p.name}\n" for p in rasters))
    code = main(["batch", "--model", str(local_model), "--output", str(tmp_path / "out"), "--workers", "2",
                 "--window", "128", "--device", "cpu", str(folder / "jobs.csv")])
    err = capsys.readouterr().err
    assert code == 0
    summary = json.loads((tmp_path / "out" / "batch.json").read_text())
    period = summary["places"]["big"]["periods"]["2019"]
    assert period["windows"] == 9 and len(period["dates"]) == len(rasters) - 1
    left_out = "S2_SIM_20191231_TCI.tif holds no data over the reference raster (every pixel is nodata): left out"
    assert len(period["warnings"]) == 2 and period["warnings"][0].startswith(left_out)
    assert period["warnings"][1].endswith("% of the area is white on every date (cloud, snow or bright sand): no "
                                          "date shows the ground there, so the maps have no data there (add a "
                                          "clearer date to see it)")
    assert f"big 2019: ok; warning: {left_out}" in err and err.count("white on every date") == 1
    assert main(["segment", "--model", str(local_model), "--output", str(tmp_path / "whole"), "--device", "cpu",
                 *map(str, rasters)]) == 0
    # the share of the whole place, as one run over it says (the windows' cores counted once, not their halos)
    assert f"warning: {period['warnings'][1]}" in capsys.readouterr().err
    with rasterio.open(tmp_path / "out" / "big" / "2019" / "classes.tif") as mosaic, \
            rasterio.open(tmp_path / "whole" / "classes.tif") as whole:
        assert mosaic.transform == whole.transform and mosaic.shape == whole.shape
        assert (mosaic.read(1) == whole.read(1)).mean() > 0.995
    assert sorted(p.name for p in (tmp_path / "out" / "big" / "2019").iterdir()) == [
        "classes.qml", "classes.tif", "done.json", "probability.qml", "probability.tif"]


def test_a_place_of_three_periods_makes_both_changes_one_after_the_other(small_scene, local_model, tmp_path, capsys):
    """Three periods of one place: its two change maps write into one folder, one at a time, so both are made
    (they locked each other out); a rerun with the model's path spelt otherwise finds every task done."""
    rows = ["place,period,path"]
    for period, year in (("2016", 2016), ("2017", 2016), ("2019", 2019)):  # 2017: the 2016 dates again
        rows += [f"p,{period},{path}" for path in small_scene.tci_paths[year]]
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("\n".join(rows) + "\n")
    output = tmp_path / "out"
    argv = ["batch", "--output", str(output), "--workers", "2", "--device", "cpu", str(jobs)]
    assert main([*argv[:1], "--model", str(local_model), *argv[1:]]) == 0, capsys.readouterr().err
    summary = json.loads((output / "batch.json").read_text())
    changes = summary["places"]["p"]["changes"]
    assert set(changes) == {"change_2016_2017", "change_2017_2019"} and all(c["ok"] for c in changes.values())
    assert changes["change_2016_2017"]["new_pixels"] == 0  # the same dates twice
    capsys.readouterr()
    spelt_otherwise = local_model.parent / ".." / local_model.parent.name / local_model.name
    assert main([*argv[:1], "--model", str(spelt_otherwise), *argv[1:]]) == 0
    assert "(5 tasks already complete)" in capsys.readouterr().out


def test_a_job_list_saved_with_semicolons_is_read_as_one_with_commas(places):
    """A spreadsheet of a locale with a decimal comma saves its CSV with ';': the same jobs (it was refused as
    lacking its columns)."""
    from timeseg.core.batch import read_jobs

    commas = (places / "jobs.csv").read_text()
    semicolons = places / "jobs_semicolons.csv"
    semicolons.write_text(commas.replace(",", ";"))
    assert read_jobs(semicolons) == read_jobs(places / "jobs.csv") and read_jobs(semicolons)


def test_job_lists_as_spreadsheets_write_them(places, tmp_path):
    """Blank and empty (',,') rows are skipped, a header typed with spaces and capitals is read, a bad row is
    named by its line in the file, a date listed twice is refused when the list is read, a file in another
    encoding gets one line that says how to save it."""
    from timeseg.core.batch import BatchError, read_jobs

    rows = (places / "jobs.csv").read_text().splitlines()
    expected = read_jobs(places / "jobs.csv")
    spread = tmp_path / "spread.csv"
    spread.write_text("Place, Period, Path\r\n\r\n" + "\r\n".join(
        ",".join(cell if i < 2 else str(places / cell) for i, cell in enumerate(row.split(",")))
        for row in rows[1:]) + "\r\n,,\r\n,,\r\n", encoding="utf-8-sig")
    assert read_jobs(spread) == expected
    bad = tmp_path / "bad.csv"
    bad.write_text(f"place,period,path\n\n\n{rows[1]}\nno place?,2019,{rows[1].split(',')[2]}\n")
    with pytest.raises(BatchError, match=r"^bad.csv line 5: place 'no place\?' cannot be a folder name"):
        read_jobs(bad)
    twice = tmp_path / "twice.csv"
    twice.write_text(f"place,period,path\n{rows[1]}\n{rows[1]}\n".replace(",coast", f",{places}/coast"))
    with pytest.raises(BatchError, match=r"^twice.csv line 3: .* is listed twice for coast_a .* \(line 2 too\)"):
        read_jobs(twice)
    cased = tmp_path / "cased.csv"
    cased.write_text(f"place,period,path\n{rows[1]}\n{rows[1].replace('coast_a', 'Coast_A', 1)}\n".replace(
        ",coast", f",{places}/coast"))
    with pytest.raises(BatchError, match=r"^cased.csv names the places coast_a and Coast_A, one folder where case"):
        read_jobs(cased)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("place,period,path\nz,2019,Z\u00fcrich.tif\n".encode("cp1252"))
    with pytest.raises(BatchError, match=r"^latin.csv is not UTF-8 text \(byte 26\): save it as CSV UTF-8$"):
        read_jobs(latin)
    # a link is listed as named, its name holding the date (batch dated it by its target's name, unlike segment);
    # two links to one file are still one file listed twice
    target = Path(expected[0].paths[0])
    (tmp_path / "scene_20210617.tif").symlink_to(target)
    (tmp_path / "again_20210618.tif").symlink_to(target)
    linked = tmp_path / "linked.csv"
    linked.write_text("place,period,path\nz,2021,scene_20210617.tif\n")
    assert read_jobs(linked)[0].paths == (tmp_path / "scene_20210617.tif",)
    # GDAL's sources as they are: a zip's member (/vsizip//: its second slash was lost) and a GeoPackage's table
    # (it was made a path under the job list's folder)
    sources = tmp_path / "sources.csv"
    sources.write_text(f"place,period,path\nz,2021,/vsizip/{tmp_path}/a.zip/x_20210617.tif\n"
                       f"z,2021,GPKG:{tmp_path}/d.gpkg:s2_20210925\n")
    assert [str(p) for p in read_jobs(sources)[0].paths] == [f"/vsizip/{{{tmp_path}/a.zip}}/x_20210617.tif",
                                                             f"GPKG:{tmp_path}/d.gpkg:s2_20210925"]
    linked.write_text("place,period,path\nz,2021,scene_20210617.tif\nz,2021,./again_20210618.tif\n")
    with pytest.raises(BatchError, match=r"^linked.csv line 3: ./again_20210618.tif is listed twice"):
        read_jobs(linked)


def test_a_change_not_made_because_a_period_failed_is_not_a_second_failure(local_model, small_scene, tmp_path,
                                                                           capsys):
    """One place, two periods, the second's only raster missing: one failure (the period), and the change
    between them is said not made, not counted again."""
    jobs = tmp_path / "jobs.csv"
    rows = ["place,period,path", *(f"p,2016,{path}" for path in small_scene.tci_paths[2016]), "p,2019,missing.tif"]
    jobs.write_text("\n".join(rows) + "\n")
    code = main(["batch", "--model", str(local_model), "--output", str(tmp_path / "out"), "--workers", "1",
                 "--device", "cpu", str(jobs)])
    out = capsys.readouterr()
    summary = json.loads((tmp_path / "out" / "batch.json").read_text())
    assert code == 1 and [f["task"] for f in summary["failed"]] == ["2019"]
    assert "change_2016_2019: not made: a period failed" in out.out + out.err


def test_a_dates_warning_is_printed_once_and_a_changes_with_its_pair(places, tmp_path, caplog):
    """A date whose name and tags disagree is said once, on its period's line (not also while the batch plans
    its windows); a change map made from a one-date period says so on its own line and in batch.json."""
    import logging
    import shutil

    from timeseg.core.batch import BatchRequest, run_batch
    from timeseg.core.model_card import SHIPPED_ROAD_MODEL

    dates = sorted((places / "coast_a").rglob("*2019*.tif"))
    odd = tmp_path / "odd_20190601.tif"
    shutil.copyfile(dates[0], odd)
    with rasterio.open(odd, "r+") as dataset:
        dataset.update_tags(ACQUISITION_DATE="2019-05-30")
    (tmp_path / "jobs.csv").write_text("place,period,path\n" + "".join(
        f"here,a,{path}\n" for path in (odd, dates[1])) + f"here,b,{dates[2]}\n")
    lines = []
    with caplog.at_level(logging.WARNING, logger="timeseg"):
        summary = run_batch(BatchRequest(tmp_path / "jobs.csv", SHIPPED_ROAD_MODEL, tmp_path / "out", workers=1,
                                         worker_processes=False, progress=lines.append))
    assert not summary["failed"]
    named = "the name of odd_20190601.tif says 2019-06-01, its tags 2019-05-30"
    assert sum(line.count(named) for line in lines) == 1 and not [
        r for r in caplog.records if named in r.getMessage()]
    # a job list gives no dates: the advice is the file's name, not the command line's --dates
    assert sum(line.count(f"{named}: the name's date is used (to use the other: rename the file with that one "
                          "date)") for line in lines) == 1
    said = [line for line in lines if "here change_a_b: ok; warning: " in line]
    assert len(said) == 1 and "b/classes.tif was made from one date" in said[0] and "warning: warning" not in said[0]
    change = summary["places"]["here"]["changes"]["change_a_b"]
    assert any("was made from one date" in warning for warning in change["warnings"])


def test_an_engine_warning_is_printed_once_with_its_place(places, local_model, tmp_path, caplog):
    """A place whose dates are stored south-up: the engine's warning is printed once per task, on its
    progress line with its place and period, and kept in batch.json, not logged apart from it too."""
    import logging

    from timeseg.core.batch import BatchRequest, run_batch

    place = tmp_path / "south_up"
    place.mkdir()
    rows = ["place,period,path"]
    for path in sorted((places / "coast_a").rglob("*2019*.tif"))[:3]:
        with rasterio.open(path) as source:
            profile, data, grid = source.profile, source.read(), source.transform
        profile.update(transform=rasterio.Affine(grid.a, 0, grid.c, 0, -grid.e, grid.f + grid.e * source.height))
        with rasterio.open(place / path.name, "w", **profile) as target:
            target.write(data[:, ::-1])
        rows.append(f"south,2019,{place / path.name}")
    (tmp_path / "jobs.csv").write_text("\n".join(rows) + "\n")
    lines = []
    with caplog.at_level(logging.WARNING, logger="timeseg"):
        summary = run_batch(BatchRequest(tmp_path / "jobs.csv", local_model, tmp_path / "out", workers=1,
                                         worker_processes=False, progress=lines.append))
    assert not summary["failed"]
    said = [line for line in lines if "is stored with its rows from south to north" in line]
    assert len(said) == 1 and "south 2019: ok; warning: " in said[0] and said[0].count("warning: ") == 3
    assert not [r for r in caplog.records if "is stored with" in r.getMessage()]
    report = json.loads((tmp_path / "out" / "south" / "2019" / "done.json").read_text())["report"]
    assert len([w for w in report["warnings"] if "is stored with" in w]) == 3


def test_a_raster_without_a_date_is_said_to_need_one_in_its_name(places, tmp_path):
    """A job list cannot give dates: a raster without one among others is told to carry it in its name, not
    to use the command line's --dates; a place of one raster alone (an orthophoto) runs without one."""
    from timeseg.core.batch import BatchRequest, failures_line, run_batch
    from timeseg.core.model_card import SHIPPED_ROAD_MODEL

    undated = tmp_path / "scene.tif"
    dated_path = sorted((places / "coast_a").rglob("*2019*.tif"))[0]
    with rasterio.open(dated_path) as dated:  # its tags hold its date
        with rasterio.open(undated, "w", **dated.profile) as copy:
            copy.write(dated.read())
    (tmp_path / "jobs.csv").write_text(f"place,period,path\nhere,a,{undated}\nhere,a,{dated_path}\n"
                                       f"alone,a,{undated}\n")
    summary = run_batch(BatchRequest(tmp_path / "jobs.csv", SHIPPED_ROAD_MODEL, tmp_path / "out", workers=1,
                                     worker_processes=False, progress=lambda line: None))
    [failure] = summary["failed"]
    assert failure["error"] == ("no date in the name or tags of scene.tif: put its date in its name "
                                "(scene_20210617.tif)")
    assert failures_line(summary, tmp_path / "out").startswith("1 task failed, the others are done (see ")
    with rasterio.open(tmp_path / "out" / "alone" / "a" / "classes.tif") as classes, \
            rasterio.open(undated) as image:
        assert classes.transform == image.transform and classes.shape == image.shape
    assert summary["places"]["alone"]["periods"]["a"]["dates"] == [None]  # JSON null, not the text "None"


def test_a_stopped_batch_says_that_finished_tasks_are_kept(places, local_model, tmp_path, capsys, monkeypatch):
    """Ctrl-C in a batch: its finished tasks stay, committed with their records, for a rerun to go on from (a
    single run keeps nothing, and says so)."""
    import timeseg.core.batch as batch

    def stopped(request):
        raise KeyboardInterrupt

    monkeypatch.setattr(batch, "run_batch", stopped)
    code = main(["batch", "--model", str(local_model), "--output", str(tmp_path / "out"), str(places / "jobs.csv")])
    assert code == 130
    assert capsys.readouterr().err.strip() == ("interrupted; the tasks that had finished are kept and a rerun goes "
                                               "on from them; nothing of those in progress was kept")


def test_a_product_folder_whose_image_is_replaced_is_redone(tmp_path):
    """A .SAFE folder's own size and time stay when a file inside is replaced (a download unzipped over it): the
    rerun kept the stale map ('complete, skipped'). Its stamp is its files'."""
    import os

    from timeseg.core.batch import _stamp

    product = tmp_path / "S2B_MSIL1C_20190601T103109_N0211_R108_T33UUU_20190601T124409.SAFE"
    image = product / "GRANULE" / "L1C" / "IMG_DATA" / "T33UUU_20190601T103109_TCI.jp2"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"first download")
    before = _stamp([product])
    folder_time = product.stat().st_mtime_ns
    image.write_bytes(b"second download")
    os.utime(image, ns=(folder_time + 10**9, folder_time + 10**9))
    assert product.stat().st_mtime_ns == folder_time  # the folder itself says nothing
    assert _stamp([product]) != before


def test_a_window_of_another_layout_is_not_taken_for_done(small_scene, local_model, tmp_path):
    """A windowed run stopped, then run again with another --window: the windows done before held another part
    of the place, and were put together into the new mosaic (80 % of a QA map's pixels right, the kilometres
    off by half). A window's record holds where it lies."""
    from timeseg.core.batch import PeriodJob, Settings, plan_windows, segment_period

    rasters = tuple(small_scene.tci_paths[2019])
    with rasterio.open(rasters[0]) as dataset:
        width, height, transform = dataset.width, dataset.height, dataset.transform
    job = PeriodJob("here", "2019", rasters)
    settings = Settings(local_model, tmp_path / "out", "cpu", "fp32", 1, {"localhost": 1})
    small, large = plan_windows(width, height, transform, 32, 8)[0], plan_windows(width, height, transform, 48, 8)[0]
    assert small.index == large.index == 0 and small.halo != large.halo
    assert segment_period(job, settings, small)["ok"]
    again = segment_period(job, settings, small)
    assert again["ok"] and again["skipped"]  # the same window: done
    other = segment_period(job, settings, large)
    assert other["ok"] and not other["skipped"]
    # a window done by the version before the windows' coverage was recorded: made again, not put together
    # with its own share warnings beside the place's (three different shares were said)
    record_path = tmp_path / "out" / "here" / "2019" / ".windows" / "0" / "done.json"
    record = json.loads(record_path.read_text())
    record["inputs"][-1] = record["inputs"][-1][:3]
    del record["report"]["coverage"]
    record_path.write_text(json.dumps(record))
    redone = segment_period(job, settings, large)
    assert redone["ok"] and not redone["skipped"] and len(redone["coverage"]) == 3


def test_a_places_periods_are_paired_in_time_order_whatever_their_names(small_scene, local_model, tmp_path):
    """Periods named before, during and after were paired by name: 'after' with 'before', then 'before' with
    'during', and the roads of the first years counted twice."""
    from timeseg.core.batch import PeriodJob, _period_order

    jobs = [PeriodJob("p", name, tuple(small_scene.tci_paths[year]))
            for name, year in (("after", 2019), ("before", 2016))]
    assert [job.period for job in sorted(jobs, key=_period_order)] == ["before", "after"]


def test_ctrl_c_in_a_terminal_stops_a_batch_in_one_line(places, local_model, tmp_path):
    """Ctrl-C in a terminal goes to the whole process group: each dask worker process printed its traceback
    (60-70 lines) before the batch's one line. The workers ignore it; the batch stops them."""
    import os
    import signal
    import subprocess
    import sys

    # 20 copies of a place: a batch that outlasts the moment the signal takes on a loaded machine (the three
    # places alone were done before it came there once, and the batch exited 1 for its broken place)
    rows = [row.split(",") for row in (places / "jobs.csv").read_text().splitlines()[1:]]
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("place,period,path\n" + "".join(f"copy_{copy},{period},{places / path}\n" for copy in range(20)
                                                   for place, period, path in rows if place == "coast_a"))
    process = subprocess.Popen(
        [sys.executable, "-m", "timeseg", "batch", "--model", str(local_model), "--output", str(tmp_path / "out"),
         "--workers", "2", "--device", "cpu", str(jobs)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    said = []
    for line in process.stderr:  # the cluster is up and the tasks go to it
        said.append(line)
        if line.startswith("dask dashboard:"):
            break
    os.killpg(process.pid, signal.SIGINT)
    said += process.stderr.readlines()
    assert process.wait(timeout=120) == 130, "".join(said)
    assert "Traceback" not in "".join(said), "".join(said)
    assert said[-1].startswith("interrupted; the tasks that had finished are kept")


def test_a_ctrl_c_that_a_library_handled_as_another_error_still_stops_the_command():
    """A Ctrl-C landing in onnxruntime's import (the batch reading the model's card as it sent its tasks) failed it
    as an ImportError, which was handled; the later Ctrl-Cs were ignored, and the batch ran to its end, exit 0.
    The stop is remembered, and the batch raises it again as it waits for its tasks; a command that fails with
    what a library made of the stop says it was stopped (exit 130), not "onnxruntime is not installed"."""
    import argparse
    import signal

    from timeseg.core.cli import raise_if_stopped, run_command

    def command(args):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            signal.pause()  # the signal's handler raises here
        except KeyboardInterrupt:
            pass  # as a library turned it into another error and handled that
        os.kill(os.getpid(), signal.SIGINT)  # ignored from the first on, as the clean-up runs
        raise_if_stopped()
        raise AssertionError("not stopped")

    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    def import_interrupted(args):  # onnxruntime's import, a Ctrl-C inside it: "onnxruntime is not installed"
        try:
            os.kill(os.getpid(), signal.SIGINT)
            signal.pause()
        except KeyboardInterrupt:
            raise RuntimeError("onnxruntime is not installed") from None

    try:
        assert run_command(command, argparse.Namespace(debug=False)) == 130
        assert run_command(import_interrupted, argparse.Namespace(debug=False)) == 130
        assert run_command(lambda args: None, argparse.Namespace(debug=False)) == 0  # the next one starts afresh
    finally:  # a stopped command leaves the signals ignored, as its process ends: pytest's go on
        for number, handler in handlers.items():
            signal.signal(number, handler)


def test_gdals_own_lines_stay_out_of_the_terminal_in_worker_processes(places, local_model, tmp_path, capfd):
    """A raster cut short: the task's one line says so; GDAL's own "ERROR 1: TIFFFillTile: ..." lines, which
    the worker processes printed beside it, go to the debug log as the command line's do."""
    import shutil

    good = places / "jobs.csv"
    first = good.read_text().splitlines()[1].split(",")[2]
    cut = tmp_path / "cut_20190301.tif"
    data = (places / first).read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    shutil.copy(places / first, tmp_path / "whole_20190201.tif")
    (tmp_path / "jobs.csv").write_text(f"place,period,path\nx,2019,{tmp_path / 'whole_20190201.tif'}\nx,2019,{cut}\n")
    capfd.readouterr()
    assert main(["batch", "--model", str(local_model), "--output", str(tmp_path / "out"), "--workers", "1",
                 "--device", "cpu", str(tmp_path / "jobs.csv")]) == 1
    err = capfd.readouterr().err
    assert "cut_20190301.tif is damaged or cut short" in err and "ERROR 1:" not in err, err
