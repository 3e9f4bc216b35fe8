"""Crop-type scenes for paper B: a year of 13-band Sentinel-2-like observations, cloudy or not.

Field parcels carry crop types that differ by their seasonal course (when the canopy
greens up, flowers, dries and is harvested); forest, water and villages are "other".
All scenes of one *region* share one acquisition schedule, as the patches of one
Sentinel-2 tile do: the same dates, each with one cloud-cover share, so that paper B's
subsets (observations with less than 50 %, 25 %, 10 % cloud cover, cloud-free) are the
same dates in every scene. Clouds and their shadows are placed anew in each scene.

Layout of ``simulate_crop_scene(folder, ...)``::

    folder/S2_SIM_20160112_L1C.tif   13 bands B01..B12 (B8A, B10 included), TOA reflectance x 10000,
                                     uint16, nodata 0, all resampled to 10 m as in paper B
    folder/labels.tif                uint8 class codes (CROP_CLASSES), 255 unknown
    folder/clouds.tif                uint8 cloud opacity x 100, one band per date (never a model input)
    folder/acquisitions.json         date, target and measured cloud cover of each date
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from scipy import ndimage

from ...core.atomic import write_text_atomic
from .imaging import cloud_opacity
from .landscape import _make_fields, fractal_noise, smooth_noise
from .scene import PIXEL_SIZE_M, _write

CROP_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
CROP_CLASSES = ("other", "meadow", "winter_cereal", "spring_cereal", "maize", "rapeseed", "sugar_beet")
# Native resolution (m) of each band; coarser bands are block-averaged and resampled to 10 m.
BAND_RESOLUTION_M = (60, 10, 10, 10, 20, 20, 20, 10, 20, 60, 60, 20, 20)
UTM_32N = CRS.from_epsg(32632)  # Bavaria, paper B's region
CLOUDY_PIXEL_OPACITY = 0.1  # a pixel counts as cloudy above this opacity (for the cover share only)
# Paper B, section 4.2: of 46 observations 4 cloud-free, 10 below 10 %, 17 below 25 %, 26 below 50 %.
PAPER_B_COVER_BINS = ((0.0, 0.0, 4), (0.01, 0.10, 6), (0.10, 0.25, 7), (0.25, 0.50, 9), (0.50, 1.0, 20))

# Surface reflectance of the 13 bands (B01 .. B12) of the ground's materials.
GREEN = np.array([.035, .040, .075, .040, .105, .280, .350, .380, .400, .120, .004, .200, .100])
DRY = np.array([.080, .090, .120, .160, .190, .220, .240, .260, .270, .090, .005, .360, .280])
SOIL = np.array([.090, .100, .130, .170, .195, .215, .230, .245, .255, .085, .005, .320, .270])
FLOWER = np.array([.040, .050, .140, .110, .160, .300, .340, .370, .390, .120, .004, .230, .120])
FOREST = np.array([.025, .025, .045, .025, .070, .180, .220, .250, .260, .080, .004, .130, .060])
WATER = np.array([.060, .060, .050, .030, .025, .020, .018, .015, .014, .005, .002, .008, .005])
ROOFS = np.array([.110, .120, .130, .140, .150, .170, .180, .190, .200, .070, .005, .220, .200])
SNOW = np.array([.900, .900, .880, .850, .830, .800, .780, .760, .740, .300, .010, .050, .040])
CLOUD = np.array([.620, .600, .590, .580, .580, .585, .590, .600, .600, .250, .080, .420, .300])
PATH_RADIANCE = np.array([.110, .090, .045, .030, .022, .015, .012, .010, .009, .003, .000, .002, .001])

# Seasonal course per crop: (day of year, green cover, dry cover); bare soil is the rest.
PHENOLOGY: dict[str, list[tuple[int, float, float]]] = {
    "meadow": [(1, .45, .2), (75, .5, .2), (120, .9, 0), (150, .95, 0), (155, .3, .3), (180, .85, 0),
               (205, .9, 0), (210, .35, .3), (240, .8, 0), (265, .8, 0), (270, .35, .3), (300, .7, .1),
               (366, .45, .2)],
    "winter_cereal": [(1, .3, 0), (70, .35, 0), (130, .9, 0), (165, .85, .1), (190, .15, .8), (205, .05, .85),
                      (206, 0, .5), (245, 0, .4), (260, 0, 0), (285, 0, 0), (320, .2, 0), (366, .3, 0)],
    "spring_cereal": [(1, 0, .2), (80, 0, .1), (100, 0, 0), (125, .15, 0), (160, .9, 0), (185, .7, .25),
                      (210, .05, .85), (220, 0, .5), (260, 0, .3), (280, 0, 0), (366, 0, 0)],
    "maize": [(1, 0, .3), (100, 0, .1), (130, 0, 0), (155, .1, 0), (200, .95, 0), (245, .9, .05),
              (270, .3, .6), (285, 0, .3), (300, 0, .2), (366, 0, .2)],
    "rapeseed": [(1, .5, 0), (70, .55, 0), (105, .9, 0), (160, .8, .1), (185, .1, .85), (200, 0, .6),
                 (230, 0, .2), (240, 0, 0), (265, .3, 0), (300, .55, 0), (366, .5, 0)],
    "sugar_beet": [(1, 0, .1), (110, 0, 0), (135, .05, 0), (185, .95, 0), (280, .9, .05), (295, .5, .2),
                   (296, 0, .1), (366, 0, .05)],
}
FLOWERING = {"rapeseed": (110, 140)}  # yellow bloom, day of year


@dataclass(frozen=True)
class CropAcquisition:
    """One date of a region's schedule; ``cloud_cover`` is the share of cloudy pixels aimed at."""

    date: dt.date
    cloud_cover: float
    haze: float
    illumination: float
    snow: bool = False


def crop_schedule(year: int, count: int, seed: int) -> list[CropAcquisition]:
    """``count`` (20 .. 46) dates over ``year`` with paper B's cloud-cover distribution, winter cloudier."""
    if not 4 <= count <= 60:
        raise ValueError(f"a crop schedule has 4 to 60 dates, got {count}")
    rng = np.random.default_rng([seed, 46])
    spacing = 365 / count
    days = np.clip(np.rint(spacing * (np.arange(count) + 0.5) + rng.uniform(-2, 2, count)), 1, 365).astype(int)
    covers = []
    for low, high, share in PAPER_B_COVER_BINS:
        n = int(round(share * count / 46))
        covers += list(rng.uniform(low, high, n)) if high > 0 else [0.0] * n
    covers = np.array((covers + [0.7] * count)[:count])
    # winter (far from day 190) gets the cloudiest dates more often, as in central Europe
    winter = np.abs(days - 190) / 190 + rng.uniform(0, 0.8, count)
    covers = np.sort(covers)[np.argsort(np.argsort(winter))]
    return [
        CropAcquisition(dt.date(year, 1, 1) + dt.timedelta(days=int(day) - 1), float(cover),
                        float(rng.uniform(0.7, 1.5)), float(rng.uniform(0.85, 1.1)),
                        bool(day < 60 or day > 340) and rng.random() < 0.3)
        for day, cover in zip(days, covers)
    ]


def _course(crop: str, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Green and dry cover of ``crop`` on each of ``days`` (day of year, any shape)."""
    keys = np.array(PHENOLOGY[crop], dtype=np.float64)
    wrapped = np.mod(days - 1, 365) + 1
    return np.interp(wrapped, keys[:, 0], keys[:, 1]), np.interp(wrapped, keys[:, 0], keys[:, 2])


@dataclass
class CropLand:
    """Ground of a crop scene: ``classes`` ``[H, W]`` codes, ``field_id`` ``[H, W]``, per-field traits."""

    classes: np.ndarray
    cover: np.ndarray  # 0 field, 1 forest, 2 water, 3 village
    field_id: np.ndarray
    field_class: np.ndarray
    field_shift: np.ndarray  # days each field is early (-) or late (+)
    field_vigour: np.ndarray
    soil: np.ndarray  # [13, H, W] soil reflectance, varying across the scene


def make_crop_land(size: int, rng: np.random.Generator) -> CropLand:
    """Parcels with random crop types; forest, water and villages (class "other") over some of them."""
    shape = (size, size)
    field_id = _make_fields(size, rng)
    n_fields = int(field_id.max()) + 1
    field_class = rng.integers(1, len(CROP_CLASSES), n_fields)
    cover = np.zeros(shape, dtype=np.uint8)
    cover[fractal_noise(shape, rng) > rng.uniform(0.9, 1.5)] = 1
    cover[fractal_noise(shape, rng, (16, 8)) > 2.0] = 2
    cover[(fractal_noise(shape, rng, (8, 4)) > 2.2) & (cover == 0)] = 3
    classes = np.where(cover == 0, field_class[field_id], 0).astype(np.uint8)
    soil = SOIL[:, None, None] * (1 + 0.12 * fractal_noise(shape, rng, (32, 16)))[None]
    return CropLand(classes, cover, field_id, field_class, rng.normal(0, 8, n_fields),
                    rng.uniform(0.8, 1.05, n_fields), soil.astype(np.float32))


def crop_ground(land: CropLand, day_of_year: int, rng: np.random.Generator) -> np.ndarray:
    """Surface reflectance ``[13, H, W]`` on one day."""
    size = land.classes.shape[0]
    green = np.zeros(land.field_class.shape)
    dry = np.zeros(land.field_class.shape)
    flower = np.zeros(land.field_class.shape)
    for code, crop in enumerate(CROP_CLASSES[1:], start=1):
        fields = land.field_class == code
        days = day_of_year - land.field_shift[fields]
        green[fields], dry[fields] = _course(crop, days)
        if crop in FLOWERING:
            start, end = FLOWERING[crop]
            flower[fields] = np.clip(np.minimum(days - start, end - days) / 8, 0, 1)
    green *= land.field_vigour
    g, d, f = (values[land.field_id][None] for values in (green, dry, flower))
    soil_share = np.clip(1 - g - d, 0, 1)
    canopy = g * ((1 - f) * GREEN[:, None, None] + f * FLOWER[:, None, None])
    reflectance = canopy + d * DRY[:, None, None] + soil_share * land.soil
    reflectance *= (1 + 0.05 * smooth_noise((size, size), rng, 1.5))[None]
    natural_green = 0.6 + 0.4 * np.exp(-(((day_of_year - 180) / 70) ** 2))
    others = {1: FOREST * (0.85 + 0.15 * natural_green), 2: WATER, 3: ROOFS}
    for code, spectrum in others.items():
        mask = land.cover == code
        reflectance[:, mask] = spectrum[:, None] * (1 + 0.08 * rng.standard_normal(mask.sum()))[None]
    return reflectance.astype(np.float32)


def observe_crops(ground: np.ndarray, acquisition: CropAcquisition,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Ground ``[13, H, W]`` -> TOA reflectance ``[13, H, W]`` at 10 m and cloud opacity ``[H, W]``."""
    size = ground.shape[1]
    toa = ground.copy()
    if acquisition.snow:
        snow = np.clip(0.5 + 0.6 * smooth_noise((size, size), rng, 12), 0, 1)[None] * rng.uniform(0.3, 0.9)
        toa = toa * (1 - snow) + SNOW[:, None, None] * snow
    toa = toa * acquisition.illumination + acquisition.haze * PATH_RADIANCE[:, None, None]
    opacity = cloud_opacity(size, acquisition.cloud_cover, rng)
    if opacity.any():
        angle = rng.uniform(0, 2 * np.pi)
        shift = rng.uniform(5, 15) * np.array([np.sin(angle), np.cos(angle)])
        shadow = np.clip(ndimage.shift(opacity, shift, order=1, mode="constant"), 0, 1)
        toa = toa * (1 - 0.6 * shadow)[None]
        brightness = rng.uniform(0.7, 1.2) * (1 + 0.08 * smooth_noise((size, size), rng, 4))
        toa = toa * (1 - opacity[None]) + CLOUD[:, None, None] * brightness[None] * opacity[None]
    toa = _native_resolution(toa)
    toa = toa + rng.normal(0, 0.002, toa.shape)
    return np.clip(toa, 0.0001, 1.5).astype(np.float32), opacity


def _native_resolution(toa: np.ndarray) -> np.ndarray:
    """Blur each band to its native resolution (block mean), then back to 10 m (bilinear)."""
    out = toa.copy()
    for band, resolution in enumerate(BAND_RESOLUTION_M):
        factor = resolution // 10
        if factor > 1:
            coarse = ndimage.uniform_filter(toa[band], factor, mode="nearest")
            out[band] = ndimage.gaussian_filter(coarse, factor / 3, mode="nearest")
    return out


@dataclass(frozen=True)
class CropScene:
    """Paths and conditions of one written crop scene; ``measured_cloud_cover`` is per date."""

    folder: Path
    image_paths: list[Path]  # time order
    labels_path: Path
    clouds_path: Path
    acquisitions: list[CropAcquisition]
    measured_cloud_cover: list[float]


def crop_scene_complete(folder: Path) -> bool:
    """Whether ``folder`` holds a whole scene (interrupted writes are simulated again)."""
    return (Path(folder) / "acquisitions.json").is_file()  # written last


def simulate_crop_scene(folder: str | Path, seed: int, schedule: list[CropAcquisition],
                        size: int = 128) -> CropScene:
    """Simulate and write one crop scene on ``schedule`` (see module docstring); deterministic."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 2016])
    land = make_crop_land(size, rng)
    transform = rasterio.transform.from_origin(
        600_000 + PIXEL_SIZE_M * size * (seed % 100), 5_400_000 - PIXEL_SIZE_M * size * (seed // 100 % 100),
        PIXEL_SIZE_M, PIXEL_SIZE_M)
    paths, opacities, measured = [], [], []
    for acquisition in schedule:
        ground = crop_ground(land, acquisition.date.timetuple().tm_yday, rng)
        toa, opacity = observe_crops(ground, acquisition, rng)
        path = folder / f"S2_SIM_{acquisition.date:%Y%m%d}_L1C.tif"
        _write(path, np.clip(np.rint(toa * 10000), 1, 65535).astype(np.uint16), transform, acquisition.date,
               CROP_BANDS, nodata=0, crs=UTM_32N)
        paths.append(path)
        opacities.append(np.rint(opacity * 100).astype(np.uint8))
        measured.append(float((opacity > CLOUDY_PIXEL_OPACITY).mean()))
    labels_path, clouds_path = folder / "labels.tif", folder / "clouds.tif"
    _write_plain(labels_path, land.classes[None], transform, nodata=255, descriptions=["crop class"])
    _write_plain(clouds_path, np.stack(opacities), transform, nodata=None,
                 descriptions=[f"{a.date} cloud opacity %" for a in schedule])
    record = [{**asdict(a), "date": a.date.isoformat(), "measured_cloud_cover": m}
              for a, m in zip(schedule, measured)]
    write_text_atomic(folder / "acquisitions.json", json.dumps({"classes": list(CROP_CLASSES), "dates": record},
                                                         indent=1))
    return CropScene(folder, paths, labels_path, clouds_path, list(schedule), measured)


def read_crop_scene(folder: str | Path) -> CropScene:
    """A scene written by ``simulate_crop_scene``."""
    folder = Path(folder)
    record = json.loads((folder / "acquisitions.json").read_text())["dates"]
    schedule = [CropAcquisition(dt.date.fromisoformat(r["date"]), r["cloud_cover"], r["haze"],
                                r["illumination"], r["snow"]) for r in record]
    paths = [folder / f"S2_SIM_{a.date:%Y%m%d}_L1C.tif" for a in schedule]
    return CropScene(folder, paths, folder / "labels.tif", folder / "clouds.tif", schedule,
                     [r["measured_cloud_cover"] for r in record])


def _write_plain(path: Path, data: np.ndarray, transform, nodata: int | None, descriptions) -> None:
    profile = dict(driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                   dtype=data.dtype.name, crs=UTM_32N, transform=transform, nodata=nodata, compress="deflate")
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(data)
        for band, description in enumerate(descriptions, start=1):
            dataset.set_band_description(band, description)
