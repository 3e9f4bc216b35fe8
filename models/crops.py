"""The crop-type classifier (paper B's BiConvLSTM) on the simulated crop region:
shared by the cloud-cover experiment and the shipped ``models/weights/crops.onnx``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.raster_stack import DatedRaster
from .dataset import Site
from .labels import LabelSource
from .settings import CropTraining, NetworkConfig, TrainOptions
from .simulator.crops import (
    CLOUD,
    CROP_BANDS,
    CROP_CLASSES,
    CropScene,
    crop_scene_complete,
    crop_schedule,
    read_crop_scene,
    simulate_crop_scene,
)
from .sites import VALIDATION_SEED_OFFSET
from .training import train_classifier

CROP_SIMULATOR_VERSION = 1  # raise when the crop simulator's output changes
REGION_SEED = 2016


def region_scenes(data_dir: Path, seeds: range, size: int, dates: int) -> list[CropScene]:
    """Crop scenes of the simulated region on its shared schedule, reused when already written."""
    schedule = crop_schedule(2016, dates, REGION_SEED)
    region = Path(data_dir) / f"v{CROP_SIMULATOR_VERSION}_region{REGION_SEED}_{dates}dates_{size}px"
    scenes = []
    for seed in seeds:
        folder = region / f"scene_{seed:07d}"
        scenes.append(read_crop_scene(folder) if crop_scene_complete(folder)
                      else simulate_crop_scene(folder, seed, schedule, size))
    return scenes


def crop_site(scene: CropScene, date_indices: Sequence[int]) -> Site:
    """A site of ``scene``'s dates at ``date_indices`` with its crop labels."""
    rasters = tuple(DatedRaster(scene.image_paths[i], scene.acquisitions[i].date) for i in date_indices)
    return Site(rasters, LabelSource(scene.labels_path, "raster"))


def classifier_options(experiment: CropTraining, output: Path, dates: int, min_dates: int, trained_on: str,
                       class_names: Sequence[str] = CROP_CLASSES, bands: Sequence[str] = CROP_BANDS,
                       input_scale: float = 1e-4, input_dtype: str = "uint16") -> TrainOptions:
    """Paper B's network and loss (cross entropy only) at the experiment's size; the data's
    classes and bands default to the crop simulator's (TOA reflectance x 10000)."""
    return TrainOptions(
        output=output,
        network=NetworkConfig("biconvlstm", len(bands), len(class_names), hidden_channels=experiment.hidden_channels),
        class_names=list(class_names), bands=list(bands), input_scale=input_scale, input_dtype=input_dtype,
        patch_size=experiment.patch_size, validation_patch_size=experiment.validation_patch_size,
        sequence_length=dates, min_sequence_length=min_dates, batch_size=experiment.batch_size,
        samples_per_epoch=experiment.samples_per_epoch, learning_rate=experiment.learning_rate,
        schedule="paper", alpha=1.0, seed=experiment.seed, trained_on=trained_on,
        tile_size=128, tiles_overlap=32, no_data_value=no_data_value(bands, input_scale), one_year=True,
    )


def no_data_value(bands: Sequence[str], input_scale: float) -> list[float] | None:
    """Where a date has no data the crop model reads an opaque cloud (the simulator's, in the rasters' units),
    which it learnt to pass over. With every second date beyond its swath's edge there, the accuracy (0.84 with
    every date) was 0.20 when they were read as 0, black land; 0.56 as cloud. None for other bands."""
    if list(bands) != list(CROP_BANDS):
        return None
    return [float(v) for v in np.rint(CLOUD / input_scale)]


def region_split(training: CropTraining) -> tuple[list[CropScene], list[CropScene]]:
    """The region's training scenes and its held-out scenes (seeds never trained on)."""
    def scenes(seeds: range) -> list[CropScene]:
        return region_scenes(training.data_dir, seeds, training.scene_size, training.dates)

    return (scenes(range(training.train_scenes)),
            scenes(range(VALIDATION_SEED_OFFSET, VALIDATION_SEED_OFFSET + training.validation_scenes)))


def train_crop_model(training: CropTraining, min_dates: int) -> dict[str, Any]:
    """The shipped crop model: every date of the region, cloudy or not; each batch keeps a
    random time-ordered subset of ``min_dates`` to all dates, so that the model also takes
    sparser series. Held-out metrics on all dates and on every second date."""
    train_scenes, val_scenes = region_split(training)
    every_date = range(training.dates)
    options = classifier_options(
        training, training.output, training.dates, min_dates,
        f"TimeSeg crop simulator (13-band Sentinel-2-like TOA reflectance, {training.dates} dates of 2016, "
        f"clouds and shadows on most dates, no cloud mask): {training.train_scenes} scenes of "
        f"{training.scene_size} px; held out: {training.validation_scenes} scenes")
    return train_classifier(options, [crop_site(s, every_date) for s in train_scenes],
                            [crop_site(s, every_date) for s in val_scenes], training.epochs,
                            {"every_second_date": lambda images: images[:, ::2]})
