"""The road model on reflectance rasters instead of TCIs: the forms analysts export Sentinel-2 in.

The place no model trained on (``models.real_scene.UNSEEN_DATES``: Inn, two dates) written as each form
(``FORMS``) from its L1C-like TCIs, then run by the engine as ``timeseg segment`` runs it (which reads
reflectance as ESA's L1C true colour, ``core.true_colour``), and scored against its traced roads. Part
of ``make real-check``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import rasterio

from ..core.raster_stack import DatedRaster
from ..core.segment import SegmentRequest, segment
from ..core.true_colour import TCI_SATURATION
from ..models.real_scene import UNSEEN_DATES, RealScene
from ..models.road_scores import HeldOut, scores
from ..models.weather import PATH_REFLECTANCE_RGB

SURFACE = PATH_REFLECTANCE_RGB[:, None, None]  # taken off the L1C-like TCI's reflectance: back to the L2A's
BASELINE_04_OFFSET = 1000  # digital numbers added by products processed from 25 January 2022 on

# form -> (top-of-atmosphere reflectance [3, H, W] -> the values written, their type); None: the TCI itself
FORMS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], str] | None] = {
    "TCI (uint8), as shipped": None,
    "top-of-atmosphere digital numbers (uint16)": (lambda r: r * 1e4, "uint16"),
    "top-of-atmosphere digital numbers + 1000 (baseline 04.00)": (lambda r: r * 1e4 + BASELINE_04_OFFSET,
                                                                  "uint16"),
    "surface (L2A) digital numbers (uint16)": (lambda r: np.maximum(r - SURFACE, 1e-4) * 1e4, "uint16"),
    "surface digital numbers + 1000 (baseline 04.00)": (lambda r: np.maximum(r - SURFACE, 1e-4) * 1e4
                                                        + BASELINE_04_OFFSET, "uint16"),
    "surface reflectance 0..1 (float32)": (lambda r: np.maximum(r - SURFACE, 1e-4), "float32"),
}


def write_form(tci_path: Path, form: str, output: Path) -> Path:
    """``tci_path`` (an L1C TCI) as ``form``; no-data pixels stay 0."""
    make = FORMS[form]
    if make is None:
        return tci_path
    convert, dtype = make
    with rasterio.open(tci_path) as source:
        tci, profile, tags = source.read(), source.profile, source.tags()
    values = np.where(tci > 0, convert(tci.astype(np.float64) / 255 * TCI_SATURATION), 0)
    profile.update(dtype=dtype, nodata=0, predictor=1)
    with rasterio.open(output, "w", **profile) as dataset:
        dataset.write(values.astype(dtype) if dtype == "float32" else np.rint(values).astype(dtype))
        dataset.update_tags(**tags)
    return output


def reflectance_table(model: Path, truth: HeldOut, work: Path,
                      dates: Sequence[RealScene] = UNSEEN_DATES) -> tuple[str, dict]:
    """Markdown table and numbers: the engine's relaxed F1 of ``model`` (fp32, CPU) on each date alone and
    on all of them, with the rasters in each of ``FORMS``."""
    work.mkdir(parents=True, exist_ok=True)
    views = {**{scene.date.isoformat(): [index] for index, scene in enumerate(dates)}, "both": list(range(len(dates)))}
    numbers: dict[str, dict] = {}
    lines = ["| rasters | " + " | ".join(views) + " |", "|---|" + "---|" * len(views)]
    for number, form in enumerate(FORMS):
        paths = [write_form(scene.image, form, work / f"form{number}_{scene.image.name}") for scene in dates]
        cells = []
        for view, indices in views.items():
            rasters = [DatedRaster(paths[i], dates[i].date) for i in indices]
            result = segment(SegmentRequest(rasters, model, work / f"form{number}_{view}", device="cpu",
                                            precision="fp32"))
            with rasterio.open(result.probability_path) as dataset:
                f1 = scores(np.nan_to_num(dataset.read(1)), truth).f1
            numbers.setdefault(form, {})[view] = f1
            cells.append(f"{f1:.3f}")
        lines.append(f"| {form} | " + " | ".join(cells) + " |")
    return "\n".join(lines), numbers


def worst_offset_loss(numbers: dict[str, dict[str, float]]) -> float:
    """The largest F1 the baseline's offset costs against the TCI, over the forms that carry it and the
    views (``reflectance_table``'s numbers)."""
    tci = numbers[next(iter(FORMS))]
    return max(tci[view] - f1 for form, by_view in numbers.items() if "+ 1000" in form
               for view, f1 in by_view.items())
