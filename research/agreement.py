"""How far two people tracing the same held-out area agree, under the score the road models get.

Other tracers traced each scene's held-out area again without seeing its labels
(``models/real/agreement/<tracing>/<scene>.json``, in the traces' format). Their road lines, snapped and put on
the map as the labels' were (``research.real_labels``), are scored against the labels exactly as a model's map
is (``models.road_scores``): road where they drew a road, 1 px wide. Their F1 is what a person reaches under this
score and these labels: the yardstick for the models' F1.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import rasterio

from ..core.raster_stack import Grid
from ..models.real_scene import REAL_FOLDER, REAL_SCENES, ROAD_KINDS, RealScene, _burn, split_image_path
from ..models.road_scores import HeldOut, RoadCounts, block_counts, bootstrap_f1, f1_interval, held_out, interval
from .real_labels import snap_line, snapping_luminance

AGREEMENT_FOLDER = REAL_FOLDER / "agreement"
# the ways a tracing is put on the map: as drawn, and snapped as the labels' lines were
PLACINGS = {"as drawn": False, "snapped as the labels": True}


def read_tracings(folder: Path = AGREEMENT_FOLDER) -> dict[str, dict[str, list[dict]]]:
    """Tracing -> scene -> its lines (``{"kind", "points": [[col, row], ...]}``, the scene image's pixels), from
    every ``<tracing>/<scene>.json`` under ``folder``."""
    return {tracing.name: {path.stem: json.loads(path.read_text()) for path in sorted(tracing.glob("*.json"))}
            for tracing in sorted(p for p in folder.iterdir() if p.is_dir())}


def tracing_map(lines: list[dict], image: Path, window: Path, snapped: bool = True) -> np.ndarray:
    """``[H, W]`` float32 over ``window`` (a GeoTIFF on part of ``image``'s grid, a held-out split): 1 on the
    road lines of ``lines`` (uncertain lines draw nothing), 0 elsewhere. ``snapped``: each line first moved onto
    the linear feature it was drawn on, as the labels' lines were (``real_labels.snap_line``)."""
    with rasterio.open(image) as dataset:
        transform = dataset.transform
    with rasterio.open(window) as dataset:
        grid = Grid.of(dataset)
    luminance = snapping_luminance(image) if snapped else None
    geometries = []
    for line in lines:
        if line["kind"] not in ROAD_KINDS:
            continue
        points = snap_line(line["points"], luminance) if snapped else line["points"]
        geometries.append({"type": "LineString",
                           "coordinates": [tuple(transform * (float(x), float(y))) for x, y in points]})
    return _burn(geometries, grid, False).astype(np.float32)


def scene_windows(folder: Path, scenes: Sequence[RealScene] = REAL_SCENES
                  ) -> tuple[dict[str, HeldOut], dict[str, Path], dict[str, Path]]:
    """Per scene: its held-out truth (written under ``folder / <scene>``), its image and its held-out window."""
    truths = {scene.name: held_out(folder / scene.name, scene) for scene in scenes}
    return (truths, {scene.name: scene.image for scene in scenes},
            {scene.name: split_image_path(folder / scene.name, scene.image, "heldout") for scene in scenes})


def tracing_maps(tracings: dict[str, dict[str, list[dict]]], images: dict[str, Path], windows: dict[str, Path]
                 ) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """Tracing -> placing (``PLACINGS``) -> scene -> its ``tracing_map`` over the scene's held-out ``windows``
    (on its ``images``), for every scene of ``windows``: each tracing put on the map once for every table."""
    maps: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for tracing, by_scene in tracings.items():
        missing = [scene for scene in windows if scene not in by_scene]
        if missing:
            raise ValueError(f"tracing {tracing!r} has no {', '.join(missing)}: trace every held-out area")
        maps[tracing] = {placing: {scene: tracing_map(by_scene[scene], images[scene], windows[scene], snapped)
                                   for scene in windows}
                         for placing, snapped in PLACINGS.items()}
    return maps


def agreement_table(truths: dict[str, HeldOut], maps: dict[str, dict[str, dict[str, np.ndarray]]], model_name: str,
                    model_maps: dict[str, np.ndarray]) -> tuple[str, dict]:
    """Markdown table and numbers: each tracing's ``maps`` (``tracing_maps``) of every scene in ``truths``, as
    drawn and snapped, scored as a map, pooled and per scene; the model's P(road) ``[H, W]`` per scene
    (``model_maps``) on the same areas, and its F1 minus each tracing's over the same block draws."""
    scenes = list(truths)
    model_blocks = {scene: block_counts(model_maps[scene], truths[scene]) for scene in scenes}
    lines = ["| map | precision | recall | F1, all scenes (95 % interval) | "
             + " | ".join(f"F1 {scene}" for scene in scenes) + f" | {model_name} minus this (paired 95 % interval) |",
             "|---|---|---|---|" + "---|" * len(scenes) + "---|"]
    numbers: dict[str, dict] = {}
    model_f1 = RoadCounts.of(np.concatenate(list(model_blocks.values()))).scores().f1

    def row(name: str, blocks: dict[str, np.ndarray], compared: bool = True) -> str:
        result = RoadCounts.of(np.concatenate(list(blocks.values()))).scores()
        low, high = f1_interval(list(blocks.values()))
        draws = bootstrap_f1([[blocks[scene], model_blocks[scene]] for scene in scenes])
        change = model_f1 - result.f1
        change_low, change_high = interval(draws[:, 1] - draws[:, 0])
        per_scene = {scene: RoadCounts.of(blocks[scene]).scores().f1 for scene in scenes}
        numbers[name] = {"precision": result.precision, "recall": result.recall, "f1": result.f1,
                         "f1_interval": (low, high), "scenes_f1": per_scene,
                         "model_minus_this": change, "model_minus_this_interval": (change_low, change_high)}
        return (f"| {name} | {result.precision:.3f} | {result.recall:.3f} | **{result.f1:.3f}** "
                f"({low:.2f}-{high:.2f}) | " + " | ".join(f"{f1:.3f}" for f1 in per_scene.values())
                + (f" | {change:+.3f} ({change_low:+.3f} to {change_high:+.3f}) |" if compared else " | |"))

    for tracing, by_placing in maps.items():
        for placing, by_scene in by_placing.items():
            blocks = {scene: block_counts(by_scene[scene], truths[scene]) for scene in scenes}
            lines.append(row(f"second tracer, {tracing}, {placing}", blocks))
    lines.append(row(model_name, model_blocks, compared=False))
    return "\n".join(lines), numbers


def pairwise_table(truths: dict[str, HeldOut], maps: dict[str, dict[str, dict[str, np.ndarray]]], model_name: str,
                   model_maps: dict[str, np.ndarray]) -> tuple[str, dict]:
    """Markdown table and numbers: pooled F1 of each map (the labels, each tracing's snapped map of
    ``tracing_maps``, the model's P(road) ``[H, W]`` per scene) scored with each tracing in turn as the truth,
    the labels' ignored areas left out throughout: how far the people agree with each other, and the model
    with each of them."""
    scenes = list(truths)
    snapped = next(placing for placing, is_snapped in PLACINGS.items() if is_snapped)
    lines_of = {"labels": {scene: truths[scene].centre for scene in scenes},
                **{tracing: {scene: by_placing[snapped][scene] > 0 for scene in scenes}
                   for tracing, by_placing in maps.items()}}
    scored = {**{name: {s: m.astype(np.float32) for s, m in by.items()} for name, by in lines_of.items()},
              model_name: model_maps}
    numbers: dict[str, dict[str, float]] = {}
    table = ["| truth | " + " | ".join(scored) + " |", "|---|" + "---|" * len(scored)]
    for truth_name, centres in lines_of.items():
        truth_of = {s: replace(truths[s], centre=centres[s] & ~truths[s].ignored) for s in scenes}
        for map_name, by_scene in scored.items():
            blocks = np.concatenate([block_counts(by_scene[s], truth_of[s]) for s in scenes])
            numbers.setdefault(truth_name, {})[map_name] = RoadCounts.of(blocks).scores().f1
        table.append(f"| {truth_name} | " + " | ".join(f"{f1:.3f}" for f1 in numbers[truth_name].values()) + " |")
    return "\n".join(table), numbers
