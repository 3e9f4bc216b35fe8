"""How much of a road change map is false, for each change tolerance: ``timeseg-research change-check``.

Two pairs of periods, each run through the engine (``core.segment``, then ``core.change``) as the dock
runs them:

- **real**: Inn, 17 June and 25 September 2021 (``models.real_scene.UNSEEN_DATES``, a place no model
  trained on), one date per period. No road was built or removed in those three months, so every new or
  removed line of its change map is false;
- **simulated**: the bundled sample, 2016 and 2019 (five dates each), against its traced roads
  (``data/sample/labels.gpkg``): a 2019 road pixel farther than ``TOLERANCE_PX`` from every 2016 road is
  new. Precision, recall and F1 of the new-road pixels with that tolerance, as the real road scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio

from ..core.change import NEW, ChangeOptions, compute_change
from ..core.dates import dated_rasters
from ..core.raster_stack import DatedRaster, Grid
from ..core.segment import SegmentRequest, segment
from ..models.labels import _read_geometries
from ..models.real_scene import UNSEEN_DATES, _burn, _within
from ..models.road_scores import TOLERANCE_PX, HeldOut, RoadScores, counts

TOLERANCES = (0, 1, 2)
SAMPLE = Path("data/sample")


@dataclass(frozen=True)
class ChangeRow:
    tolerance_px: int
    real_new_km: float  # Inn: all false
    real_removed_km: float
    sample_precision: float  # of the new-road pixels, against the sample's new roads
    sample_recall: float
    sample_f1: float
    sample_removed_km: float  # the sample removes no road: all false

    def row(self) -> str:
        return (f"| {self.tolerance_px} | {self.real_new_km:.1f} / {self.real_removed_km:.1f} | "
                f"{self.sample_precision:.3f} | {self.sample_recall:.3f} | **{self.sample_f1:.3f}** | "
                f"{self.sample_removed_km:.1f} |")


def classes_of(rasters: Sequence[DatedRaster], model: Path, output: Path) -> Path:
    """One period through the engine (the model's default precision) -> its ``classes.tif``."""
    return segment(SegmentRequest(rasters=list(rasters), model_path=model, output_dir=output)).classes_path


def new_road_truth(labels: Path, grid: Grid) -> np.ndarray:
    """``[H, W]`` bool: the sample's 2019 road centre lines farther than the tolerance from every 2016 road."""
    def burned(layer: str) -> np.ndarray:
        return _burn(_read_geometries(labels, layer, grid), grid, all_touched=False)

    return burned("roads_2019") & ~_within(burned("roads_2016"), TOLERANCE_PX)


def new_road_scores(change_path: Path, truth: np.ndarray) -> RoadScores:
    """A change map's new pixels scored as the real road maps are (``models.road_scores``) against ``truth``."""
    with rasterio.open(change_path) as dataset:
        new = (dataset.read(1) == NEW).astype(np.float32)
    nothing = np.zeros_like(truth)
    return counts(new, HeldOut(np.zeros((3, *truth.shape), np.uint8), truth, nothing, nothing, nothing)).scores()


def run(model: Path, work: Path, sample: Path = SAMPLE, tolerances: Sequence[int] = TOLERANCES) -> list[ChangeRow]:
    """Each tolerance's row; the periods are segmented once, in ``work``. ``sample``: a simulated scene's
    folder (``timeseg simulate``: ``2016/``, ``2019/`` and ``labels.gpkg``)."""
    if not (sample / "labels.gpkg").is_file():
        raise FileNotFoundError(f"no simulated scene in {sample}: run make demo first (it simulates the sample)")
    inn = [classes_of([DatedRaster(scene.image, scene.date)], model, work / f"inn_{scene.date:%Y%m%d}")
           for scene in UNSEEN_DATES]
    periods = [classes_of(dated_rasters(sorted((sample / year).glob("*_TCI.tif"))), model, work / f"sample_{year}")
               for year in ("2016", "2019")]
    with rasterio.open(periods[1]) as dataset:
        grid = Grid(dataset.crs, dataset.transform, dataset.width, dataset.height)
    truth = new_road_truth(sample / "labels.gpkg", grid)
    rows = []
    for tolerance in tolerances:
        options = ChangeOptions(tolerance_px=tolerance)
        real = compute_change(*inn, work / f"inn_change_{tolerance}.tif", options)
        simulated = compute_change(*periods, work / f"sample_change_{tolerance}.tif", options)
        scores = new_road_scores(work / f"sample_change_{tolerance}.tif", truth)
        rows.append(ChangeRow(tolerance, real.new_length_m / 1000, real.removed_length_m / 1000, scores.precision,
                              scores.recall, scores.f1, simulated.removed_length_m / 1000))
    return rows


def table(rows: Sequence[ChangeRow]) -> str:
    return "\n".join([
        "| tolerance (px) | real, Inn June -> September: false new / removed km | simulated sample, new roads: "
        "precision | recall | F1 | false removed km |",
        "|---|---|---|---|---|---|",
        *(row.row() for row in rows)])
