"""The engine's subcommands of ``timeseg`` (segment, change, info) and how every subcommand is run."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from .dates import dated_rasters

log = logging.getLogger("timeseg")
# GDAL's block cache defaults to 5% of the RAM and grows with the raster read; a fixed size keeps the
# engine's memory flat whatever the raster's size. Set GDAL_CACHEMAX (MB) to change it.
DEFAULT_GDAL_CACHE_MB = "128"


def _progress_bar():
    from tqdm import tqdm

    bar = tqdm(total=1.0, unit="", bar_format="{l_bar}{bar}| {postfix}", file=sys.stderr)

    def update(fraction: float, message: str) -> None:
        bar.n = fraction
        bar.set_postfix_str(message)
        bar.refresh()

    return bar, update


def run_segment(args: argparse.Namespace) -> None:
    from .segment import SegmentRequest, segment

    rasters = dated_rasters(args.rasters, args.dates)
    bar, update = _progress_bar()
    try:
        result = segment(SegmentRequest(rasters, args.model, args.output, args.device, args.tile_size,
                                        args.overlap, args.batch_size, args.date_selection, args.max_dates,
                                        args.threads, args.reference, progress=update))
    finally:
        bar.close()
    dates = ", ".join(str(d) for d in result.dates)
    print(f"{len(result.dates)} dates ({dates}) on {result.provider}")
    print(f"probability: {result.probability_path}")
    print(f"classes:     {result.classes_path}")


def run_change(args: argparse.Namespace) -> None:
    from .change import ChangeOptions, compute_change

    options = ChangeOptions(args.target_class, args.high, args.low, args.min_patch)
    summary = compute_change(args.before, args.after, args.output, options)
    print(f"change: {args.output} (summary: {args.output.with_suffix('.json')})")
    for line in summary.lines():
        print(f"  {line}")


def run_info(args: argparse.Namespace) -> None:
    from .model_card import read_model_card

    card = read_model_card(args.model)
    for key, value in card.__dict__.items():
        text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
        print(f"{key}: {text}")


def add_commands(commands) -> None:
    """Add segment, change and info to ``commands`` (an argparse subparsers object)."""
    seg = commands.add_parser("segment", help="dated rasters -> probability.tif and classes.tif",
                              description="Run a TimeSeg model over several dated rasters of one place. "
                              "Rasters are sorted by date and aligned onto the first one's grid.")
    seg.add_argument("rasters", type=Path, nargs="+", help="dated rasters (dates from names or tags)")
    seg.add_argument("--model", type=Path, required=True, help="TimeSeg .onnx model")
    seg.add_argument("--output", type=Path, required=True, help="folder for probability.tif and classes.tif")
    seg.add_argument("--dates", help="comma-separated YYYY-MM-DD, one per raster, overriding detection")
    seg.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                     help="auto: CUDA when usable, else CPU (default)")
    seg.add_argument("--tile-size", type=int, help="tile size in pixels (default: the model card's)")
    seg.add_argument("--overlap", type=int, help="tile overlap in pixels (default: the model card's)")
    seg.add_argument("--batch-size", type=int, default=4, help="tiles per onnxruntime call (default 4)")
    seg.add_argument("--max-dates", type=int,
                     help="use at most N dates (default: all for models that take any number)")
    seg.add_argument("--date-selection", choices=("all", "last", "even"), default="all",
                     help="with --max-dates (or a fixed-length model): the last N dates, N evenly spaced "
                     "dates, or all (default)")
    seg.add_argument("--threads", type=int, help="CPU threads for onnxruntime (default: all cores)")
    seg.add_argument("--reference", type=Path,
                     help="the raster whose grid (CRS, pixels, extent) the outputs take (default: the first date)")
    change = commands.add_parser(
        "change", help="two class (or probability) rasters -> change raster and summary",
        description="0 none, 1 new, 2 removed, 255 nodata, on the grid of --after; a JSON summary "
        "(pixels, area, length of new and removed lines) is written beside it.")
    change.add_argument("--before", type=Path, required=True, help="classes.tif (or probability.tif), earlier")
    change.add_argument("--after", type=Path, required=True, help="classes.tif (or probability.tif), later")
    change.add_argument("--output", type=Path, required=True, help="change GeoTIFF to write")
    change.add_argument("--class", dest="target_class", type=int, default=1, help="class code to follow (default 1)")
    change.add_argument("--high", type=float, default=0.5, help="probability threshold (probability inputs)")
    change.add_argument("--low", type=float, help="hysteresis lower threshold (probability inputs)")
    change.add_argument("--min-patch", type=int, default=0, help="drop new/removed patches under N pixels")
    info = commands.add_parser("info", help="print a model's card")
    info.add_argument("model", type=Path)
    seg.set_defaults(run=run_segment)
    change.set_defaults(run=run_change)
    info.set_defaults(run=run_info)


def run_command(command, args: argparse.Namespace) -> int:
    """Run ``command(args)``: exit code 0, or 1 with one readable line on stderr (a traceback
    with ``--debug``), or 130 when interrupted."""
    try:
        command(args)
    except KeyboardInterrupt:
        print("interrupted; no output was kept", file=sys.stderr)
        return 130
    except Exception as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def main_parser(prog: str, description: str) -> tuple[argparse.ArgumentParser, object]:
    """A top-level parser with ``--debug`` and an empty set of subcommands to add to."""
    main = argparse.ArgumentParser(prog=prog, description=description)
    main.add_argument("--debug", action="store_true", help="show tracebacks")
    return main, main.add_subparsers(dest="command", required=True)


def run_main(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand (each sets ``run`` as its default)."""
    os.environ.setdefault("GDAL_CACHEMAX", DEFAULT_GDAL_CACHE_MB)  # before GDAL reads any block
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return run_command(args.run, args)
