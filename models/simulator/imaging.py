"""What a Sentinel-2-like sensor sees of a landscape on one date.

Top-of-atmosphere reflectance in the 10 m bands B02, B03, B04, B08, then the true-colour
image as ESA's TCI product makes it: bands B04, B03, B02, reflectance 0 .. 0.3558
(L1C saturation) scaled linearly to 1 .. 255, 0 being nodata.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .landscape import Cover, Landscape, Surface, fractal_noise, road_coverage, smooth_noise

BANDS = ("B02", "B03", "B04", "B08")  # blue, green, red, near infrared
TCI_SATURATION = 0.3558  # L1C reflectance at TCI value 255

# Surface reflectance [B02, B03, B04, B08] of the ground's materials.
GREEN_VEGETATION = np.array([0.030, 0.055, 0.040, 0.36])
DRY_VEGETATION = np.array([0.070, 0.095, 0.125, 0.24])
FOREST = np.array([0.022, 0.032, 0.024, 0.26])
MANGROVE = np.array([0.014, 0.032, 0.018, 0.17])
WATER = np.array([0.045, 0.050, 0.030, 0.012])
BROWN_SOIL = np.array([0.070, 0.085, 0.100, 0.20])
RED_SOIL = np.array([0.080, 0.110, 0.160, 0.26])
ROOFS = np.array([0.110, 0.120, 0.135, 0.19])
ROAD_SURFACES = {
    Surface.PAVED: np.array([0.075, 0.085, 0.095, 0.13]),
    Surface.LATERITE: np.array([0.110, 0.160, 0.250, 0.30]),
    Surface.GRAVEL: np.array([0.165, 0.185, 0.205, 0.25]),
}
# Atmospheric path radiance [B02, B03, B04, B08] added to TOA reflectance at haze 1.
PATH_RADIANCE = np.array([0.090, 0.045, 0.030, 0.010])
CROP_PEAK_DAY = np.array([130, 200, 245, 290])  # day of year of greenest canopy per crop type
CROP_SEASON_DAYS = np.array([45, 40, 35, 50])


@dataclass(frozen=True)
class Acquisition:
    """Conditions of one date: ``cloud_cover`` is the target cloudy share of the scene."""

    date: dt.date
    cloud_cover: float
    haze: float  # path radiance multiplier, about 0.7 .. 1.6
    illumination: float  # sun-angle brightness factor, about 0.85 .. 1.15


def crop_greenness(day_of_year: int, crop_type: np.ndarray) -> np.ndarray:
    """Green canopy fraction in [0, 1] of each crop type on a day (a bell around its peak)."""
    return np.exp(-(((day_of_year - CROP_PEAK_DAY[crop_type]) / CROP_SEASON_DAYS[crop_type]) ** 2))


def ground_reflectance(land: Landscape, period: int, day_of_year: int,
                       rng: np.random.Generator) -> np.ndarray:
    """Surface reflectance ``[4, H, W]`` of the ground on one date, roads included."""
    size = land.size
    cover = land.cover[period]
    soil = (1 - land.climate) * BROWN_SOIL + land.climate * RED_SOIL
    # dry season in the Sahel: natural vegetation browns between November and June
    wet = 0.5 + 0.5 * np.cos(2 * np.pi * (day_of_year - 230) / 365)
    natural_green = 1 - land.climate * (1 - wet)

    green = crop_greenness(day_of_year, land.crop_type)[land.field_id]
    # after the peak the canopy dries before harvest; before, the field is soil
    past_peak = day_of_year > CROP_PEAK_DAY[land.crop_type][land.field_id]
    background = np.where(past_peak[None], DRY_VEGETATION[:, None, None], soil[:, None, None])
    fields = green[None] * GREEN_VEGETATION[:, None, None] + (1 - green[None]) * background
    fields = fields * land.field_brightness[land.field_id][None]

    def mix(a: np.ndarray, b: np.ndarray, share: float) -> np.ndarray:
        return share * a + (1 - share) * b

    by_cover = {
        Cover.FOREST: FOREST * (0.9 + 0.1 * natural_green),
        Cover.MANGROVE: MANGROVE,
        Cover.WATER: WATER,
        Cover.BARE: soil * 1.1,
        Cover.SETTLEMENT: ROOFS,
        Cover.GRASS: mix(GREEN_VEGETATION, DRY_VEGETATION, 0.25 + 0.6 * natural_green),
    }
    reflectance = fields.astype(np.float32)
    for code, spectrum in by_cover.items():
        mask = cover == code
        reflectance[:, mask] = spectrum[:, None]

    # textures: tree crowns, roofs and yards, ripples; fine noise everywhere
    shape = (size, size)
    crowns = 1 + 0.06 * smooth_noise(shape, rng, 0.8) + 0.05 * smooth_noise(shape, rng, 3)
    texture = np.where(np.isin(cover, (Cover.FOREST, Cover.MANGROVE)), crowns, 1.0)
    texture = texture * (1 + 0.04 * smooth_noise(shape, rng, 3)) * (1 + 0.012 * rng.standard_normal(shape))
    reflectance *= texture[None].astype(np.float32)
    # villages: roofs, yards and trees in blocks of a few pixels
    village = cover == Cover.SETTLEMENT
    if village.any():
        blocks = smooth_noise(shape, rng, 0.7)
        trees = np.clip(0.5 - 0.5 * blocks, 0, 1)[None] * 0.8
        roofs = ROOFS[:, None, None] * np.clip(1 + 0.2 * blocks, 0.6, 1.6)[None]
        houses = trees * FOREST[:, None, None] * crowns[None] + (1 - trees) * roofs
        reflectance[:, village] = houses[:, village]

    for road in land.roads_of(period):
        coverage = road_coverage(road, size)
        if road.tree_lined:
            verge = np.clip(road_coverage(_widened(road, 2.5), size) - coverage, 0, 1) * 0.6
            reflectance = reflectance * (1 - verge) + FOREST[:, None, None] * verge * crowns
        surface = ROAD_SURFACES[road.surface][:, None, None] * rng.uniform(0.85, 1.15)
        coverage = coverage * road.contrast
        reflectance = reflectance * (1 - coverage) + surface * coverage
    for hedge in land.hedges:  # dark lines of trees or wet ditches along field edges: not roads
        coverage = road_coverage(hedge, size) * hedge.contrast
        material = FOREST[:, None, None] * crowns if rng.random() < 0.7 else WATER[:, None, None] * 1.3
        reflectance = reflectance * (1 - coverage) + material * coverage
    return reflectance.astype(np.float32)


def _widened(road, extra_px: float):
    from dataclasses import replace

    return replace(road, width_px=road.width_px + extra_px)


def cloud_opacity(size: int, cover: float, rng: np.random.Generator) -> np.ndarray:
    """Cloud opacity ``[H, W]`` in [0, 1] with about ``cover`` of the scene cloudy."""
    if cover <= 0:
        return np.zeros((size, size), dtype=np.float32)
    noise = fractal_noise((size, size), rng, sigmas=(24, 12, 6, 3, 1.5))
    threshold = np.quantile(noise, 1 - cover)
    thickness = np.clip((noise - threshold) / rng.uniform(0.4, 1.2), 0, 1) ** 0.7
    if rng.random() < 0.35:  # thin, semi-transparent cloud and haze veils
        thickness *= rng.uniform(0.3, 0.7)
    return thickness.astype(np.float32)


def observe(ground: np.ndarray, acquisition: Acquisition, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Ground reflectance ``[4, H, W]`` -> TOA reflectance ``[4, H, W]`` and cloud opacity ``[H, W]``.

    Illumination and haze per date, clouds with shadows cast along a per-date sun
    direction, and sensor noise.
    """
    size = ground.shape[1]
    toa = ground * acquisition.illumination * (1 - 0.08 * (acquisition.haze - 1))
    toa = toa + acquisition.haze * PATH_RADIANCE[:, None, None] * (1 + 0.1 * smooth_noise((size, size), rng, 40))
    opacity = cloud_opacity(size, acquisition.cloud_cover, rng)
    if opacity.any():
        shift = rng.uniform(6, 18) * np.array([np.cos(a := rng.uniform(0, 2 * np.pi)), np.sin(a)])
        shadow = ndimage.shift(opacity, shift[::-1], order=1, mode="constant")
        toa = toa * (1 - 0.6 * np.clip(shadow, 0, 1))[None]
        cloud = rng.uniform(0.45, 0.75) * (1 + 0.08 * smooth_noise((size, size), rng, 4))
        cloud_spectrum = np.array([1.05, 1.0, 0.98, 1.02])[:, None, None] * cloud[None]
        toa = toa * (1 - opacity[None]) + cloud_spectrum * opacity[None]
    toa = toa + rng.normal(0, 0.0012, toa.shape)
    return np.clip(toa, 0, 1.5).astype(np.float32), opacity


def true_colour(toa: np.ndarray) -> np.ndarray:
    """TOA reflectance ``[4, H, W]`` (B02, B03, B04, B08) -> TCI ``[3, H, W]`` uint8 (R, G, B), 1..255."""
    rgb = toa[[2, 1, 0]] / TCI_SATURATION * 255.0
    return np.clip(np.rint(rgb), 1, 255).astype(np.uint8)
