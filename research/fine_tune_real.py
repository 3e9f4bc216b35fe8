"""Fine-tuning measured on real data: a road model fitted to the train area of one real labelled
scene for a fixed CPU time, against training from scratch for the same time, both scored on that
scene's held-out area (``models.road_scores``) and on the run's own held-out part; and fitted to the
place no model was trained on (Inn, both dates, the whole image), scored on the run's own held-out
part only, as an analyst with a new place sees it.

It goes through ``models.fine_tune`` exactly as an analyst's run does (the dock, Processing,
``timeseg train --output-model``): the train area's image and its label raster are the analyst's
layers, the area is cut into training, validation and held-out parts automatically.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ..core.atomic import write_text_atomic
from ..core.raster_stack import DatedRaster
from ..models.fine_tune import fine_tune
from ..models.labels import LabelSource
from ..models.real_scene import REAL_SCENES, UNSEEN_DATES, RealScene, write_split
from ..models.road_scores import checkpoint_scores
from ..models.settings import FineTuneRequest


def run(init: Path, minutes: float, work: Path, docs: Path, scene: RealScene, init_words: str) -> dict:
    """Both runs on ``scene``, with the epochs an analyst's run gets by default; writes
    ``docs/fine_tuning_<scene>.json`` and the report of every scene measured so far, ``docs/fine_tuning.md``;
    returns the numbers."""
    work = work / scene.name
    unseen = scene.name == UNSEEN_DATES[0].name
    dates = UNSEEN_DATES if unseen else (scene,)
    split = "heldout" if unseen else "train"  # the unseen place has one area, the whole image
    layers = [write_split(date.labels, date.image, split, work / "area") for date in dates]
    request = dict(rasters=[DatedRaster(image, date.date) for (image, _), date in zip(layers, dates)],
                   labels=LabelSource(layers[0][1], "raster"), minutes=minutes,
                   layer_names=[image.name for image, _ in layers])

    def scene_scores(checkpoint: Path, folder: str) -> dict | None:  # the unseen place has no area apart
        return None if unseen else checkpoint_scores(checkpoint, work / folder, [scene])

    results = {"scene": scene.name, "init": str(init), "init_words": init_words, "minutes": minutes,
               "torch_threads": torch.get_num_threads(), "dates": [str(date.date) for date in dates],
               "real_heldout_before": scene_scores(init, "s0")}
    for name, start in (("fine_tuned", init), ("from_scratch", None)):
        started = time.monotonic()
        result = fine_tune(FineTuneRequest(output_model=work / f"{name}.onnx", init_checkpoint=start, **request))
        results[name] = {"seconds": round(time.monotonic() - started), "area_heldout_before": result.before,
                         "area_heldout_after": result.after, "real_heldout": scene_scores(result.checkpoint_path,
                                                                                          f"s_{name}"),
                         "area_heldout_window": [int(v) for v in result.windows["heldout"].flatten()],
                         "kept_start": result.kept_start}
    docs.mkdir(parents=True, exist_ok=True)
    write_text_atomic(docs / f"fine_tuning_{scene.name}.json", json.dumps(results, indent=2))
    measured = [json.loads((docs / f"fine_tuning_{s.name}.json").read_text()) for s in (*REAL_SCENES, UNSEEN_DATES[0])
                if (docs / f"fine_tuning_{s.name}.json").exists()]
    write_text_atomic(docs / "fine_tuning.md", report(measured))
    return results


def _rows(results: dict) -> list[str]:
    def f1(scores: dict | None, key: str = "f1") -> str:
        return "-" if not scores or key not in scores else f"{scores[key]:.3f}"

    def scene(scores: dict | None) -> str:
        return "(none apart) | (none apart)" if scores is None else f"{f1(scores['l1c_tci'])} | {f1(scores['l2a_tci'])}"

    rows = [f"| starting model, as it is | - | {scene(results['real_heldout_before'])} | - | - |"]
    for name, title in (("fine_tuned", "starting model, fine-tuned"), ("from_scratch", "from scratch")):
        entry = results[name]
        if entry.get("kept_start"):
            title += " (no epoch beat the start on the validation part: the starting model)"
        area = entry["area_heldout_before"], entry["area_heldout_after"]
        rows.append(f"| {title} | {entry['seconds']} s | {scene(entry['real_heldout'])} | "
                    f"{f1(area[0], 'relaxed_f1')} -> {f1(area[1], 'relaxed_f1')} | {f1(area[0])} -> {f1(area[1])} |")
    return rows


def report(measured: list[dict]) -> str:
    """``docs/fine_tuning.md``: one table per scene measured."""
    lines = [
        "# Fitting a model to your area: measured on real Sentinel-2",
        "",
        "Made by `make fine-tune-check` (`timeseg-research fine-tune-real --scene <scene> --init <checkpoint> "
        "--minutes <m>`) on the 2-core CPU machine. Data: the `train` area of one real scene of `models/real/` "
        "(the image and its hand-traced roads as a label raster; for Inn, the place no model was trained on, the "
        "whole image and both its dates), given to `models.fine_tune` as an analyst's "
        "layers: the run cuts it into training (70 %), validation (10 %) and held-out (20 %) parts itself. "
        "Every run gets the same time budget. A run from a trained model scores it on the validation part first "
        "and keeps it wherever no epoch beats it there (its verdict then says that the fitted model is the "
        "starting model).",
        "",
        "Scores: relaxed F1 (2 px tolerance) of roads on the scene's held-out area (never seen by any run), one "
        "clear date as an L1C and as an L2A TCI; and on the run's own held-out part (before -> after), what the "
        "dock shows an analyst and what its verdict (*keep using the starting model*) reads: relaxed F1 against the "
        "label raster's centre lines (its road pixels thinned to their skeleton), and the pixel F1 of the 3 px "
        "road raster. A starting model trained on the scene's train area (T33UUU's) has learned the run's held-out "
        "part: its score there before fitting is on ground it was trained on, not a baseline.",
        "",
    ]
    for results in measured:
        lines += [
            f"## {results['scene']}: {results['minutes']:g} minutes per run",
            "",
            f"Starting model: {results['init_words']} (`{results['init']}`). Torch threads per run: "
            f"{results.get('torch_threads', 'not recorded')}."
            + (f" The analyst's layers: both dates ({', '.join(results['dates'])}) and the roads of the whole "
               "image; no area is kept apart, so the run's own held-out part (the window "
               f"`{results['fine_tuned']['area_heldout_window']}`, column, row, width, height) is the only score."
               if results["real_heldout_before"] is None else ""),
            "",
            "| model | training time | held-out area, L1C | held-out area, L2A | run's held-out part, within 2 px | "
            "run's held-out part, pixel F1 |",
            "|---|---|---|---|---|---|",
            *_rows(results),
            "",
            f"Numbers: `fine_tuning_{results['scene']}.json`.",
            "",
        ]
    return "\n".join(lines)
