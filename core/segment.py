"""Tiled multi-date inference: dated rasters + model -> probability and class GeoTIFFs.

Tiles are read from the aligned stack in a reader thread, batched through onnxruntime,
blended with a smooth window and streamed to disk by a writer thread one row of tiles at
a time (``core.pipeline``, ``core.blending``): memory depends on the tile size and the
raster's width, never on its height.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rasterio.windows import Window

from .blending import StreamingBlender
from .model_card import ModelCard, read_model_card
from .normalisation import Normalisation
from .outputs import AtomicGeoTiff, class_colours
from .pipeline import Cancelled, run_pipeline
from .raster_stack import DatedRaster, RasterStack
from .runtime import open_session
from .tiling import Tile, tile_grid

log = logging.getLogger("timeseg")
ProgressCallback = Callable[[float, str], None]
DATE_SELECTIONS = ("all", "last", "even")
PROBABILITY_NAME = "probability.tif"
CLASSES_NAME = "classes.tif"

__all__ = ["Cancelled", "SegmentError", "SegmentRequest", "SegmentResult", "segment", "select_dates"]


class SegmentError(ValueError):
    """The inputs do not fit the model or the output cannot be written; the message says what to do."""


@dataclass
class SegmentRequest:
    """One segmentation job. ``date_selection`` chooses dates when there are more than
    ``max_dates`` (or than a fixed-length model takes): ``last`` N, ``even``ly spaced N, or
    ``all`` (the default: every date, for models that take any T)."""

    rasters: Sequence[DatedRaster]
    model_path: Path
    output_dir: Path | None = None  # folder of probability.tif and classes.tif
    device: str = "auto"
    tile_size: int | None = None  # None: the card's
    overlap: int | None = None
    batch_size: int = 4
    date_selection: str = "all"
    max_dates: int | None = None
    threads: int | None = None
    reference_path: Path | None = None  # the raster whose grid the outputs take; None: the first date
    probability_path: Path | None = None  # None: output_dir / probability.tif
    classes_path: Path | None = None  # None: output_dir / classes.tif
    progress: ProgressCallback | None = None
    cancelled: Callable[[], bool] = field(default=lambda: False)


@dataclass(frozen=True)
class SegmentResult:
    probability_path: Path
    classes_path: Path
    provider: str
    dates: list
    card: ModelCard


def select_dates(rasters: Sequence[DatedRaster], card: ModelCard, selection: str = "all",
                 max_dates: int | None = None) -> list[DatedRaster]:
    """Rasters sorted by date, checked (no duplicates, enough dates) and thinned as asked."""
    if selection not in DATE_SELECTIONS:
        raise SegmentError(f"date selection must be one of {', '.join(DATE_SELECTIONS)}, got {selection!r}")
    ordered = sorted(rasters, key=lambda r: r.date)
    for a, b in zip(ordered, ordered[1:]):
        if a.date == b.date:
            raise SegmentError(f"{a.path.name} and {b.path.name} have the same date {a.date}: give each date once")
    if len(ordered) < card.min_sequence_length:
        raise SegmentError(f"{len(ordered)} dates given, the model needs at least {card.min_sequence_length}")
    limit = max_dates if max_dates is not None else (None if card.dynamic_time else card.sequence_length)
    if limit is None or len(ordered) <= limit:
        return ordered
    if selection == "all" and card.dynamic_time:
        return ordered
    if limit < card.min_sequence_length:
        raise SegmentError(f"max dates {limit} is below the model's minimum of {card.min_sequence_length}")
    if selection == "even":
        keep = np.unique(np.linspace(0, len(ordered) - 1, limit).round().astype(int))
        return [ordered[i] for i in keep]
    return ordered[-limit:]


def check_inputs(stack: RasterStack, card: ModelCard) -> None:
    if stack.band_count != len(card.bands):
        raise SegmentError(
            f"the rasters have {stack.band_count} bands, the model wants {len(card.bands)} "
            f"({', '.join(card.bands)}): give rasters with those bands"
        )
    if stack.dtype.name != card.input_dtype:
        raise SegmentError(f"the rasters hold {stack.dtype.name} values, the model wants {card.input_dtype}")


def check_outputs(outputs: Sequence[Path], rasters: Sequence[DatedRaster], bytes_needed: int) -> None:
    """Folders writable, no output overwriting an input, and room for the outputs."""
    inputs = {Path(r.path).resolve() for r in rasters}
    for output in outputs:
        folder = output.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise SegmentError(f"cannot create the output folder {folder} ({error.strerror}): "
                               "choose another") from None
        if not os.access(folder, os.W_OK):
            raise SegmentError(f"the output folder {folder} is not writable: choose another")
        if output.resolve() in inputs:
            raise SegmentError(f"{output} is one of the inputs: choose another output folder")
    folder = outputs[0].parent
    free = shutil.disk_usage(folder).free
    if free < bytes_needed:
        raise SegmentError(f"{folder} has {free / 1e9:.1f} GB free, the outputs need about "
                           f"{bytes_needed / 1e9:.1f} GB: free some space or choose another folder")


def _reference_index(rasters: Sequence[DatedRaster], reference: Path | None) -> int:
    if reference is None:
        return 0
    for index, raster in enumerate(rasters):
        if Path(raster.path).resolve() == Path(reference).resolve():
            return index
    raise SegmentError(f"the reference {reference} is not one of the rasters used")


def _output_paths(request: SegmentRequest) -> tuple[Path, Path]:
    def path(explicit: Path | None, name: str) -> Path:
        if explicit is not None:
            return Path(explicit)
        if request.output_dir is None:
            raise SegmentError("give an output folder (or both output files)")
        return Path(request.output_dir) / name

    return path(request.probability_path, PROBABILITY_NAME), path(request.classes_path, CLASSES_NAME)


def _estimated_output_bytes(width: int, height: int, channels: int) -> int:
    """Upper bound: uncompressed float32 probabilities and uint8 classes, plus a third for overviews."""
    return int(width * height * (4 * channels + 1) * 4 / 3)


def segment(request: SegmentRequest) -> SegmentResult:
    """Run the model over the stack; write ``probability.tif`` and ``classes.tif`` atomically."""
    card = read_model_card(request.model_path)
    rasters = select_dates(request.rasters, card, request.date_selection, request.max_dates)
    tile_size = request.tile_size or card.tile_size
    overlap = card.tiles_overlap if request.overlap is None else request.overlap
    if not 0 <= overlap < tile_size:
        raise SegmentError(f"overlap {overlap} must be at least 0 and below the tile size {tile_size}")
    model = open_session(request.model_path, request.device, request.threads)
    log.info("running %s on %s", Path(request.model_path).name, model.provider)
    report = request.progress or (lambda fraction, message: None)
    normalisation = Normalisation.from_card(card)
    with RasterStack(rasters, _reference_index(rasters, request.reference_path)) as stack:
        check_inputs(stack, card)
        grid = stack.grid
        channels = card.output_channels
        probability_path, classes_path = _output_paths(request)
        check_outputs([probability_path, classes_path], rasters,
                      _estimated_output_bytes(grid.width, grid.height, channels))
        tiles = tile_grid(grid.height, grid.width, tile_size, overlap)
        batches = [tiles[i : i + request.batch_size] for i in range(0, len(tiles), request.batch_size)]
        blender = StreamingBlender(tiles, channels, grid.width, grid.height, overlap)
        done = [0]

        def read(batch: list[Tile]) -> tuple[np.ndarray, list[np.ndarray]]:
            images, valid = [], []
            for tile in batch:
                pixels, valid_dates = stack.read(Window(tile.col, tile.row, tile_size, tile_size))
                images.append(normalisation.apply(pixels))
                valid.append(valid_dates.any(axis=0))
            return np.stack(images), valid

        def infer(data: tuple[np.ndarray, list[np.ndarray]]) -> tuple[np.ndarray, list[np.ndarray]]:
            images, valid = data
            return model.session.run(["probabilities"], {"images": images})[0], valid

        with (
            AtomicGeoTiff(probability_path, grid, channels, "float32", nodata=float("nan"),
                          descriptions=_probability_names(card)) as probability,
            AtomicGeoTiff(classes_path, grid, 1, "uint8", nodata=255,
                          descriptions=["class"], colours=class_colours(card.class_names),
                          tags={"class_names": ",".join(card.class_names)},
                          band_tags={f"CLASS_{code}": name for code, name in enumerate(card.class_names)},
                          ) as classes,
        ):

            def write(batch: list[Tile], result: tuple[np.ndarray, list[np.ndarray]]) -> None:
                predictions, valid = result
                for tile, prediction, tile_valid in zip(batch, predictions, valid):
                    for first_row, blended, rows_valid in blender.add(tile, prediction, tile_valid):
                        _write_rows(probability, classes, card, first_row, blended, rows_valid)
                done[0] += len(batch)
                report(done[0] / len(tiles), f"tile {done[0]} of {len(tiles)}")

            run_pipeline(batches, read, infer, write, request.cancelled)
            probability.commit()
            classes.commit()
        return SegmentResult(probability.path, classes.path, model.provider, stack.dates, card)


def _probability_names(card: ModelCard) -> list[str]:
    if card.is_binary:
        return [f"P({card.class_names[1]})"]
    return [f"P({name})" for name in card.class_names]


def _write_rows(probability: AtomicGeoTiff, classes: AtomicGeoTiff, card: ModelCard, row: int,
                blended: np.ndarray, valid: np.ndarray) -> None:
    """Write a finished block ``[C, n, width]`` of blended probabilities and its classes."""
    if valid.shape[0] == 0:
        return
    if card.is_binary:
        labels = (np.nan_to_num(blended[0], nan=0.0) >= card.threshold).astype(np.uint8)
    else:
        labels = np.nan_to_num(blended, nan=-1.0).argmax(axis=0).astype(np.uint8)
    labels[~valid] = 255
    window = Window(0, row, valid.shape[1], valid.shape[0])
    probability.write(blended.astype(np.float32), window)
    classes.write(labels[None], window)
