"""Training samples from dated rasters and a label layer: patches of image sequences.

A *site* is several dated rasters of one place (one grid, or warped onto the first
one's) with one label layer. A sample is a patch ``[T, C, p, p]`` of T dates in time
order, its labels ``[p, p]`` and a validity mask ``[p, p]`` (False where the label is
unknown or no date has data: left out of the loss).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from rasterio.windows import Window
from torch.utils.data import Dataset

from ..core.harmonisation import Harmonisation, looked_up, stack_model_tables
from ..core.model_inputs import fit_stack
from ..core.normalisation import Normalisation
from ..core.raster_stack import DatedRaster, RasterStack
from .data_edges import with_data_edge
from .labels import LABEL_NODATA, LabelSource, label_raster
from .weather import Weather, overcast_date, weathered


@dataclass(frozen=True)
class Site:
    """Dated rasters of one place and their labels; ``window`` restricts the site to a part of
    the first raster's grid (a spatial split): nothing outside it is ever read."""

    rasters: tuple[DatedRaster, ...]
    labels: LabelSource
    window: Window | None = None


class OpenSite(contextlib.AbstractContextManager):
    """A site's raster stack, opened, with its labels rasterised on the stack's grid; with
    ``harmonisation`` its dates are read harmonised as the engine would harmonise the whole rasters;
    with a card's ``bands`` and ``input_dtype`` the rasters are read as the engine reads them for that
    card (bands by name, reflectance as true colour: ``core.model_inputs``)."""

    def __init__(self, site: Site, harmonisation: Harmonisation | None = None, bands: list[str] | None = None,
                 input_dtype: str = "") -> None:
        self.stack = RasterStack(site.rasters)
        try:
            if bands:
                fit_stack(self.stack, bands, input_dtype)
            grid = self.stack.grid
            self.window = site.window or Window(0, 0, grid.width, grid.height)
            labels = label_raster(site.labels, grid)
            rows, cols = self.window.toslices()
            self.labels = labels[rows, cols]
            model_tables = stack_model_tables(harmonisation, self.stack)  # no data read as the engine reads it
            self.tables = [None] * len(site.rasters) if model_tables is None else model_tables[0]
        except BaseException:
            self.stack.__exit__(None, None, None)
            raise

    @property
    def shape(self) -> tuple[int, int]:
        return self.labels.shape

    def read(self, row: int, col: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pixels ``[T, C, s, s]``, per-date validity ``[T, s, s]`` and labels ``[s, s]``
        of the square window at (row, col) of the site; outside the site is nodata."""
        height, width = self.shape
        pixels = np.zeros((len(self.stack.rasters), self.stack.band_count, size, size), self.stack.dtype)
        valid = np.zeros((len(self.stack.rasters), size, size), bool)
        labels = np.full((size, size), LABEL_NODATA, dtype=np.uint8)
        rows, cols = min(size, height - row), min(size, width - col)
        if rows > 0 and cols > 0:
            inside = Window(int(self.window.col_off) + col, int(self.window.row_off) + row, cols, rows)
            pixels[:, :, :rows, :cols], valid[:, :rows, :cols] = self.stack.read(inside)
            labels[:rows, :cols] = self.labels[row : row + rows, col : col + cols]
            for date, table in enumerate(self.tables):
                if table is not None:
                    looked_up(table, pixels[date], out=pixels[date])
        return pixels, valid, labels

    def __exit__(self, *exc_info) -> None:
        self.stack.__exit__(*exc_info)


def choose_dates(count: int, length: int | None, rng: np.random.Generator | None) -> np.ndarray:
    """Indices of ``length`` of ``count`` dates, in time order: a random subset when
    ``rng`` is given (training), else the last ``length`` (evaluation)."""
    if length is None or length >= count:
        return np.arange(count)
    if rng is None:
        return np.arange(count - length, count)
    return np.sort(rng.choice(count, size=length, replace=False))


def augment(images: np.ndarray, arrays: Sequence[np.ndarray], rng: np.random.Generator):
    """The same random flip and 90-degree rotation (paper A) of ``images`` ``[..., h, w]``
    and each of ``arrays`` ``[h, w]``."""
    turns = int(rng.integers(4))
    flip = bool(rng.integers(2))

    def apply(a: np.ndarray) -> np.ndarray:
        a = np.rot90(a, turns, axes=(-2, -1))
        return np.ascontiguousarray(a[..., ::-1] if flip else a)

    return apply(images), [apply(a) for a in arrays]


class SequencePatches(Dataset):
    """Patches of open sites.

    ``random`` mode draws ``samples_per_epoch`` random windows (deterministic from
    ``seed`` and the index, so the same index gives the same sample) from sites drawn
    with ``site_weights`` (default: equal), random dates and augmentations; ``grid`` mode
    tiles every site without overlap, last dates, no augmentation (validation).

    A site of one date (a real labelled image) gives sequences of that date repeated, made
    different by ``weather``. With ``weather`` (true-colour sites, raw values 0..1/``input_scale``),
    random mode also draws conventions, haze and clouds (``models.weather``); with ``data_edges``, that
    share of its samples holds an edge of the data, white beyond it as a harmonising model reads no data
    (``models.data_edges``), drawn from its own random stream so that the rest of each sample stays as without.

    Items: ``images`` float32 ``[T, C, p, p]`` (raw values through ``normalisation``),
    ``labels`` int64 ``[p, p]``, ``valid`` bool ``[p, p]`` (False where the label is unknown or
    every date is hidden), and with ``weather.overcast_frames`` N > 0 ``overcast`` float32
    ``[N, C, p, p]``: fully overcast dates, normalised, for the sequence stage to insert.
    """

    def __init__(
        self,
        sites: Sequence[OpenSite],
        patch_size: int = 512,
        sequence_length: int | None = None,
        normalisation: Normalisation = Normalisation(1 / 255),
        mode: str = "random",
        samples_per_epoch: int = 256,
        seed: int = 0,
        weather: Weather | None = None,
        site_weights: Sequence[float] | None = None,
        data_edges: float = 0.0,
    ) -> None:
        self.sites = list(sites)
        self.data_edges = data_edges
        self.weather = weather
        self.white = 1 / normalisation.input_scale  # the raw value of full brightness (255 for a TCI)
        weights = np.ones(len(self.sites)) if site_weights is None else np.asarray(site_weights, dtype=float)
        if len(weights) != len(self.sites) or (weights < 0).any() or weights.sum() <= 0:
            raise ValueError("site_weights: one non-negative weight per site, not all zero")
        self.site_probabilities = weights / weights.sum()
        self.patch_size = patch_size
        self.sequence_length = sequence_length
        self.normalisation = normalisation
        self.mode = mode
        self.seed = seed
        self.epoch = 0
        if mode == "grid":
            self.windows = [
                (index, row, col)
                for index, site in enumerate(self.sites)
                for row in range(0, site.shape[0], patch_size)
                for col in range(0, site.shape[1], patch_size)
            ]
        elif mode == "random":
            self.windows = []
            self.samples_per_epoch = samples_per_epoch
        else:
            raise ValueError(f"mode must be 'random' or 'grid', got {mode!r}")

    def __len__(self) -> int:
        return len(self.windows) if self.mode == "grid" else self.samples_per_epoch

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = None
        if self.mode == "grid":
            site_index, row, col = self.windows[index]
        else:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            site_index = int(rng.choice(len(self.sites), p=self.site_probabilities))
            height, width = self.sites[site_index].shape
            row = int(rng.integers(0, max(height - self.patch_size, 0) + 1))
            col = int(rng.integers(0, max(width - self.patch_size, 0) + 1))
        pixels, valid_dates, labels = self.sites[site_index].read(row, col, self.patch_size)
        dates = choose_dates(len(pixels), self.sequence_length, rng)
        pixels, valid_dates = pixels[dates], valid_dates[dates]
        if len(pixels) == 1 and self.sequence_length and self.sequence_length > 1:
            pixels = np.repeat(pixels, self.sequence_length, axis=0)
            valid_dates = np.repeat(valid_dates, self.sequence_length, axis=0)
        frames = None
        if rng is not None and self.weather is not None:
            pixels, hidden = weathered(pixels, self.weather, rng, self.white)
            valid_dates = valid_dates & ~hidden
            if self.weather.overcast_frames:
                frames = np.stack([overcast_date(pixels.shape[-2:], rng, self.white)
                                   for _ in range(self.weather.overcast_frames)])
        if rng is not None and self.data_edges:
            edge_rng = np.random.default_rng([self.seed, self.epoch, index, 1])
            if edge_rng.random() < self.data_edges:
                pixels, valid_dates, cut = with_data_edge(pixels, valid_dates, self.white, edge_rng)
                if frames is not None:  # an overcast date inserted among dates that all end there ends there too
                    frames = np.where(cut.all(axis=0), self.white, frames).astype(frames.dtype)
        item = {} if frames is None else {"overcast": torch.from_numpy(self.normalisation.apply(frames))}
        valid = (labels != LABEL_NODATA) & valid_dates.any(axis=0)
        if rng is not None:
            pixels, (labels, valid) = augment(pixels, [labels, valid], rng)
        return {
            "images": torch.from_numpy(self.normalisation.apply(pixels)),
            "labels": torch.from_numpy(np.where(valid, labels, 0).astype(np.int64)),
            "valid": torch.from_numpy(valid),
            **item,
        }


def band_statistics(sites: Sequence[OpenSite], input_scale: float, windows: int = 64, size: int = 128,
                    seed: int = 0) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-band mean and std (scaled units) over the valid pixels of random windows."""
    rng = np.random.default_rng(seed)
    sums = sums_sq = count = 0
    for _ in range(windows):
        site = sites[int(rng.integers(len(sites)))]
        row = int(rng.integers(0, max(site.shape[0] - size, 0) + 1))
        col = int(rng.integers(0, max(site.shape[1] - size, 0) + 1))
        pixels, valid, _ = site.read(row, col, size)
        values = pixels.transpose(1, 0, 2, 3)[:, valid].astype(np.float64) * input_scale  # [C, n]
        sums = sums + values.sum(axis=1)
        sums_sq = sums_sq + (values**2).sum(axis=1)
        count += values.shape[1]
    mean = sums / count
    std = np.sqrt(np.maximum(sums_sq / count - mean**2, 1e-12))
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)
