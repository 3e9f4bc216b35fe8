"""Many places and periods at once on dask.distributed: ``timeseg batch JOBS.csv``.

``JOBS.csv`` has the columns ``place,period,path`` (one row per dated raster or Sentinel-2 product;
relative paths are relative to the CSV). Each place and period is one task: a worker segments it
into ``DIR/<place>/<period>/{probability,classes}.tif``; a place larger than the window size is
cut into windows with a margin of context, one task each, and a last task puts their cores
together. When a place's periods are done, one task per pair of consecutive periods writes
``DIR/<place>/change_<first>_<second>.tif`` with its style, JSON and lines.
Workers open each model once (``_worker_model``), set onnxruntime's threads to their share of
their machine, and commit their files atomically (``core.atomic``) together with a
``done.json`` record of what made them, so that a rerun skips what is complete and redoes
what failed or was interrupted. A failing place fails alone; ``DIR/batch.json`` says what
failed and why, and sums up new and removed road kilometres per place.

Without a scheduler address a ``LocalCluster`` of N worker processes runs on this machine (in
QGIS: N worker threads, as QGIS's executable cannot start Python worker processes); with one,
the same tasks go to that cluster. dask and distributed are imported only here.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import logging
import os
import re
import shutil
import signal
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .atomic import OutputSet, folder_lock, one_line, remove_stale_locks, write_text_atomic
from .definitions import (
    CHANGE_TOLERANCE_PX,
    CLASSES_NAME,
    DEVICES,
    MIN_PATCH_PIXELS,
    ORIENTATIONS_HELP,
    PRECISION_HELP,
    PRECISIONS,
    PROBABILITY_NAME,
    SCALES_HELP,
    counted,
)
from .options import option, range_problems
from .orientations import ORIENTATION_COUNTS
from .preflight import output_problems
from .scales import SCALE_COUNTS

if TYPE_CHECKING:
    from .change import ChangeOptions

log = logging.getLogger("timeseg")
COLUMNS = ("place", "period", "path")
DONE_NAME = "done.json"
WINDOWS_NAME = ".windows"  # a large place's windows, until they are put together
SUMMARY_NAME = "batch.json"
_POLL_S = 0.2  # how often a batch waiting for its tasks looks whether it is to stop
CLOSE_WHEN_STOPPED_S = 5  # the longest a stopped batch waits for its cluster to close
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


class _TaskWarnings(logging.Filter):
    """On a thread running a batch task, the engine's logged warnings go into the task's report, which the
    progress line prints with its place and period, instead of being printed apart from it too."""

    def __init__(self) -> None:
        super().__init__()
        self.local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        kept = getattr(self.local, "kept", None)
        if kept is None or record.levelno != logging.WARNING:
            return True
        kept.append(record.getMessage().removeprefix("warning: "))
        return False


_TASK_WARNINGS = _TaskWarnings()


@contextlib.contextmanager
def _warnings_kept() -> Iterator[list[str]]:
    """The engine's warnings logged on this thread meanwhile, kept in the list yielded, not logged."""
    if _TASK_WARNINGS not in log.filters:
        log.addFilter(_TASK_WARNINGS)
    _TASK_WARNINGS.local.kept = kept = []
    try:
        yield kept
    finally:
        _TASK_WARNINGS.local.kept = None


class BatchError(ValueError):
    """The job list or the options cannot start a batch; the message says what to fix."""


class BatchCancelled(Exception):
    """The caller asked to stop: the tasks not yet finished were cancelled; those finished stay, for a rerun."""


@dataclass(frozen=True)
class PeriodJob:
    place: str
    period: str
    paths: tuple[Path, ...]


LOCAL_WORKERS = 2  # worker processes of the local cluster when --workers is not given


@dataclass
class BatchRequest:
    jobs_csv: Path
    model_path: Path = option(help="TimeSeg .onnx model", flag="--model", required=True, words="the model")
    output_dir: Path = option(help="folder for <place>/<period>/ results and batch.json", flag="--output",
                              required=True)
    workers: int | None = option(None, f"worker processes of the local cluster (default {LOCAL_WORKERS}; not "
                                 "with --scheduler, whose cluster has its own workers)", minimum=1,
                                 maximum=1024, words="the number of workers")
    scheduler: str | None = option(None, "address of a running dask scheduler, e.g. tcp://10.0.0.5:8786 "
                                   "(default: a local cluster)")
    threads: int | None = option(None, "onnxruntime threads per worker (default: its machine's cores shared "
                                 "among the workers there)", minimum=1, maximum=1024, words="the number of threads")
    device: str = option("auto", "auto: GPU (CUDA) when usable, else CPU", choices=DEVICES)
    precision: str = option("auto", PRECISION_HELP, choices=PRECISIONS)
    orientations: int = option(1, ORIENTATIONS_HELP, choices=ORIENTATION_COUNTS, words="the orientations")
    scales: int = option(1, SCALES_HELP, choices=SCALE_COUNTS, words="the scales")
    window_px: int = option(4096, "places larger than N x N px are split into windows of about N px, one task "
                            "each, so that a few large places keep every worker busy", flag="--window",
                            minimum=64, maximum=100_000, words="the window size")
    min_patch_pixels: int = option(MIN_PATCH_PIXELS, "change: drop new/removed patches under N pixels",
                                   flag="--min-patch",
                                   minimum=0, maximum=1_000_000, words="the minimum patch size")
    change_tolerance_px: int = option(CHANGE_TOLERANCE_PX, "change: the class found within N pixels in the other "
                                      "period is the same (a road a pixel aside; 0: pixel by pixel)",
                                      flag="--tolerance", minimum=0, maximum=10,
                                      words="the tolerance")
    change_class: int | None = option(None, "change: the class code to follow (default: 1, a two-class model's "
                                      "class, as road; models of more classes, as crops, need it)", flag="--class",
                                      minimum=0, maximum=254, words="the class code")
    worker_processes: bool = True  # local cluster of processes; False: threads (inside QGIS)
    progress: Callable[[str], None] | None = None
    dashboard: Callable[[str], None] | None = None
    done_share: Callable[[float], None] | None = None  # told the share of tasks finished, 0..1, as they finish
    cancelled: Callable[[], bool] = field(default=lambda: False)  # True: stop at once (Processing's Cancel)


@dataclass
class PlaceReport:
    periods: dict[str, dict[str, Any]] = field(default_factory=dict)
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return any(not r["ok"] for r in (*self.periods.values(), *self.changes.values()))


def read_jobs(jobs_csv: Path) -> list[PeriodJob]:
    """The jobs of ``jobs_csv`` grouped by place and period; raises ``BatchError`` in words."""
    jobs_csv = Path(jobs_csv)
    if jobs_csv.is_dir():
        raise BatchError(f"{jobs_csv} is a folder: give the job list, a CSV file of place,period,path rows")
    if not jobs_csv.is_file():
        raise BatchError(f"job list not found: {jobs_csv}")
    try:
        text = jobs_csv.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise BatchError(f"{jobs_csv.name} is not UTF-8 text (byte {error.start}): save it as CSV UTF-8") from None
    header = text.partition("\n")[0]
    # a spreadsheet saved in a locale whose decimal comma makes ';' the list separator
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=";" if header.count(";") > header.count(",") else ",")
    names = [name.strip().lower() for name in next(reader, [])]  # "Place, Period, Path" as typed
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise BatchError(f"{jobs_csv.name} lacks the column{'s' * (len(missing) > 1)} {', '.join(missing)}: "
                         "give a CSV with the header place,period,path")
    groups: dict[tuple[str, str], list[Path]] = defaultdict(list)
    lines: dict[tuple[str, str, Path], int] = {}  # each place's, period's and raster's line: one of each
    for cells in reader:
        line = reader.line_num  # the file's own line: blank lines and quoted line breaks counted
        row = dict(zip(names, (cell.strip() for cell in cells)))
        place, period, path = (row.get(c, "") for c in COLUMNS)
        if not (place or period or path):
            continue  # a blank row, or a spreadsheet's empty ',,' rows
        for what, name in (("place", place), ("period", period)):
            if not _SAFE_NAME.match(name):
                raise BatchError(f"{jobs_csv.name} line {line}: {what} {name!r} cannot be a folder name: use "
                                 "ASCII letters, digits, '_', '-' and '.'")
        if not path:
            raise BatchError(f"{jobs_csv.name} line {line}: no path")
        listed = _job_path(path, jobs_csv.parent)
        first = lines.setdefault((place, period, listed.resolve()), line)
        if first != line:
            raise BatchError(f"{jobs_csv.name} line {line}: {path} is listed twice for {place} {period} (line "
                             f"{first} too): give each date once")
        groups[(place, period)].append(listed)
    folders: dict[str, str] = {}  # one folder per place on Windows and macOS too, whose names ignore case
    for place, _ in groups:
        other = folders.setdefault(place.lower(), place)
        if other != place:
            raise BatchError(f"{jobs_csv.name} names the places {other} and {place}, one folder where case is not "
                             "told apart (Windows, macOS): spell each place one way")
    if not groups:
        raise BatchError(f"{jobs_csv.name} lists no rasters: add rows place,period,path")
    return [PeriodJob(place, period, tuple(paths)) for (place, period), paths in sorted(groups.items())]


def _job_path(path: str, folder: Path) -> Path:
    """A job list's raster: a GDAL source as it is (``/vsizip//data/a.zip/b.tif``, ``GPKG:a.gpkg:table``, by
    ``core.definitions.gdal_path``), else absolute, from ``folder`` if relative, a link kept as named (its name
    holds the date, as segment reads it)."""
    from .definitions import gdal_path, is_gdal_source

    if is_gdal_source(path):
        return gdal_path(path)
    return Path(os.path.abspath(Path(path) if Path(path).is_absolute() else folder / path))


def _stamp(paths: list[Path]) -> list[list]:
    """What made a result: each input's path, size and modification time (a changed input is redone); for a
    folder (a ``.SAFE`` product) the size of its files and the latest time one changed (a folder's own
    time stays when a file inside is replaced, and a stale map was kept)."""
    stamp = []
    for path in paths:
        if path.is_dir():  # (GDAL's .aux.xml sidecars, written by viewing an image, change nothing read)
            files = [file.stat() for file in path.rglob("*") if file.is_file() and not file.name.endswith(".aux.xml")]
            stamp.append([str(path), sum(f.st_size for f in files), max((f.st_mtime_ns for f in files), default=0)])
            continue
        info = path.stat() if path.exists() else None
        stamp.append([str(path), info.st_size if info else None, info.st_mtime_ns if info else None])
    return stamp


def _period_stamp(job: PeriodJob, settings: Settings) -> list[list]:
    """What made a period's maps: its rasters, the model, the precision and the views asked (another is redone;
    one view, as before the views could be asked, is not written, so that earlier results stay done)."""
    views = [["views", settings.orientations, settings.scales]] if (settings.orientations, settings.scales) != (1, 1) \
        else []
    return [*_stamp([*job.paths, Path(settings.model_path)]), ["precision", settings.precision], *views]


def _done(folder: Path, stamp: list[list]) -> dict | None:
    """The record of a complete earlier result made from the same inputs, or None."""
    record_path = folder / DONE_NAME
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError):
        return None
    return record if record.get("inputs") == stamp else None


# --- on the workers ------------------------------------------------------------------------
_MODELS: dict[tuple, Any] = {}  # one onnxruntime session per model, device and threads, per worker process


def _worker_model(model_path: Path, device: str, threads: int, precision: str):
    from .runtime import load_model

    key = (str(model_path), device, threads, precision)
    if key not in _MODELS:
        _MODELS[key] = load_model(model_path, device, threads, precision)
    return _MODELS[key]


def _threads_here(workers_per_host: dict[str, int], asked: int | None) -> int:
    if asked:
        return asked
    try:
        from distributed import get_worker

        host = get_worker().address.split("://")[-1].rsplit(":", 1)[0]
    except (ImportError, ValueError):
        host = socket.gethostname()
    return max(1, (os.cpu_count() or 1) // max(1, workers_per_host.get(host, 1)))


@dataclass(frozen=True)
class Settings:
    """What every task of a batch shares (plain data, sent to the workers)."""

    model_path: Path
    output_dir: Path
    device: str
    precision: str
    threads: int | None
    workers_per_host: dict[str, int]
    run: str = ""  # this batch's name among the runs of the process (``STOPPED_RUNS``)
    orientations: int = 1  # the views each tile's map is averaged over (SegmentRequest's)
    scales: int = 1


# batches cancelled in this process: their tasks running on this process's threads (Processing's in-process
# workers) stop at the next tile, rather than run to their end while Cancel waits (23 s in a QA run)
STOPPED_RUNS: set[str] = set()


@dataclass(frozen=True)
class PeriodWindow:
    """One window of a large place's period: ``halo`` (``col, row, width, height`` on the reference grid,
    the core and a margin of context) is segmented; its ``core`` goes into the mosaic."""

    index: int
    halo: tuple[int, int, int, int]
    core: tuple[int, int, int, int]
    aoi: str  # the halo's bounds, as the engine's --aoi

    @property
    def core_in_halo(self) -> tuple[int, int, int, int]:
        """The core as ``col, row, width, height`` on the halo's grid (the window run's outputs')."""
        return self.core[0] - self.halo[0], self.core[1] - self.halo[1], self.core[2], self.core[3]


def plan_windows(width: int, height: int, transform, window_px: int, halo_px: int) -> list[PeriodWindow]:
    """Cores of about ``window_px`` covering ``width x height`` pixels, each with ``halo_px`` of context."""
    columns, rows = -(-width // window_px), -(-height // window_px)
    core_w, core_h = -(-width // columns), -(-height // rows)
    windows = []
    for r in range(rows):
        for c in range(columns):
            col, row = c * core_w, r * core_h
            core = (col, row, min(core_w, width - col), min(core_h, height - row))
            h_col, h_row = max(0, col - halo_px), max(0, row - halo_px)
            h_end_col = min(width, col + core[2] + halo_px)
            h_end_row = min(height, row + core[3] + halo_px)
            left, top = transform * (h_col, h_row)
            right, bottom = transform * (h_end_col, h_end_row)
            # bounds pulled in by a hundredth of a pixel, so the engine's window is exactly the halo
            dx, dy = abs(transform.a) / 100, abs(transform.e) / 100
            bounds = (min(left, right) + dx, min(top, bottom) + dy, max(left, right) - dx, max(top, bottom) - dy)
            aoi = ",".join(repr(v) for v in bounds)
            windows.append(PeriodWindow(len(windows), (h_col, h_row, h_end_col - h_col, h_end_row - h_row), core, aoi))
    return windows


_QUIET_GDAL: list = []  # the handler _quiet_gdal_in_worker_process set (GDAL holds no reference of its own)


def _quiet_gdal_in_worker_process() -> None:
    """In a worker process of a local cluster (not QGIS's own process, where Processing runs tasks on threads),
    GDAL's own messages go to the debug log, as the command line's do ("ERROR 1: TIFFFillTile: ..." reached the
    terminal beside the task's one line): a task's report says what failed."""
    import multiprocessing

    if _QUIET_GDAL or multiprocessing.parent_process() is None:
        return
    from osgeo import gdal

    _QUIET_GDAL.append(lambda error_class, number, message: log.debug("GDAL: %s", message))
    gdal.SetErrorHandler(_QUIET_GDAL[0])


def segment_period(job: PeriodJob, settings: Settings, window: PeriodWindow | None = None) -> dict[str, Any]:
    """One place and period (or one window of it) -> its folder; a report dict (never raises: one
    failure stays one)."""
    from .dates import RENAMED, dated_rasters
    from .segment import SegmentRequest, coverage_warnings, segment, segment_outputs

    _quiet_gdal_in_worker_process()

    started = time.perf_counter()
    period_folder = settings.output_dir / job.place / job.period
    folder = period_folder if window is None else period_folder / WINDOWS_NAME / str(window.index)
    report: dict[str, Any] = {"place": job.place, "period": job.period, "ok": False, "skipped": False,
                              "inputs": [str(p) for p in job.paths]}
    with _warnings_kept() as logged:  # the engine's warnings go into the report, printed with it
        try:
            stamp = _period_stamp(job, settings)
            # a window's result is of its place on the grid too: after a run with another --window, not reused; its
            # record holds its core's coverage (a window done by an earlier version, without it, is made again)
            own_stamp = stamp if window is None else [*stamp, ["window", list(window.halo), list(window.core),
                                                               "coverage"]]
            record = _done(period_folder, stamp) or (_done(folder, own_stamp) if window is not None else None)
            if record is not None:
                return {**report, **record["report"], "skipped": True, "seconds": 0.0}
            rasters = dated_rasters(job.paths, give_dates=RENAMED, lone_undated=True)
            threads = _threads_here(settings.workers_per_host, settings.threads)  # this worker's share of the cores
            model = _worker_model(settings.model_path, settings.device, threads, settings.precision)
            finals = [*segment_outputs(folder / PROBABILITY_NAME, folder / CLASSES_NAME), folder / DONE_NAME]
            with OutputSet(finals) as outputs:
                result = segment(SegmentRequest(rasters, settings.model_path, folder, settings.device,
                                                precision=settings.precision, threads=threads,
                                                orientations=settings.orientations, scales=settings.scales,
                                                aoi=window.aoi if window else None,
                                                counted_part=window.core_in_halo if window else None,
                                                cancelled=lambda: settings.run in STOPPED_RUNS),
                                 outputs, model=model)
                warnings = list(dict.fromkeys([*logged, *result.warnings]))
                if window is not None:  # the place's shares are said once, of all its windows (assemble_period)
                    own_shares = coverage_warnings(result.coverage, result.card)
                    warnings = [warning for warning in warnings if warning not in own_shares]
                    report.update(coverage=list(result.coverage))
                report.update(ok=True, dates=[d and d.isoformat() for d in result.dates], provider=result.provider,
                              precision=result.precision, first_date=str(result.dates[0]), tiles_run=result.tiles_run,
                              tiles=result.tiles_total, warnings=warnings,
                              seconds=round(time.perf_counter() - started, 2))
                outputs.write_text(folder / DONE_NAME, json.dumps({"inputs": own_stamp, "report": report}, indent=1))
                outputs.commit()
        except Exception as error:  # reported in batch.json; the other places go on
            report.update(error=one_line(error), warnings=list(dict.fromkeys(logged)),
                          seconds=round(time.perf_counter() - started, 2))
    return report


def assemble_period(job: PeriodJob, settings: Settings, windows: list[PeriodWindow], full_size: tuple[int, int],
                    window_reports: list[dict[str, Any]]) -> dict[str, Any]:
    """The windows of a large place's period -> its full probability and classes maps (each window's
    core, cut out of its halo), committed together with their styles and done record."""
    import numpy as np
    import rasterio
    from rasterio.windows import Window

    from .model_card import read_model_card
    from .outputs import GeoTiffWriter
    from .qml import style_path
    from .raster_stack import Grid
    from .segment import coverage_warnings, segment_outputs

    folder = settings.output_dir / job.place / job.period
    report: dict[str, Any] = {"place": job.place, "period": job.period, "ok": False, "skipped": False,
                              "inputs": [str(p) for p in job.paths], "windows": len(windows)}
    failed = [r for r in window_reports if not r["ok"]]
    if failed:
        return {**report, "error": f"a window failed: {failed[0].get('error')}"}
    started = time.perf_counter()
    try:
        stamp = _period_stamp(job, settings)
        record = _done(folder, stamp)
        if record is not None:
            return {**report, **record["report"], "skipped": True, "seconds": 0.0}
        parts = [folder / WINDOWS_NAME / str(w.index) for w in windows]
        probability_path, classes_path = folder / PROBABILITY_NAME, folder / CLASSES_NAME
        with OutputSet([*segment_outputs(probability_path, classes_path), folder / DONE_NAME]) as outputs:
            for name, final in ((PROBABILITY_NAME, probability_path), (CLASSES_NAME, classes_path)):
                with rasterio.open(parts[0] / name) as first:
                    profile, tags, band_tags = first.profile, first.tags(), first.tags(1)
                    colours = first.colormap(1) if name == CLASSES_NAME else None
                    descriptions = [d or "" for d in first.descriptions]
                    # the first window's grid starts at its halo's corner; the place's at pixel (0, 0)
                    transform = first.transform * rasterio.Affine.translation(-windows[0].halo[0], -windows[0].halo[1])
                grid = Grid(profile["crs"], transform, *full_size)
                with GeoTiffWriter(outputs.partial(final), grid, profile["count"], profile["dtype"],
                                   profile["nodata"], descriptions, colours, tags, band_tags) as writer:
                    for window, part in zip(windows, parts):
                        col, row, width, height = window.core
                        with rasterio.open(part / name) as source:
                            data = source.read(window=Window(col - window.halo[0], row - window.halo[1], width, height))
                        writer.write(data, Window(col, row, width, height))
                    writer.finish()
                outputs.write_text(style_path(final), style_path(parts[0] / name).read_text())
            first_report = window_reports[0]
            coverage = np.sum([r.get("coverage", (0, 0, 0)) for r in window_reports], axis=0).tolist()
            shares = coverage_warnings(coverage, read_model_card(settings.model_path))
            report.update(ok=True, dates=first_report["dates"], provider=first_report["provider"],
                          precision=first_report["precision"], first_date=first_report["first_date"],
                          tiles_run=sum(r["tiles_run"] for r in window_reports),
                          tiles=sum(r["tiles"] for r in window_reports),
                          warnings=list(dict.fromkeys([*(w for r in window_reports for w in r.get("warnings", ())),
                                                       *shares])),
                          seconds=round(sum(r.get("seconds", 0) for r in window_reports)
                                        + time.perf_counter() - started, 2))
            outputs.write_text(folder / DONE_NAME, json.dumps({"inputs": stamp, "report": report}, indent=1))
            outputs.commit()
        shutil.rmtree(folder / WINDOWS_NAME, ignore_errors=True)
    except Exception as error:
        report.update(error=one_line(error))
    return report


def change_between(earlier: dict[str, Any], later: dict[str, Any], output_dir: Path,
                   options: ChangeOptions, after: dict[str, Any] | None = None) -> dict[str, Any]:
    """The change of one place between two segmented periods (skipped when either failed, and when the same
    maps were compared with the same options before). ``after``: the report of the place's change before
    this one, which must be done first (both write into the place's folder, which one run at a time holds)."""
    from .change import change_outputs, compute_change

    dated = all(r.get("first_date") for r in (earlier, later))  # a failed period has none: the given order
    first, second = sorted((earlier, later), key=lambda r: r["first_date"]) if dated else (earlier, later)
    place = first["place"]
    name = f"change_{first['period']}_{second['period']}"
    report: dict[str, Any] = {"place": place, "pair": name, "ok": False, "skipped": False}
    if not (first["ok"] and second["ok"]):
        return {**report, "error": "a period failed: no change map", "not_made": True}  # not a failure of its own
    started = time.perf_counter()
    folder = output_dir / place
    output = folder / f"{name}.tif"
    before = folder / first["period"] / CLASSES_NAME
    after = folder / second["period"] / CLASSES_NAME
    record_path = folder / f".{name}.{DONE_NAME}"
    try:
        stamp = {"maps": _stamp([before, after]), "options": asdict(options)}
        try:
            record = json.loads(record_path.read_text())
        except (OSError, ValueError):
            record = None
        if record is not None and record.get("inputs") == stamp:
            return {**report, **record["report"], "skipped": True, "seconds": 0.0}
        with OutputSet([*change_outputs(output), record_path]) as outputs:
            summary = compute_change(before, after, output, options, outputs)
            report.update(ok=True, new_km=round(summary.new_length_m / 1000, 3),
                          removed_km=round(summary.removed_length_m / 1000, 3), new_pixels=summary.pixels["new"],
                          removed_pixels=summary.pixels["removed"],
                          warnings=[warning.removeprefix("warning: ") for warning in summary.warnings],
                          seconds=round(time.perf_counter() - started, 2))
            outputs.write_text(record_path, json.dumps({"inputs": stamp, "report": report}, indent=1))
            outputs.commit()
    except Exception as error:
        report.update(error=one_line(error))
    return report


# --- on the client -------------------------------------------------------------------------
def batch_problems(request: BatchRequest) -> list[str]:
    problems = range_problems(request)
    if not Path(request.model_path).is_file():
        problems.append(f"model file not found: {request.model_path}")
    if request.scheduler is not None and not re.match(r"^(tcp|tls|inproc|ws|wss)://", request.scheduler):
        problems.append(f"--scheduler {request.scheduler!r} is not an address like tcp://HOST:8786")
    if request.scheduler is not None and request.workers is not None:
        problems.append("--workers sizes the local cluster, not the one at --scheduler (its workers are started "
                        "there): leave --workers out, or --scheduler to run here")
    output = Path(request.output_dir)
    if output.exists() and not output.is_dir():
        problems.append(f"{output} is a file: give a folder for the results (--output)")
    else:  # batch.json is written here, and the local workers' folders under it
        problems += output_problems([output / SUMMARY_NAME], [])
    if request.scheduler is None:  # a cluster's workers may have the GPU that this machine lacks
        from .runtime import cuda_missing

        problems += [problem for problem in [cuda_missing(request.device)] if problem]
    return problems


DASK_PIN = "dask[distributed]==2026.8.0"  # as in requirements.txt


def _cluster(request: BatchRequest):
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        from .install import install_command

        raise BatchError(f"dask.distributed is not installed in this Python: {install_command([DASK_PIN])}") from None

    if request.scheduler:
        try:
            return Client(request.scheduler, timeout="20s"), None
        except OSError as error:  # distributed's timeout is an OSError
            raise BatchError(f"{one_line(error)}: check the address, and that the scheduler runs and can be "
                             "reached from here") from None
    with _children_ignore_interrupts(request.worker_processes):
        cluster = LocalCluster(n_workers=request.workers or LOCAL_WORKERS, threads_per_worker=1,
                               processes=request.worker_processes, dashboard_address=":0",
                               silence_logs=logging.CRITICAL)  # a task's failure is its place's line; a stop's
        # closed connections ("failed during get data ... Stream is closed") are not the user's business
    return Client(cluster), cluster


@contextlib.contextmanager
def _children_ignore_interrupts(processes: bool) -> Iterator[None]:
    """Worker processes started in the block ignore Ctrl-C (they inherit its being ignored), which a terminal
    sends to the whole process group: this process stops them itself as it stops (each printed its traceback
    before, 60-70 lines)."""
    if not processes or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    # a Ctrl-C that lands while the client waits on its event loop, before that wait has begun, makes distributed's
    # clean-up callback fail (NameError: 'future', distributed/utils.py sync) and tornado print its traceback: the
    # batch's own line says what happened
    logging.getLogger("tornado.application").setLevel(logging.CRITICAL)


def run_batch(request: BatchRequest) -> dict[str, Any]:
    """Run every job of ``request.jobs_csv`` on the cluster; writes and returns ``batch.json``'s content."""
    problems = batch_problems(request)
    if problems:
        raise BatchError(problems[0])
    jobs = read_jobs(request.jobs_csv)
    output_dir = Path(request.output_dir).absolute()
    model_path = Path(request.model_path).resolve()  # one spelling, so that a rerun finds its tasks done
    say = request.progress or (lambda text: None)
    started = time.perf_counter()
    with folder_lock(output_dir):  # a second batch into this folder stops at once (both ran, and both failed)
        try:
            summary = _run_jobs(request, jobs, output_dir, model_path, say, started)
        finally:  # the local cluster is closed: what its workers stopped mid-task left goes (a remote one's may run)
            if request.scheduler is None:
                remove_stale_locks(output_dir)
    write_text_atomic(output_dir / SUMMARY_NAME, json.dumps(summary, indent=2))  # under its own lock
    return summary


def _run_jobs(request: BatchRequest, jobs: list[PeriodJob], output_dir: Path, model_path: Path,
              say: Callable[[str], None], started: float) -> dict[str, Any]:
    import secrets

    run = secrets.token_hex(4)
    client, cluster = _cluster(request)
    try:
        if request.dashboard:
            import importlib.util

            needs = "" if importlib.util.find_spec("bokeh") else " (its pages need bokeh: pip install bokeh)"
            request.dashboard(client.dashboard_link + needs)
        workers = client.scheduler_info()["workers"]
        per_host: dict[str, int] = defaultdict(int)
        for address in workers:
            per_host[address.split("://")[-1].rsplit(":", 1)[0]] += 1
        settings = Settings(model_path, output_dir, request.device, request.precision, request.threads,
                            dict(per_host), run, request.orientations, request.scales)
        period_futures = {(job.place, job.period): _submit_period(client, job, settings, request.window_px)
                          for job in jobs}
        by_place: dict[str, list] = defaultdict(list)
        for job in sorted(jobs, key=_period_order):  # each place's periods in time order
            by_place[job.place].append(period_futures[(job.place, job.period)])
        from .change import ChangeOptions

        change_options = ChangeOptions(min_patch_pixels=request.min_patch_pixels,
                                       tolerance_px=request.change_tolerance_px, target_class=request.change_class)
        change_futures = []  # consecutive periods in time order
        for futures in by_place.values():
            previous = None  # a place's changes one after another: they write into one folder
            for earlier, later in zip(futures, futures[1:]):
                previous = client.submit(change_between, earlier, later, output_dir, change_options, previous,
                                         pure=False)
                change_futures.append(previous)
        tasks_per_place = {place: 2 * len(futures) - 1 for place, futures in by_place.items()}
        reports = _collect(client, [*period_futures.values(), *change_futures], tasks_per_place, say, started,
                           request, run)
    except BaseException as stop:  # what stopped the batch is said, not a failure to close after it
        _close(client, cluster, stop)
        raise
    else:
        _close(client, cluster)
    finally:
        STOPPED_RUNS.discard(run)
    summary = _summary(reports, request, len(workers), time.perf_counter() - started)
    summary["class"] = _followed_class(model_path, request.change_class)
    return summary


def _close(client, cluster, stop: BaseException | None = None) -> None:
    """The client and the local cluster closed; after a ``stop`` (an error, a cancel, Ctrl-C) without a word, and
    after Ctrl-C or SIGTERM within seconds: a Ctrl-C that landed in one of distributed's waits can leave its close
    waiting, and its "timed out after 60 s" then stood for the stop (exit 1 after a minute)."""
    timeout = {"timeout": CLOSE_WHEN_STOPPED_S} if isinstance(stop, KeyboardInterrupt) else {}
    try:
        client.close(**timeout)
        if cluster is not None:
            cluster.close(**timeout)
    except Exception:
        if stop is None:
            raise


def _period_order(job: PeriodJob) -> tuple[dt.date, str]:
    """A period's place in time: its middle date (its name's order where its dates cannot be read: the task
    says why). Three periods named before, during, after were paired by name, 2013 with 2019 and 2013 with
    2016, and the roads of 2013-2016 counted twice."""
    from .dates import RENAMED, dated_rasters, known_dates

    try:
        dates = sorted(known_dates(raster.date for raster in dated_rasters(job.paths, give_dates=RENAMED, warnings=[],
                                                                           lone_undated=True)))
    except (ValueError, OSError):
        dates = []
    return (dates[len(dates) // 2] if dates else dt.date.max), job.period


def _submit_period(client, job: PeriodJob, settings: Settings, window_px: int):
    """One task for the period, or one per window and one that puts them together for a large place."""
    windows, full_size = _windows_of(job, settings, window_px)
    key = f"segment-{job.place}-{job.period}"
    if not windows:
        return client.submit(segment_period, job, settings, key=key, pure=False)
    parts = [client.submit(segment_period, job, settings, window, key=f"{key}-window{window.index}", pure=False)
             for window in windows]
    return client.submit(assemble_period, job, settings, windows, full_size, parts, key=f"{key}-assemble",
                         pure=False)


def _windows_of(job: PeriodJob, settings: Settings, window_px: int) -> tuple[list[PeriodWindow], tuple[int, int]]:
    """The windows of a period whose reference raster (its earliest date, or what the model reads of a
    product) is larger than ``window_px`` squared, and its size; no windows otherwise, or when the
    raster cannot be read here (the period's task then says why)."""
    import rasterio

    from .dates import RENAMED, dated_rasters
    from .model_card import read_model_card
    from .sentinel2 import resolve_products

    try:
        card = read_model_card(settings.model_path)
        with _warnings_kept():  # the period's task reads the dates again and reports their warnings
            earliest = min(dated_rasters(job.paths, give_dates=RENAMED, lone_undated=True), key=lambda r: r.date)
            reference = resolve_products([earliest], card)[0]
        with rasterio.open(str(reference.path)) as dataset:
            width, height, transform = dataset.width, dataset.height, dataset.transform
    except Exception:
        return [], (0, 0)
    if width * height <= window_px * window_px:
        return [], (width, height)
    halo = card.tile_size // 2  # context enough for the model at a core's edge
    return plan_windows(width, height, transform, window_px, halo), (width, height)


def _collect(client, futures: list, tasks_per_place: dict[str, int], say: Callable[[str], None], started: float,
             request: BatchRequest, run: str) -> list[dict]:
    """Reports as tasks finish, saying places done, the rate and the time left; ``BatchCancelled`` (the tasks
    left cancelled, and those of ``run`` running on this process's threads stopped) as soon as
    ``request.cancelled()``."""
    from distributed import as_completed

    from .cli import raise_if_stopped

    reports: list[dict] = []
    left_per_place = dict(tasks_per_place)
    finishing = as_completed(futures)
    finished = 0
    while not finishing.is_empty():
        raise_if_stopped()  # a Ctrl-C that landed where it was handled as another error (the batch ran on)
        if request.cancelled():
            STOPPED_RUNS.add(run)  # the tasks running on this process's threads stop too
            client.cancel([future for future in futures if not future.done()])
            raise BatchCancelled("cancelled; the tasks that had finished are kept and a rerun goes on from them")
        if not finishing.has_ready():
            time.sleep(_POLL_S)
            continue
        future = next(finishing)
        finished += 1
        if request.done_share:
            request.done_share(finished / len(futures))
        report = future.result()
        reports.append(report)
        left_per_place[report["place"]] -= 1
        places_done = sum(1 for left in left_per_place.values() if left == 0)
        elapsed = time.perf_counter() - started
        rate = finished / elapsed
        minutes_left = (len(futures) - finished) / rate / 60
        status = "complete, skipped" if report.get("skipped") else ("ok" if report["ok"] else (
            "not made: a period failed" if report.get("not_made") else f"FAILED: {report.get('error')}"))
        status += "".join(f"; warning: {warning}" for warning in report.get("warnings", ()))
        say(f"{places_done}/{len(left_per_place)} places done, {60 * rate:.1f} tasks/min, about "
            f"{minutes_left:.1f} min left; {report['place']} {report.get('period') or report.get('pair')}: {status}")
    return reports


def place_line(place: str, report: dict[str, Any], class_name: str) -> str:
    """One place of the summary in words: whether it failed, and the change of ``class_name`` (the model's class
    that change maps follow) if a change map was made."""
    change = ("no change map" if report["new_km"] is None else
              f"{class_name} lines new {report['new_km']:.2f} km, removed {report['removed_km']:.2f} km")
    return f"{place}: {'FAILED' if report['failed'] else 'ok'}; {change}"


def failures_line(summary: dict[str, Any], output: Path) -> str | None:
    """The batch's failure in one line (None when no task failed): how many, where the summary is, and the
    first failure; the command line and Processing end a batch with failed tasks on it."""
    if not summary["failed"]:
        return None
    first = summary["failed"][0]
    tasks = sum(1 for place in summary["places"].values()
                for report in (*place["periods"].values(), *place["changes"].values()) if not report.get("not_made"))
    if len(summary["failed"]) == tasks:  # "the others are done" would be none
        failed = f"all {tasks} tasks failed" if tasks > 1 else "its one task failed"
    else:
        failed = f"{counted(len(summary['failed']), 'task')} failed, the others are done"
    return f"{failed} (see {Path(output) / SUMMARY_NAME}); first: {first['place']} {first['task']}: {first['error']}"


def _lengths(changes: Iterable[dict]) -> dict[str, float | None]:
    """``new_km`` and ``removed_km`` summed over the change maps made; None where none was (failed, or one
    period only), not a measured 0."""
    made = [change for change in changes if change["ok"]]
    return {key: round(sum(change[key] for change in made), 3) if made else None for key in ("new_km", "removed_km")}


def _followed_class(model_path: Path, asked: int | None) -> str:
    """The class whose change the change maps follow (``change.followed_class`` of the model's classes)."""
    from .change import ChangeOptions, followed_class
    from .model_card import read_model_card

    names = read_model_card(model_path).class_names
    target = followed_class(ChangeOptions(target_class=asked))
    return names[target] if target < len(names) else f"class {target}"


def _summary(reports: list[dict], request: BatchRequest, workers: int, seconds: float) -> dict[str, Any]:
    places: dict[str, PlaceReport] = defaultdict(PlaceReport)
    for report in reports:
        target = places[report["place"]]
        if "period" in report:
            target.periods[report["period"]] = report
        else:
            target.changes[report["pair"]] = report
    failures = [{"place": r["place"], "task": r.get("period") or r.get("pair"), "error": r["error"]}
                for r in reports if not r["ok"] and not r.get("not_made")]
    return {
        "model": str(request.model_path),
        "jobs": str(Path(request.jobs_csv).absolute()),
        "workers": workers,
        "seconds": round(seconds, 2),
        "places": {name: {**asdict(report), "failed": report.failed, **_lengths(report.changes.values())}
                   for name, report in sorted(places.items())},
        **_lengths(r for r in reports if "pair" in r),
        "failed": failures,
        "skipped": sum(1 for r in reports if r.get("skipped")),
    }
