"""Network configurations and checkpoints that load with ``torch.load(weights_only=True)``.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts::

    {"format": "timeseg-checkpoint/1", "network": {...NetworkConfig}, "state_dict": {...},
     "card": {...card fields known at training time}, "stage": "fcn" | "sequence" | "joint",
     "epoch": int, "metrics": {...}}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..core.atomic import atomic_file
from ..core.harmonisation import Harmonisation, harmonised
from ..core.model_card import ModelCard
from ..core.normalisation import Normalisation
from .networks import BiConvLstmClassifier, FcnConvLstm
from .settings import NetworkConfig

CHECKPOINT_FORMAT = "timeseg-checkpoint/1"
def build_network(config: NetworkConfig) -> nn.Module:
    if config.architecture == "fcn_convlstm":
        return FcnConvLstm(
            config.in_channels, config.output_channels, config.depth, config.base_channels,
            config.hidden_channels, config.kernel_size, context_channels=config.context_channels,
            batch_norm=config.batch_norm, date_gate=config.date_gate,
        )
    return BiConvLstmClassifier(
        config.in_channels, config.output_channels, config.hidden_channels or 256, config.kernel_size
    )


def save_checkpoint(path: Path, network: nn.Module, config: NetworkConfig, card: dict[str, Any],
                    stage: str, epoch: int, metrics: dict[str, Any]) -> None:
    """Write atomically: a crash never leaves a truncated checkpoint under ``path``."""
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "network": dataclasses.asdict(config),
        "state_dict": {k: v.detach().cpu() for k, v in network.state_dict().items()},
        "card": card,
        "stage": stage,
        "epoch": epoch,
        "metrics": metrics,
    }
    with atomic_file(path) as partial:
        torch.save(checkpoint, partial)


def set_card_fields(path: Path, **fields: Any) -> None:
    """Change fields of a checkpoint's card in place (atomically); the weights stay as they are."""
    load_checkpoint(path)  # a TimeSeg checkpoint, or ValueError
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    checkpoint["card"] = {**checkpoint["card"], **fields}
    with atomic_file(path) as partial:
        torch.save(checkpoint, partial)


def load_checkpoint(path: str | Path) -> tuple[nn.Module, NetworkConfig, dict[str, Any]]:
    """-> (network in eval mode, its config, the whole checkpoint dict)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # torch raises several types for files that are not (safe) checkpoints
        checkpoint = None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a TimeSeg checkpoint (written by 'timeseg train' or 'train-crops')")
    config = NetworkConfig(**checkpoint["network"])
    network = build_network(config)
    network.load_state_dict(checkpoint["state_dict"])
    return network.eval(), config, checkpoint


def checkpoint_normalisation(checkpoint: dict[str, Any]) -> Normalisation:
    """How raw pixels become the network's input, as the checkpoint's card says (the same rule
    as for an exported model: ``core.normalisation.Normalisation.from_card``)."""
    return Normalisation.from_card(ModelCard(**checkpoint["card"]))


def checkpoint_inputs(checkpoint: dict[str, Any]) -> Callable[[np.ndarray], np.ndarray]:
    """Whole raw dates ``[T, C, H, W]`` -> the network's input, as the engine makes it: each date
    harmonised when the card says so (``core.harmonisation``), then normalised."""
    normalisation = checkpoint_normalisation(checkpoint)
    harmonisation = Harmonisation.from_card(checkpoint["card"].get("harmonisation"))
    return lambda dates: normalisation.apply(harmonised(dates, harmonisation))
