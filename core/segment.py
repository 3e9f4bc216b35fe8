"""Tiled multi-date inference: dated rasters + model -> probability and class GeoTIFFs.

Tiles are read from the aligned stack, batched through onnxruntime, blended with a
smooth window (``core.tiling``) and streamed to disk one row of tiles at a time, so
memory depends on the tile size and the raster's width, never on its height.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rasterio.windows import Window

from core.model_card import ModelCard, read_model_card
from core.normalisation import Normalisation
from core.outputs import AtomicGeoTiff, class_colours
from core.raster_stack import DatedRaster, RasterStack
from core.runtime import open_session
from core.tiling import Tile, blend_window, tile_grid

log = logging.getLogger("timeseg")
ProgressCallback = Callable[[float, str], None]


class Cancelled(Exception):
    """The caller asked to stop; outputs were removed."""


class SegmentError(ValueError):
    """The inputs do not fit the model; the message says what to change."""


@dataclass
class SegmentRequest:
    rasters: Sequence[DatedRaster]
    model_path: Path
    output_dir: Path
    device: str = "auto"
    tile_size: int | None = None  # None: the card's
    overlap: int | None = None
    batch_size: int = 4
    progress: ProgressCallback | None = None
    cancelled: Callable[[], bool] = field(default=lambda: False)


@dataclass(frozen=True)
class SegmentResult:
    probability_path: Path
    classes_path: Path
    provider: str
    dates: list
    card: ModelCard


def check_inputs(stack: RasterStack, card: ModelCard) -> None:
    if stack.band_count != len(card.bands):
        raise SegmentError(
            f"the rasters have {stack.band_count} bands, the model wants {len(card.bands)} "
            f"({', '.join(card.bands)})"
        )
    if stack.dtype.name != card.input_dtype:
        raise SegmentError(f"the rasters hold {stack.dtype.name} values, the model wants {card.input_dtype}")
    if len(stack.dates) < card.min_sequence_length:
        raise SegmentError(
            f"{len(stack.dates)} dates given, the model needs at least {card.min_sequence_length}"
        )


def segment(request: SegmentRequest) -> SegmentResult:
    """Run the model over the stack; write ``probability.tif`` and ``classes.tif``."""
    card = read_model_card(request.model_path)
    tile_size = request.tile_size or card.tile_size
    overlap = card.tiles_overlap if request.overlap is None else request.overlap
    model = open_session(request.model_path, request.device)
    log.info("running %s on %s", Path(request.model_path).name, model.provider)
    report = request.progress or (lambda fraction, message: None)
    with RasterStack(request.rasters) as stack:
        check_inputs(stack, card)
        grid = stack.grid
        tiles = tile_grid(grid.height, grid.width, tile_size, overlap)
        channels = card.output_channels
        request.output_dir.mkdir(parents=True, exist_ok=True)
        probability = AtomicGeoTiff(request.output_dir / "probability.tif", grid, channels, "float32",
                                    nodata=float("nan"), descriptions=_probability_names(card))
        classes = AtomicGeoTiff(request.output_dir / "classes.tif", grid, 1, "uint8", nodata=255,
                                descriptions=["class"], colours=class_colours(card.class_names),
                                tags={"class_names": ",".join(card.class_names)})
        with probability, classes:
            rows = sorted({t.row for t in tiles})
            flushed = 0
            weighted = np.zeros((channels, 0, grid.width), np.float32)
            weights = np.zeros((0, grid.width), np.float32)
            any_valid = np.zeros((0, grid.width), bool)
            done = 0
            for index, row in enumerate(rows):
                row_tiles = [t for t in tiles if t.row == row]
                end = max(t.row + t.height for t in row_tiles)
                grow = end - flushed - weights.shape[0]
                if grow > 0:
                    weighted = np.concatenate([weighted, np.zeros((channels, grow, grid.width), np.float32)], 1)
                    weights = np.concatenate([weights, np.zeros((grow, grid.width), np.float32)])
                    any_valid = np.concatenate([any_valid, np.zeros((grow, grid.width), bool)])
                for start in range(0, len(row_tiles), request.batch_size):
                    if request.cancelled():
                        raise Cancelled("cancelled; no output was kept")
                    batch = row_tiles[start : start + request.batch_size]
                    for tile, prediction, valid in zip(batch, *_predict(model.session, stack, batch, card, tile_size)):
                        window = blend_window(tile, overlap)
                        r, c = tile.row - flushed, tile.col
                        weighted[:, r : r + tile.height, c : c + tile.width] += prediction * window
                        weights[r : r + tile.height, c : c + tile.width] += window
                        any_valid[r : r + tile.height, c : c + tile.width] |= valid
                    done += len(batch)
                    report(done / len(tiles), f"tile {done} of {len(tiles)}")
                final = rows[index + 1] if index + 1 < len(rows) else grid.height
                count = final - flushed
                _write_rows(probability, classes, card, flushed, weighted[:, :count], weights[:count],
                            any_valid[:count])
                weighted, weights, any_valid = weighted[:, count:], weights[count:], any_valid[count:]
                flushed = final
            probability.commit()
            classes.commit()
        return SegmentResult(probability.path, classes.path, model.provider, stack.dates, card)


def _probability_names(card: ModelCard) -> list[str]:
    if card.is_binary:
        return [f"P({card.class_names[1]})"]
    return [f"P({name})" for name in card.class_names]


def _predict(session, stack: RasterStack, batch: list[Tile], card: ModelCard, tile_size: int):
    """Probabilities ``[n, K, h, w]`` and validity ``[n, h, w]`` of the batch's tiles."""
    images, valid = [], []
    normalisation = Normalisation.from_card(card)
    for tile in batch:
        pixels, valid_dates = stack.read(Window(tile.col, tile.row, tile.width, tile.height))
        images.append(normalisation.apply(pixels))
        valid.append(valid_dates.any(axis=0))
    sizes = {image.shape[-2:] for image in images}
    if len(sizes) > 1:  # tiles of a raster smaller than one tile differ; run them one by one
        outputs = [session.run(None, {"images": image[None]})[0][0] for image in images]
    else:
        outputs = list(session.run(None, {"images": np.stack(images)})[0])
    return outputs, valid


def _write_rows(probability: AtomicGeoTiff, classes: AtomicGeoTiff, card: ModelCard, row: int,
                weighted: np.ndarray, weights: np.ndarray, valid: np.ndarray) -> None:
    if weights.shape[0] == 0:
        return
    with np.errstate(invalid="ignore", divide="ignore"):
        blended = weighted / weights[None]
    blended[:, ~valid] = np.nan
    if card.is_binary:
        labels = (blended[0] >= card.threshold).astype(np.uint8)
    else:
        labels = np.nan_to_num(blended, nan=-1).argmax(axis=0).astype(np.uint8)
    labels[~valid] = 255
    window = Window(0, row, weights.shape[1], weights.shape[0])
    probability.write(blended.astype(np.float32), window)
    classes.write(labels[None], window)
