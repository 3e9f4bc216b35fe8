"""Headless: qgis_process.bin enables the plugin and runs timeseg:segment, as the README says."""

import json
import os
import subprocess
import sysconfig

import rasterio

from tests_support import ROOT


def qgis_process(args, env, timeout=300):
    return subprocess.run(["qgis_process.bin", *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_segment_runs_headless(small_scene, local_model, tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "timeseg").symlink_to(ROOT)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "QGIS_CUSTOM_CONFIG_PATH": str(tmp_path / "qgis-config"),
           "QGIS_PLUGINPATH": str(plugins), "PYTHONPATH": sysconfig.get_paths()["purelib"]}
    enabled = qgis_process(["plugins", "enable", "timeseg"], env)
    # qgis_process may enable a plugin it finds on QGIS_PLUGINPATH by itself; either way it must be on
    assert enabled.returncode == 0 or "already enabled" in enabled.stdout, enabled.stdout + enabled.stderr
    listed = qgis_process(["plugins"], env)
    assert "* timeseg" in listed.stdout, listed.stdout  # loaded, with its Processing provider
    inputs = [f"INPUT={p}" for p in small_scene.tci_paths[2019]]
    run = qgis_process(["--json", "run", "timeseg:segment", "--", *inputs, f"MODEL={local_model}", "DEVICE=1",
                        f"OUTPUT_PROBABILITY={tmp_path / 'p.tif'}", f"OUTPUT_CLASSES={tmp_path / 'c.tif'}"], env)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    results = json.loads(run.stdout[run.stdout.index("{"):])["results"]
    assert results["OUTPUT_CLASSES"] == str(tmp_path / "c.tif")
    with rasterio.open(tmp_path / "c.tif") as classes, rasterio.open(small_scene.tci_paths[2019][0]) as ref:
        assert classes.transform == ref.transform and classes.crs == ref.crs
    # the batch algorithm, driven headless as a scheduler script would (a local cluster of threads)
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("place,period,path\n" + "".join(
        f"here,{year},{path}\n" for year in small_scene.years for path in small_scene.tci_paths[year]))
    batch = qgis_process(["--json", "run", "timeseg:batch", "--", f"JOBS={jobs}", f"MODEL={local_model}",
                          "WORKERS=2", f"OUTPUT={tmp_path / 'batch'}"], env)
    assert batch.returncode == 0, batch.stdout[-2000:] + batch.stderr[-2000:]
    results = json.loads(batch.stdout[batch.stdout.index("{"):])["results"]
    assert results["SUMMARY"] == str(tmp_path / "batch" / "batch.json")
    summary = json.loads((tmp_path / "batch" / "batch.json").read_text())
    assert set(summary["places"]["here"]["periods"]) == {"2016", "2019"}
    assert (tmp_path / "batch" / "here" / "change_2016_2019.tif").is_file()
