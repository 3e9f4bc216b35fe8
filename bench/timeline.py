"""``python -m bench.timeline``: where an end-to-end run's time goes -> bench/results.json's ``timeline`` key.

``timeseg segment`` on the bench's stack (``bench.run.large_stack``) in a child process, every model call
timed: the seconds before the first call (Python, imports, opening the rasters and the model, checks),
the model's busy share between the first call's start and the last call's end (summed call time over
``calls at once x span``: 1 when the engine never keeps the model waiting), and the seconds after the
last call (the last rows, closing the files, overviews). The bench's efficiency (``bench.run``) folds
all three into one number, with the machine's drift between its model-only and end-to-end halves.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from timeseg.core.atomic import write_text_atomic

from .run import ROOT, large_stack, run_child

# the engine's command line with LoadedModel.run timed; its report is the last stderr line
_CHILD = """
import json, sys, time
started = time.perf_counter()
from timeseg.core.runtime import LoadedModel
calls, run = [], LoadedModel.run
def timed(self, images):
    begin = time.perf_counter()
    try:
        return run(self, images)
    finally:
        calls.append((begin, time.perf_counter(), self.runs_at_once))
LoadedModel.run = timed
from timeseg.cli import main
code = main(sys.argv[1:])
ended = time.perf_counter()
first, last = min(c[0] for c in calls), max(c[1] for c in calls)
print(json.dumps({"seconds_before_first_call": first - started, "seconds_after_last_call": ended - last,
                  "calls": len(calls), "calls_at_once": calls[0][2],
                  "model_busy_share": sum(e - b for b, e, _ in calls) / (calls[0][2] * (last - first)),
                  "median_call_seconds": sorted(e - b for b, e, _ in calls)[len(calls) // 2]}), file=sys.stderr)
sys.exit(code)
"""


def timeline(model: Path, rasters: list[Path], output: Path, precision: str) -> dict:
    command = [sys.executable, "-c", _CHILD, "segment", "--model", str(model), "--output", str(output),
               "--precision", precision, *map(str, rasters)]
    seconds, completed = run_child(command)
    return {"precision": precision, "seconds": seconds, **json.loads(completed.stderr.strip().splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=ROOT / "models/weights/roads.onnx")
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096])
    parser.add_argument("--precisions", nargs="+", default=["auto", "fp32"])
    parser.add_argument("--work", type=Path, default=ROOT / "data/bench")
    parser.add_argument("--results", type=Path, default=ROOT / "bench/results.json")
    args = parser.parse_args()
    runs = []
    for size in args.sizes:
        for precision in args.precisions:
            run = {"size": size, **timeline(args.model.resolve(), large_stack(args.work, size),
                                            args.work / f"out_timeline_{size}_{precision}", precision)}
            print(json.dumps(run), flush=True)
            runs.append(run)
    kept = json.loads(args.results.read_text()) if args.results.is_file() else {}
    write_text_atomic(args.results, json.dumps({**kept, "timeline": runs}, indent=2))
    print(f"wrote {args.results} (timeline)")


if __name__ == "__main__":
    main()
