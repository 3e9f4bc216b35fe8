"""Results and trained models written to the temporary folder while the project had no file, moved beside the
project once it is saved: many systems empty the temporary folder at restart, and the saved project would
then point at maps that are gone."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from qgis.core import QgsDataProvider, QgsProject, QgsProviderRegistry
from qgis.PyQt.QtCore import QObject, QTimer

from ..core.atomic import LOCK_NAME
from .project_folders import default_folder, is_run_folder, temporary_folder


@dataclass
class Moved:
    """What one save moved (old -> new folder or model), and what it could not, with why."""

    folders: dict[Path, Path] = field(default_factory=dict)
    models: dict[Path, Path] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)

    def words(self) -> str:
        """``1 run folder and 2 trained models``."""
        counts = [(len(self.folders), "run folder"), (len(self.models), "trained model")]
        return " and ".join(f"{n} {what}{'s' if n > 1 else ''}" for n, what in counts if n)


def layer_path(layer) -> Path | None:
    """The file a layer reads (a GeoTIFF, a GeoPackage), or None for a source of no file."""
    path = QgsProviderRegistry.instance().decodeUri(layer.providerType(), layer.source()).get("path")
    return Path(path) if path else None


def run_folders_in_temporary(project: QgsProject, results_name: str) -> dict[Path, list]:
    """The run folders (``is_run_folder``) under ``<temporary folder>/<results_name>`` that the project's layers
    read, with those layers; paths resolved (a temporary folder behind a link: macOS's /var is /private/var)."""
    base = (temporary_folder() / results_name).resolve()
    folders: dict[Path, list] = {}
    for layer in project.mapLayers().values():
        path = layer_path(layer)
        path = path.resolve() if path is not None else None
        if path is None or not path.is_relative_to(base) or path.parent == base:
            continue
        folder = base / path.relative_to(base).parts[0]
        if is_run_folder(folder.name):  # a folder of the analyst's there is theirs
            folders.setdefault(folder, []).append(layer)
    return folders


def move_folder(source: Path, target: Path) -> None:
    """``source`` renamed to ``target`` (which must not exist), whole or not at all: across file systems it is
    copied under a temporary name first, and the copy is removed if anything fails."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(source, target)
        return
    except OSError as error:
        if error.errno != errno.EXDEV:  # another file system: copied below
            raise
    partial = target.with_name(f".{target.name}.moving")
    try:
        shutil.copytree(source, partial)
        os.rename(partial, target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    shutil.rmtree(source, ignore_errors=True)


def free_name(path: Path) -> Path:
    """``path``, or ``path_2``, ``path_3``... the first that does not exist (for a file, the number goes
    before its first suffix)."""
    stem, suffixes = path.name.split(".", 1)[0], path.name[len(path.name.split(".", 1)[0]):]
    number = 1
    while (candidate := path.with_name(f"{stem}_{number}{suffixes}" if number > 1 else path.name)).exists():
        number += 1
    return candidate


def repoint(layer, old_folder: Path, new_folder: Path) -> None:
    """The layer reads the same file at its new place, with its name, style and properties kept."""
    registry = QgsProviderRegistry.instance()
    parts = registry.decodeUri(layer.providerType(), layer.source())
    parts["path"] = str(new_folder / Path(parts["path"]).resolve().relative_to(old_folder))
    layer.setDataSource(registry.encodeUri(layer.providerType(), parts), layer.name(), layer.providerType(),
                        QgsDataProvider.ProviderOptions())


def model_files(model: Path) -> list[Path]:
    """A trained model's files: the ``.onnx`` and the files beside it named after it (checkpoint, summary,
    int8 and fp16 variants)."""
    stem = model.name.removesuffix(".onnx")
    return sorted(p for p in model.parent.glob(f"{stem}.*") if p.name.split(".")[0] == stem)


def move_model(model: Path, target_folder: Path) -> Path:
    """A trained model and its companion files into ``target_folder`` under one free name; the ``.onnx``'s
    new path. Files already moved are put back if one fails."""
    target = free_name(target_folder / model.name)
    stem, new_stem = model.name.removesuffix(".onnx"), target.name.removesuffix(".onnx")
    target_folder.mkdir(parents=True, exist_ok=True)
    done: list[tuple[Path, Path]] = []
    try:
        for path in model_files(model):
            destination = target_folder / (new_stem + path.name[len(stem):])
            shutil.move(path, destination)
            done.append((path, destination))
    except BaseException:
        for path, destination in reversed(done):
            shutil.move(destination, path)
        raise
    return target


def move_beside_project(project: QgsProject, results_name: str, models_name: str,
                        trained_models: list[Path]) -> Moved:
    """The run folders that the project's layers read in the temporary folder, and ``trained_models`` written
    there, moved to ``<project's folder>/<results_name>`` and ``<models_name>``, their layers repointed. A run
    folder a job still writes to (locked) stays for a later save."""
    moved = Moved()
    if not project.fileName() or default_folder(project, results_name).resolve() == \
            (temporary_folder() / results_name).resolve():  # saved in the temporary folder: beside it already
        return moved
    for folder, layers in run_folders_in_temporary(project, results_name).items():
        if not folder.is_dir() or any(folder.rglob(LOCK_NAME)):
            continue
        target = free_name(default_folder(project, results_name) / folder.name)
        try:
            move_folder(folder, target)
        except OSError as error:
            moved.failed.append(f"{folder}: {error.strerror or error}")
            continue
        for layer in layers:
            repoint(layer, folder, target)
        moved.folders[folder] = target
    models_base = (temporary_folder() / models_name).resolve()
    for model in trained_models:
        if not model.is_file() or not model.resolve().is_relative_to(models_base):
            continue
        try:
            moved.models[model] = move_model(model, default_folder(project, models_name))
        except OSError as error:
            moved.failed.append(f"{model}: {error.strerror or error}")
    return moved


class TemporaryResultsKeeper(QObject):
    """Moves ``project``'s temporary results (``move_beside_project``) once a save of it is over, and saves
    the project file again with their new paths; ``on_moved(moved)`` then says so. The move waits for the save
    to end (a .qgz is zipped after ``projectSaved``: written again from there, the first write's zip came
    last) and happens on the next turn of the event loop, or as the project is cleared (QGIS opening another
    project right after a save): then on the saved file, read apart."""

    def __init__(self, project: QgsProject, results_name: str, models_name: str, trained: Callable[[], list[Path]],
                 on_moved: Callable[[Moved], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.project, self.names, self.trained, self.on_moved = project, (results_name, models_name), trained, on_moved
        self.pending: str | None = None  # the project file whose temporary results wait to be moved
        self.saving_again = False
        self.timer = QTimer(self)  # its own: it goes with its owner (a plugin unloaded meanwhile)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self.keep)
        project.projectSaved.connect(self.saved)
        project.cleared.connect(self.keep)

    def saved(self) -> None:
        if not self.saving_again and self.project.fileName():
            self.pending = self.project.fileName()
            self.timer.start(0)

    def keep(self, *_) -> None:
        saved, self.pending = self.pending, None
        if saved is None:
            return
        if saved == self.project.fileName():
            self._move_and_save(self.project)
            return
        kept = QgsProject()
        if kept.read(saved, QgsProject.ReadFlags(QgsProject.FlagDontResolveLayers)):
            self._move_and_save(kept)

    def _move_and_save(self, project: QgsProject) -> None:
        moved = move_beside_project(project, *self.names, self.trained())
        if moved.folders or moved.models:
            path = Path(project.fileName())
            saved = path.stat()
            self.saving_again = True
            try:
                project.write()
            finally:
                self.saving_again = False
            # the file's time as QGIS's own save left it: QGIS asks at the analyst's next save whether to
            # overwrite a project file changed on disk since (by this save, it would say)
            os.utime(path, ns=(saved.st_atime_ns, saved.st_mtime_ns))
        self.on_moved(moved)
