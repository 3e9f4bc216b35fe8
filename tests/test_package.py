"""make package: one top folder timeseg/ with the plugin, nothing that does not belong."""

import configparser
import zipfile

from tests_support import ROOT


def test_zip_holds_the_plugin_and_nothing_else(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_zip", ROOT / "packaging" / "build_zip.py")
    build_zip = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_zip)
    path = build_zip.build(tmp_path)
    version = build_zip.plugin_version()
    assert path.name == f"timeseg-{version}.zip"
    assert path.stat().st_size < 25 * 1024 * 1024
    names = zipfile.ZipFile(path).namelist()
    assert {n.split("/")[0] for n in names} == {"timeseg"}
    for required in ("__init__.py", "metadata.txt", "LICENSE", "plugin.py", "icons/timeseg.svg",
                     "models/weights/roads.onnx", "models/weights/crops.onnx", "core/segment.py", "ui/dock.py",
                     "models/weights/roads.pt",  # the Train panel and timeseg:train fine-tune it
                     "provider/algorithms.py"):
        assert f"timeseg/{required}" in names
    for name in names:
        assert not name.startswith(("timeseg/tests", "timeseg/.venv", "timeseg/.git", "timeseg/data",
                                    "timeseg/dist", "timeseg/runs", "timeseg/research", "timeseg/bench",
                                    "timeseg/models/real/"))
        assert "__pycache__" not in name and not name.endswith(".pyc")
        assert not name.endswith(".pt") or name.startswith("timeseg/models/weights/")


def test_metadata_has_every_field_the_plugin_repository_requires():
    metadata = configparser.ConfigParser()
    metadata.read(ROOT / "metadata.txt")
    general = metadata["general"]
    for field in ("name", "qgisMinimumVersion", "description", "about", "version", "author", "email",
                  "repository", "tracker", "homepage", "tags", "category", "icon", "hasProcessingProvider",
                  "license"):
        assert general.get(field), field
    assert general["qgisMinimumVersion"] == "3.22" and general["hasProcessingProvider"] == "yes"
    assert (ROOT / general["icon"]).is_file()


OUR_PACKAGES = ("core", "models", "ui", "provider", "research")


def test_one_package_relative_imports_and_no_sys_path_edits():
    """Inside the plugin everything is imported relatively (``from .core...``); nothing edits sys.path."""
    import re

    absolute = re.compile(rf"^\s*(from|import) ({'|'.join(OUR_PACKAGES)})\b", re.M)
    offenders = []
    for path in ROOT.rglob("*.py"):
        if {".venv", "data", "runs", "dist"} & set(path.relative_to(ROOT).parts):
            continue
        text = path.read_text()
        if absolute.search(text) or re.search(r"sys\.path\.(insert|append)", text):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_timeseg_command_and_python_m_timeseg(tmp_path):
    import shutil
    import subprocess
    import sys

    command = shutil.which("timeseg", path=str(ROOT / ".venv" / "bin")) or shutil.which("timeseg")
    assert command, "make setup installs the timeseg command into .venv/bin"
    for argv in ([command, "info", str(ROOT / "models" / "weights" / "roads.onnx")],
                 [sys.executable, "-m", "timeseg", "info", str(ROOT / "models" / "weights" / "roads.onnx")],
                 [sys.executable, "-m", "timeseg.cli", "info", str(ROOT / "models" / "weights" / "roads.onnx")]):
        done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "class_names: [\"background\", \"road\"]" in done.stdout
    done = subprocess.run([sys.executable, "-m", "timeseg", "segment", "--model", "nope.onnx", "--output",
                           str(tmp_path / "o"), "x.tif"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1


def test_pip_version_is_the_plugin_version():
    import tomllib

    metadata = configparser.ConfigParser()
    metadata.read(ROOT / "metadata.txt")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["version"] == metadata["general"]["version"]
