"""``make bench``: engine speed and memory on simulated 5-date stacks -> bench/results.json.

- model-only throughput: onnxruntime on pre-built batches of tiles (no I/O), expressed as
  raster megapixels per second for the tile count the raster needs;
- end-to-end throughput: ``timeseg segment`` on the same stack, in a child process
  whose peak resident memory (RSS) is recorded;
- pipeline efficiency = end-to-end / model-only;
- the default precision (``--precision auto``: the int8 variant on a CPU) end to end on the same
  stack, its speed-up over ``--precision fp32`` and the share of equal class pixels, and the same
  variant model-only.

Large stacks are written by repeating a simulated 512 px scene, block by block.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from timeseg.core.atomic import atomic_file, write_text_atomic
from timeseg.core.model_card import read_model_card
from timeseg.core.normalisation import Normalisation
from timeseg.core.runtime import load_model
from timeseg.core.segment import SegmentRequest
from timeseg.core.tiling import tile_grid

ROOT = Path(__file__).resolve().parents[1]


def large_stack(folder: Path, size: int, dates: int = 5) -> list[Path]:
    """``dates`` TCI GeoTIFFs of ``size`` x ``size`` px, the 512 px simulated scene repeated."""
    from timeseg.models.simulator import simulate_scene

    seed_folder = folder / "seed_scene"
    if not (seed_folder / "labels.gpkg").exists():
        simulate_scene(seed_folder, seed=77, size=512, dates_per_period=dates)
    sources = sorted((seed_folder / "2019").glob("*_TCI.tif"))
    paths = []
    for source in sources:
        target = folder / f"{size}px" / source.name
        paths.append(target)
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with rasterio.open(source) as src:
            block = src.read()
            profile = src.profile
        profile.update(width=size, height=size, tiled=True, blockxsize=256, blockysize=256,
                       compress="deflate", BIGTIFF="IF_SAFER")
        strip = np.tile(block, (1, 1, -(-size // 512)))[:, :, :size]
        with atomic_file(target) as partial, rasterio.open(partial, "w", **profile) as dst:
            for row in range(0, size, 512):
                height = min(512, size - row)
                dst.write(strip[:, :height], window=Window(0, row, size, height))
    return paths


def model_only(model: Path, size: int, dates: int, batch_size: int, threads: int | None,
               device: str, repeats: int, precision: str = "fp32") -> dict:
    session = load_model(model, device, threads, precision)
    card = session.card
    tiles = len(tile_grid(size, size, card.tile_size, card.tiles_overlap))
    rng = np.random.default_rng(0)
    raw = rng.integers(1, 255, (batch_size, dates, len(card.bands), card.tile_size, card.tile_size), np.uint8)
    images = Normalisation.from_card(card).apply(raw)
    session.session.run(None, {"images": images})  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        session.session.run(None, {"images": images})
    per_tile = (time.perf_counter() - started) / (repeats * batch_size)
    return {"provider": session.provider, "seconds_per_tile": per_tile, "tiles": tiles,
            "megapixels_per_second": size * size / 1e6 / (per_tile * tiles), "precision": precision}


# runs the engine's command line, then reports its own peak RSS (KiB on Linux) on the last stderr line
_CHILD = ("import resource, sys; from timeseg.cli import main; code = main(sys.argv[1:]); "
          "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(code)")


def end_to_end(model: Path, rasters: list[Path], output: Path, size: int, device: str,
               threads: int | None, precision: str = "fp32") -> dict:
    command = [sys.executable, "-c", _CHILD, "segment", "--model", str(model), "--output", str(output),
               "--device", device, "--precision", precision, *map(str, rasters)]
    if threads:
        command += ["--threads", str(threads)]
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(completed.stderr.strip()[-2000:])
    peak_kib = int(completed.stderr.strip().splitlines()[-1])
    return {"seconds": seconds, "megapixels_per_second": size * size / 1e6 / seconds,
            "peak_rss_mb": peak_kib / 1024, "engine_says": completed.stdout.strip().splitlines()[0],
            "precision": precision}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=ROOT / "models/weights/roads.onnx")
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096])
    parser.add_argument("--memory-sizes", type=int, nargs="*", default=[],
                        help="sizes run end to end for peak memory only, with a tiny random-weight model")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--batch-size", type=int, default=SegmentRequest.__dataclass_fields__["batch_size"].default,
                        help="tiles per onnxruntime call of the model-only run (default: the engine's)")
    parser.add_argument("--work", type=Path, default=ROOT / "data/bench")
    parser.add_argument("--results", type=Path, default=ROOT / "bench/results.json")
    args = parser.parse_args()
    results = {"machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                           "python": platform.python_version()},
               "model": str(args.model.relative_to(ROOT) if args.model.is_relative_to(ROOT) else args.model),
               "dates": 5, "runs": []}
    for size in args.sizes:
        rasters = large_stack(args.work, size)
        run = {"size": size, "model": results["model"]}
        run["model_only"] = model_only(args.model, size, 5, args.batch_size, args.threads, args.device, repeats=8)
        run["end_to_end"] = end_to_end(args.model, rasters, args.work / f"out_{size}", size, args.device, args.threads)
        run["pipeline_efficiency"] = run["end_to_end"]["megapixels_per_second"] / \
            run["model_only"]["megapixels_per_second"]
        # the default (--precision auto: the int8 variant on a CPU when it is beside the model), same stack
        run["default"] = end_to_end(args.model, rasters, args.work / f"out_{size}_auto", size, args.device,
                                    args.threads, "auto")
        run["default_speedup_over_fp32"] = run["end_to_end"]["seconds"] / run["default"]["seconds"]
        run["model_only_default"] = model_only(args.model, size, 5, args.batch_size, args.threads, args.device,
                                               repeats=8, precision="auto")
        run["model_only_default_speedup"] = run["model_only"]["seconds_per_tile"] / \
            run["model_only_default"]["seconds_per_tile"]
        run["default_class_pixels_equal"] = equal_class_pixels(args.work / f"out_{size}",
                                                               args.work / f"out_{size}_auto")
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
    args.results.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.results, json.dumps(results, indent=2))
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
