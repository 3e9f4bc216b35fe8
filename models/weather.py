"""What the sky and the processing chain do to true-colour dates, drawn at random for training.

Works on raw TCI values ``[T, C, h, w]`` (0..``white``, 255 for an 8-bit TCI), before the
model's normalisation, so that the same code weathers real and simulated images:

- the two true-colour conventions users have: ESA's L1C TCI (top-of-atmosphere reflectance
  0..0.3558 -> 1..255) and the L2A TCI (surface reflectance 0..0.2 -> 0..255, so brighter and
  with the haze of the atmosphere taken off), then gain, gamma, blur and sensor noise;
- haze, thin cloud, and patches of cloud with their shadows on any date;
- fully overcast dates (white or grey cloud everywhere), which the sequence stage inserts at
  any position, first and last included (``overcast_frames``).

At least one date of each sequence stays free of cloud patches (a thin veil, which hides
nothing, may lie on any date): the targets say where the roads are, which only a seen date can tell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..core.true_colour import TCI_SATURATION
from .simulator.landscape import fractal_noise, smooth_noise

L2A_TCI_SATURATION = 0.2  # surface reflectance at L2A TCI value 255
# Reflectance the atmosphere adds to R, G, B at the top of the atmosphere, which L2A processing takes
# off: a clear summer scene's order of magnitude, drawn from 0.5x to 2.5x (each band also by 0.85 to
# 1.15) so that low-sun winter scenes are covered (the real T33UUU of February: about 2.2x).
PATH_REFLECTANCE_RGB = np.array([0.025, 0.035, 0.055], dtype=np.float32)
PATH_FACTOR = (0.5, 2.5)
BAND_FACTOR = (0.85, 1.15)
OPAQUE = 0.6  # cloud opacity from which a pixel is taken as hidden


@dataclass(frozen=True)
class Weather:
    """Chances, per sequence or per date, of each effect. ``clouds=False`` keeps only the
    photometric part, haze and thin veils of cloud (the single-date FCN stage: its labels hold
    where no cloud hides the ground)."""

    l2a_share: float = 0.5  # sequences in the L2A convention
    haze: float = 0.3  # per date
    thin_cloud: float = 0.15  # per date, any date: a veil of cloud over the whole date, which hides nothing
    cloud_patches: float = 0.3  # per date: patches of cloud with shadows
    clouds: bool = True
    overcast_frames: int = 2  # fully overcast dates made per sample, for the sequence stage to insert

    @classmethod
    def light(cls) -> Weather:
        return cls(cloud_patches=0.0, clouds=False, overcast_frames=0)


def to_convention(pixels: np.ndarray, l2a: bool, rng: np.random.Generator, white: float) -> np.ndarray:
    """L1C TCI values ``[T, 3, h, w]`` -> the same dates as an L2A TCI when ``l2a`` (atmosphere's
    reflectance taken off, rescaled to 0..0.2); then a gain and gamma shared by the sequence."""
    out = pixels.astype(np.float32)
    if l2a:
        reflectance = out / white * TCI_SATURATION
        path = PATH_REFLECTANCE_RGB * rng.uniform(*PATH_FACTOR) * rng.uniform(*BAND_FACTOR, size=3)
        out = np.maximum(reflectance - path[None, :, None, None], 0) / L2A_TCI_SATURATION * white
    gain, gamma = rng.uniform(0.85, 1.15), rng.uniform(0.85, 1.15)
    return white * np.clip(out * gain / white, 0, 1) ** gamma


def date_noise(date: np.ndarray, rng: np.random.Generator, white: float) -> np.ndarray:
    """A date ``[C, h, w]`` blurred now and then and with sensor noise."""
    if rng.random() < 0.3:
        date = ndimage.gaussian_filter(date, (0, rng.uniform(0.3, 0.8), rng.uniform(0.3, 0.8)))
    return date + rng.normal(0, rng.uniform(0, 0.01) * white, date.shape).astype(np.float32)


def cloud_opacity(shape: tuple[int, int], cover: float, rng: np.random.Generator) -> np.ndarray:
    """Opacity ``[h, w]`` in [0, 1] of cloud patches covering about ``cover`` of the window."""
    noise = fractal_noise(shape, rng, sigmas=(24, 12, 6, 3))
    threshold = np.quantile(noise, 1 - cover)
    return (np.clip((noise - threshold) / rng.uniform(0.3, 1.0), 0, 1) ** 0.7).astype(np.float32)


def cloud_colour(shape: tuple[int, int], rng: np.random.Generator, white: float) -> np.ndarray:
    """Cloud tops ``[3, h, w]``: near white, some grey, slightly blue, with a soft texture."""
    level = rng.uniform(0.7, 1.0) * white * (1 + 0.06 * smooth_noise(shape, rng, 4))
    tint = np.array([0.97, 0.99, 1.0], dtype=np.float32)[:, None, None]
    return (tint * level[None]).astype(np.float32)


def clouded(date: np.ndarray, opacity: np.ndarray, rng: np.random.Generator, white: float) -> np.ndarray:
    """``date`` ``[3, h, w]`` under clouds of ``opacity`` ``[h, w]``, with their shadows."""
    shift = rng.uniform(4, 20, 2) * rng.choice((-1, 1), 2)
    shadow = ndimage.shift(opacity, shift, order=1, mode="constant")
    date = date * (1 - rng.uniform(0.35, 0.65) * shadow)[None]
    return date * (1 - opacity)[None] + cloud_colour(opacity.shape, rng, white) * opacity[None]


def thin_cloud_opacity(shape: tuple[int, int], level: float, rng: np.random.Generator) -> np.ndarray:
    """Opacity ``[h, w]`` of a thin veil of cloud over the whole date: about ``level``, +-20 %."""
    return level * (1 + 0.2 * smooth_noise(shape, rng, 8))


def haze_veil(shape: tuple[int, int], level: float, rng: np.random.Generator) -> np.ndarray:
    """Share ``[h, w]`` of the light that haze scatters: about ``level``, +-20 %, smooth over the date."""
    return level * (1 + 0.2 * smooth_noise(shape, rng, 30))


def hazed(date: np.ndarray, veil: np.ndarray, white: float) -> np.ndarray:
    """``date`` ``[3, h, w]`` seen through haze ``veil`` ``[h, w]``: a grey-white light added."""
    return date * (1 - veil[None]) + 0.8 * white * veil[None]


def overcast_date(shape: tuple[int, int], rng: np.random.Generator, white: float) -> np.ndarray:
    """A date ``[3, h, w]`` white or grey with cloud everywhere."""
    return np.clip(cloud_colour(shape, rng, white), 0, white)


def weathered(pixels: np.ndarray, weather: Weather, rng: np.random.Generator,
              white: float = 255.0) -> tuple[np.ndarray, np.ndarray]:
    """Raw TCI dates ``[T, 3, h, w]`` -> weathered dates ``[T, 3, h, w]`` float32 in 0..``white``
    and the pixels hidden by cloud ``[T, h, w]`` bool (opacity >= ``OPAQUE``; for the loss of
    pixels no date shows, never a model input). One random date stays free of cloud patches."""
    dates, _, height, width = pixels.shape
    out = to_convention(pixels, rng.random() < weather.l2a_share, rng, white)
    hidden = np.zeros((dates, height, width), dtype=bool)
    clear = int(rng.integers(dates))
    for t in range(dates):
        date = out[t]
        if rng.random() < weather.haze:
            date = hazed(date, haze_veil((height, width), rng.uniform(0.03, 0.2), rng), white)
        if rng.random() < weather.thin_cloud:  # a veil is never marked hidden: the clear date may have one too
            date = clouded(date, thin_cloud_opacity((height, width), np.float32(rng.uniform(0.15, 0.5)), rng),
                           rng, white)
        if weather.clouds and t != clear and rng.random() < weather.cloud_patches:
            opacity = cloud_opacity((height, width), rng.uniform(0.1, 0.7), rng)
            date = clouded(date, opacity, rng, white)
            hidden[t] = opacity >= OPAQUE
        out[t] = date_noise(date, rng, white)
    return np.clip(out, 0, white).astype(np.float32), hidden
