"""The tracing view used to make ``models/real/``: a zoomed crop of the real image with a pixel grid.

``python -m timeseg.research.trace_view X0 Y0 SIZE [--scale 3] [--overlay] -o view.png``

Grid: thin lines every 16 px, labels every 32 px, in full-image pixel coordinates (x = column,
y = row; pixel (c, r) spans c..c+1, r..r+1), the coordinates the traces are written in.
``--overlay`` draws the traced lines (yellow paved, cyan track, magenta street, orange forest,
red uncertain) so that a tracer can check them against the image.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image, ImageDraw

COLOURS = {"paved": (255, 255, 0), "track": (0, 255, 255), "street": (255, 0, 255), "forest": (255, 140, 0)}
MARGIN = 40


def render(image: Path, traces: Path | None, x0: int, y0: int, width: int, height: int, scale: int) -> Image.Image:
    """The crop, each band stretched between its 1st and 99.5th percentile, enlarged ``scale`` times."""
    with rasterio.open(image) as dataset:
        crop = dataset.read(window=((y0, y0 + height), (x0, x0 + width))).astype(np.float32)
    low = np.percentile(crop, 1, axis=(1, 2))[:, None, None]
    high = np.percentile(crop, 99.5, axis=(1, 2))[:, None, None]
    pixels = np.clip((crop - low) / (high - low) * 255, 0, 255).astype(np.uint8)
    pixels = np.moveaxis(pixels, 0, -1).repeat(scale, 0).repeat(scale, 1)
    canvas = Image.new("RGB", (pixels.shape[1] + 2 * MARGIN, pixels.shape[0] + 2 * MARGIN), (255, 255, 255))
    canvas.paste(Image.fromarray(pixels), (MARGIN, MARGIN))
    draw = ImageDraw.Draw(canvas)

    def at(x: float, y: float) -> tuple[float, float]:
        return MARGIN + (x - x0) * scale, MARGIN + (y - y0) * scale

    for x in range(-(-x0 // 16) * 16, x0 + width + 1, 16):
        draw.line([at(x, y0), at(x, y0 + height)], fill=(230, 230, 230) if x % 64 == 0 else (90, 90, 90))
        if x % 32 == 0:
            draw.text((at(x, y0)[0] - 10, 5), str(x), fill=(0, 0, 0))
    for y in range(-(-y0 // 16) * 16, y0 + height + 1, 16):
        draw.line([at(x0, y), at(x0 + width, y)], fill=(230, 230, 230) if y % 64 == 0 else (90, 90, 90))
        if y % 32 == 0:
            draw.text((2, at(x0, y)[1] - 5), str(y), fill=(0, 0, 0))
    for path in sorted(traces.glob("strip_*.json")) if traces else []:
        for line in json.loads(path.read_text()):
            draw.line([at(x, y) for x, y in line["points"]], fill=COLOURS.get(line["kind"], (255, 0, 0)), width=2)
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("x0", type=int)
    parser.add_argument("y0", type=int)
    parser.add_argument("size", type=int)
    parser.add_argument("--height", type=int, help="default: size")
    parser.add_argument("--scale", type=int, default=3)
    parser.add_argument("--overlay", action="store_true")
    parser.add_argument("--image", type=Path, default=Path("models/real/T33UUU_20170216_TCI.tif"))
    parser.add_argument("--traces", type=Path, default=Path("models/real/traces"))
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    view = render(args.image, args.traces if args.overlay else None, args.x0, args.y0, args.size,
                  args.height or args.size, args.scale)
    view.save(args.output)
    print(f"{args.output}: {view.size[0]} x {view.size[1]} px")


if __name__ == "__main__":
    main()
