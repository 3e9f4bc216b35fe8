"""``python -m bench.jp2``: the engine on Sentinel-2's own file format -> bench/results.json's
``jpeg2000_<device>`` key.

The bench's simulated 5-date stack (``bench.run.large_stack``) re-encoded as lossless JPEG 2000
true-colour images with 1024 px blocks, as Sentinel-2's TCI files are (GDAL's JP2OpenJPEG driver, one
date per core), then ``timeseg segment`` end to end: the default precision and a tiny random-weight
model (the engine alone) on it, and the default on the GeoTIFF stack; seconds and peak RSS of each.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import rasterio
import rasterio.shutil

from timeseg.core.atomic import write_text_atomic

from .run import ROOT, derived_files, end_to_end, large_stack, tiny_model

JP2_BLOCK_PX = 1024  # Sentinel-2's 10 m JPEG 2000 files


def _encode(source: Path, target: Path) -> None:
    """``source`` (a GeoTIFF) as a lossless JPEG 2000 ``target`` with ``JP2_BLOCK_PX`` blocks, its
    georeferencing in the file (GeoJP2 and GMLJP2 boxes, as Sentinel-2's; ``CODEC``: the JP2 container
    whatever the partial file's name says; no ``.aux.xml`` beside it)."""
    with rasterio.Env(GDAL_PAM_ENABLED="NO"):
        rasterio.shutil.copy(source, target, driver="JP2OpenJPEG", CODEC="JP2", QUALITY=100, REVERSIBLE="YES",
                             BLOCKXSIZE=JP2_BLOCK_PX, BLOCKYSIZE=JP2_BLOCK_PX)


def jpeg2000_stack(folder: Path, sources: list[Path]) -> list[Path]:
    """Each of ``sources`` as ``folder/<name>.jp2`` (kept when already there)."""
    return derived_files(sources, [folder / f"{source.stem}.jp2" for source in sources], _encode)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=ROOT / "models/weights/roads.onnx")
    parser.add_argument("--size", type=int, default=10980)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--work", type=Path, default=ROOT / "data/bench")
    parser.add_argument("--results", type=Path, default=ROOT / "bench/results.json")
    args = parser.parse_args()
    model = args.model.resolve()
    geotiffs = large_stack(args.work, args.size)
    jpeg2000 = jpeg2000_stack(args.work / f"{args.size}px_jp2", geotiffs)
    runs = [("JPEG 2000, default", model, jpeg2000), ("JPEG 2000, tiny random-weight model (engine alone)",
                                                      tiny_model(args.work, model), jpeg2000),
            ("GeoTIFF, default", model, geotiffs)]
    results: dict = {"machine": {"python": platform.python_version()}, "size": args.size, "dates": len(geotiffs),
                     "jpeg2000_block_px": JP2_BLOCK_PX, "runs": []}
    for name, run_model, rasters in runs:
        output = args.work / f"out_jp2bench_{args.device}_{len(results['runs'])}"
        run = end_to_end(run_model, rasters, output, args.size, args.device, None, "auto")
        run["name"] = name
        print(f"{name}: {run['seconds']:.1f} s, peak RSS {run['peak_rss_mb']:.0f} MB; {run['engine_says']}",
              flush=True)
        results["runs"].append(run)
    kept = json.loads(args.results.read_text()) if args.results.is_file() else {}
    write_text_atomic(args.results, json.dumps({**kept, f"jpeg2000_{args.device}": results}, indent=2))
    print(f"wrote {args.results} (jpeg2000_{args.device})")


if __name__ == "__main__":
    main()
