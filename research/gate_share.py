"""``timeseg-research gate-share``: where a road model's date gate takes a clear real date in.

The gate gives each date a per-pixel share s in [0, 1] by which the ConvLSTM states move (0: the date
leaves them as they were). This reads s on the held-out areas' clear dates (L1C TCI), grouped by what
the pixels are: on a traced centre line, near one, called road by the ungated network the gate was
trained on and dropped by the gated one, called road by both off the roads, every scored pixel, and a
white date.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from ..models.networks.unet import probabilities_from_logits
from ..models.real_scene import _within
from ..models.road_scores import THRESHOLD, TOLERANCE_PX, HeldOut, held_out
from .real_roads import TorchRoadModel

GROUPS = ("on traced centre lines", "near roads", "called without the gate, dropped by it", "called by both, off roads",
          "every scored pixel", "a white date")


@torch.no_grad()
def gate_shares(gated: TorchRoadModel, ungated: TorchRoadModel, truths: Mapping[str, HeldOut]
                ) -> dict[str, dict[str, float]]:
    """-> ``{group: {"mean": s, "median": s, "pixels": n}}`` pooled over ``truths``' windows; *near*
    is within the scores' tolerance of a traced centre line, ignored pixels are left out."""
    if not getattr(gated.network, "gated", False):
        raise ValueError("the first checkpoint has no date gate: give a model trained with --date-gate")
    shares: dict[str, list[np.ndarray]] = {group: [] for group in GROUPS}
    for truth in truths.values():
        images = torch.from_numpy(gated.inputs(truth.tci[None]))[None]  # [1, 1, 3, H, W]
        white = torch.from_numpy(gated.inputs(np.full_like(truth.tci[None], 255)))[None]
        steps = gated.network.date_steps(images)  # the FCN once: the share and the map both read it
        share = steps[0, 0, -1].numpy()
        called_gated = probabilities_from_logits(gated.network.logits_from_steps(steps))[0, 0].numpy() >= THRESHOLD
        called_ungated = ungated.probability([truth.tci]) >= THRESHOLD
        scored = ~truth.ignored
        near = _within(truth.centre, TOLERANCE_PX) & scored  # as the scores count a line found
        off = scored & ~near
        shares["on traced centre lines"].append(share[truth.centre & scored])
        shares["near roads"].append(share[near])
        shares["called without the gate, dropped by it"].append(share[off & called_ungated & ~called_gated])
        shares["called by both, off roads"].append(share[off & called_ungated & called_gated])
        shares["every scored pixel"].append(share[scored])
        shares["a white date"].append(gated.network.date_steps(white)[0, 0, -1].numpy()[scored])
    result = {}
    for group, parts in shares.items():
        values = np.concatenate(parts)
        result[group] = {"mean": float(values.mean()) if values.size else float("nan"),
                         "median": float(np.median(values)) if values.size else float("nan"),
                         "pixels": int(values.size)}
    return result


def run(gated: Path, ungated: Path, work: Path) -> str:
    """The table ``timeseg-research gate-share`` prints, over every real scene's held-out area."""
    from ..models.real_scene import REAL_SCENES

    truths = {scene.name: held_out(work / scene.name, scene) for scene in REAL_SCENES}
    result = gate_shares(TorchRoadModel(gated), TorchRoadModel(ungated), truths)
    lines = ["| pixels of the held-out clear dates (L1C TCI) | mean s | median s | pixels |", "|---|---|---|---|"]
    lines += [f"| {group} | {v['mean']:.3f} | {v['median']:.3f} | {v['pixels']} |" for group, v in result.items()]
    return "\n".join(lines)
