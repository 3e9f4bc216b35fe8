"""Where training sites come from: simulated scenes or the user's rasters and labels."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..core.dates import dated_rasters, detect_date
from ..core.raster_stack import DatedRaster
from .dataset import Site
from .labels import LabelSource
from .simulator import SIMULATOR_VERSION, simulate_scene
from .simulator.landscape import Cover, make_landscape

TARGETS = ("roads", "mangroves")
VALIDATION_SEED_OFFSET = 10**6  # held-out scenes take seeds from here on, never used for training


def simulated_sites(folder: Path, seeds: Sequence[int], size: int, dates_per_period: int = 5,
                    line_width_px: int = 3, target: str = "roads") -> list[Site]:
    """Sites of simulated scenes; scenes already written under ``folder`` are reused.

    ``roads``: one site per scene and period (the road lines of that period).
    ``mangroves``: one site per scene, its last period (the mangrove polygons are drawn
    from the last period's land cover)."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}")
    sites = []
    for seed in seeds:
        scene_folder = folder / f"v{SIMULATOR_VERSION}_scene_{seed:04d}_{size}px_{dates_per_period}dates"
        if not (scene_folder / "labels.gpkg").exists():  # written last: its presence means complete
            simulate_scene(scene_folder, seed, size=size, dates_per_period=dates_per_period)
        year_folders = sorted(p for p in scene_folder.iterdir() if p.is_dir())
        if target == "mangroves":
            year_folders = year_folders[-1:]
        for year_folder in year_folders:
            rasters = tuple(
                DatedRaster(path, detect_date(path)) for path in sorted(year_folder.glob("*_TCI.tif"))
            )
            if target == "roads":
                labels = LabelSource(scene_folder / "labels.gpkg", "lines", f"roads_{year_folder.name}",
                                     line_width_px)
            else:
                labels = LabelSource(scene_folder / "labels.gpkg", "polygons", "mangroves")
            sites.append(Site(rasters, labels))
    return sites


def mangrove_scene_seeds(first_seed: int, count: int, size: int, min_share: float = 0.03) -> list[int]:
    """The first ``count`` scene seeds from ``first_seed`` on whose last period has at least
    ``min_share`` mangrove (most scenes have none); only the ground is drawn to decide."""
    seeds: list[int] = []
    seed = first_seed
    while len(seeds) < count:
        land = make_landscape(size, np.random.default_rng(seed))
        if (land.cover[-1] == Cover.MANGROVE).mean() >= min_share:
            seeds.append(seed)
        seed += 1
        if seed - first_seed > 200 * count:
            raise RuntimeError(f"fewer than {count} scenes with mangroves among seeds {first_seed}..{seed}")
    return seeds


def user_site(images: Sequence[Path], labels: LabelSource, dates: str | None = None) -> Site:
    """A site from the user's dated rasters; dates (comma-separated YYYY-MM-DD) detected unless given."""
    return Site(tuple(dated_rasters(images, dates)), labels)
