"""``timeseg-research harmonise``: a road checkpoint told to harmonise each date onto the real training
scenes' land (``core.harmonisation``), and its simulated held-out metrics measured again that way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader

from ..core.harmonisation import Harmonisation
from ..models.checkpoint import checkpoint_normalisation, load_checkpoint, set_card_fields
from ..models.dataset import OpenSite, SequencePatches
from ..models.real_scene import real_harmonisation
from ..models.sites import VALIDATION_SEED_OFFSET, simulated_sites
from ..models.training import validation_metrics

# make model's simulated held-out scenes: --seed 0 --validation-scenes 4 --scene-size 256 --patch-size 128
VALIDATION_SCENES, SCENE_SIZE_PX, PATCH_PX, BATCH = 4, 256, 128, 8


def simulated_metrics(checkpoint: Path, folder: Path, seed: int = 0) -> dict[str, Any]:
    """The card's simulated metrics of ``checkpoint`` on make model's held-out scenes (under ``folder``,
    written there when missing), its dates harmonised as its card says."""
    network, _, saved = load_checkpoint(checkpoint)
    harmonisation = Harmonisation.from_card(saved["card"].get("harmonisation"))
    first = VALIDATION_SEED_OFFSET + seed * 1000
    sites = [OpenSite(site, harmonisation)
             for site in simulated_sites(folder, range(first, first + VALIDATION_SCENES), SCENE_SIZE_PX)]
    try:
        loader = DataLoader(SequencePatches(sites, PATCH_PX, saved["card"]["sequence_length"],
                                            checkpoint_normalisation(saved), "grid"), batch_size=BATCH)
        metrics = validation_metrics(network, loader, 2, "cpu", saved["card"].get("threshold", 0.5))
        metrics["validation_pixels_per_date"] = sum(s.shape[0] * s.shape[1] for s in sites)
    finally:
        for site in sites:
            site.__exit__(None, None, None)
    return metrics


def harmonise(checkpoint: Path, work: Path, simulated: Path) -> dict[str, Any]:
    """Write the harmonisation into ``checkpoint``'s card, then its simulated metrics measured with it."""
    harmonisation = real_harmonisation(work)
    set_card_fields(checkpoint, harmonisation=harmonisation.to_card())
    card = load_checkpoint(checkpoint)[2]["card"]
    metrics = {**card.get("metrics", {}), **simulated_metrics(checkpoint, simulated)}
    set_card_fields(checkpoint, metrics=metrics)
    return {"harmonisation": harmonisation.to_card(), "sequence_iou": metrics["sequence"]["iou"],
            "single_date_fcn_iou": metrics["single_date_fcn"]["iou"]}
