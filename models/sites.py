"""Where training sites come from: simulated scenes or the user's rasters and labels."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from core.dates import dated_rasters, detect_date
from core.raster_stack import DatedRaster
from models.dataset import Site
from models.labels import LabelSource
from models.simulator import SIMULATOR_VERSION, simulate_scene


def simulated_sites(folder: Path, seeds: Sequence[int], size: int, dates_per_period: int = 5,
                    line_width_px: int = 3) -> list[Site]:
    """One road site per scene and period; scenes already written under ``folder`` are reused."""
    sites = []
    for seed in seeds:
        scene_folder = folder / f"v{SIMULATOR_VERSION}_scene_{seed:04d}_{size}px_{dates_per_period}dates"
        if not (scene_folder / "labels.gpkg").exists():  # written last: its presence means complete
            simulate_scene(scene_folder, seed, size=size, dates_per_period=dates_per_period)
        for year_folder in sorted(p for p in scene_folder.iterdir() if p.is_dir()):
            rasters = tuple(
                DatedRaster(path, detect_date(path)) for path in sorted(year_folder.glob("*_TCI.tif"))
            )
            labels = LabelSource(scene_folder / "labels.gpkg", "lines", f"roads_{year_folder.name}",
                                 line_width_px)
            sites.append(Site(rasters, labels))
    return sites


def user_site(images: Sequence[Path], labels: LabelSource, dates: str | None = None) -> Site:
    """A site from the user's dated rasters; dates (comma-separated YYYY-MM-DD) detected unless given."""
    return Site(tuple(dated_rasters(images, dates)), labels)
