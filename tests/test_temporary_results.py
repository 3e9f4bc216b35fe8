"""Moving an unsaved project's results out of the temporary folder: whole or not at all, across file systems."""

import errno
import os

import pytest


@pytest.fixture
def moving(qgis_app):
    from tests_support import load_plugin_package

    load_plugin_package()
    from timeseg.ui import temporary_results

    return temporary_results


def _run_folder(path):
    (path / "2019").mkdir(parents=True)
    (path / "2019" / "classes.tif").write_bytes(b"classes")
    return path


def _across_file_systems(monkeypatch, moving):
    """The first rename (temporary folder to the project's) fails as between two file systems."""
    real_rename, calls = os.rename, []

    def rename(source, target):
        calls.append(source)
        if len(calls) == 1:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_rename(source, target)

    monkeypatch.setattr(moving.os, "rename", rename)
    return calls


def test_a_folder_moves_across_file_systems_by_a_copy_under_a_temporary_name(tmp_path, monkeypatch, moving):
    source, target = _run_folder(tmp_path / "tmp" / "run_1"), tmp_path / "project" / "timeseg_results" / "run_1"
    calls = _across_file_systems(monkeypatch, moving)
    moving.move_folder(source, target)
    assert calls == [source, target.with_name(".run_1.moving")]  # copied, then renamed into place
    assert not source.exists() and (target / "2019" / "classes.tif").read_bytes() == b"classes"


def test_a_copy_that_fails_leaves_the_source_whole_and_no_partial_copy(tmp_path, monkeypatch, moving):
    source, target = _run_folder(tmp_path / "tmp" / "run_1"), tmp_path / "project" / "timeseg_results" / "run_1"
    _across_file_systems(monkeypatch, moving)

    def copy_then_fail(from_folder, to_folder):
        (to_folder / "2019").mkdir(parents=True)  # half copied
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(moving.shutil, "copytree", copy_then_fail)
    with pytest.raises(OSError, match="No space left"):
        moving.move_folder(source, target)
    assert (source / "2019" / "classes.tif").read_bytes() == b"classes"
    assert list(target.parent.iterdir()) == []


def test_a_model_moves_with_its_own_files_under_a_free_name(tmp_path, moving):
    models = tmp_path / "tmp" / "timeseg_models"
    models.mkdir(parents=True)
    for name in ("roads_1.onnx", "roads_1.int8.onnx", "roads_1.pt", "roads_1.json", "roads_10.onnx"):
        (models / name).write_text(name)
    project_models = tmp_path / "project" / "timeseg_models"
    project_models.mkdir(parents=True)
    (project_models / "roads_1.onnx").write_text("an earlier model of the project")
    moved = moving.move_model(models / "roads_1.onnx", project_models)
    assert moved == project_models / "roads_1_2.onnx"
    assert sorted(p.name for p in project_models.iterdir()) == [
        "roads_1.onnx", "roads_1_2.int8.onnx", "roads_1_2.json", "roads_1_2.onnx", "roads_1_2.pt"]
    assert (project_models / "roads_1_2.int8.onnx").read_text() == "roads_1.int8.onnx"
    assert [p.name for p in models.iterdir()] == ["roads_10.onnx"]


def test_trained_models_move_when_the_temporary_folder_lies_behind_a_link(tmp_path, monkeypatch, moving):
    """macOS's temporary folder is /var/..., a link to /private/var/...: the Model panel holds the model's
    resolved path, which was not found 'in the temporary folder', and the model stayed there."""
    import tempfile

    from qgis.core import QgsProject

    real = tmp_path / "private_tmp"
    (real / "timeseg_models").mkdir(parents=True)
    (tmp_path / "tmp").symlink_to(real)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    model = real / "timeseg_models" / "roads_1.onnx"
    model.write_text("model")
    project = QgsProject()
    project.setFileName(str(tmp_path / "place" / "area.qgz"))
    moved = moving.move_beside_project(project, "timeseg_results", "timeseg_models", [model.resolve()])
    assert moved.models == {model.resolve(): tmp_path / "place" / "timeseg_models" / "roads_1.onnx"}
    # a project saved in the temporary folder itself: its results are beside it already
    project.setFileName(str(tmp_path / "tmp" / "scratch.qgz"))
    (real / "timeseg_models" / "roads_2.onnx").write_text("model")
    assert not moving.move_beside_project(project, "timeseg_results", "timeseg_models",
                                          [real / "timeseg_models" / "roads_2.onnx"]).models


def test_only_the_docks_run_folders_are_run_folders(moving):
    from timeseg.ui.project_folders import is_run_folder

    assert is_run_folder("run_20261207_083333") and is_run_folder("run_20261207_083333_2")
    assert not is_run_folder("my_stuff") and not is_run_folder("run_2026")
