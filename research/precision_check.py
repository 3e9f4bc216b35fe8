"""``timeseg-research precision-check``: the shipped road model's int8 variant against its float32 original on
the real held-out areas (hand-traced roads, one clear date, as L1C and L2A true colour) and on the real place no
model is trained on (each clear date alone, then both) -> docs/precision.md.

Both files run through the engine (``timeseg segment --precision fp32|int8``), so the numbers are
what an analyst gets. Speed is ``make bench``'s (bench/results.json).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio

from ..core.atomic import write_text_atomic
from ..core.raster_stack import DatedRaster
from ..core.segment import SegmentRequest, segment
from ..models.real_scene import REAL_SCENES, UNSEEN_DATES, RealScene, split_image_path
from ..models.road_scores import THRESHOLD, counts, held_out, l2a_like, pooled, rounded, scores, unseen_held_out


def _maps(model: Path, scene: RealScene, tci: np.ndarray, work: Path) -> dict[str, dict[str, np.ndarray]]:
    """P(road) ``[H, W]`` of ``scene``'s held-out crop under ``work`` (L1C) and its L2A version, by the
    fp32 and the int8 model."""
    image = split_image_path(work / "heldout", scene.image, "heldout")
    with rasterio.open(image) as dataset:
        profile = dataset.profile
    l2a = work / f"{image.stem}_l2a.tif"
    with rasterio.open(l2a, "w", **profile) as dataset:
        dataset.write(l2a_like(tci))
    maps: dict[str, dict[str, np.ndarray]] = {}
    for product, path in (("l1c_tci", image), ("l2a_tci", l2a)):
        for precision in ("fp32", "int8"):
            result = segment(SegmentRequest([DatedRaster(path, scene.date)], model, work / f"{product}_{precision}",
                                            device="cpu", precision=precision))
            with rasterio.open(result.probability_path) as dataset:
                maps.setdefault(product, {})[precision] = np.nan_to_num(dataset.read(1))
    return maps


def _unseen_place(model: Path, work: Path) -> dict[str, dict]:
    """Both models through the engine on the place no model is trained on (``UNSEEN_DATES``, L1C TCI):
    each clear date alone, then all in time order; relaxed scores and the class pixels they share."""
    truth = next(iter(unseen_held_out(work).values()))
    rasters = [DatedRaster(split_image_path(work / scene.date.isoformat(), scene.image, "heldout"), scene.date)
               for scene in UNSEEN_DATES]
    results = {}
    for name, dates in [*((f"{r.date.isoformat()} alone", [r]) for r in rasters), ("all dates", rasters)]:
        maps = {}
        for precision in ("fp32", "int8"):
            result = segment(SegmentRequest(dates, model, work / f"{name.replace(' ', '_')}_{precision}", device="cpu",
                                            precision=precision))
            with rasterio.open(result.probability_path) as dataset:
                maps[precision] = np.nan_to_num(dataset.read(1))
        results[name] = {precision: rounded(scores(p, truth)) for precision, p in maps.items()}
        results[name]["class_pixels_equal"] = round(float(((maps["fp32"] >= THRESHOLD) ==
                                                           (maps["int8"] >= THRESHOLD)).mean()), 4)
    return results


def _rows(name: str, entry: dict) -> list[str]:
    """Table rows of the fp32 and int8 scores in ``entry``, the int8 one with the class pixels shared."""
    rows = []
    for precision in ("fp32", "int8"):
        result = entry[precision]
        equal = f"{entry['class_pixels_equal']:.2%}" if precision == "int8" else ""
        rows.append(f"| {name} | {precision} | {result['precision']:.3f} | {result['recall']:.3f} | "
                    f"{result['f1']:.3f} | {equal} |")
    return rows


def run(model: Path, work: Path, docs: Path) -> dict:
    """Both models on every real scene's held-out area, both conventions; scores pooled over the scenes."""
    per_scene = {}
    for scene in REAL_SCENES:
        folder = work / scene.name
        truth = held_out(folder / "heldout", scene)
        per_scene[scene.name] = (truth, _maps(model, scene, truth.tci, folder))
    results: dict = {"model": str(model), "scenes": [scene.name for scene in REAL_SCENES]}
    for product in ("l1c_tci", "l2a_tci"):
        for precision in ("fp32", "int8"):
            pooled_scores = pooled([counts(maps[product][precision], truth) for truth, maps in per_scene.values()])
            results.setdefault(product, {})[precision] = rounded(pooled_scores)
        equal = sum(int(((maps[product]["fp32"] >= THRESHOLD) == (maps[product]["int8"] >= THRESHOLD)).sum())
                    for _, maps in per_scene.values())
        results[product]["class_pixels_equal"] = round(equal / sum(t.tci[0].size for t, _ in per_scene.values()), 4)
    results["unseen_place"] = _unseen_place(model, work / UNSEEN_DATES[0].name)
    docs.mkdir(parents=True, exist_ok=True)
    write_text_atomic(docs / "precision.json", json.dumps(results, indent=2))
    lines = ["# int8 against float32 on real Sentinel-2 (held-out areas)", "",
             "`timeseg-research precision-check`; relaxed (2 px) scores on the hand-traced held-out roads of "
             f"{', '.join(f'`{s.labels.name}`' for s in REAL_SCENES)}, pooled, one clear date, through the engine.",
             "", "| product | model | precision | recall | F1 | class pixels equal to fp32 |",
             "|---|---|---|---|---|---|"]
    for product in ("l1c_tci", "l2a_tci"):
        lines += _rows(product, results[product])
    lines += ["", f"On `{UNSEEN_DATES[0].labels.name}`, the real place no model is trained on (L1C TCI, through the "
              "engine):", "", "| dates | model | precision | recall | F1 | class pixels equal to fp32 |",
              "|---|---|---|---|---|---|"]
    for name, entry in results["unseen_place"].items():
        lines += _rows(name, entry)
    write_text_atomic(docs / "precision.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return results
