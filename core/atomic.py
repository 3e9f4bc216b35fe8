"""The one way TimeSeg writes files: all the outputs of a run appear together, complete, or not at all.

``OutputSet`` holds the files of one run. Each is written under a temporary name unique to
the run (``.<name>.<run>.partial``) beside its final path; ``commit()`` flushes them to disk
and renames them into place together (a failure half-way puts the earlier files back);
leaving the ``with`` block without ``commit()`` (an error, Ctrl-C, SIGTERM, a cancel)
deletes them. Each output folder is locked while the run writes to it, so a second run into
the same folder stops at once instead of racing the first.

GDAL reports write failures (a full disk, a file-size limit) through its error handler, not
as return codes, so ``gdal_errors`` captures them per thread and raises ``OutputError``.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path

LOCK_NAME = ".timeseg.lock"
PARTIAL_SUFFIX = ".partial"
_GDAL_FAILURE = 3  # CE_Failure; CE_Fatal is 4


class OutputError(RuntimeError):
    """An output cannot be written; the message says what to do."""


def os_error_message(error: OSError, path: Path) -> str:
    """One line for an ``OSError`` met while writing ``path``, with what to do about it."""
    reason = error.strerror or str(error)
    shown = Path(path).parent / final_name(Path(path))  # a run's temporary file by the name it was to take
    return f"cannot write {shown} ({reason}): {_advice(reason)}"


def one_line(error: BaseException) -> str:
    """What an error says to the user in one line: the first line of its text, or for an ``OSError``
    what went wrong and what to do (no ``[Errno 30]``); a run's temporary file gone with its folder, that the
    folder went."""
    text = str(error).strip()
    partial = re.search(r"(/\S*\.partial)\b", text)
    if partial and "No such file or directory" in text and not Path(partial.group(1)).parent.is_dir():
        return (f"the output folder {Path(partial.group(1)).parent} was deleted or moved during the run: nothing of "
                "the run was kept; run again")
    if isinstance(error, OSError) and not isinstance(error, RuntimeError) and error.strerror:
        return os_error_message(error, Path(error.filename or "the output"))
    if text.startswith("[ONNXRuntimeError]"):  # its second line says which index and size: kept
        return " ".join(line.strip() for line in text.splitlines() if line.strip())
    return text.splitlines()[0] if text else type(error).__name__


def _advice(reason: str) -> str:
    lowered = reason.lower()
    if "space" in lowered or "too large" in lowered or "quota" in lowered or "i/o error" in lowered:
        # (SQLite, writing a GeoPackage, says only "disk I/O error" of a full disk or a file-size limit)
        return "free some space (or raise the file-size limit) or choose another folder"
    if "permission" in lowered or "read-only" in lowered:
        return "choose a folder you can write to"
    return "check the folder, or choose another"


@contextlib.contextmanager
def gdal_errors(path: Path) -> Iterator[None]:
    """Raise ``OutputError`` when GDAL reports a failure while writing ``path`` in this thread.

    GDAL's handler stack is per thread; its messages no longer reach stderr.
    """
    from osgeo import gdal

    failures: list[str] = []

    def handler(error_class: int, number: int, message: str) -> None:
        if error_class >= _GDAL_FAILURE:
            failures.append(message)

    gdal.PushErrorHandler(handler)
    try:
        yield
    finally:
        gdal.PopErrorHandler()
        if failures:
            raise OutputError(f"cannot write {final_name(path)} in {path.parent} "
                              f"({failures[0].split(':')[-1].strip()}): {_advice(failures[0])}")


def final_name(path: Path) -> str:
    """The name a run's temporary file will have once committed (``.<name>.<run>.partial`` -> name)."""
    name = Path(path).name
    if name.startswith(".") and name.endswith(PARTIAL_SUFFIX):
        return name[1:-len(PARTIAL_SUFFIX)].rsplit(".", 1)[0]
    return name


class _FolderLock:
    """``folder/.timeseg.lock`` holding ``pid run``, made with O_EXCL; a lock whose process is gone is stale."""

    def __init__(self, folder: Path, run: str) -> None:
        self.path = folder / LOCK_NAME
        for _ in range(2):
            try:
                descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not _remove_if_stale(self.path):
                    raise OutputError(f"another TimeSeg run is writing into {folder}: wait for it to finish "
                                      "or choose another folder") from None
                continue
            except OSError as error:
                raise OutputError(os_error_message(error, folder)) from None
            with os.fdopen(descriptor, "w") as lock:
                lock.write(f"{os.getpid()} {run}\n")
            return
        raise OutputError(f"cannot lock {folder}: remove {self.path} if no TimeSeg run is writing there")

    def release(self) -> None:
        self.path.unlink(missing_ok=True)


def _remove_if_stale(lock: Path) -> bool:
    """Remove the lock of a run whose process is gone (killed: SIGKILL, or SIGTERM where no handler cleans
    up, as in ``qgis_process``), with the partial files it left; -> whether it was stale.

    Two runs that find one stale lock at once: each moves it aside under a name of its own (one rename
    succeeds), and one that moved a lock another run had just made gives it back (unlinked by name, the
    second run removed the first one's new lock, and both wrote into the folder)."""
    try:
        content = lock.read_text()
        pid, run = content.split()[:2]
        pid = int(pid)
    except (OSError, ValueError):
        return False  # being written this instant, or not ours: treat as busy
    if pid == os.getpid() or _process_alive(pid):
        return False
    aside = lock.with_name(f"{LOCK_NAME}.{os.getpid()}-{secrets.token_hex(4)}.stale")
    try:
        os.rename(lock, aside)
    except FileNotFoundError:
        return True  # another run moved it first: the next O_EXCL decides between us
    if aside.read_text() != content:  # a lock made since by the run that took over: its own again
        with contextlib.suppress(FileExistsError):
            os.link(aside, lock)
        aside.unlink(missing_ok=True)
        return False
    for leftover in lock.parent.glob(f".*.{run}{PARTIAL_SUFFIX}*"):
        leftover.unlink(missing_ok=True)
    aside.unlink(missing_ok=True)
    return True


def remove_stale_locks(folder: Path) -> None:
    """Under ``folder``, every lock of a run whose process is gone, with the temporary files it left (what a
    rerun would remove): the local workers of a batch stopped mid-task leave them."""
    for lock in Path(folder).rglob(LOCK_NAME):
        with contextlib.suppress(OSError):
            _remove_if_stale(lock)


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """``folder`` (made if missing) held by this run while the block runs: another run into it is refused at once,
    as ``OutputSet`` refuses one."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    lock = _FolderLock(Path(folder), f"{os.getpid()}-{secrets.token_hex(4)}")
    try:
        yield
    finally:
        lock.release()


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class OutputSet(contextlib.AbstractContextManager):
    """The output files of one run, committed together (see the module docstring).

    ``finals`` are the paths the run will write; they must be distinct and their folders
    writable (``core.preflight`` says so in words before a run starts).
    """

    def __init__(self, finals: Sequence[Path]) -> None:
        self.finals = [Path(final).absolute() for final in finals]
        if len(set(self.finals)) != len(self.finals):
            raise OutputError("two outputs have the same path: give each output its own name")
        self.run = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._locks: list[_FolderLock] = []
        self._made_folders: list[Path] = []  # removed again, when empty, if the run keeps nothing
        self._committed = False
        try:
            for folder in dict.fromkeys(final.parent for final in self.finals):
                missing = [f for f in (folder, *folder.parents) if not f.exists()]
                folder.mkdir(parents=True, exist_ok=True)
                self._made_folders += missing
                self._locks.append(_FolderLock(folder, self.run))
        except OSError as error:
            self.__exit__(None, None, None)
            raise OutputError(os_error_message(error, Path(error.filename or self.finals[0].parent))) from None
        except BaseException:
            self.__exit__(None, None, None)
            raise

    def partial(self, final: Path) -> Path:
        """Where ``final`` is written until the commit (readable once its writer has finished)."""
        final = Path(final).absolute()
        if final not in self.finals:
            raise ValueError(f"{final} is not an output of this run")
        return final.with_name(f".{final.name}.{self.run}{PARTIAL_SUFFIX}")

    def readable(self, path: Path) -> Path:
        """Where ``path`` can be read now: its partial file when it is an output of this run not yet
        committed, else ``path`` itself."""
        if Path(path).absolute() in self.finals and not self._committed:
            return self.partial(path)
        return Path(path)

    def write_text(self, final: Path, text: str) -> None:
        self.write_bytes(final, text.encode())

    def write_bytes(self, final: Path, data: bytes) -> None:
        path = self.partial(final)
        try:
            path.write_bytes(data)
        except OSError as error:
            raise OutputError(os_error_message(error, Path(final))) from None

    def commit(self) -> None:
        """Flush every output to disk, then rename all of them into place, or none."""
        partials = [self.partial(final) for final in self.finals]
        missing = [final.name for final, partial in zip(self.finals, partials) if not partial.is_file()]
        if missing:
            raise OutputError(f"{', '.join(missing)} was not written; nothing was kept")
        try:
            for partial in partials:
                _fsync(partial)
            self._replace_all(partials)
            for folder in dict.fromkeys(final.parent for final in self.finals):
                _fsync(folder)
        except OSError as error:
            raise OutputError(os_error_message(error, Path(error.filename or self.finals[0]))) from None
        self._committed = True

    def _replace_all(self, partials: list[Path]) -> None:
        """Earlier results are moved aside first, so that a failed rename can put them back; GDAL's
        files beside them (statistics, external overviews) go with them, as they describe the old pixels."""
        aside: list[tuple[Path, Path]] = []
        done: list[Path] = []
        try:
            for final in self.finals:
                for earlier in (final, *sidecars(final)):
                    if earlier.exists():
                        backup = earlier.with_name(f".{earlier.name}.{self.run}.previous")
                        os.replace(earlier, backup)
                        aside.append((backup, earlier))
            for partial, final in zip(partials, self.finals):
                os.replace(partial, final)
                done.append(final)
        except BaseException:
            for final in done:
                final.unlink(missing_ok=True)
            for backup, final in aside:
                os.replace(backup, final)
            raise
        for backup, _ in aside:
            backup.unlink(missing_ok=True)

    def _release(self) -> None:
        for lock in self._locks:
            lock.release()
        self._locks = []

    def __exit__(self, *exc_info) -> None:
        if not self._committed:
            for final in self.finals:
                self.partial(final).unlink(missing_ok=True)
        self._release()
        if not self._committed:
            for folder in sorted(self._made_folders, key=lambda f: len(f.parts), reverse=True):
                with contextlib.suppress(OSError):  # not empty: another run's files, keep them
                    folder.rmdir()


def sidecars(path: Path) -> list[Path]:
    """GDAL's files that describe the raster ``path``: its statistics and metadata (``.aux.xml``)
    and external overviews (``.ovr``), written by QGIS or gdalinfo -stats, gdaladdo -ro."""
    return [path.with_name(path.name + suffix) for suffix in (".aux.xml", ".ovr")]


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def atomic_file(final: Path) -> Iterator[Path]:
    """One file written by a library call (``torch.save``, ``onnx.save``, a report): yields the
    temporary path to write to, committed when the block ends without an error."""
    with OutputSet([final]) as outputs:
        yield outputs.partial(final)
        outputs.commit()


def write_text_atomic(final: Path, text: str) -> None:
    """``final`` holds ``text`` completely, or keeps what it held before."""
    with OutputSet([final]) as outputs:
        outputs.write_text(final, text)
        outputs.commit()
