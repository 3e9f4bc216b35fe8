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

from ...core.true_colour import TCI_SATURATION
from .landscape import Cover, Landscape, Margin, Road, Surface, fractal_noise, smooth_noise

BANDS = ("B02", "B03", "B04", "B08")  # blue, green, red, near infrared
SENSOR_NOISE = 0.0008  # std of the detector noise, TOA reflectance
POINT_SPREAD_PX = 0.55  # std (pixels) of the Gaussian standing for the optics' blur and L1C resampling

# Surface reflectance [B02, B03, B04, B08] of the ground's materials.
GREEN_VEGETATION = np.array([0.030, 0.055, 0.040, 0.36])
DRY_VEGETATION = np.array([0.070, 0.095, 0.125, 0.24])
FOREST = np.array([0.025, 0.037, 0.030, 0.26])
MANGROVE = np.array([0.014, 0.032, 0.018, 0.17])
WATER = np.array([0.045, 0.050, 0.030, 0.012])
BROWN_SOIL = np.array([0.070, 0.085, 0.100, 0.20])
RED_SOIL = np.array([0.080, 0.110, 0.160, 0.26])
ROOFS = np.array([0.110, 0.120, 0.135, 0.19])
SAND = np.array([0.125, 0.140, 0.155, 0.22])  # beaches and sand banks
ROAD_SURFACES = {
    Surface.PAVED: np.array([0.075, 0.085, 0.095, 0.13]),
    Surface.LATERITE: np.array([0.110, 0.160, 0.250, 0.30]),
    Surface.GRAVEL: np.array([0.165, 0.185, 0.205, 0.25]),
}
# Atmospheric path radiance [B02, B03, B04, B08] added to TOA reflectance at haze 1.
PATH_RADIANCE = np.array([0.095, 0.054, 0.040, 0.015])
# Two-way transmittance [B02, B03, B04, B08] of the ground's reflectance at haze 1 (Rayleigh and aerosols).
TRANSMITTANCE = np.array([0.84, 0.86, 0.88, 0.92])
ADJACENCY = 0.1  # share of a pixel's light scattered in from its surroundings at haze 1
CROP_PEAK_DAY = np.array([130, 200, 245, 290])  # day of year of greenest canopy per crop type
CROP_SEASON_DAYS = np.array([45, 40, 35, 50])


@dataclass(frozen=True)
class Acquisition:
    """Conditions of one date: ``cloud_cover`` is the target cloudy share of the scene."""

    date: dt.date
    cloud_cover: float
    haze: float  # path radiance multiplier, about 0.8 .. 1.3
    illumination: float  # sun-angle brightness factor, about 0.9 .. 1.1


def crop_greenness(day_of_year: int, crop_type: np.ndarray) -> np.ndarray:
    """Green canopy fraction in [0, 1] of each crop type on a day (a bell around its peak)."""
    return np.exp(-(((day_of_year - CROP_PEAK_DAY[crop_type]) / CROP_SEASON_DAYS[crop_type]) ** 2))


def ground_reflectance(land: Landscape, period: int, day_of_year: int,
                       rng: np.random.Generator) -> np.ndarray:
    """Surface reflectance ``[4, H, W]`` of the ground on one date, roads included.

    Lines that are not roads (field margins, streams, tree lines) are drawn first, so a
    road is never hidden by one."""
    size = land.size
    cover = land.cover[period]
    soil = (1 - land.climate) * BROWN_SOIL + land.climate * RED_SOIL
    # dry season in the Sahel: natural vegetation browns between November and June
    wet = 0.5 + 0.5 * np.cos(2 * np.pi * (day_of_year - 230) / 365)
    natural_green = 1 - land.climate * (1 - wet)
    grass = _mix(GREEN_VEGETATION, DRY_VEGETATION, 0.25 + 0.6 * natural_green)
    reflectance = _cover_reflectance(land, cover, day_of_year, soil, grass, natural_green)

    # textures: tree crowns, ripples, soil moisture; a little fine noise everywhere
    shape = (size, size)
    crowns = 1 + 0.06 * smooth_noise(shape, rng, 0.8) + 0.05 * smooth_noise(shape, rng, 3)
    texture = np.where(np.isin(cover, (Cover.FOREST, Cover.MANGROVE)), crowns, 1.0)
    texture = texture * (1 + 0.035 * smooth_noise(shape, rng, 5)) * (1 + 0.004 * rng.standard_normal(shape))
    reflectance *= texture[None].astype(np.float32)
    village = cover == Cover.SETTLEMENT
    if village.any():
        reflectance[:, village] = _village_texture(shape, soil, grass, crowns, rng)[:, village]

    reflectance = _draw_margins(reflectance, land, cover, grass, crowns)
    for stream in land.streams:
        reflectance = _draw_line(reflectance, land, stream, WATER[:, None, None] * rng.uniform(0.9, 1.3), crowns)
    for hedge in land.hedges:  # tree lines or wet ditches across the fields
        material = FOREST[:, None, None] * crowns if rng.random() < 0.7 else WATER[:, None, None] * 1.3
        reflectance = _draw_line(reflectance, land, hedge, material, crowns)
    for road in land.roads_of(period):
        surface = ROAD_SURFACES[road.surface][:, None, None] * rng.uniform(0.85, 1.15)
        reflectance = _draw_line(reflectance, land, road, surface, crowns)
    return reflectance.astype(np.float32)


def _mix(a: np.ndarray, b: np.ndarray, share: float) -> np.ndarray:
    return share * a + (1 - share) * b


def _cover_reflectance(land: Landscape, cover: np.ndarray, day_of_year: int, soil: np.ndarray,
                       grass: np.ndarray, natural_green: float) -> np.ndarray:
    """Untextured reflectance ``[4, H, W]`` of the fields (by crop calendar) and the other covers."""
    green = crop_greenness(day_of_year, land.crop_type)[land.field_id]
    # after the peak the canopy dries before harvest; before, the field is soil
    past_peak = day_of_year > CROP_PEAK_DAY[land.crop_type][land.field_id]
    background = np.where(past_peak[None], DRY_VEGETATION[:, None, None], soil[:, None, None])
    fields = green[None] * GREEN_VEGETATION[:, None, None] + (1 - green[None]) * background
    reflectance = (fields * land.field_brightness[land.field_id][None]).astype(np.float32)
    by_cover = {
        Cover.FOREST: FOREST * (0.9 + 0.1 * natural_green),
        Cover.MANGROVE: MANGROVE,
        Cover.WATER: WATER,
        Cover.BARE: soil * 1.1,
        Cover.SETTLEMENT: ROOFS,
        Cover.GRASS: grass,
        # a sandy shore where the soil is red (the Sahel's, the tropics'), dry reeds where it is brown
        Cover.SHORE: _mix(SAND, DRY_VEGETATION * 1.2, land.climate),
    }
    for code, spectrum in by_cover.items():
        reflectance[:, cover == code] = spectrum[:, None]
    return reflectance


def _village_texture(shape: tuple[int, int], soil: np.ndarray, grass: np.ndarray, crowns: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:
    """Reflectance ``[4, H, W]`` of a village: roofs, yards, gardens and trees in blocks of a few
    pixels, with no street pattern (a village does not imply a road)."""
    roofs = np.clip(0.45 + 0.3 * smooth_noise(shape, rng, 0.7), 0, 1)
    trees = np.clip(0.3 - 0.35 * smooth_noise(shape, rng, 1.2), 0, 1) * (1 - roofs)
    gardens = np.clip(0.5 + 0.5 * smooth_noise(shape, rng, 1.5), 0, 1) * (1 - roofs - trees)
    yards = 1 - roofs - trees - gardens
    roof_colour = ROOFS[:, None, None] * (1 + 0.12 * smooth_noise(shape, rng, 0.6))[None]
    return (roofs[None] * roof_colour + trees[None] * FOREST[:, None, None] * crowns[None]
            + gardens[None] * grass[:, None, None] + yards[None] * soil[:, None, None] * 1.15)


def _draw_margins(reflectance: np.ndarray, land: Landscape, cover: np.ndarray, grass: np.ndarray,
                  crowns: np.ndarray) -> np.ndarray:
    """Hedgerows (dark), ditches (dark, wet) and grass strips (light) along field edges in open land."""
    if land.margin is None:
        return reflectance
    materials = {
        Margin.HEDGE: FOREST[:, None, None] * crowns[None],
        Margin.DITCH: _mix(WATER, grass, 0.6)[:, None, None],
        Margin.STRIP: (grass * 1.25)[:, None, None],
    }
    open_land = np.isin(cover, (Cover.FIELD, Cover.GRASS, Cover.BARE))
    for kind, material in materials.items():
        strength = np.where((land.margin == kind) & open_land, land.margin_strength, 0.0)[None]
        reflectance = reflectance * (1 - strength) + material * strength
    return reflectance


def _draw_line(reflectance: np.ndarray, land: Landscape, line: Road, material: np.ndarray,
               crowns: np.ndarray) -> np.ndarray:
    """``reflectance`` with a line of ``material`` drawn at the line's contrast; trees along it if tree-lined."""
    window, coverage, verge = land.line_coverage(line)
    rows, cols = window
    part = reflectance[:, rows, cols]
    if verge is not None:
        trees = verge * 0.6
        part = part * (1 - trees) + FOREST[:, None, None] * trees * crowns[rows, cols]
    if material.shape[1] > 1:
        material = material[:, rows, cols]
    coverage = coverage * line.contrast
    reflectance[:, rows, cols] = part * (1 - coverage) + material * coverage
    return reflectance


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

    Illumination and haze per date (path radiance, transmittance, light from the surroundings),
    clouds with shadows cast along a per-date sun direction, sensor noise, and the blur of the
    optics and of the L1C resampling.
    """
    size = ground.shape[1]
    transmittance = TRANSMITTANCE[:, None, None] * (1 - 0.08 * (acquisition.haze - 1))
    adjacency = ADJACENCY * acquisition.haze  # the surroundings stand in for the scene's mean
    seen = (1 - adjacency) * ground + adjacency * ground.mean(axis=(1, 2), keepdims=True)
    toa = seen * transmittance * acquisition.illumination
    toa = toa + acquisition.haze * PATH_RADIANCE[:, None, None] * (1 + 0.05 * smooth_noise((size, size), rng, 40))
    opacity = cloud_opacity(size, acquisition.cloud_cover, rng)
    if opacity.any():
        shift = rng.uniform(6, 18) * np.array([np.cos(a := rng.uniform(0, 2 * np.pi)), np.sin(a)])
        shadow = ndimage.shift(opacity, shift[::-1], order=1, mode="constant")
        toa = toa * (1 - 0.6 * np.clip(shadow, 0, 1))[None]
        cloud = rng.uniform(0.45, 0.75) * (1 + 0.08 * smooth_noise((size, size), rng, 4))
        cloud_spectrum = np.array([1.05, 1.0, 0.98, 1.02])[:, None, None] * cloud[None]
        toa = toa * (1 - opacity[None]) + cloud_spectrum * opacity[None]
    toa = toa + rng.normal(0, SENSOR_NOISE, toa.shape)
    # the optics' blur and L1C's resampling to the UTM grid: neighbouring pixels share some signal
    toa = ndimage.gaussian_filter(toa, (0, POINT_SPREAD_PX, POINT_SPREAD_PX))
    return np.clip(toa, 0, 1.5).astype(np.float32), opacity


def true_colour(toa: np.ndarray) -> np.ndarray:
    """TOA reflectance ``[4, H, W]`` (B02, B03, B04, B08) -> TCI ``[3, H, W]`` uint8 (R, G, B), 1..255."""
    rgb = toa[[2, 1, 0]] / TCI_SATURATION * 255.0
    return np.clip(np.rint(rgb), 1, 255).astype(np.uint8)
