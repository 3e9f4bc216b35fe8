"""Roads scored against hand-traced centre lines of a held-out area (``models/real/``).

Scores (the usual relaxed measures for thin objects):

- precision: share of the pixels called road (P >= threshold) that lie within ``TOLERANCE_PX``
  of a traced centre line;
- recall: share of the traced centre-line pixels that have a pixel called road within
  ``TOLERANCE_PX``;
- F1 of the two; and where the false roads fall: the share of the pixels called road that
  lie inside settlements or water but farther than the tolerance from any line.

Left out of both: the surroundings of ``uncertain`` lines and the ``unlabelled`` areas. Scores of
several held-out areas are pooled by adding their pixel counts (``RoadCounts``), not by averaging.
How sure an F1 is: a block bootstrap (``bootstrap_f1``) draws the areas' 128 px blocks again with
replacement, and the central 95 % of the draws' F1 (``interval``) is its interval; the draws of two maps
of the same areas are paired, so the interval of their difference is that of the change alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import rasterio
from rasterio.features import geometry_mask

from ..core.raster_stack import Grid
from ..core.true_colour import TCI_SATURATION
from .real_scene import (
    REAL_SCENES,
    ROAD_KINDS,
    SELECTION_GAP_PX,
    SELECTION_STRIP_PX,
    UNCERTAIN,
    UNSEEN_DATES,
    RealScene,
    _burn,
    _features,
    _within,
    write_split,
)
from .weather import L2A_TCI_SATURATION

TOLERANCE_PX = 2
THRESHOLD = 0.5
# F1's uncertainty: a bootstrap of 128 px (1.28 km) blocks of the held-out areas, wide enough that most
# false roads (a shore, a field edge) and most road stretches lie in one or two of them
BLOCK_PX = 128
BOOTSTRAP_DRAWS = 1000
INTERVAL_LEVEL = 0.95


@dataclass(frozen=True)
class HeldOut:
    """The held-out window: its TCI ``[3, H, W]`` uint8 and the masks of ``[H, W]`` scoring needs."""

    tci: np.ndarray
    centre: np.ndarray  # traced road centre lines, 1 px
    ignored: np.ndarray  # near uncertain lines, unlabelled, outside the held-out area
    settlement: np.ndarray
    water: np.ndarray

    def within_columns(self, first: int, end: int) -> HeldOut:
        """The same window with everything outside its columns ``first`` to ``end`` (exclusive) ignored:
        a model still reads the whole window, as the engine reads a whole raster."""
        outside = np.ones(self.ignored.shape, bool)
        outside[:, first:end] = False
        return HeldOut(self.tci, self.centre & ~outside, self.ignored | outside, self.settlement, self.water)


@dataclass(frozen=True)
class RoadScores:
    precision: float
    recall: float
    f1: float
    road_share: float  # of the scored pixels, called road
    false_in_settlements: float  # of the pixels called road: in settlements, off every line
    false_in_water: float
    off_road_probability: float  # mean P(road) of the scored pixels off every line: a calibrated map is near 0

    def row(self) -> str:
        return (f"{self.precision:.3f} | {self.recall:.3f} | **{self.f1:.3f}** | {self.road_share:.1%} | "
                f"{self.false_in_settlements:.1%} | {self.false_in_water:.1%} | {self.off_road_probability:.3f}")


@dataclass(frozen=True)
class RoadCounts:
    """The pixel counts behind ``RoadScores``; counts of several areas add up."""

    called: int  # called road, scored
    called_near_line: int
    centre: int  # traced centre-line pixels, scored
    centre_found: int  # with a pixel called road within the tolerance
    scored: int
    false_in_settlements: int
    false_in_water: int
    off_road: int  # scored pixels farther than the tolerance from every line
    off_road_probability_sum: float  # their P(road), summed

    @classmethod
    def of(cls, blocks: np.ndarray) -> RoadCounts:
        """The counts of ``block_counts``' blocks ``[..., 9]``, added up."""
        values = np.asarray(blocks).reshape(-1, len(fields(cls))).sum(axis=0)
        return cls(*(int(round(v)) for v in values[:-1]), float(values[-1]))

    def __add__(self, other: RoadCounts) -> RoadCounts:
        return RoadCounts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def scores(self) -> RoadScores:
        called = max(self.called, 1)
        precision = self.called_near_line / called if self.called else 0.0
        recall = self.centre_found / max(self.centre, 1)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return RoadScores(precision, recall, f1, self.called / max(self.scored, 1),
                          self.false_in_settlements / called, self.false_in_water / called,
                          self.off_road_probability_sum / max(self.off_road, 1))


def held_out(folder: Path, scene: RealScene = REAL_SCENES[0], split: str = "heldout") -> HeldOut:
    """The held-out window of ``scene``'s image (``split="train"``: its train window, with the train
    lines), cropped, with its masks."""
    gpkg = scene.labels
    image_path, labels_path = write_split(gpkg, scene.image, split, folder)
    with rasterio.open(image_path) as dataset:
        tci, grid = dataset.read(), Grid.of(dataset)
    with rasterio.open(labels_path) as dataset:
        labels = dataset.read(1)
    shape = (grid.height, grid.width)
    roads = _features(gpkg, "roads", grid)
    centre = _burn([g for g, a in roads if a["kind"] in ROAD_KINDS and a["split"] == split], grid, False)
    near_uncertain = _within(_burn([g for g, a in roads if a["kind"] == UNCERTAIN], grid, False), TOLERANCE_PX + 2)
    # labels are 255 outside the area, in unlabelled boxes and around lines; only the first two are ignored here
    ignored = near_uncertain | ((labels == 255) & ~_within(centre, 6))
    centre &= ~ignored
    cover = _features(gpkg, "land_cover", grid)

    def polygons(kind: str) -> np.ndarray:
        geometries = [g for g, a in cover if a["kind"] == kind]
        return ~geometry_mask(geometries, shape, grid.transform) if geometries else np.zeros(shape, bool)

    return HeldOut(tci, centre, ignored, polygons("settlement"), polygons("water"))


# where a road model can be scored on a real scene: the held-out area; the train area's selection strip
# (never trained on: where each stage chooses its epoch); the rest of the train area, which it trained on
AREAS = ("heldout", "strips", "trained")


def area_truth(folder: Path, scene: RealScene, area: str = "heldout") -> HeldOut:
    """``scene``'s ``area`` (one of ``AREAS``) with its masks. The strip and the trained part are the
    columns of the train window that ``real_scene.real_training_sites`` gives them, the rest of the
    window ignored (so that a model reads all of it, and its blocks without scored pixels count for
    nothing in ``block_counts``)."""
    if area == "heldout":
        return held_out(folder, scene)
    train = held_out(folder, scene, "train")
    width = train.tci.shape[2]
    if area == "strips":
        return train.within_columns(width - SELECTION_STRIP_PX, width)
    return train.within_columns(0, width - SELECTION_STRIP_PX - SELECTION_GAP_PX)


def l2a_like(tci: np.ndarray) -> np.ndarray:
    """An L1C TCI ``[3, H, W]`` -> the L2A TCI convention (surface reflectance 0..0.2 -> 0..255),
    the atmosphere taken off by dark-object subtraction (each band's 0.5th percentile, less
    0.005): an approximation of Sen2Cor's product, as no L2A of this date ships."""
    reflectance = tci.astype(np.float32) / 255 * TCI_SATURATION
    dark = np.percentile(reflectance, 0.5, axis=(1, 2)) - 0.005
    surface = np.maximum(reflectance - dark[:, None, None], 0)
    return np.clip(np.rint(surface / L2A_TCI_SATURATION * 255), 1, 255).astype(np.uint8)


def counts(probability: np.ndarray, truth: HeldOut, threshold: float = THRESHOLD) -> RoadCounts:
    """The pixel counts of ``probability`` ``[H, W]`` against ``truth``."""
    return RoadCounts.of(block_counts(probability, truth, threshold, block_px=max(probability.shape)))


def block_counts(probability: np.ndarray, truth: HeldOut, threshold: float = THRESHOLD,
                 block_px: int = BLOCK_PX) -> np.ndarray:
    """``[blocks, 9]`` float64: ``RoadCounts``' fields for each ``block_px`` square of the area (row by
    row, the last ones cut short), the neighbourhoods taken over the whole area: the blocks add up to
    the area's counts."""
    called = (probability >= threshold) & ~truth.ignored
    near_truth, near_called = _within(truth.centre, TOLERANCE_PX), _within(called, TOLERANCE_PX)
    false = called & ~near_truth
    off_road = ~truth.ignored & ~near_truth
    terms = (called, called & near_truth, truth.centre, truth.centre & near_called, ~truth.ignored,
             false & truth.settlement, false & truth.water, off_road, np.where(off_road, probability, 0.0))
    height, width = probability.shape
    rows, columns = -(-height // block_px), -(-width // block_px)
    padded = np.zeros((rows * block_px, columns * block_px))  # one term at a time: one float64 area in memory
    sums = []
    for term in terms:
        padded[:height, :width] = term
        sums.append(padded.reshape(rows, block_px, columns, block_px).sum(axis=(1, 3)).ravel())
    return np.stack(sums, axis=1)


def bootstrap_f1(areas: Sequence[Sequence[np.ndarray]], draws: int = BOOTSTRAP_DRAWS, seed: int = 0) -> np.ndarray:
    """``[draws, maps]``: pooled F1 of each map over a block bootstrap of the held-out areas. ``areas``: per
    area, the ``block_counts`` of each map (the same maps in the same order everywhere). Each draw takes
    as many blocks of each area as it has, with replacement, the same blocks for every map: differences
    between maps are paired."""
    rng = np.random.default_rng(seed)
    totals = 0.0
    for maps in areas:
        blocks = len(maps[0])
        picks = np.stack([np.bincount(rng.integers(0, blocks, blocks), minlength=blocks) for _ in range(draws)])
        totals = totals + np.einsum("db,mbf->dmf", picks.astype(np.float64), np.stack(maps))
    return np.array([[RoadCounts.of(total).scores().f1 for total in draw] for draw in totals])


def interval(values: np.ndarray, level: float = INTERVAL_LEVEL) -> tuple[float, float]:
    """The central ``level`` of ``values`` (bootstrap draws): ``(low, high)``."""
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def f1_interval(areas: Sequence[np.ndarray]) -> tuple[float, float]:
    """The 95 % interval of one map's pooled F1: ``areas``, the map's ``block_counts`` per held-out area."""
    return interval(bootstrap_f1([[blocks] for blocks in areas])[:, 0])


def scores(probability: np.ndarray, truth: HeldOut, threshold: float = THRESHOLD) -> RoadScores:
    """Relaxed precision, recall and F1 of ``probability`` ``[H, W]`` against ``truth``."""
    return counts(probability, truth, threshold).scores()


def pooled(per_area: Sequence[RoadCounts]) -> RoadScores:
    """Scores of several held-out areas together."""
    total = per_area[0]
    for area in per_area[1:]:
        total = total + area
    return total.scores()


def rounded(result: RoadScores) -> dict[str, float]:
    """``result`` as a dict, to 4 decimals (for JSON and cards)."""
    return {k: round(v, 4) for k, v in asdict(result).items()}


def _checkpoint_model(checkpoint: Path):
    """-> ``probability(dates)``: TCI dates ``[T, 3, H, W]`` -> P(road) ``[H, W]``, whole-window in PyTorch."""
    import torch

    from .checkpoint import checkpoint_inputs, load_checkpoint

    network, _, saved = load_checkpoint(checkpoint)
    inputs = checkpoint_inputs(saved)

    def probability(dates: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return network(torch.from_numpy(inputs(dates))[None])[0, 0].numpy()

    return probability


def checkpoint_scores(checkpoint: Path, folder: Path, scenes: Sequence[RealScene] = REAL_SCENES
                      ) -> dict[str, dict]:
    """A road checkpoint on the held-out areas' clear dates, as L1C and L2A TCI, run whole-window
    in PyTorch (for the model card's metrics): ``{"l1c_tci": scores, "l2a_tci": scores}`` pooled
    over ``scenes``, with the 95 % interval of their F1 (``f1_interval``), and the same per scene
    under ``"scenes"``."""
    probability = _checkpoint_model(checkpoint)
    blocks: dict[str, dict[str, np.ndarray]] = {}
    for scene in scenes:
        truth = held_out(folder / scene.name, scene)
        for name, tci in (("l1c_tci", truth.tci), ("l2a_tci", l2a_like(truth.tci))):
            blocks.setdefault(name, {})[scene.name] = block_counts(probability(tci[None]), truth)
    results: dict[str, dict] = {}
    for name, per_scene in blocks.items():
        low, high = f1_interval(list(per_scene.values()))
        results[name] = {**rounded(RoadCounts.of(np.concatenate(list(per_scene.values()))).scores()),
                         "f1_interval": [round(low, 4), round(high, 4)]}
    results["scenes"] = {scene.name: {name: rounded(RoadCounts.of(blocks[name][scene.name]).scores())
                                      for name in blocks} for scene in scenes}
    return results


def unseen_held_out(folder: Path, dates: Sequence[RealScene] = UNSEEN_DATES) -> dict[str, HeldOut]:
    """The place no model is trained on, whole: its held-out window per clear date (ISO date -> window,
    written under ``folder / <date>``), in time order; the masks are the same on every date."""
    return {scene.date.isoformat(): held_out(folder / scene.date.isoformat(), scene) for scene in dates}


def unseen_place_scores(checkpoint: Path, folder: Path, dates: Sequence[RealScene] = UNSEEN_DATES
                        ) -> dict[str, dict]:
    """A road checkpoint on the place no model is trained on (``dates``: its clear dates, one grid), L1C
    TCI, whole-window in PyTorch: ``{"one_date": {date: scores}, "all_dates": scores}``."""
    probability = _checkpoint_model(checkpoint)
    truths = unseen_held_out(folder, dates)
    truth = next(iter(truths.values()))
    return {"one_date": {day: rounded(scores(probability(t.tci[None]), truth)) for day, t in truths.items()},
            "all_dates": rounded(scores(probability(np.stack([t.tci for t in truths.values()])), truth))}
