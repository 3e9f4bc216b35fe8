"""The engine's subcommands of ``timeseg`` (segment, change, info) and how every subcommand is run."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import signal
import sys
import threading
import warnings
from pathlib import Path

import numpy as np

from .allocator import tune_allocator
from .dates import date_words, dated_rasters
from .definitions import counted, device_words
from .options import add_options, values_of

log = logging.getLogger("timeseg")
# GDAL's block cache defaults to 5% of the RAM and grows with the raster read; a fixed size keeps the
# engine's memory flat whatever the raster's size. Set GDAL_CACHEMAX (MB) to change it.
DEFAULT_GDAL_CACHE_MB = "128"
LOG_PROGRESS_STEP_PERCENT = 5  # progress written to a log or a pipe: a line each this many per cent


def _progress_reporter():
    """A bar on a terminal; elsewhere (a log file, a pipe) a line each 5 % and each new kind of step (a full
    tile's 2401 tiles would be as many lines)."""
    if not sys.stderr.isatty():
        last = [-1, ""]  # the last line's 5 % step and its words without numbers

        def line(fraction: float, message: str) -> None:
            step, words = int(100 * fraction) // LOG_PROGRESS_STEP_PERCENT, re.sub(r"\d+", "N", message)
            if step != last[0] or words != last[1]:
                print(f"{100 * fraction:3.0f}% {message}", file=sys.stderr, flush=True)
                last[:] = step, words

        return contextlib.nullcontext(), line
    from tqdm import tqdm

    bar = tqdm(total=1.0, unit="", bar_format="{l_bar}{bar}| {postfix}", file=sys.stderr)

    def update(fraction: float, message: str) -> None:
        bar.n = fraction
        bar.set_postfix_str(message)
        bar.refresh()

    return contextlib.closing(bar), update


def run_segment(args: argparse.Namespace) -> None:
    from .segment import SegmentRequest, segment

    input_warnings: list[str] = []
    rasters = dated_rasters(args.rasters, args.dates, input_warnings, lone_undated=True)
    bar, update = _progress_reporter()
    with bar:
        result = segment(SegmentRequest(rasters, **values_of(SegmentRequest, args), progress=update,
                                        input_warnings=tuple(input_warnings)))
    dates = ", ".join(map(date_words, result.dates))
    print(f"{counted(len(result.dates), 'date')} ({dates}) on {device_words(result.provider)}, {result.precision}; "
          f"{result.tiles_run} of {result.tiles_total} tiles held data")
    args.kept_when_stopped = "the run had finished: its outputs are written"  # a Ctrl-C from here on keeps them
    print(f"probability: {result.probability_path}")
    print(f"classes:     {result.classes_path}")


def run_change(args: argparse.Namespace) -> None:
    from .change import ChangeOptions, compute_change, lines_path, summary_path

    summary = compute_change(args.before, args.after, args.output, ChangeOptions(**values_of(ChangeOptions, args)))
    args.kept_when_stopped = "the change had been made: its outputs are written"
    print(f"change: {args.output} (summary: {summary_path(args.output)}, lines: {lines_path(args.output)})")
    for line in summary.lines():
        print(f"  {line}")


def run_batch(args: argparse.Namespace) -> None:
    from .batch import SUMMARY_NAME, BatchRequest, failures_line, place_line, run_batch

    def dashboard(link: str) -> None:
        print(f"dask dashboard: {link}", file=sys.stderr, flush=True)

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    summary = run_batch(BatchRequest(args.jobs, **values_of(BatchRequest, args), progress=progress,
                                     dashboard=dashboard))
    for place, report in summary["places"].items():
        print(place_line(place, report, summary["class"]))
    print(f"{counted(len(summary['places']), 'place')} in {summary['seconds']:.0f} s on "
          f"{counted(summary['workers'], 'worker')} ({counted(summary['skipped'], 'task')} already complete); "
          f"summary: {Path(args.output_dir) / SUMMARY_NAME}")
    failures = failures_line(summary, args.output_dir)
    if failures:
        raise RuntimeError(failures)


def run_info(args: argparse.Namespace) -> None:
    from .model_card import read_model_card

    card = read_model_card(args.model)
    for key, value in card.__dict__.items():
        text = json.dumps(value, indent=2) if isinstance(value, dict) and value else (
            json.dumps(value) if isinstance(value, (dict, list)) else str(value))
        print(f"{key}: {text}")
    from .tiling import TILE_ALIGN_PX, aligned_overlap

    run = aligned_overlap(card.tile_size, card.tiles_overlap)
    if run != card.tiles_overlap:
        print(f"tiles_overlap as run: {run} (the tiles step by multiples of {TILE_ALIGN_PX} px)")


def add_commands(commands) -> None:
    """Add segment, change and info to ``commands`` (an argparse subparsers object)."""
    from .change import ChangeOptions
    from .segment import SegmentRequest

    seg = commands.add_parser("segment", help="dated rasters -> probability.tif and classes.tif",
                              description="Run a TimeSeg model over several dated rasters of one place. "
                              "Rasters are sorted by date and aligned onto the earliest one's grid (or "
                              "--reference's).")
    seg.add_argument("rasters", type=_raster_path, nargs="+", help="dated rasters (dates from names or tags)")
    seg.add_argument("--dates", help="comma-separated YYYY-MM-DD, one per raster, overriding detection")
    add_options(seg, SegmentRequest)
    change = commands.add_parser(
        "change", help="two class (or probability) rasters -> change raster and summary",
        description="0 none, 1 new, 2 removed, 255 nodata, on the grid of --after; a JSON summary "
        "(pixels, area, length of new and removed lines) is written beside it.")
    change.add_argument("--before", type=Path, required=True, help="classes.tif (or probability.tif), earlier")
    change.add_argument("--after", type=Path, required=True, help="classes.tif (or probability.tif), later")
    change.add_argument("--output", type=Path, required=True, help="change GeoTIFF to write")
    add_options(change, ChangeOptions)
    from .batch import BatchRequest

    batch = commands.add_parser(
        "batch", help="many places and periods on dask.distributed (a local cluster, or --scheduler)",
        description="JOBS.csv has the columns place,period,path (one row per dated raster). Each place and "
        "period is segmented into DIR/<place>/<period>/, each pair of periods of a place gets "
        "DIR/<place>/change_<first>_<second>.tif; DIR/batch.json sums up. Rerunning skips what is complete.")
    batch.add_argument("jobs", type=Path, help="CSV with the columns place,period,path")
    add_options(batch, BatchRequest)
    batch.set_defaults(run=run_batch, kept_when_stopped=BATCH_KEPT)
    info = commands.add_parser("info", help="print a model's card",
                               description="Print a model's card: what it finds, the bands and resolution it reads, "
                               "its tiling, and how it was trained and scored (which numbers are real, which "
                               "simulated).")
    info.add_argument("model", type=Path, help="a TimeSeg .onnx model (or a Deepness one)")
    seg.set_defaults(run=run_segment)
    change.set_defaults(run=run_change)
    info.set_defaults(run=run_info)


def _raster_path(text: str) -> Path:
    """A raster argument as a path that still names it (``core.definitions.gdal_path``: archives' members)."""
    from .definitions import gdal_path

    return gdal_path(text)


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the run stops and removes what it had not committed."""


_STOP_SIGNALS: list[int] = []  # the Ctrl-C or SIGTERM that came while the command ran (``_stop``)


def _stop(signum: int, frame) -> None:
    """Ctrl-C or SIGTERM: the run stops, once. Later signals are ignored while it cleans up: a second Ctrl-C
    raised again inside the clean-up, and the process aborted with onnxruntime's threads still running ("terminate
    called without an active exception"). The signal is also remembered (``raise_if_stopped``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _STOP_SIGNALS.append(signum)
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def raise_if_stopped() -> None:
    """Raise again the stop of a Ctrl-C or SIGTERM that came while the command ran: where it landed, a library may
    have turned it into another error and that error been handled (an import it interrupts fails as an
    ImportError), and the later signals are ignored. A batch checks this as it waits (it ran on to the end)."""
    if _STOP_SIGNALS:
        raise Terminated() if _STOP_SIGNALS[0] == signal.SIGTERM else KeyboardInterrupt()


# a batch keeps what its finished tasks committed (each with its done.json), so that a rerun goes on from there
BATCH_KEPT = ("the tasks that had finished are kept and a rerun goes on from them; nothing of those in progress "
              "was kept")


def run_command(command, args: argparse.Namespace) -> int:
    """Run ``command(args)``: exit code 0, or 1 with one readable line on stderr (a traceback
    with ``--debug``), or 130 (Ctrl-C) / 143 (SIGTERM) when stopped. Library warnings and GDAL
    messages are kept out of the way unless ``--debug``."""
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = {number: signal.signal(number, _stop) for number in (signal.SIGINT, signal.SIGTERM)} \
        if in_main_thread else {}
    _STOP_SIGNALS.clear()
    try:
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore" if not args.debug else "warn"):
                if not args.debug:
                    warnings.simplefilter("ignore")
                command(args)
        except Exception:
            raise_if_stopped()  # the stop, not what a library made of it ("onnxruntime is not installed")
            raise
    except (Terminated, KeyboardInterrupt) as stop:
        kept = getattr(args, "kept_when_stopped", "no output was kept, earlier results are unchanged")
        print(f"{'terminated' if isinstance(stop, Terminated) else 'interrupted'}; {kept}", file=sys.stderr)
        return 143 if isinstance(stop, Terminated) else 130
    except Exception as error:
        if args.debug:
            raise
        log.debug("error detail", exc_info=True)
        from .atomic import one_line

        print(f"error: {one_line(error)}", file=sys.stderr)
        return 1
    finally:  # once stopped by a signal, later ones stay ignored until the process exits (one line, exit 130/143)
        for number, handler in previous.items():
            if signal.getsignal(number) is not signal.SIG_IGN:
                signal.signal(number, handler)
    return 0


@contextlib.contextmanager
def _quiet_libraries(debug: bool):
    """GDAL's own messages (in this thread; writes capture theirs) and the log records of rasterio and
    dask go to the debug log, not the user's terminal."""
    from osgeo import gdal

    def to_log(error_class: int, number: int, message: str) -> None:
        log.debug("GDAL: %s", message)

    noisy = {"rasterio": logging.CRITICAL, "distributed": logging.CRITICAL, "tornado": logging.CRITICAL,
             "bokeh": logging.CRITICAL}
    levels = {name: logging.getLogger(name).level for name in noisy}
    gdal.PushErrorHandler(to_log)
    if not debug:  # the reading and writing threads' messages too (PushErrorHandler holds for this thread)
        gdal.SetErrorHandler(to_log)
        for name, level in noisy.items():
            logging.getLogger(name).setLevel(level)
    try:
        yield
    finally:
        gdal.PopErrorHandler()
        if not debug:
            gdal.SetErrorHandler("CPLDefaultErrorHandler")
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes as one line that says what to do (the usage is in ``--help``)."""

    def error(self, message: str) -> None:
        extra = message.partition("unrecognized arguments: ")[2].split()
        if extra and not any(word.startswith("-") for word in extra):  # an option between the rasters ends them
            message += ": give the options before the rasters or after all of them"
        missing = re.fullmatch(r"argument (--[\w-]+): expected one argument", message)
        if missing:  # argparse takes a value that starts with '-' (a western longitude) for an option
            message += f": give its value after it; a value that starts with '-' as {missing[1]}=VALUE"
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def main_parser(prog: str, description: str) -> tuple[argparse.ArgumentParser, object]:
    """A top-level parser with ``--debug`` and an empty set of subcommands to add to."""
    main = OneLineParser(prog=prog, description=description)
    main.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    main.commands = main.add_subparsers(dest="command", required=True)
    return main, main.commands


DEBUG_HELP = "show tracebacks and library messages"


def run_main(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand (each sets ``run`` as its default)."""
    os.environ.setdefault("GDAL_CACHEMAX", DEFAULT_GDAL_CACHE_MB)  # before GDAL reads any block
    tune_allocator()
    for command in parser.commands.choices.values():  # --debug after the command too (timeseg segment --debug)
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    args = parser.parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if args.debug else logging.INFO)
    log.propagate = False  # only TimeSeg's own lines; libraries speak through --debug
    try:
        with _quiet_libraries(args.debug):
            return run_command(args.run, args)
    finally:
        log.removeHandler(handler)
