"""Fine-tuning measured on real data: the shipped road model fitted to the train area of the real
labelled image for a fixed CPU time, against training from scratch for the same time, both
scored on the held-out area (``models.road_scores``) and on the run's own held-out part.

It goes through ``models.fine_tune`` exactly as an analyst's run does (the dock, Processing,
``timeseg train --output-model``): the train area's image and its label raster are the analyst's
layers, the area is cut into training, validation and held-out parts automatically.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..core.atomic import write_text_atomic
from ..core.raster_stack import DatedRaster
from ..models.fine_tune import fine_tune
from ..models.labels import LabelSource
from ..models.real_scene import T33UUU, write_split
from ..models.road_scores import checkpoint_scores
from ..models.settings import FineTuneRequest


def run(init: Path, minutes: float, work: Path, docs: Path, epochs: int = 200) -> dict:
    """Both runs; writes ``docs/fine_tuning.md`` and ``docs/fine_tuning.json``; returns the numbers."""
    image, labels = write_split(T33UUU.labels, T33UUU.image, "train", work / "area")
    request = dict(rasters=[DatedRaster(image, T33UUU.date)], labels=LabelSource(labels, "raster"), epochs=epochs,
                   minutes=minutes, layer_names=[image.name])
    results = {"init": str(init), "minutes": minutes,
               "real_heldout_before": checkpoint_scores(init, work / "s0", [T33UUU])}
    for name, start in (("fine_tuned", init), ("from_scratch", None)):
        started = time.monotonic()
        result = fine_tune(FineTuneRequest(output_model=work / f"{name}.onnx", init_checkpoint=start, **request))
        results[name] = {"seconds": round(time.monotonic() - started), "area_heldout_before": result.before,
                         "area_heldout_after": result.after,
                         "real_heldout": checkpoint_scores(result.checkpoint_path, work / f"s_{name}", [T33UUU])}
    docs.mkdir(parents=True, exist_ok=True)
    write_text_atomic(docs / "fine_tuning.json", json.dumps(results, indent=2))
    write_text_atomic(docs / "fine_tuning.md", report(results))
    return results


def report(results: dict) -> str:
    def f1(scores: dict | None) -> str:
        return "-" if not scores else f"{scores.get('relaxed_f1', scores['f1']):.3f}"

    before = results["real_heldout_before"]
    rows = [f"| shipped model, as shipped | - | {f1(before['l1c_tci'])} | {f1(before['l2a_tci'])} | - |"]
    for name, title in (("fine_tuned", "shipped model, fine-tuned"), ("from_scratch", "from scratch")):
        entry = results[name]
        rows.append(f"| {title} | {entry['seconds']} s | {f1(entry['real_heldout']['l1c_tci'])} | "
                    f"{f1(entry['real_heldout']['l2a_tci'])} | {f1(entry['area_heldout_before'])} -> "
                    f"{f1(entry['area_heldout_after'])} |")
    return "\n".join([
        "# Fitting a model to your area: measured on real Sentinel-2",
        "",
        "Made by `make fine-tune-check` (`timeseg-research fine-tune-real --minutes "
        f"{results['minutes']:g}`) on the 2-core CPU machine. Data: the `train` area of `models/real/` "
        "(the real T33UUU image, 2017-02-16, and its hand-traced roads as a label raster), given to "
        "`models.fine_tune` as an analyst's layers: the run cuts it into training (70 %), validation (10 %) "
        "and held-out (20 %) parts itself. Every run gets the same time budget.",
        "",
        "Scores: relaxed F1 (2 px tolerance) of roads on the real image's held-out area (never seen by any "
        "run), one clear date as an L1C and as an L2A TCI; and pixel F1 of the 3 px road raster on the run's "
        "own held-out part (before -> after), what the dock shows an analyst.",
        "",
        "| model | training time | held-out area, L1C | held-out area, L2A | run's held-out part |",
        "|---|---|---|---|---|",
        *rows,
        "",
        "The shipped model was itself trained on this train area (with simulated scenes), so fine-tuning it "
        "here shows the mechanism and its cost, not a new place. Numbers: `fine_tuning.json`.",
        "",
    ])
