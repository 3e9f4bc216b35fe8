"""Paper A, single date versus sequence: the FCN on one date against FCN + ConvLSTM on 5
dates, for roads and for mangroves, over several training seeds.

Each run is one ``models.training.train``: its FCN stage gives the single-date model, its
sequence stage the FCN + ConvLSTM; both are scored on the same held-out scenes (the FCN
on every date of each held-out sequence, the sequence model once per sequence).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..models.dataset import Site
from ..models.settings import NetworkConfig, TrainOptions
from ..models.sites import VALIDATION_SEED_OFFSET, mangrove_scene_seeds, simulated_sites
from ..models.training import plain_settings, train
from .clouds import write_json

log = logging.getLogger("timeseg.experiment")
TASK_CLASS = {"roads": "road", "mangroves": "mangrove"}
# Paper A, validation pixel accuracy: FCN on one date -> FCN + ConvLSTM on 5 dates.
PAPER_A_ACCURACY = {"roads": (0.911, 0.934), "mangroves": (0.801, 0.863)}
METRICS = ("accuracy", "iou", "f1")


@dataclass
class SequenceExperiment:
    """Settings; the defaults run 6 trainings on a 2-core CPU in well under an hour."""

    output: Path
    data_dir: Path = Path("data/simulated")
    tasks: list[str] = field(default_factory=lambda: ["roads", "mangroves"])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    train_scenes: int = 12
    validation_scenes: int = 4
    scene_size: int = 256
    dates: int = 5
    patch_size: int = 128
    fcn_epochs: int = 12
    sequence_epochs: int = 4
    samples_per_epoch: int = 192
    depth: int = 4
    base_channels: int = 16
    hidden_channels: int = 8
    learning_rate: float = 3e-3
    schedule: str = "constant"  # short runs: paper A's /10, /100 steps would come too early


def task_sites(experiment: SequenceExperiment, task: str) -> tuple[list[Site], list[Site], dict[str, Any]]:
    """Training and held-out sites of a task, and what they are made of."""
    size, dates = experiment.scene_size, experiment.dates
    if task == "roads":
        train_seeds = list(range(experiment.train_scenes))
        val_seeds = list(range(VALIDATION_SEED_OFFSET, VALIDATION_SEED_OFFSET + experiment.validation_scenes))
    elif task == "mangroves":  # only scenes that have mangroves: most have none
        train_seeds = mangrove_scene_seeds(0, experiment.train_scenes, size)
        val_seeds = mangrove_scene_seeds(VALIDATION_SEED_OFFSET, experiment.validation_scenes, size)
    else:
        raise ValueError(f"task must be one of {', '.join(TASK_CLASS)}, got {task!r}")
    train_sites = simulated_sites(experiment.data_dir, train_seeds, size, dates, target=task)
    val_sites = simulated_sites(experiment.data_dir, val_seeds, size, dates, target=task)
    about = {"train_scene_seeds": train_seeds, "validation_scene_seeds": val_seeds,
             "train_sites": len(train_sites), "validation_sites": len(val_sites)}
    return train_sites, val_sites, about


def run_sequence_experiment(experiment: SequenceExperiment) -> dict[str, Any]:
    """Train every task x seed; write and return ``sequence.json``'s content."""
    results: dict[str, Any] = {
        "experiment": plain_settings(experiment),
        "paper_a_accuracy": {task: list(values) for task, values in PAPER_A_ACCURACY.items()},
        "tasks": {},
    }
    for task in experiment.tasks:
        train_sites, val_sites, about = task_sites(experiment, task)
        runs = []
        for seed in experiment.seeds:
            started = time.time()
            log.info("%s, seed %d", task, seed)
            options = TrainOptions(
                output=experiment.output / f"{task}_seed{seed}",
                network=NetworkConfig("fcn_convlstm", 3, 1, experiment.depth, experiment.base_channels,
                                      experiment.hidden_channels, context_channels=0),  # paper A
                class_names=["background", TASK_CLASS[task]], patch_size=experiment.patch_size,
                sequence_length=experiment.dates, min_sequence_length=experiment.dates,
                fcn_epochs=experiment.fcn_epochs, sequence_epochs=experiment.sequence_epochs,
                samples_per_epoch=experiment.samples_per_epoch, learning_rate=experiment.learning_rate,
                schedule=experiment.schedule, seed=seed, trained_on=f"TimeSeg simulator, {task} experiment",
            )
            final = train(options, train_sites, val_sites)
            runs.append({"seed": seed, "single_date_fcn": final["single_date_fcn"],
                         "sequence": final["sequence"], "seconds": round(time.time() - started, 1)})
            results["tasks"][task] = {**about, "runs": runs, "summary": summarise(runs)}
            write_json(experiment.output / "sequence.json", results)
    return results


def summarise(runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Mean and standard deviation over seeds of each model's metrics and of their difference."""
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for model in ("single_date_fcn", "sequence", "difference"):
        summary[model] = {}
        for metric in METRICS:
            if model == "difference":
                values = [r["sequence"][metric] - r["single_date_fcn"][metric] for r in runs]
            else:
                values = [r[model][metric] for r in runs]
            summary[model][metric] = {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1))
                                      if len(values) > 1 else 0.0, "min": float(np.min(values)),
                                      "max": float(np.max(values))}
    return summary
