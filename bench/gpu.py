"""``python -m bench.gpu``: the CUDA path, on a machine with an NVIDIA GPU and onnxruntime-gpu ->
bench/results.json's ``cuda`` key. CI never runs it (no GPU there).

In one run, on one simulated 5-date stack (default: a full 10980 px Sentinel-2 tile, 2401 tiles):
- the bare model on CUDA, float32 and its fp16 variant (``<model>.fp16.onnx``), at several tiles per
  call: seconds per 256 px tile without reading or writing, after a warm-up (cuDNN picks its
  algorithms per input shape on the first runs);
- ``timeseg segment --device cuda`` end to end with ``--precision fp32`` and the default (``auto``: the
  fp16 variant on a GPU), at the engine's own tiles per call and at the sweep's best if that differs,
  with peak RSS;
- the same command with a tiny random-weight model: what reading, blending and writing cost alone;
- the share of class pixels the fp16 and float32 runs agree on.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

from timeseg.core.atomic import write_text_atomic
from timeseg.core.normalisation import Normalisation
from timeseg.core.runtime import TILES_PER_RUN, import_onnxruntime, load_model

from .run import ROOT, end_to_end, equal_class_pixels, large_stack, tiny_model


def gpu_words() -> str:
    """The GPU and its driver, as nvidia-smi names them."""
    try:
        completed = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                                    "--format=csv,noheader"], capture_output=True, text=True)
    except FileNotFoundError:
        return "no nvidia-smi"
    return completed.stdout.strip() or completed.stderr.strip()


def bare_model(model: Path, precision: str, tiles_per_call: list[int], device: str = "cuda", dates: int = 5,
               seconds: float = 2.0) -> dict:
    """Seconds per tile of the model alone, by tiles per call (random uint8 pixels, normalised)."""
    loaded = load_model(model, device, None, precision)
    card = loaded.card
    rng = np.random.default_rng(0)
    by_call = {}
    for batch in tiles_per_call:
        raw = rng.integers(1, 255, (batch, dates, len(card.bands), card.tile_size, card.tile_size), np.uint8)
        images = Normalisation.from_card(card).apply(raw)
        for _ in range(3):
            loaded.run(images)
        runs, started = 0, time.perf_counter()
        while runs < 5 or time.perf_counter() - started < seconds:
            loaded.run(images)
            runs += 1
        per_tile = (time.perf_counter() - started) / (runs * batch)
        by_call[batch] = {"seconds_per_tile": per_tile, "tiles_per_second": 1 / per_tile}
        print(f"bare {precision} {batch} tiles per call: {per_tile * 1e3:.2f} ms per tile", flush=True)
    return {"provider": loaded.provider, "precision": card.precision, "by_tiles_per_call": by_call}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=ROOT / "models/weights/roads.onnx")
    parser.add_argument("--size", type=int, default=10980)
    parser.add_argument("--tiles-per-call", type=int, nargs="+", default=[2, 8, 16, 32])
    parser.add_argument("--device", default="cuda", help="cpu only to try this script out on a small --size")
    parser.add_argument("--work", type=Path, default=ROOT / "data/bench")
    parser.add_argument("--results", type=Path, default=ROOT / "bench/results.json",
                        help="written under its 'cuda' key (make bench's CPU results stay)")
    args = parser.parse_args()
    args.model = args.model.resolve()
    ort = import_onnxruntime()
    results: dict = {"machine": {"gpu": gpu_words(), "python": platform.python_version(),
                                 "onnxruntime": ort.__version__, "providers": ort.get_available_providers()},
                     "model": str(args.model.relative_to(ROOT)), "size": args.size, "dates": 5}

    def save() -> None:
        kept = json.loads(args.results.read_text()) if args.results.is_file() else {}
        args.results.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.results, json.dumps({**kept, "cuda": results}, indent=2))

    results["bare"] = {precision: bare_model(args.model, precision, args.tiles_per_call, args.device)
                       for precision in ("fp32", "fp16")}
    save()
    rasters = large_stack(args.work, args.size)
    megapixels = args.size * args.size / 1e6
    fp16 = results["bare"]["fp16"]["by_tiles_per_call"]
    best = min(fp16, key=lambda batch: fp16[batch]["seconds_per_tile"])
    runs = [("tiny random-weight model (engine alone)", tiny_model(args.work, args.model), "fp32", None),
            ("fp32", args.model, "fp32", None), ("default (auto: fp16)", args.model, "auto", None)]
    if best != TILES_PER_RUN["cuda"]:
        runs.append((f"default, {best} tiles per call", args.model, "auto", best))
    results["end_to_end"] = []
    for name, model, precision, batch_size in runs:
        output = args.work / f"out_{args.device}_{precision}_{batch_size or 'default'}_{model.stem}"
        run = end_to_end(model, rasters, output, args.size, args.device, None, precision, batch_size)
        run.update(name=name, output=str(output))
        print(f"{name}: {run['seconds']:.1f} s, {run['megapixels_per_second']:.1f} Mpx/s, "
              f"peak RSS {run['peak_rss_mb']:.0f} MB; {run['engine_says']}", flush=True)
        results["end_to_end"].append(run)
        save()
    fp32_run, default_run = results["end_to_end"][1], results["end_to_end"][2]
    results["default_speedup_over_fp32"] = fp32_run["seconds"] / default_run["seconds"]
    results["default_class_pixels_equal"] = equal_class_pixels(Path(fp32_run["output"]), Path(default_run["output"]))
    results["megapixels"] = megapixels
    save()
    print(json.dumps(results, indent=2))
    print(f"wrote {args.results} (cuda)")


if __name__ == "__main__":
    main()
