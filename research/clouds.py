"""Paper B, section 4.2: the BiConvLSTM crop classifier trained on all observations and on
the subsets with less than 50 %, 25 %, 10 % cloud cover and the cloud-free ones.

All scenes of the simulated region share one acquisition schedule (``models.simulator.crops``),
so a subset is a set of dates, chosen by each date's cloud cover measured over the training
scenes, as paper B measured it per observation with fmask. No cloud mask enters the model:
the subsets only decide which observations it sees, in training and on the held-out scenes.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.atomic import write_text_atomic
from ..models.crops import classifier_options, crop_site, region_split
from ..models.dataset import Site
from ..models.labels import LabelSource
from ..models.settings import CropTraining
from ..models.simulator.crops import CROP_BANDS, CROP_CLASSES, CropScene
from ..models.sites import user_site
from ..models.training import plain_settings, train_classifier

log = logging.getLogger("timeseg.experiment")
# (name, upper cloud-cover limit): None keeps every date, 0 only the cloud-free ones.
CONDITIONS: tuple[tuple[str, float | None], ...] = (
    ("all", None), ("below_50", 0.50), ("below_25", 0.25), ("below_10", 0.10), ("cloud_free", 0.0),
)


@dataclass
class CloudExperiment(CropTraining):
    """Settings of the cloud-cover experiment: one crop training per condition."""

    conditions: list[str] = field(default_factory=lambda: [name for name, _ in CONDITIONS])


@dataclass
class CloudData:
    """Sites with all their dates, and the cloud cover of each date of the region."""

    train_sites: list[Site]
    validation_sites: list[Site]
    dates: list[dt.date]  # time order
    cover: np.ndarray  # [T] share of cloudy pixels of each date, 0..1
    class_names: list[str]
    bands: list[str]
    input_scale: float
    input_dtype: str
    about: str  # what the data is, for the model card


def simulated_cloud_data(experiment: CropTraining) -> CloudData:
    """The simulated crop region; each date's cover measured over the training scenes."""
    every_date = range(experiment.dates)
    train_scenes, val_scenes = region_split(experiment)
    return CloudData(
        [crop_site(s, every_date) for s in train_scenes], [crop_site(s, every_date) for s in val_scenes],
        [a.date for a in train_scenes[0].acquisitions], date_cloud_cover(train_scenes), list(CROP_CLASSES),
        list(CROP_BANDS), 1e-4, "uint16",
        f"TimeSeg crop simulator: {experiment.train_scenes} scenes of {experiment.scene_size} px")


def read_cloud_cover(path: Path) -> dict[dt.date, float]:
    """``date,cloud_cover`` lines (YYYY-MM-DD, share 0..1; a header line is allowed)."""
    cover = {}
    with open(path, newline="") as file:
        for number, row in enumerate(csv.reader(file), start=1):
            if not row or row[0].strip().lower() == "date":
                continue
            try:
                date, share = dt.date.fromisoformat(row[0].strip()), float(row[1])
            except (ValueError, IndexError):
                raise ValueError(f"{path}, line {number}: expected 'YYYY-MM-DD,share', got {','.join(row)!r}") from None
            if not 0 <= share <= 1:
                raise ValueError(f"{path}, line {number}: cloud cover {share} is not a share between 0 and 1")
            cover[date] = share
    return cover


def user_cloud_data(images: list[Path], labels: Path, validation_images: list[Path], validation_labels: Path,
                    cloud_cover_csv: Path, class_names: list[str], bands: list[str] | None,
                    input_scale: float, image_dates: str | None = None) -> CloudData:
    """Your dated rasters and label rasters (class codes, 255 unknown) and each date's cloud cover."""
    import rasterio

    train = user_site(images, LabelSource(labels, "raster"), image_dates)
    validation = user_site(validation_images, LabelSource(validation_labels, "raster"))
    cover_by_date = read_cloud_cover(cloud_cover_csv)
    dates = sorted({r.date for site in (train, validation) for r in site.rasters})
    missing = [d.isoformat() for d in dates if d not in cover_by_date]
    if missing:
        raise ValueError(f"{cloud_cover_csv} gives no cloud cover for {', '.join(missing)}: add a line per date")
    with rasterio.open(images[0]) as first:
        count, dtype = first.count, first.dtypes[0]
    if bands is not None and len(bands) != count:
        raise ValueError(f"{len(bands)} band names given, the rasters have {count} bands")
    return CloudData([train], [validation], dates, np.array([cover_by_date[d] for d in dates]), class_names,
                     bands or [f"band{i}" for i in range(1, count + 1)], input_scale, dtype,
                     f"user data: {len(images)} dates of {images[0].parent}")


def keep_dates(site: Site, dates: set[dt.date]) -> Site:
    """``site`` with only its rasters of ``dates``."""
    return Site(tuple(r for r in site.rasters if r.date in dates), site.labels)


def date_cloud_cover(scenes: list[CropScene]) -> np.ndarray:
    """Share of cloudy pixels ``[T]`` of each date over ``scenes`` (as fmask measures it per observation)."""
    return np.mean([scene.measured_cloud_cover for scene in scenes], axis=0)


def dates_below(cover: np.ndarray, limit: float | None) -> np.ndarray:
    """Indices of the dates kept: all (None), cloud-free (0) or with cover below ``limit``."""
    if limit is None:
        return np.arange(len(cover))
    return np.flatnonzero(cover == 0) if limit == 0 else np.flatnonzero(cover < limit)


def run_cloud_experiment(experiment: CloudExperiment, data: CloudData | None = None) -> dict[str, Any]:
    """Train one classifier per condition on ``data`` (default: the simulated crop region);
    write and return ``clouds.json``'s content."""
    known = dict(CONDITIONS)
    unknown = [name for name in experiment.conditions if name not in known]
    if unknown:
        raise ValueError(f"unknown condition(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    data = data or simulated_cloud_data(experiment)
    cover = data.cover
    results: dict[str, Any] = {
        "experiment": plain_settings(experiment),
        "data": data.about,
        "classes": data.class_names,
        "dates": [d.isoformat() for d in data.dates],
        "date_cloud_cover": [round(float(c), 4) for c in cover],
        "conditions": [],
    }
    for name in experiment.conditions:
        indices = dates_below(cover, known[name])
        kept = {data.dates[i] for i in indices}
        train_sites = [keep_dates(s, kept) for s in data.train_sites]
        val_sites = [keep_dates(s, kept) for s in data.validation_sites]
        if not all(site.rasters for site in [*train_sites, *val_sites]):
            raise ValueError(f"condition {name}: a site has no date with cloud cover below {known[name]}")
        started = time.time()
        log.info("condition %s: %d of %d dates", name, len(indices), len(cover))
        options = classifier_options(
            experiment, experiment.output / name, len(indices), len(indices),
            f"{data.about}, {len(indices)} of {len(cover)} dates ({name})",
            data.class_names, data.bands, data.input_scale, data.input_dtype)
        final = train_classifier(options, train_sites, val_sites, experiment.epochs)
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
    write_text_atomic(path, json.dumps(data, indent=1))
