"""Radiometric harmonisation: each date's bands stretched so that its land looks like the land of the
images the model was trained on, before the model's normalisation.

Per date and band, the ``low_percentile`` and ``high_percentile`` of the pixels that are neither nodata
nor bright (any band at or above ``bright_limit``: cloud, snow) are moved linearly onto the training
images' (``target_low``, ``target_high``, raw values). The same scene as ESA's L1C true colour and as
L2A true colour, hazy or clear, then reaches the model nearly alike. A date is left as it is when it
shows too little clear land (under ``min_clear_share`` of its valid pixels) or no dark land (a band's
low percentile at or above ``dark_limit``: overcast, haze, snow): an overcast date stays
white, as the date gate learned it. Uint8 rasters only (true colour); the statistics come from the
same sample windows of the date (``sample_windows``, denser where they hold too little data: a small place in
a large raster of no data) wherever a date is harmonised: the engine, the scoring and training code.

A harmonising model reads a pixel that a date does not show (no data: 0) as an overcast sky
(``UNSEEN``), which its date gate learned to pass over (``model_table``): a date beyond its swath's
edge then changes the map there as little as a white date does, not as a black date the model never
saw in training (which removed 8-13 % of the road pixels of a real two-date map).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from rasterio.windows import Window

SAMPLE_SIZE_PX = 256  # each sample window's side
SAMPLES_PER_SIDE = 4  # a larger raster is sampled on 4 x 4 windows (1 Mpx), aligned to 256 px blocks
MIN_SAMPLE_PIXELS = 1024  # fewer valid pixels: the date is left as it is
# a date with fewer valid pixels in its windows (a small place in a large raster of no data) is sampled again on
# 16 x 16 windows, which cover a raster of up to 4096 px a side whole
DENSE_SAMPLES_PER_SIDE = 16
UNSEEN = 255  # the raw value (every band) a harmonising model reads where a date has no data: white cloud


@dataclass(frozen=True)
class Harmonisation:
    """The model card's ``harmonisation``: where each band's percentiles are moved (raw values)."""

    target_low: tuple[float, ...]
    target_high: tuple[float, ...]
    low_percentile: float = 2.0
    high_percentile: float = 90.0
    bright_limit: float = 200.0
    dark_limit: float = 128.0
    min_clear_share: float = 0.25

    @classmethod
    def from_card(cls, values: dict[str, Any] | None) -> Harmonisation | None:
        if values is None:
            return None
        return cls(**{**values, "target_low": tuple(values["target_low"]),
                      "target_high": tuple(values["target_high"])})

    def to_card(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "target_low": list(self.target_low),
                "target_high": list(self.target_high)}

    @classmethod
    def fitted(cls, values: np.ndarray, valid: np.ndarray, **settings: float) -> Harmonisation:
        """The harmonisation onto the land of ``values`` ``[C, N]`` where ``valid`` ``[N]``: the pixels of
        the images a model was trained on (ValueError when they show too little clear, dark land)."""
        probe = cls((), (), **settings)
        low_high = probe.percentiles(values, valid)
        if low_high is None:
            raise ValueError("the training images show too little clear, dark land to harmonise onto")
        return dataclasses.replace(probe, target_low=tuple(float(v) for v in low_high[0]),
                                   target_high=tuple(float(v) for v in low_high[1]))

    def percentiles(self, values: np.ndarray, valid: np.ndarray) -> np.ndarray | None:
        """``[2, C]`` low and high percentiles of ``values`` ``[C, N]`` where ``valid`` ``[N]`` and not
        bright; None when the date is to be left as it is (see the module docstring)."""
        clear = valid & (values < self.bright_limit).all(axis=0)
        count = int(clear.sum())
        if count < MIN_SAMPLE_PIXELS or count < self.min_clear_share * max(int(valid.sum()), 1):
            return None
        low_high = histogram_percentiles(values, clear, (self.low_percentile, self.high_percentile))
        return None if low_high[0].max() >= self.dark_limit else low_high

    def table(self, values: np.ndarray, valid: np.ndarray) -> np.ndarray | None:
        """``[C, 256]`` uint8 lookup table of a date from its sampled ``values`` ``[C, N]`` and ``valid``
        ``[N]`` (0 stays 0, nodata; every other value lands in 1..255); None: leave the date as it is."""
        low_high = self.percentiles(values, valid)
        if low_high is None:
            return None
        low, high = low_high
        target_low, target_high = np.asarray(self.target_low), np.asarray(self.target_high)
        gain = (target_high - target_low) / np.maximum(high - low, 1.0)
        raw = np.arange(256, dtype=np.float64)[None]
        table = np.clip(np.rint((raw - low[:, None]) * gain[:, None] + target_low[:, None]), 1, 255)
        table[:, 0] = 0
        return table.astype(np.uint8)


def histogram_percentiles(values: np.ndarray, kept: np.ndarray, percentiles: Sequence[float]) -> np.ndarray:
    """``[P, C]`` percentiles of uint8 ``values`` ``[C, N]`` where ``kept`` ``[N]``, as ``np.percentile``
    gives them (linear between the two nearest ranks), from each band's histogram: no sort of a million
    values a date, and no copy of the kept ones (the others are counted apart, in bins 256..511)."""
    count = int(kept.sum())
    ranks = np.asarray(percentiles, np.float64) / 100 * (count - 1)
    below, above = np.floor(ranks).astype(np.int64), np.ceil(ranks).astype(np.int64)
    apart = (~kept).astype(np.uint16) << 8
    out = np.empty((len(ranks), values.shape[0]))
    for band, band_values in enumerate(values):
        cumulative = np.cumsum(np.bincount(band_values + apart, minlength=512)[:256])
        low, high = np.searchsorted(cumulative, below, "right"), np.searchsorted(cumulative, above, "right")
        out[:, band] = low + (ranks - below) * (high - low)
    return out


def looked_up(tables: np.ndarray, pixels: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Uint8 ``pixels`` ``[..., C, h, w]`` through one table per band ``tables`` ``[C, 256]`` (into ``out``)."""
    # one gather through the bands' tables end to end (pixel + 256 x band): about half the time of a fancy index
    # per band (1.5 against 2.8 ms for a 5-date 256 px tile); no index can fall outside, and 'wrap' writes into
    # ``out`` directly where the default 'raise' goes through a buffer
    index = pixels.astype(np.uint16 if len(tables) <= 256 else np.int64)
    index += (np.arange(len(tables), dtype=index.dtype) * 256)[:, None, None]
    out = np.empty(pixels.shape, tables.dtype) if out is None else out
    return np.take(np.ascontiguousarray(tables).reshape(-1), index, out=out, mode="wrap")


def problem(values: Any) -> str | None:
    """What is wrong with a card's ``harmonisation`` (None when it is usable or absent)."""
    if values is None:
        return None
    try:
        harmonisation = Harmonisation.from_card(values)
    except (TypeError, KeyError, AttributeError):
        return "harmonisation must give target_low and target_high (one raw value per band) and known keys only"
    if len(harmonisation.target_low) != len(harmonisation.target_high):
        return "harmonisation's target_low and target_high must give one value per band each"
    if not 0 <= harmonisation.low_percentile < harmonisation.high_percentile <= 100:
        return "harmonisation's percentiles must satisfy 0 <= low < high <= 100"
    return None


def sample_windows(height: int, width: int, per_side: int = SAMPLES_PER_SIDE) -> list[Window]:
    """The windows a date's statistics are taken from: along a side of up to ``per_side`` x 256 px, all of
    it; along a longer one, ``per_side`` stretches of 256 px spread over it, each starting on a multiple of
    256 px (one block each in a tiled GeoTIFF)."""

    def stretches(length: int) -> list[tuple[int, int]]:
        if length <= SAMPLE_SIZE_PX * per_side:
            return [(0, length)]
        spread = np.linspace(0, length - SAMPLE_SIZE_PX, per_side)
        return [(int(s) // SAMPLE_SIZE_PX * SAMPLE_SIZE_PX, SAMPLE_SIZE_PX) for s in spread]

    return [Window(col, row, cols, rows) for row, rows in stretches(height) for col, cols in stretches(width)]


Samples = list[tuple[np.ndarray, np.ndarray]]  # per date: values [C, N] and valid [N]


def _sampled(height: int, width: int, read: Callable[[list[Window]], Samples]) -> Samples:
    """``read``'s samples of a ``height`` x ``width`` raster on ``sample_windows``, or on the denser
    ``DENSE_SAMPLES_PER_SIDE`` windows when a date has under ``MIN_SAMPLE_PIXELS`` valid pixels in them."""
    samples = read(sample_windows(height, width))
    if all(int(valid.sum()) >= MIN_SAMPLE_PIXELS for _, valid in samples) or \
            max(height, width) <= SAMPLE_SIZE_PX * SAMPLES_PER_SIDE:  # enough, or the raster was read whole
        return samples
    return read(sample_windows(height, width, DENSE_SAMPLES_PER_SIDE))


def date_tables(harmonisation: Harmonisation, samples: Samples) -> list:
    """One lookup table (or None) per date from its samples: ``(values [C, N], valid [N])``."""
    return [harmonisation.table(values, valid) for values, valid in samples]


def samples_of_dates(dates: np.ndarray) -> Samples:
    """``(values [C, N], valid [N])`` per date of an in-memory ``[T, C, H, W]`` uint8 stack (0: nodata)."""

    def read(windows: list[Window]) -> Samples:
        out = []
        for date in dates:
            parts = [date[:, w.row_off : w.row_off + w.height, w.col_off : w.col_off + w.width].reshape(
                date.shape[0], -1) for w in windows]
            values = np.concatenate(parts, axis=1)
            out.append((values, (values > 0).any(axis=0)))
        return out

    return _sampled(*dates.shape[-2:], read)


def stack_tables(harmonisation: Harmonisation | None, stack) -> list[np.ndarray | None]:
    """One lookup table (or None: left as it is) per date of a ``core.raster_stack.RasterStack``; all
    None without ``harmonisation`` or for rasters that are not uint8. The dates are read and counted on
    one thread per core (this runs before the model, which would otherwise wait on one core)."""
    if harmonisation is None or stack.dtype != np.uint8:
        return [None] * len(stack.dates)
    with ThreadPoolExecutor(max(1, min(len(stack.dates), os.cpu_count() or 1)), "harmonise") as pool:
        return list(pool.map(lambda sample: harmonisation.table(*sample), samples_of_stack(stack, pool)))


def samples_of_stack(stack, pool: Executor | None = None) -> Samples:
    """``(values [C, N], valid [N])`` per date of a ``core.raster_stack.RasterStack``, over the whole
    rasters whatever area the stack is restricted to: the windows ``timeseg batch`` cuts a place into,
    and any area of interest, take the stretch the whole rasters take. ``pool``: threads that read the
    dates at once."""

    def read(windows: list[Window]) -> Samples:
        reads = [stack.read(window, pool, whole=True) for window in windows]
        return [(np.concatenate([pixels[t].reshape(pixels.shape[1], -1) for pixels, _ in reads], axis=1),
                 np.concatenate([valid[t].ravel() for _, valid in reads])) for t in range(len(stack.dates))]

    return _sampled(stack.full_grid.height, stack.full_grid.width, read)


def model_table(table: np.ndarray | None, bands: int) -> np.ndarray:
    """``[C, 256]`` uint8: a date's values as a harmonising model reads them: through its ``table`` (as they
    are when None: the date is left as it is), and no data (0) as an overcast sky (``UNSEEN``)."""
    out = np.tile(np.arange(256, dtype=np.uint8), (bands, 1)) if table is None else table.copy()
    out[:, 0] = UNSEEN
    return out


def stack_model_tables(harmonisation: Harmonisation | None, stack) -> tuple[list[np.ndarray], list[bool]] | None:
    """Per date of a ``core.raster_stack.RasterStack``, the ``[C, 256]`` uint8 table a harmonising model
    reads it through (``model_table``), and whether the date is stretched (not left as it is); None without
    ``harmonisation`` or for rasters that are not uint8. The engine and training read dates so."""
    if harmonisation is None or stack.dtype != np.uint8:
        return None
    tables = stack_tables(harmonisation, stack)
    return [model_table(table, stack.band_count) for table in tables], [table is not None for table in tables]


def harmonised(dates: np.ndarray, harmonisation: Harmonisation | None) -> np.ndarray:
    """An in-memory ``[T, C, H, W]`` uint8 stack as a harmonising model reads it: each date harmonised,
    its no data white (``model_table``; a copy; as given without ``harmonisation``)."""
    if harmonisation is None:
        return dates
    out = dates.copy()
    for index, table in enumerate(date_tables(harmonisation, samples_of_dates(dates))):
        looked_up(model_table(table, dates.shape[1]), dates[index], out=out[index])
    return out
