"""``make bench-batch``: ``timeseg batch`` with 1 and 2 workers on this machine -> bench/batch_results.json.

Four places of one period, five 1024 px dates each (the simulated 512 px scene repeated), with
the shipped road model; each configuration runs into a fresh folder, so nothing is skipped.
From the best configuration's seconds per place and date the planning table scales to full
Sentinel-2 tiles (10980 x 10980 px) over a coast of ``--tiles`` tiles, two periods of five dates.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.run import ROOT, large_stack
from timeseg.core.atomic import write_text_atomic

FULL_TILE_PX = 10980**2
CONFIGURATIONS = ((1, 1), (1, 2), (2, 1))  # (workers, onnxruntime threads per worker)


def jobs_file(work: Path, places: int, size: int) -> Path:
    rasters = large_stack(work, size)
    rows = ["place,period,path"] + [f"place_{p},2019,{raster}" for p in range(places) for raster in rasters]
    jobs = work / f"jobs_{places}x{size}.csv"
    jobs.write_text("\n".join(rows) + "\n")
    return jobs


def timed_batch(jobs: Path, model: Path, output: Path, workers: int, threads: int) -> dict:
    shutil.rmtree(output, ignore_errors=True)
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, "-m", "timeseg", "batch", "--model", str(model), "--output",
                                str(output), "--workers", str(workers), "--threads", str(threads), "--device",
                                "cpu", str(jobs)], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(completed.stderr.strip()[-2000:])
    summary = json.loads((output / "batch.json").read_text())
    return {"workers": workers, "threads_per_worker": threads, "seconds": round(seconds, 2),
            "cluster_seconds": summary["seconds"]}


def planning_table(seconds_per_place_date: float, size: int, tiles: int, dates: int, periods: int,
                   workers: list[int]) -> list[dict]:
    """Hours for ``tiles`` full Sentinel-2 tiles x ``periods`` x ``dates`` on N workers like this machine."""
    per_tile_date = seconds_per_place_date * FULL_TILE_PX / size**2
    total = per_tile_date * tiles * periods * dates
    return [{"workers": n, "hours": round(total / n / 3600, 2)} for n in workers]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=ROOT / "models/weights/roads.onnx")
    parser.add_argument("--places", type=int, default=4)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--tiles", type=int, default=300, help="Sentinel-2 tiles of the coast (planning)")
    parser.add_argument("--work", type=Path, default=ROOT / "data/bench")
    parser.add_argument("--results", type=Path, default=ROOT / "bench/batch_results.json")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    jobs = jobs_file(args.work, args.places, args.size)
    runs = [timed_batch(jobs, args.model, args.work / f"batch_{w}w{t}t", w, t) for w, t in CONFIGURATIONS]
    for run in runs:
        print(json.dumps(run), flush=True)
    one = min((r for r in runs if r["workers"] == 1), key=lambda r: r["seconds"])  # its best thread count
    best = min(runs, key=lambda r: r["seconds"])
    dates = 5
    seconds_per_place_date = best["cluster_seconds"] / (args.places * dates)
    results = {
        "machine": {"cpus": os.cpu_count()}, "model": str(args.model.relative_to(ROOT)),
        "places": args.places, "size_px": args.size, "dates": dates, "runs": runs,
        "speedup_2_workers_vs_best_1": round(one["seconds"] / next(r["seconds"] for r in runs if r["workers"] == 2),
                                             2),
        "best": best, "seconds_per_place_date": round(seconds_per_place_date, 3),
        "seconds_per_full_tile_date": round(seconds_per_place_date * FULL_TILE_PX / args.size**2, 1),
        "planning": {"tiles": args.tiles, "periods": 2, "dates": dates,
                     "workers_like_this_machine": planning_table(seconds_per_place_date, args.size, args.tiles,
                                                                 dates, 2, [1, 8, 32, 128])},
    }
    write_text_atomic(args.results, json.dumps(results, indent=2))
    print(json.dumps({k: v for k, v in results.items() if k != "runs"}, indent=2))
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
