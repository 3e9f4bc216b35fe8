"""``make bench``: engine speed and memory on simulated 5-date stacks -> bench/results.json.

For ``--precision fp32``, the default (``auto``: bf16 on a CPU that computes it, else the int8 variant on a
CPU) and any ``--also`` precisions, in turned order over ``--rounds`` rounds (medians reported, each round
kept):
- model-only throughput: the model on pre-built tiles, run as the engine runs it (tiles per call,
  calls at once) but without I/O, as raster megapixels per second for the tiles the raster needs;
- end-to-end throughput: ``timeseg segment`` on the same stack, in a child process whose peak
  resident memory (RSS) is recorded;
- pipeline efficiency = end-to-end / model-only throughput. Each round brackets its end-to-end run
  by two model-only runs, just before and just after it, each timed on as many tiles as the
  end-to-end run (up to ``MODEL_ONLY_MAX_TILES``), and takes their mean: this shared machine's speed
  drifts by several per cent within minutes, and a drift that runs one way through the round cancels
  out. The median of the rounds' efficiencies;
- the same efficiency with the command's start taken off (the Python interpreter and the imports,
  about 0.3 s): the engine as the QGIS dock runs it, in a process that has already imported it;
- the default's speed-up over fp32 and the share of equal class pixels.

Large stacks are written by repeating a simulated 512 px scene, block by block.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from timeseg.core.atomic import OutputSet, write_text_atomic
from timeseg.core.model_card import read_model_card
from timeseg.core.normalisation import Normalisation
from timeseg.core.pipeline import run_pipeline
from timeseg.core.runtime import load_model
from timeseg.core.tiling import tile_grid

ROOT = Path(__file__).resolve().parents[1]
# model-only runs time the raster's own tile count up to this many (a 10980 px tile has 2401: 400 take
# about a minute at int8 on 2 cores); 32 tiles, timed apart from the end-to-end run, gave efficiencies
# from 0.87 to 1.16 for the same engine as this shared machine's speed drifted (README)
MODEL_ONLY_MAX_TILES = 400


def large_stack(folder: Path, size: int, dates: int = 5) -> list[Path]:
    """``dates`` TCI GeoTIFFs of ``size`` x ``size`` px, the 512 px simulated scene repeated."""
    from timeseg.models.simulator import simulate_scene

    seed_folder = folder / "seed_scene"
    if not (seed_folder / "labels.gpkg").exists():
        simulate_scene(seed_folder, seed=77, size=512, dates_per_period=dates)
    sources = sorted((seed_folder / "2019").glob("*_TCI.tif"))
    return derived_files(sources, [folder / f"{size}px" / source.name for source in sources],
                         functools.partial(_repeat_scene, size=size))


def derived_files(sources: list[Path], targets: list[Path], write: Callable[[Path, Path], None]) -> list[Path]:
    """``targets``, each made by ``write(source, partial target)`` where missing, one per core, all
    committed together (``OutputSet``); those already there are kept."""
    missing = [(source, target) for source, target in zip(sources, targets) if not target.exists()]
    if missing:
        for parent in {target.parent for _, target in missing}:
            parent.mkdir(parents=True, exist_ok=True)
        with OutputSet([target for _, target in missing]) as outputs, ProcessPoolExecutor() as pool:
            list(pool.map(write, [source for source, _ in missing], [outputs.partial(t) for _, t in missing]))
            outputs.commit()
    return targets


def _repeat_scene(source: Path, target: Path, size: int) -> None:
    """``source`` (512 px) repeated into a ``size`` px tiled, deflated GeoTIFF ``target``."""
    with rasterio.open(source) as src:
        block = src.read()
        profile = src.profile
    profile.update(width=size, height=size, tiled=True, blockxsize=256, blockysize=256,
                   compress="deflate", BIGTIFF="IF_SAFER")
    strip = np.tile(block, (1, 1, -(-size // 512)))[:, :, :size]
    with rasterio.open(target, "w", **profile) as dst:
        for row in range(0, size, 512):
            height = min(512, size - row)
            dst.write(strip[:, :height], window=Window(0, row, size, height))


def model_only(model: Path, size: int, dates: int, threads: int | None, device: str, precision: str) -> dict:
    """The bare model run as the engine runs it (its tiles per call and calls at once, through the
    same pipeline) on pre-built normalised tiles: no reading, blending or writing; timed on the
    raster's tiles, up to ``MODEL_ONLY_MAX_TILES``."""
    loaded = load_model(model, device, threads, precision)
    card = loaded.card
    tiles = len(tile_grid(size, size, card.tile_size, card.tiles_overlap))
    batch_size = loaded.tiles_per_run
    rng = np.random.default_rng(0)
    raw = rng.integers(1, 255, (batch_size, dates, len(card.bands), card.tile_size, card.tile_size), np.uint8)
    images = Normalisation.from_card(card).apply(raw)

    def run(batches: int) -> None:
        run_pipeline(range(batches), lambda _: images, loaded.run, lambda _item, _result: None,
                     workers=loaded.runs_at_once)

    run(loaded.runs_at_once)  # warm-up: every run's memory allocated once
    batches = max(1, min(tiles, MODEL_ONLY_MAX_TILES) // batch_size)
    started = time.perf_counter()
    run(batches)
    per_tile = (time.perf_counter() - started) / (batches * batch_size)
    return {"provider": loaded.provider, "seconds_per_tile": per_tile, "tiles": tiles,
            "tiles_timed": batches * batch_size,
            "megapixels_per_second": size * size / 1e6 / (per_tile * tiles), "precision": precision,
            "tiles_per_call": batch_size, "calls_at_once": loaded.runs_at_once}


# runs the engine's command line, then reports on the last stderr line the seconds it ran after the imports
# that a QGIS session has already made (OpenVINO's too, with the CPU's answer on bfloat16, where a run has
# used it), and its own peak RSS (KiB on Linux)
_CHILD = ("import resource, sys, time; from timeseg.cli import main; import timeseg.core.segment, onnxruntime; "
          "from timeseg.core.openvino_runner import native_bf16; native_bf16(); "
          "started = time.perf_counter(); code = main(sys.argv[1:]); "
          "print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); "
          "sys.exit(code)")


def end_to_end(model: Path, rasters: list[Path], output: Path, size: int, device: str,
               threads: int | None, precision: str = "fp32", batch_size: int | None = None) -> dict:
    command = [sys.executable, "-c", _CHILD, "segment", "--model", str(model), "--output", str(output),
               "--device", device, "--precision", precision, *map(str, rasters)]
    if threads:
        command += ["--threads", str(threads)]
    if batch_size:
        command += ["--batch-size", str(batch_size)]
    seconds, completed = run_child(command)
    after_imports, peak_kib = completed.stderr.strip().splitlines()[-1].split()
    return {"seconds": seconds, "megapixels_per_second": size * size / 1e6 / seconds,
            "seconds_after_imports": float(after_imports), "peak_rss_mb": int(peak_kib) / 1024,
            "engine_says": completed.stdout.strip().splitlines()[0],
            "precision": precision, "batch_size": batch_size or "default"}


def run_child(command: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    """``command`` run from the repository root: its wall seconds and its output (RuntimeError, with
    the end of its stderr, when it fails)."""
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(completed.stderr.strip()[-2000:])
    return seconds, completed


def equal_class_pixels(first: Path, second: Path) -> float:
    """Share of equal pixels of two runs' classes.tif, read block by block."""
    equal = total = 0
    with rasterio.open(first / "classes.tif") as a, rasterio.open(second / "classes.tif") as b:
        for _, window in a.block_windows(1):
            same = a.read(1, window=window) == b.read(1, window=window)
            equal, total = equal + int(same.sum()), total + same.size
    return equal / total


def tiny_model(folder: Path, like: Path) -> Path:
    """A random-weight model with the road model's card, small enough to run a full tile fast:
    memory depends on the tiling and the raster, not on the network."""
    import dataclasses

    from timeseg.models.checkpoint import build_network, save_checkpoint
    from timeseg.models.export import export_checkpoint
    from timeseg.models.settings import NetworkConfig

    path = folder / "tiny.onnx"
    if not path.exists():
        card = dataclasses.asdict(read_model_card(like))
        config = NetworkConfig(depth=1, base_channels=4, hidden_channels=2)
        save_checkpoint(folder / "tiny.pt", build_network(config), config, card, "final", 0, {})
        export_checkpoint(folder / "tiny.pt", path, {"trained_on": "random weights (benchmark)"})
    return path


def median_of(runs: list[dict], key: str) -> float:
    return float(np.median([run[key] for run in runs]))


def compare_precisions(args: argparse.Namespace, size: int, rounds: int) -> dict:
    """``--precision fp32``, the default (``auto``) and any ``--also`` precisions end to end and model-only
    on one stack, the order turned round by round (this shared machine's speed drifts from minute to
    minute); medians, with every round's figure kept."""
    rasters = large_stack(args.work, size)
    precisions = ["fp32", "auto", *args.also]
    names = {precision: "default" if precision == "auto" else precision for precision in precisions}
    outputs = {p: args.work / (f"out_{size}" if p == "fp32" else f"out_{size}_{p}") for p in precisions}
    runs: dict[str, list[dict]] = {p: [] for p in precisions}
    bare: dict[str, list[dict]] = {p: [] for p in precisions}  # per round: the mean of the runs before and after
    for round_ in range(rounds):
        for precision in precisions if round_ % 2 == 0 else precisions[::-1]:
            before = model_only(args.model, size, 5, args.threads, args.device, precision)
            runs[precision].append(end_to_end(args.model, rasters, outputs[precision], size, args.device,
                                              args.threads, precision))
            after = model_only(args.model, size, 5, args.threads, args.device, precision)
            bare[precision].append({**before, "seconds_per_tile_before_and_after": [
                before["seconds_per_tile"], after["seconds_per_tile"]],
                "seconds_per_tile": (before["seconds_per_tile"] + after["seconds_per_tile"]) / 2})
    result: dict = {"size": size, "model": str(args.model), "rounds": rounds}
    for precision, name in names.items():
        seconds, per_tile = median_of(runs[precision], "seconds"), median_of(bare[precision], "seconds_per_tile")
        tiles = bare[precision][0]["tiles"]

        model_seconds = [b["seconds_per_tile"] * tiles for b in bare[precision]]
        whole = [m / r["seconds"] for m, r in zip(model_seconds, runs[precision])]
        after_imports = [m / r["seconds_after_imports"] for m, r in zip(model_seconds, runs[precision])]
        result[name] = {
            "end_to_end_seconds": seconds, "end_to_end_seconds_each_round": [r["seconds"] for r in runs[precision]],
            "end_to_end_megapixels_per_second": size * size / 1e6 / seconds,
            "model_only_seconds_per_tile": per_tile,
            "model_only_seconds_per_tile_each_round": [r["seconds_per_tile"] for r in bare[precision]],
            "model_only_seconds_per_tile_before_and_after_each_round": [
                r["seconds_per_tile_before_and_after"] for r in bare[precision]],
            "model_only_megapixels_per_second": size * size / 1e6 / (per_tile * tiles),
            "pipeline_efficiency": float(np.median(whole)), "pipeline_efficiency_each_round": whole,
            "pipeline_efficiency_after_imports": float(np.median(after_imports)),
            "pipeline_efficiency_after_imports_each_round": after_imports,
            "model_only_tiles_timed": bare[precision][0]["tiles_timed"],
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs[precision]),
            "engine_says": runs[precision][0]["engine_says"],
            "tiles_per_call": bare[precision][0]["tiles_per_call"],
            "calls_at_once": bare[precision][0]["calls_at_once"],
        }
    result["default_speedup_over_fp32"] = result["fp32"]["end_to_end_seconds"] / result["default"]["end_to_end_seconds"]
    result["default_speedup_each_round"] = [f["seconds"] / d["seconds"] for f, d in zip(runs["fp32"], runs["auto"])]
    result["model_only_default_speedup"] = (result["fp32"]["model_only_seconds_per_tile"]
                                            / result["default"]["model_only_seconds_per_tile"])
    result["default_class_pixels_equal"] = equal_class_pixels(outputs["fp32"], outputs["auto"])
    for precision in args.also:
        result[f"{precision}_speedup_over_fp32"] = (result["fp32"]["end_to_end_seconds"]
                                                   / result[precision]["end_to_end_seconds"])
        result[f"{precision}_class_pixels_equal"] = equal_class_pixels(outputs["fp32"], outputs[precision])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=ROOT / "models/weights/roads.onnx")
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096])
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of fp32 and default, alternating their order (one round above 4096 px)")
    parser.add_argument("--memory-sizes", type=int, nargs="*", default=[],
                        help="sizes run end to end for peak memory only, with a tiny random-weight model")
    parser.add_argument("--also", nargs="*", default=[], choices=("int8", "fp16", "bf16"),
                        help="more precisions run in the same rounds (e.g. int8 where auto takes bf16)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--work", type=Path, default=ROOT / "data/bench")
    parser.add_argument("--results", type=Path, default=ROOT / "bench/results.json")
    args = parser.parse_args()
    results = {"machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                           "python": platform.python_version()},
               "model": str(args.model.relative_to(ROOT) if args.model.is_relative_to(ROOT) else args.model),
               "dates": 5, "runs": []}
    args.model = args.model.resolve()
    for size in args.sizes:
        run = compare_precisions(args, size, args.rounds if size <= 4096 else 1)
        run["model"] = results["model"]
        print(json.dumps(run, indent=2), flush=True)
        results["runs"].append(run)
    for size in args.memory_sizes:
        args.work.mkdir(parents=True, exist_ok=True)
        model = tiny_model(args.work, args.model)
        run = {"size": size, "model": "tiny random-weight model with the road model's card",
               "end_to_end": end_to_end(model, large_stack(args.work, size), args.work / f"out_{size}_tiny", size,
                                        args.device, args.threads)}
        print(json.dumps(run, indent=2), flush=True)
        results["runs"].append(run)
    kept = json.loads(args.results.read_text()) if args.results.is_file() else {}
    # bench/gpu.py's (from a GPU machine), bench/jp2.py's and bench/timeline.py's numbers stay
    results.update({key: value for key, value in kept.items()
                    if key in ("cuda", "timeline") or key.startswith("jpeg2000_")})
    args.results.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.results, json.dumps(results, indent=2))
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
