"""``timeseg-research precision-check``: the shipped road model's int8 variant against its float32 original on
the real held-out area (hand-traced roads, one clear date, as L1C and L2A true colour) -> docs/precision.md.

Both files run through the engine (``timeseg segment --precision fp32|int8``), so the numbers are
what an analyst gets. Speed is ``make bench``'s (bench/results.json).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import rasterio

from ..core.atomic import write_text_atomic
from ..core.dates import detect_date
from ..core.raster_stack import DatedRaster
from ..core.segment import SegmentRequest, segment
from ..models.road_scores import held_out, l2a_like, scores


def run(model: Path, work: Path, docs: Path) -> dict:
    truth = held_out(work / "heldout")
    image = next((work / "heldout").glob("*_heldout.tif"))
    with rasterio.open(image) as dataset:
        profile = dataset.profile
    l2a = work / "heldout" / f"{image.stem}_l2a.tif"
    with rasterio.open(l2a, "w", **profile) as dataset:
        dataset.write(l2a_like(truth.tci))
    date = detect_date(image)
    results: dict = {"model": str(model)}
    for product, path in (("l1c_tci", image), ("l2a_tci", l2a)):
        maps = {}
        for precision in ("fp32", "int8"):
            result = segment(SegmentRequest([DatedRaster(path, date)], model, work / f"{product}_{precision}",
                                            device="cpu", precision=precision))
            with rasterio.open(result.probability_path) as dataset:
                maps[precision] = np.nan_to_num(dataset.read(1))
            results.setdefault(product, {})[precision] = {k: round(v, 4) for k, v in
                                                          asdict(scores(maps[precision], truth)).items()}
        threshold = 0.5
        results[product]["class_pixels_equal"] = round(float(((maps["fp32"] >= threshold) ==
                                                              (maps["int8"] >= threshold)).mean()), 4)
    docs.mkdir(parents=True, exist_ok=True)
    write_text_atomic(docs / "precision.json", json.dumps(results, indent=2))
    lines = ["# int8 against float32 on real Sentinel-2 (held-out area)", "",
             "`timeseg-research precision-check`; relaxed (2 px) scores on the hand-traced held-out roads of "
             "`models/real/T33UUU_roads.gpkg`, one clear date, through the engine.", "",
             "| product | precision | precision (P) | recall | F1 | class pixels equal to fp32 |",
             "|---|---|---|---|---|---|"]
    for product in ("l1c_tci", "l2a_tci"):
        for precision in ("fp32", "int8"):
            s = results[product][precision]
            equal = f"{results[product]['class_pixels_equal']:.2%}" if precision == "int8" else ""
            lines.append(f"| {product} | {precision} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} | "
                         f"{equal} |")
    write_text_atomic(docs / "precision.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return results
