"""Road models on the held-out part of the real labelled image (``models/real/``), scored by
``models.road_scores``: one clear date in both TCI conventions, and the cloud contract.

Models run in PyTorch on the whole held-out window at once (no tiling), so the single-date
FCN, paper A's PMap-only sequence model and the shipped model are scored the same way.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from ..models.checkpoint import checkpoint_normalisation, load_checkpoint
from ..models.road_scores import THRESHOLD, HeldOut, l2a_like, scores
from ..models.weather import cloud_opacity, clouded, overcast_date


class TorchRoadModel:
    """A road checkpoint run whole-window in PyTorch: ``sequence`` (the network) or ``fcn``
    (its single-date FCN, on the last date)."""

    def __init__(self, checkpoint: Path, part: str = "sequence") -> None:
        self.network, _, saved = load_checkpoint(checkpoint)
        self.normalisation = checkpoint_normalisation(saved)
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


def score_table(models: dict[str, TorchRoadModel], truth: HeldOut
                ) -> tuple[str, dict, dict[str, np.ndarray]]:
    """Markdown table and numbers: each model on the clear held-out date, L1C and L2A TCI; and
    each model's P(road) ``[H, W]`` on the L1C date (for the pictures)."""
    conventions = {"L1C TCI": truth.tci, "L2A TCI (approx.)": l2a_like(truth.tci)}
    numbers: dict[str, dict] = {}
    l1c: dict[str, np.ndarray] = {}
    lines = ["| model | TCI | precision | recall | F1 | called road | false, in settlements | false, in water |",
             "|---|---|---|---|---|---|---|---|"]
    for name, model in models.items():
        for convention, tci in conventions.items():
            probability = model.probability([tci])
            l1c.setdefault(name, probability)
            result = scores(probability, truth)
            numbers.setdefault(name, {})[convention] = asdict(result)
            lines.append(f"| {name} | {convention} | {result.row()} |")
    return "\n".join(lines), numbers, l1c


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
