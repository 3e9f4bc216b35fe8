"""Paper B, section 4.2: the BiConvLSTM crop classifier trained on all observations and on
the subsets with less than 50 %, 25 %, 10 % cloud cover and the cloud-free ones.

All scenes of the simulated region share one acquisition schedule (``models.simulator.crops``),
so a subset is a set of dates, chosen by each date's cloud cover measured over the training
scenes, as paper B measured it per observation with fmask. No cloud mask enters the model:
the subsets only decide which observations it sees, in training and on the held-out scenes.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.crops import VALIDATION_SEED_OFFSET, CropTraining, classifier_options, crop_site, region_scenes
from models.simulator.crops import CROP_CLASSES, CropScene
from models.training import train_classifier

log = logging.getLogger("timeseg.experiment")
# (name, upper cloud-cover limit): None keeps every date, 0 only the cloud-free ones.
CONDITIONS: tuple[tuple[str, float | None], ...] = (
    ("all", None), ("below_50", 0.50), ("below_25", 0.25), ("below_10", 0.10), ("cloud_free", 0.0),
)


@dataclass
class CloudExperiment(CropTraining):
    """Settings of the cloud-cover experiment: one crop training per condition."""

    conditions: list[str] = field(default_factory=lambda: [name for name, _ in CONDITIONS])


def date_cloud_cover(scenes: list[CropScene]) -> np.ndarray:
    """Share of cloudy pixels ``[T]`` of each date over ``scenes`` (as fmask measures it per observation)."""
    return np.mean([scene.measured_cloud_cover for scene in scenes], axis=0)


def dates_below(cover: np.ndarray, limit: float | None) -> np.ndarray:
    """Indices of the dates kept: all (None), cloud-free (0) or with cover below ``limit``."""
    if limit is None:
        return np.arange(len(cover))
    return np.flatnonzero(cover == 0) if limit == 0 else np.flatnonzero(cover < limit)


def run_cloud_experiment(experiment: CloudExperiment) -> dict[str, Any]:
    """Train one classifier per condition; write and return ``clouds.json``'s content."""
    known = dict(CONDITIONS)
    unknown = [name for name in experiment.conditions if name not in known]
    if unknown:
        raise ValueError(f"unknown condition(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    train_scenes = region_scenes(experiment.data_dir, range(experiment.train_scenes), experiment.scene_size,
                                 experiment.dates)
    val_scenes = region_scenes(experiment.data_dir, range(VALIDATION_SEED_OFFSET,
                                                          VALIDATION_SEED_OFFSET + experiment.validation_scenes),
                               experiment.scene_size, experiment.dates)
    cover = date_cloud_cover(train_scenes)
    results: dict[str, Any] = {
        "experiment": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(experiment).items()},
        "classes": list(CROP_CLASSES),
        "dates": [a.date.isoformat() for a in train_scenes[0].acquisitions],
        "date_cloud_cover": [round(float(c), 4) for c in cover],
        "conditions": [],
    }
    for name in experiment.conditions:
        indices = dates_below(cover, known[name])
        if len(indices) == 0:
            raise ValueError(f"condition {name}: no date has cloud cover below {known[name]}")
        started = time.time()
        log.info("condition %s: %d of %d dates", name, len(indices), len(cover))
        options = classifier_options(
            experiment, experiment.output / name, len(indices), len(indices),
            f"TimeSeg crop simulator: {experiment.train_scenes} scenes of {experiment.scene_size} px, "
            f"{len(indices)} of {len(cover)} dates of 2016 ({name})")
        final = train_classifier(options, [crop_site(s, indices) for s in train_scenes],
                                 [crop_site(s, indices) for s in val_scenes], experiment.epochs)
        history = json.loads((options.output / "history.json").read_text())["history"]
        results["conditions"].append({
            "name": name, "cloud_cover_below": known[name], "dates_used": len(indices),
            "date_indices": [int(i) for i in indices],
            "mean_cloud_cover_of_dates": float(cover[indices].mean()),
            "final": final["classifier"], "history": history, "seconds": round(time.time() - started, 1),
        })
        write_json(experiment.output / "clouds.json", results)
    return results


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=1))
    partial.replace(path)
