"""Road models on the held-out parts of the real labelled images (``models/real/``), scored by
``models.road_scores`` per scene and pooled over the scenes: one clear date in both TCI
conventions, and the cloud contract.

Models run in PyTorch on the whole held-out window at once (no tiling), so the single-date
FCN, paper A's PMap-only sequence model and the shipped model are scored the same way.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from ..core.harmonisation import Harmonisation
from ..models.checkpoint import checkpoint_inputs, checkpoint_normalisation, load_checkpoint
from ..models.real_scene import _within
from ..models.road_scores import (
    THRESHOLD,
    TOLERANCE_PX,
    HeldOut,
    RoadCounts,
    block_counts,
    bootstrap_f1,
    f1_interval,
    interval,
    l2a_like,
    pooled,
)
from ..models.weather import cloud_opacity, clouded, haze_veil, hazed, overcast_date, thin_cloud_opacity


class TorchRoadModel:
    """A road checkpoint run whole-window in PyTorch: ``sequence`` (the network) or ``fcn``
    (its single-date FCN, on the last date)."""

    def __init__(self, checkpoint: Path, part: str = "sequence") -> None:
        self.network, _, saved = load_checkpoint(checkpoint)
        self.inputs = checkpoint_inputs(saved)
        self.part = part
        self.harmonisation = Harmonisation.from_card(saved["card"].get("harmonisation"))  # None: dates as they are
        self.normalisation = checkpoint_normalisation(saved)

    @torch.no_grad()
    def probability(self, dates: list[np.ndarray]) -> np.ndarray:
        """TCI dates, each ``[3, H, W]``, in time order -> P(road) ``[H, W]``."""
        images = torch.from_numpy(self.inputs(np.stack(dates)))[None]
        if self.part == "fcn":
            return self.network.fcn(images[:, -1])[0, 0].numpy()
        return self.network(images)[0, 0].numpy()


def cloudy_dates(tci: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Cloudy versions of ``tci`` ``[3, H, W]``, the simulator's clouds (``models.weather``): white with
    cloud everywhere; partly cloudy (about 40 % cover) with shadows; under a thin veil of cloud
    everywhere (opacity about 0.3, the middle of the training's thin cloud); and hazy (a 0.15 veil of
    haze, the middle of the training's)."""
    rng = np.random.default_rng(seed)
    shape = tci.shape[1:]
    clear = tci.astype(np.float32)
    overcast = overcast_date(shape, rng, 255.0)
    partly = clouded(clear, cloud_opacity(shape, 0.4, rng), rng, 255.0)
    veil = clouded(clear, thin_cloud_opacity(shape, THIN_CLOUD_OPACITY, rng), rng, 255.0)
    hazy = hazed(clear, haze_veil(shape, HAZE_VEIL, rng), 255.0)
    return {name: np.clip(date, 0, 255).astype(np.uint8) for name, date in
            (("overcast", overcast), ("partly_cloudy", partly), ("thin_cloud", veil), ("haze", hazy))}


THIN_CLOUD_OPACITY = 0.3
HAZE_VEIL = 0.15
# Sequences of the cloud contract: the clear date "C" with overcast "O", partly cloudy "P", thin-cloud
# "T" and hazy "H" dates, in time order.
CLOUD_SEQUENCES = ("C", "OC", "CO", "OOC", "COO", "OCO", "OOOC", "PC", "CP", "OPC", "TC", "CT", "HC", "T", "H")


def cloud_contract(model: TorchRoadModel, truths: dict[str, HeldOut], seed: int = 7) -> dict[str, dict]:
    """Scores of each sequence of ``CLOUD_SEQUENCES`` pooled over the scenes ``truths`` (and per scene
    under ``"scenes"``), the 95 % interval of its F1's change from the clear date alone (a paired block
    bootstrap, ``models.road_scores``), the mean absolute change of P(road) from the clear date alone
    (over all scored pixels) and its mean signed change on the roads (scored pixels within the tolerance
    of a traced line)."""
    blocks: list[list[np.ndarray]] = []  # per scene, per sequence
    change = {sequence: 0.0 for sequence in CLOUD_SEQUENCES}
    change_on_roads = {sequence: 0.0 for sequence in CLOUD_SEQUENCES}
    pixels = road_pixels = 0
    for truth in truths.values():
        cloudy = cloudy_dates(truth.tci, seed)
        dates = {"C": truth.tci, "O": cloudy["overcast"], "P": cloudy["partly_cloudy"], "T": cloudy["thin_cloud"],
                 "H": cloudy["haze"]}
        clear = model.probability([truth.tci])
        on_roads = _within(truth.centre, TOLERANCE_PX) & ~truth.ignored
        pixels += int((~truth.ignored).sum())
        road_pixels += int(on_roads.sum())
        blocks.append([])
        for sequence in CLOUD_SEQUENCES:
            probability = model.probability([dates[d] for d in sequence])
            blocks[-1].append(block_counts(probability, truth))
            change[sequence] += float(np.abs(probability - clear)[~truth.ignored].sum())
            change_on_roads[sequence] += float((probability - clear)[on_roads].sum())
    draws = bootstrap_f1(blocks)
    clear_index = CLOUD_SEQUENCES.index("C")
    results = {}
    for index, sequence in enumerate(CLOUD_SEQUENCES):
        per_scene = [RoadCounts.of(scene[index]) for scene in blocks]
        results[sequence] = {**asdict(pooled(per_scene)),
                             "f1_change_interval": interval(draws[:, index] - draws[:, clear_index]),
                             "mean_abs_change": change[sequence] / pixels,
                             "mean_change_on_roads": change_on_roads[sequence] / max(road_pixels, 1),
                             "scenes": {name: asdict(area.scores()) for name, area in zip(truths, per_scene)}}
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


CONVENTIONS = {"L1C TCI": lambda tci: tci, "L2A TCI (approx.)": l2a_like}


def score_table(models: dict[str, TorchRoadModel], truths: dict[str, HeldOut], threshold: float = THRESHOLD,
                paired: bool = False) -> tuple[str, dict, dict[str, dict[str, np.ndarray]]]:
    """Markdown table and numbers: each model on the clear held-out dates, L1C and L2A TCI, pooled
    over the scenes and per scene, road where P(road) >= ``threshold``; and each model's P(road)
    ``[H, W]`` per scene on the L1C date (for the pictures). ``paired``: a last column with each model's
    change of pooled F1 from the first model's, and its 95 % interval over the same block draws."""
    numbers: dict[str, dict] = {}
    l1c: dict[str, dict[str, np.ndarray]] = {}
    blocks: dict[str, dict[str, dict[str, np.ndarray]]] = {}  # convention -> model -> scene -> block counts
    for name, model in models.items():
        for convention, make in CONVENTIONS.items():
            for scene, truth in truths.items():
                probability = model.probability([make(truth.tci)])
                if convention == "L1C TCI":
                    l1c.setdefault(name, {})[scene] = probability
                blocks.setdefault(convention, {}).setdefault(name, {})[scene] = block_counts(probability, truth,
                                                                                             threshold)
    changes = {convention: _paired_changes(by_model, list(truths)) for convention, by_model in blocks.items()} \
        if paired and len(models) > 1 else {}
    scene_columns = " | ".join(f"F1 {scene}" for scene in truths)
    change_column = " F1 change from the first model (paired 95 % interval) |" if changes else ""
    lines = [f"| model | TCI | precision | recall | F1, all scenes (95 % interval) | {scene_columns} | called road | "
             f"false, in settlements | false, in water | mean P off roads |{change_column}",
             "|---|---|---|---|---|" + "---|" * len(truths) + "---|---|---|---|" + ("---|" if changes else "")]
    for name in models:
        for convention in CONVENTIONS:
            per_scene = {scene: RoadCounts.of(b) for scene, b in blocks[convention][name].items()}
            result = pooled(list(per_scene.values()))
            low, high = f1_interval(list(blocks[convention][name].values()))
            numbers.setdefault(name, {})[convention] = {
                **asdict(result), "f1_interval": (low, high),
                "scenes": {scene: asdict(c.scores()) for scene, c in per_scene.items()}}
            columns = [f"{c.scores().f1:.3f}" for c in per_scene.values()]
            precision, recall, f1, *rest = result.row().split(" | ")
            line = (f"| {name} | {convention} | {precision} | {recall} | {f1} ({low:.2f}-{high:.2f}) | "
                    f"{' | '.join(columns)} | {' | '.join(rest)} |")
            if changes:
                change, (low, high) = changes[convention][name]
                line += f" {change:+.3f} ({low:+.3f} to {high:+.3f}) |"
            lines.append(line)
    return "\n".join(lines), numbers, l1c


def _paired_changes(by_model: dict[str, dict[str, np.ndarray]], scenes: list[str]
                    ) -> dict[str, tuple[float, tuple[float, float]]]:
    """Each model's change of pooled F1 from the first model's, and its 95 % interval over block draws
    shared by all the models (``bootstrap_f1``)."""
    names = list(by_model)
    draws = bootstrap_f1([[by_model[name][scene] for name in names] for scene in scenes])
    f1 = {name: RoadCounts.of(np.concatenate(list(by_model[name].values()))).scores().f1 for name in names}
    return {name: (f1[name] - f1[names[0]], interval(draws[:, index] - draws[:, 0]))
            for index, name in enumerate(names)}


def contract_table(models: dict[str, TorchRoadModel], truths: dict[str, HeldOut]) -> tuple[str, dict]:
    """Markdown table and numbers of the cloud contract for each sequence model (pooled over scenes)."""
    numbers = {name: cloud_contract(model, truths) for name, model in models.items()}
    header = "| sequence | " + " | ".join(f"{name}: F1 (change from C; its 95 % interval) | mean abs. change of P | "
                                         "change of P on roads"
                                         for name in models)
    lines = [header + " |", "|---|" + "---|---|---|" * len(models)]
    for sequence in CLOUD_SEQUENCES:
        cells = []
        for name in models:
            entry, clear = numbers[name][sequence], numbers[name]["C"]
            low, high = entry["f1_change_interval"]
            cells.append(f"{entry['f1']:.3f} ({entry['f1'] - clear['f1']:+.3f}; {low:+.3f} to {high:+.3f}) | "
                         f"{entry['mean_abs_change']:.4f} | {entry['mean_change_on_roads']:+.3f}")
        lines.append(f"| {sequence} | " + " | ".join(cells) + " |")
    return "\n".join(lines), numbers


def unseen_place_table(models: dict[str, TorchRoadModel], dates: dict[str, HeldOut]) -> tuple[str, dict]:
    """Markdown table and numbers: each model on a place it never saw (``dates``: its held-out truth
    per clear date, in time order, one grid): each date alone in both TCI conventions, then (sequence
    models) all dates together, with a fully overcast date first, with the first date's west half beyond
    its swath's edge (no data), among eight overcast dates, and each after a partly cloudy date."""
    names = list(dates)
    truth = dates[names[-1]]  # the masks are the same on every date
    overcast = cloudy_dates(truth.tci, seed=7)["overcast"]
    views: dict[str, list[np.ndarray]] = {}
    for convention, make in CONVENTIONS.items():
        for name in names:
            views[f"{name} alone, {convention}"] = [make(dates[name].tci)]
    together = [dates[name].tci for name in names]
    views[f"{' + '.join(names)}, L1C TCI"] = together
    views[f"overcast + {' + '.join(names)}, L1C TCI"] = [overcast, *together]
    # the first date cut by its swath's edge: no data (0, as in ESA's true colour) west of the middle
    edge = together[0].copy()
    edge[:, :, : edge.shape[2] // 2] = 0
    views[f"{names[0]} with no data in its west half + {' + '.join(names[1:])}, L1C TCI"] = [edge, *together[1:]]
    # a cloudy season: the clear dates among eight overcast ones, and each after a partly cloudy date
    overcasts = [cloudy_dates(truth.tci, seed)["overcast"] for seed in range(20, 28)]
    season = [overcasts[0], together[0], *overcasts[1:3], *together[1:], *overcasts[3:]]
    views[f"{' + '.join(names)} among eight overcast dates ({len(season)} dates), L1C TCI"] = season
    partly = [[cloudy_dates(tci, 30 + index)["partly_cloudy"], tci] for index, tci in enumerate(together)]
    views[f"{' + '.join(names)}, each after a partly cloudy date, L1C TCI"] = [d for pair in partly for d in pair]
    numbers: dict[str, dict] = {}
    lines = ["| dates | " + " | ".join(f"{name}: P / R / F1 (95 % interval)" for name in models) + " |",
             "|---|" + "---|" * len(models)]
    for view, images in views.items():
        cells = []
        for name, model in models.items():
            if model.part == "fcn" and len(images) > 1:
                cells.append("(one date only)")
                continue
            blocks = block_counts(model.probability(images), truth)
            result = RoadCounts.of(blocks).scores()
            low, high = f1_interval([blocks])
            numbers.setdefault(name, {})[view] = {**asdict(result), "f1_interval": (low, high)}
            cells.append(f"{result.precision:.3f} / {result.recall:.3f} / **{result.f1:.3f}** ({low:.2f}-{high:.2f})")
        lines.append(f"| {view} | " + " | ".join(cells) + " |")
    return "\n".join(lines), numbers
