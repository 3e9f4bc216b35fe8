"""Road models scored on the held-out part of the real labelled image (``models/real/``).

Scores (the usual relaxed measures for thin objects):

- precision: share of the pixels called road (P >= threshold) that lie within ``TOLERANCE_PX``
  of a traced centre line;
- recall: share of the traced centre-line pixels that have a pixel called road within
  ``TOLERANCE_PX``;
- F1 of the two; and where the false roads fall: the share of the pixels called road that
  lie inside settlements or water but farther than the tolerance from any line.

Left out of both: the surroundings of ``uncertain`` lines and the ``unlabelled`` areas.
Models run in PyTorch on the whole held-out window at once (no tiling), so the single-date
FCN, paper A's PMap-only sequence model and the shipped model are scored the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import rasterio
import torch
from rasterio.features import geometry_mask, rasterize
from scipy import ndimage

from ..core.normalisation import Normalisation
from ..core.raster_stack import Grid
from ..models.checkpoint import load_checkpoint
from ..models.real_scene import REAL_LABELS, REAL_TCI, ROAD_KINDS, UNCERTAIN, _features, write_split
from ..models.simulator.imaging import TCI_SATURATION
from ..models.weather import L2A_TCI_SATURATION, cloud_opacity, clouded, overcast_date

TOLERANCE_PX = 2
THRESHOLD = 0.5


@dataclass(frozen=True)
class HeldOut:
    """The held-out window: its TCI ``[3, H, W]`` uint8 and the masks of ``[H, W]`` scoring needs."""

    tci: np.ndarray
    centre: np.ndarray  # traced road centre lines, 1 px
    ignored: np.ndarray  # near uncertain lines, unlabelled, outside the held-out area
    settlement: np.ndarray
    water: np.ndarray


@dataclass(frozen=True)
class RoadScores:
    precision: float
    recall: float
    f1: float
    road_share: float  # of the scored pixels, called road
    false_in_settlements: float  # of the pixels called road: in settlements, off every line
    false_in_water: float

    def row(self) -> str:
        return (f"{self.precision:.3f} | {self.recall:.3f} | **{self.f1:.3f}** | {self.road_share:.1%} | "
                f"{self.false_in_settlements:.1%} | {self.false_in_water:.1%}")


def held_out(folder: Path, gpkg: Path = REAL_LABELS, image: Path = REAL_TCI) -> HeldOut:
    """The held-out window of the real image, cropped, with its masks."""
    image_path, labels_path = write_split(gpkg, image, "heldout", folder)
    with rasterio.open(image_path) as dataset:
        tci, grid = dataset.read(), Grid.of(dataset)
    with rasterio.open(labels_path) as dataset:
        labels = dataset.read(1)
    shape = (grid.height, grid.width)
    roads = _features(gpkg, "roads", grid)
    centre = rasterize(((g, 1) for g, a in roads if a["kind"] in ROAD_KINDS and a["split"] == "heldout"),
                       out_shape=shape, transform=grid.transform, fill=0, dtype="uint8").astype(bool)
    uncertain_geometries = [g for g, a in roads if a["kind"] == UNCERTAIN]
    uncertain = rasterize(((g, 1) for g in uncertain_geometries), out_shape=shape, transform=grid.transform,
                          fill=0, dtype="uint8").astype(bool) if uncertain_geometries else np.zeros(shape, bool)
    near_uncertain = ndimage.distance_transform_edt(~uncertain) <= TOLERANCE_PX + 2 if uncertain.any() else uncertain
    # labels are 255 outside the area, in unlabelled boxes and around lines; only the first two are ignored here
    near_lines = ndimage.distance_transform_edt(~centre) <= 6 if centre.any() else centre
    ignored = near_uncertain | ((labels == 255) & ~near_lines)
    centre &= ~ignored
    cover = _features(gpkg, "land_cover", grid)

    def polygons(kind: str) -> np.ndarray:
        geometries = [g for g, a in cover if a["kind"] == kind]
        return ~geometry_mask(geometries, shape, grid.transform) if geometries else np.zeros(shape, bool)

    return HeldOut(tci, centre, ignored, polygons("settlement"), polygons("water"))


def l2a_like(tci: np.ndarray) -> np.ndarray:
    """An L1C TCI ``[3, H, W]`` -> the L2A TCI convention (surface reflectance 0..0.2 -> 0..255),
    the atmosphere taken off by dark-object subtraction (each band's 0.5th percentile, less
    0.005): an approximation of Sen2Cor's product, as no L2A of this date ships."""
    reflectance = tci.astype(np.float32) / 255 * TCI_SATURATION
    dark = np.percentile(reflectance, 0.5, axis=(1, 2)) - 0.005
    surface = np.maximum(reflectance - dark[:, None, None], 0)
    return np.clip(np.rint(surface / L2A_TCI_SATURATION * 255), 1, 255).astype(np.uint8)


def scores(probability: np.ndarray, truth: HeldOut, threshold: float = THRESHOLD) -> RoadScores:
    """Relaxed precision, recall and F1 of ``probability`` ``[H, W]`` against ``truth``."""
    called = (probability >= threshold) & ~truth.ignored
    near_truth = ndimage.distance_transform_edt(~truth.centre) <= TOLERANCE_PX
    near_called = ndimage.distance_transform_edt(~called) <= TOLERANCE_PX if called.any() else called
    called_count = max(int(called.sum()), 1)
    precision = float((called & near_truth).sum() / called_count) if called.any() else 0.0
    recall = float((truth.centre & near_called).sum() / max(int(truth.centre.sum()), 1))
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    false = called & ~near_truth
    return RoadScores(precision, recall, f1, float(called.sum() / (~truth.ignored).sum()),
                      float((false & truth.settlement).sum() / called_count),
                      float((false & truth.water).sum() / called_count))


class TorchRoadModel:
    """A road checkpoint run whole-window in PyTorch: ``sequence`` (the network) or ``fcn``
    (its single-date FCN, on the last date)."""

    def __init__(self, checkpoint: Path, part: str = "sequence") -> None:
        self.network, _, saved = load_checkpoint(checkpoint)
        card = saved["card"]
        self.normalisation = Normalisation(card["input_scale"], card.get("standardization_mean"),
                                           card.get("standardization_std"))
        self.part = part

    @torch.no_grad()
    def probability(self, dates: list[np.ndarray]) -> np.ndarray:
        """TCI dates, each ``[3, H, W]``, in time order -> P(road) ``[H, W]``."""
        images = torch.from_numpy(self.normalisation.apply(np.stack(dates)))[None]
        if self.part == "fcn":
            return self.network.fcn(images[:, -1])[0, 0].numpy()
        return self.network(images)[0, 0].numpy()


def cloudy_dates(tci: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Two cloudy versions of ``tci`` ``[3, H, W]``: white with cloud everywhere, and partly
    cloudy (about 40 % cover) with shadows; the simulator's clouds (``models.weather``)."""
    rng = np.random.default_rng(seed)
    shape = tci.shape[1:]
    overcast = overcast_date(shape, rng, 255.0)
    partly = clouded(tci.astype(np.float32), cloud_opacity(shape, 0.4, rng), rng, 255.0)
    return {"overcast": np.clip(overcast, 0, 255).astype(np.uint8),
            "partly_cloudy": np.clip(partly, 0, 255).astype(np.uint8)}


# Sequences of the cloud contract: the clear date "C" with overcast "O" and partly cloudy "P"
# dates, in time order.
CLOUD_SEQUENCES = ("C", "OC", "CO", "OOC", "COO", "OCO", "OOOC", "PC", "CP", "OPC")


def cloud_contract(model: TorchRoadModel, tci: np.ndarray, truth: HeldOut, seed: int = 7) -> dict[str, dict]:
    """Scores of each sequence of ``CLOUD_SEQUENCES`` and its mean absolute change of P(road)
    from the clear date alone."""
    cloudy = cloudy_dates(tci, seed)
    dates = {"C": tci, "O": cloudy["overcast"], "P": cloudy["partly_cloudy"]}
    clear = model.probability([tci])
    results = {}
    for sequence in CLOUD_SEQUENCES:
        probability = model.probability([dates[d] for d in sequence])
        results[sequence] = {**asdict(scores(probability, truth)),
                             "mean_abs_change": float(np.abs(probability - clear)[~truth.ignored].mean())}
    return results


def quicklook(tci: np.ndarray, truth: HeldOut, probability: np.ndarray | None, path: Path) -> None:
    """PNG of the held-out TCI (contrast-stretched), traced lines in green, called roads in red
    (yellow where both), ignored areas dimmed."""
    from PIL import Image

    rgb = np.moveaxis(tci, 0, -1).astype(np.float32)
    low, high = np.percentile(rgb, (1, 99.5))
    rgb = np.clip((rgb - low) / (high - low) * 255, 0, 255)
    rgb[truth.ignored] *= 0.5
    lines = ndimage.binary_dilation(truth.centre)
    rgb[lines] = (0, 230, 0)
    if probability is not None:
        called = (probability >= THRESHOLD) & ~truth.ignored
        rgb[called] = (255, 40, 40)
        rgb[called & lines] = (255, 230, 0)
    Image.fromarray(rgb.astype(np.uint8)).save(path)


def score_table(models: dict[str, TorchRoadModel], truth: HeldOut) -> tuple[str, dict]:
    """Markdown table and numbers: each model on the clear held-out date, L1C and L2A TCI."""
    conventions = {"L1C TCI": truth.tci, "L2A TCI (approx.)": l2a_like(truth.tci)}
    numbers: dict[str, dict] = {}
    lines = ["| model | TCI | precision | recall | F1 | called road | false, in settlements | false, in water |",
             "|---|---|---|---|---|---|---|---|"]
    for name, model in models.items():
        for convention, tci in conventions.items():
            result = scores(model.probability([tci]), truth)
            numbers.setdefault(name, {})[convention] = asdict(result)
            lines.append(f"| {name} | {convention} | {result.row()} |")
    return "\n".join(lines), numbers


def contract_table(models: dict[str, TorchRoadModel], truth: HeldOut) -> tuple[str, dict]:
    """Markdown table and numbers of the cloud contract for each sequence model."""
    numbers = {name: cloud_contract(model, truth.tci, truth) for name, model in models.items()}
    header = "| sequence | " + " | ".join(f"{name}: F1 (change from C) | mean abs. change of P" for name in models)
    lines = [header + " |", "|---|" + "---|---|" * len(models)]
    for sequence in CLOUD_SEQUENCES:
        cells = []
        for name in models:
            entry, clear = numbers[name][sequence], numbers[name]["C"]
            cells.append(f"{entry['f1']:.3f} ({entry['f1'] - clear['f1']:+.3f}) | {entry['mean_abs_change']:.4f}")
        lines.append(f"| {sequence} | " + " | ".join(cells) + " |")
    return "\n".join(lines), numbers
