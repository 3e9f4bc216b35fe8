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
                     "provider/algorithms.py"):
        assert f"timeseg/{required}" in names
    for name in names:
        assert not name.startswith(("timeseg/tests", "timeseg/.venv", "timeseg/.git", "timeseg/data",
                                    "timeseg/dist", "timeseg/runs"))
        assert "__pycache__" not in name and not name.endswith((".pyc", ".pt"))


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
