"""``timeseg-research precision-check``: the shipped road model's int8 (CPU), fp16 (GPU) or bf16 (CPU,
OpenVINO) variant against its float32 original on the real held-out areas (hand-traced roads, one clear date, as
L1C and L2A true colour) and on the real place no model is trained on (each clear date alone, then both) ->
docs/precision.md (int8) or docs/precision_<variant>.md.

Both files run through the engine (``timeseg segment --precision fp32|<variant>``), so the numbers are
what an analyst gets. Speed is ``make bench``'s and ``bench/gpu.py``'s (bench/results.json).

Each area's crop and scoring masks are kept under the work folder (``truth.npz``, remade when the labels
or the image are newer), so that a machine without GDAL's vector bindings (a GPU machine) can run the
check on a work folder made elsewhere.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import rasterio

from ..core.atomic import write_text_atomic
from ..core.raster_stack import DatedRaster
from ..core.segment import SegmentRequest, segment
from ..models.real_scene import REAL_SCENES, UNSEEN_DATES, RealScene, split_image_path
from ..models.road_scores import THRESHOLD, HeldOut, counts, held_out, l2a_like, pooled, rounded, scores

VARIANT_DEVICES = {"int8": "cpu", "fp16": "cuda", "bf16": "cpu"}  # where each variant is meant to run


def _held_out(folder: Path, scene: RealScene | None) -> HeldOut:
    """``held_out(folder, scene)``, kept as ``folder/truth.npz`` and read from there while it is newer than
    the scene's labels and image (those that are on this machine)."""
    cached = folder / "truth.npz"
    sources = [path for path in (scene.labels, scene.image) if path.is_file()] if scene is not None else []
    if cached.is_file() and all(path.stat().st_mtime <= cached.stat().st_mtime for path in sources):
        with np.load(cached) as arrays:
            return HeldOut(**{name: arrays[name] for name in arrays.files})
    truth = held_out(folder, scene)
    np.savez_compressed(cached, **dataclasses.asdict(truth))
    return truth


def _maps(model: Path, scene: RealScene, tci: np.ndarray, work: Path, variant: str,
          device: str) -> dict[str, dict[str, np.ndarray]]:
    """P(road) ``[H, W]`` of ``scene``'s held-out crop under ``work`` (L1C) and its L2A version, by the
    fp32 model and its ``variant``."""
    image = split_image_path(work / "heldout", scene.image, "heldout")
    with rasterio.open(image) as dataset:
        profile = dataset.profile
    l2a = work / f"{image.stem}_l2a.tif"
    with rasterio.open(l2a, "w", **profile) as dataset:
        dataset.write(l2a_like(tci))
    maps: dict[str, dict[str, np.ndarray]] = {}
    for product, path in (("l1c_tci", image), ("l2a_tci", l2a)):
        for precision in ("fp32", variant):
            result = segment(SegmentRequest([DatedRaster(path, scene.date)], model, work / f"{product}_{precision}",
                                            device=device, precision=precision))
            with rasterio.open(result.probability_path) as dataset:
                maps.setdefault(product, {})[precision] = np.nan_to_num(dataset.read(1))
    return maps


def _unseen_place(model: Path, work: Path, variant: str, device: str) -> dict[str, dict]:
    """Both models through the engine on the place no model is trained on (``UNSEEN_DATES``, L1C TCI):
    each clear date alone, then all in time order; relaxed scores and the class pixels they share."""
    # every date's crop is written; the masks are the same on every date
    truth = [_held_out(work / scene.date.isoformat(), scene) for scene in UNSEEN_DATES][0]
    rasters = [DatedRaster(split_image_path(work / scene.date.isoformat(), scene.image, "heldout"), scene.date)
               for scene in UNSEEN_DATES]
    results = {}
    for name, dates in [*((f"{r.date.isoformat()} alone", [r]) for r in rasters), ("all dates", rasters)]:
        maps = {}
        for precision in ("fp32", variant):
            result = segment(SegmentRequest(dates, model, work / f"{name.replace(' ', '_')}_{precision}",
                                            device=device, precision=precision))
            with rasterio.open(result.probability_path) as dataset:
                maps[precision] = np.nan_to_num(dataset.read(1))
        results[name] = {precision: rounded(scores(p, truth)) for precision, p in maps.items()}
        results[name]["class_pixels_equal"] = round(float(((maps["fp32"] >= THRESHOLD) ==
                                                           (maps[variant] >= THRESHOLD)).mean()), 4)
    return results


def _rows(name: str, entry: dict, variant: str) -> list[str]:
    """Table rows of the fp32 and ``variant`` scores in ``entry``, the variant's with the class pixels shared."""
    rows = []
    for precision in ("fp32", variant):
        result = entry[precision]
        equal = f"{entry['class_pixels_equal']:.2%}" if precision == variant else ""
        rows.append(f"| {name} | {precision} | {result['precision']:.3f} | {result['recall']:.3f} | "
                    f"{result['f1']:.3f} | {equal} |")
    return rows


def run(model: Path, work: Path, docs: Path, variant: str = "int8", device: str | None = None) -> dict:
    """Both models on every real scene's held-out area, both conventions; scores pooled over the scenes.
    ``device``: where both run (default: where ``variant`` is meant to run, ``VARIANT_DEVICES``)."""
    device = device or VARIANT_DEVICES[variant]
    per_scene = {}
    for scene in REAL_SCENES:
        folder = work / scene.name
        truth = _held_out(folder / "heldout", scene)
        per_scene[scene.name] = (truth, _maps(model, scene, truth.tci, folder, variant, device))
    results: dict = {"model": str(model), "variant": variant, "device": device,
                     "scenes": [scene.name for scene in REAL_SCENES]}
    for product in ("l1c_tci", "l2a_tci"):
        for precision in ("fp32", variant):
            pooled_scores = pooled([counts(maps[product][precision], truth) for truth, maps in per_scene.values()])
            results.setdefault(product, {})[precision] = rounded(pooled_scores)
        equal = sum(int(((maps[product]["fp32"] >= THRESHOLD) == (maps[product][variant] >= THRESHOLD)).sum())
                    for _, maps in per_scene.values())
        results[product]["class_pixels_equal"] = round(equal / sum(t.tci[0].size for t, _ in per_scene.values()), 4)
    results["unseen_place"] = _unseen_place(model, work / UNSEEN_DATES[0].name, variant, device)
    docs.mkdir(parents=True, exist_ok=True)
    name = "precision" if variant == "int8" else f"precision_{variant}"
    write_text_atomic(docs / f"{name}.json", json.dumps(results, indent=2))
    lines = [f"# {variant} against float32 on real Sentinel-2 (held-out areas)", "",
             f"`timeseg-research precision-check --variant {variant} --device {device}`; relaxed (2 px) scores on "
             f"the hand-traced held-out roads of {', '.join(f'`{s.labels.name}`' for s in REAL_SCENES)}, pooled, "
             f"one clear date, through the engine on the {'GPU (CUDA)' if device == 'cuda' else 'CPU'}.",
             "", "| product | model | precision | recall | F1 | class pixels equal to fp32 |",
             "|---|---|---|---|---|---|"]
    for product in ("l1c_tci", "l2a_tci"):
        lines += _rows(product, results[product], variant)
    lines += ["", f"On `{UNSEEN_DATES[0].labels.name}`, the real place no model is trained on (L1C TCI, through the "
              "engine):", "", "| dates | model | precision | recall | F1 | class pixels equal to fp32 |",
              "|---|---|---|---|---|---|"]
    for dates, entry in results["unseen_place"].items():
        lines += _rows(dates, entry, variant)
    write_text_atomic(docs / f"{name}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return results
