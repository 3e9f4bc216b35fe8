"""``timeseg-research edge-check``: how much false road a road model draws along the edges of the data.

Where a tile reaches beyond a raster's edge (or a swath's), the engine reads no data, which a harmonising model
reads as white (``core.harmonisation.UNSEEN``). A network that takes the step from land to white for a line draws
a false road along every map's edge. This crops windows of the real images (``models.real_scene``), gives each
crop alone with a margin of white beyond it (margins of several widths: the U-Net's 16 px phases), and compares
the road it calls in the crop's outer band with what the same pixels get with their real surroundings.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio

from ..core.harmonisation import UNSEEN, harmonised
from ..models.real_scene import REAL_SCENES, UNSEEN_DATES
from ..models.road_scores import THRESHOLD
from .real_roads import TorchRoadModel

CROP_PX = 160  # side of each crop
CONTEXT_PX = 48  # real surroundings around a crop for its reference map
MARGINS_PX = (3, 9, 17, 27)  # white beyond a crop's edges (the engine's tiles reach up to 31 px beyond a raster)
BAND_PX = 2  # the crop's outer band where the edge's false road lies


def real_images() -> dict[str, np.ndarray]:
    """The real L1C TCIs of ``models/real/`` (the scored scenes and Inn's two dates), ``[3, H, W]`` uint8."""
    images = {}
    for scene in (*REAL_SCENES, *UNSEEN_DATES):
        with rasterio.open(scene.image) as dataset:
            images[scene.image.stem] = dataset.read()
    return images


def crop_corners(height: int, width: int) -> list[tuple[int, int]]:
    """Top-left corners of 4 crops, one about each quarter of the image, each with its real surroundings."""
    corners = []
    for row_share in (0.25, 0.75):
        for col_share in (0.25, 0.75):
            row = int(round(row_share * height - CROP_PX / 2))
            col = int(round(col_share * width - CROP_PX / 2))
            corners.append((min(max(row, CONTEXT_PX), height - CROP_PX - CONTEXT_PX),
                            min(max(col, CONTEXT_PX), width - CROP_PX - CONTEXT_PX)))
    return corners


def edge_counts(model: TorchRoadModel, image: np.ndarray, threshold: float = THRESHOLD) -> dict[str, int]:
    """Road pixels in the outer ``BAND_PX`` band of each crop of ``image`` ``[3, H, W]``, summed over its crops
    and ``MARGINS_PX``: ``false`` called with white beyond and not with the real surroundings, ``lost`` the
    other way round, ``kept`` by both; ``band`` the band's pixels looked at."""
    if model.harmonisation is not None:  # each band stretched once over the whole image, as the engine does
        image = harmonised(image[None], model.harmonisation)[0]
        model = copy.copy(model)
        model.inputs = model.normalisation.apply
    counts = {"false": 0, "lost": 0, "kept": 0, "band": 0}
    band = np.ones((CROP_PX, CROP_PX), bool)
    band[BAND_PX:-BAND_PX, BAND_PX:-BAND_PX] = False
    for row, col in crop_corners(*image.shape[1:]):
        context = image[:, row - CONTEXT_PX:row + CROP_PX + CONTEXT_PX, col - CONTEXT_PX:col + CROP_PX + CONTEXT_PX]
        inner = slice(CONTEXT_PX, CONTEXT_PX + CROP_PX)
        reference = model.probability([context])[inner, inner][band] >= threshold
        for margin in MARGINS_PX:  # beyond: the engine's no data as a model reads it, white
            canvas = np.full((3, CROP_PX + 2 * margin, CROP_PX + 2 * margin), UNSEEN, np.uint8)
            canvas[:, margin:margin + CROP_PX, margin:margin + CROP_PX] = context[:, inner, inner]
            called = model.probability([canvas])[margin:margin + CROP_PX, margin:margin + CROP_PX][band] >= threshold
            counts["false"] += int((called & ~reference).sum())
            counts["lost"] += int((~called & reference).sum())
            counts["kept"] += int((called & reference).sum())
            counts["band"] += int(band.sum())
    return counts


def edge_table(checkpoints: Sequence[Path], part: str) -> str:
    """A markdown table: per checkpoint, its ``edge_counts`` summed over ``real_images``."""
    images = real_images()
    rows = ["| checkpoint | false road px in the band | lost | kept | band px looked at |", "|---|---|---|---|---|"]
    for path in checkpoints:
        model = TorchRoadModel(path, part)
        total = {"false": 0, "lost": 0, "kept": 0, "band": 0}
        for image in images.values():
            for key, value in edge_counts(model, image).items():
                total[key] += value
        rows.append(f"| {path} | **{total['false']}** | {total['lost']} | {total['kept']} | {total['band']} |")
    return "\n".join(rows)
