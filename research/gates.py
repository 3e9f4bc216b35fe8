"""Paper B, figure 2: what one ConvLSTM's gates do over a sequence, beside its input images.

For a checkpoint (BiConvLSTM or FCN + ConvLSTM) and a window of a dated raster
sequence, the ConvLSTM is stepped by hand and the input gate i_t, modulation gate j_t and
cell state c_t of chosen cells are drawn for every date. With a cloud-opacity raster the
cells are chosen, and scored, by how much their input gate closes on cloudy pixels:
``mean(i | clear) - mean(i | cloudy)``, in [-1, 1]. The opacity is used only for the figure
and the score; the network never sees it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio.windows import Window

from ..core.atomic import write_text_atomic
from ..core.raster_stack import DatedRaster, RasterStack
from ..models.checkpoint import checkpoint_normalisation, load_checkpoint
from ..models.networks import ConvLstm
from ..models.simulator.crops import CLOUDY_PIXEL_OPACITY


@dataclass
class GateTrace:
    """Per step ``[T, hidden, h, w]`` activations of one ConvLSTM over one window, time order."""

    input: np.ndarray  # i_t in [0, 1]
    modulation: np.ndarray  # j_t in [-1, 1]
    cell: np.ndarray  # c_t


@torch.no_grad()
def trace_gates(lstm: ConvLstm, sequence: torch.Tensor, reverse: bool = False) -> GateTrace:
    """Step ``lstm`` over ``sequence`` ``[1, T, C, h, w]`` (backwards when ``reverse``, as the
    BiConvLSTM's second layer reads it); activations come back in time order."""
    steps = range(sequence.shape[1] - 1, -1, -1) if reverse else range(sequence.shape[1])
    h, c = lstm.cell.initial_state(sequence[:, 0])
    recorded: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
    for t in steps:
        gates = lstm.cell.gate_activations(sequence[:, t], h)
        c = gates.forget * c + gates.input * gates.modulation
        h = gates.output * torch.tanh(c)
        recorded[t] = (gates.input[0], gates.modulation[0], c[0])
    ordered = [recorded[t] for t in range(sequence.shape[1])]
    return GateTrace(*(torch.stack([step[k] for step in ordered]).numpy() for k in range(3)))


def layer_input(network: torch.nn.Module, layer: str, images: torch.Tensor) -> tuple[ConvLstm, torch.Tensor, bool]:
    """The ConvLSTM named ``layer``, the sequence it reads and whether it reads it backwards."""
    if hasattr(network, "forward_lstm"):  # BiConvLstmClassifier
        if layer not in ("forward", "backward"):
            raise ValueError("a BiConvLSTM has the layers 'forward' and 'backward'")
        return getattr(network, f"{layer}_lstm"), images, layer == "backward"
    if layer not in ("0", "1"):
        raise ValueError("an FCN + ConvLSTM has the layers '0' (reads the FCN's maps) and '1'")
    sequence = network.date_steps(images)
    if layer == "1":
        sequence, _ = network.lstms[0](sequence)
    return network.lstms[int(layer)], sequence, False


def cloud_masks(path: Path, rasters: Sequence[DatedRaster], window: Window) -> np.ndarray:
    """Opacity ``[T, h, w]`` in [0, 1] of each raster's date from a raster with one band per date:
    bands are matched by the date in their description (``clouds.tif`` of the crop simulator),
    else taken in order when there is one band per raster."""
    with rasterio.open(path) as source:
        by_date = {}
        for band, description in enumerate(source.descriptions, start=1):
            if description:
                by_date[description.split(" ")[0]] = band
        bands = [by_date.get(r.date.isoformat()) for r in rasters]
        if None in bands:
            if source.count != len(rasters):
                raise ValueError(f"{path} has {source.count} bands and no date for some of the {len(rasters)} "
                                 "rasters: give one band per raster, in time order")
            bands = list(range(1, len(rasters) + 1))
        data = source.read(bands, window=window, boundless=True, fill_value=0).astype(np.float32)
    return data / (100.0 if data.max() > 1.0 else 1.0)


def gate_closure(trace: GateTrace, opacity: np.ndarray) -> np.ndarray:
    """Per cell ``[hidden]``: mean input gate on clear pixels minus on cloudy ones, over all steps."""
    cloudy = opacity > CLOUDY_PIXEL_OPACITY  # [T, h, w]
    if cloudy.all() or not cloudy.any():
        return np.full(trace.input.shape[1], np.nan)
    gates = trace.input.transpose(1, 0, 2, 3)  # [hidden, T, h, w]
    return gates[:, ~cloudy].mean(axis=1) - gates[:, cloudy].mean(axis=1)


def choose_cells(trace: GateTrace, closure: np.ndarray | None, count: int) -> list[int]:
    """Cells whose input gate closes most on clouds; without clouds, those whose input gate varies most."""
    score = closure if closure is not None and np.isfinite(closure).any() else trace.input.std(axis=(0, 2, 3))
    return [int(k) for k in np.argsort(-np.nan_to_num(score, nan=-np.inf))[:count]]


def preview_rgb(pixels: np.ndarray, bands: Sequence[str], input_scale: float) -> np.ndarray:
    """``[T, C, h, w]`` raw values -> ``[T, h, w, 3]`` in [0, 1]: B04, B03, B02 when present (else
    the first three bands); reflectance stretched from 0 to 0.3, 8-bit true colour as it is."""
    names = [b.upper() for b in bands]
    order = [names.index(b) for b in ("B04", "B03", "B02")] if {"B04", "B03", "B02"} <= set(names) else [0, 1, 2]
    order = [min(i, pixels.shape[1] - 1) for i in order]
    rgb = pixels[:, order].astype(np.float32) * input_scale
    top = 1.0 if pixels.dtype == np.uint8 else 0.3
    return np.clip(rgb / top, 0, 1).transpose(0, 2, 3, 1)


def write_gate_figure(checkpoint: Path, rasters: Sequence[DatedRaster], output: Path, window: Window,
                      layer: str | None = None, cells: Sequence[int] | None = None, cell_count: int = 2,
                      clouds: Path | None = None) -> dict[str, Any]:
    """Draw the figure to ``output`` (PNG) and its numbers to ``output`` with ``.json``; returns them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    network, config, saved = load_checkpoint(checkpoint)
    card = saved["card"]
    layer = layer or ("forward" if config.architecture == "biconvlstm" else "0")
    ordered = sorted(rasters, key=lambda r: r.date)
    with RasterStack(ordered) as stack:
        if stack.band_count != len(card["bands"]):
            raise ValueError(f"the rasters have {stack.band_count} bands, the checkpoint's model wants "
                             f"{len(card['bands'])} ({', '.join(card['bands'])})")
        pixels, _ = stack.read(window)
    images = torch.from_numpy(checkpoint_normalisation(saved).apply(pixels))[None]
    lstm, sequence, reverse = layer_input(network, layer, images)
    trace = trace_gates(lstm, sequence, reverse)
    opacity = cloud_masks(clouds, ordered, window) if clouds else None
    closure = gate_closure(trace, opacity) if opacity is not None else None
    chosen = list(cells) if cells else choose_cells(trace, closure, cell_count)
    hidden = trace.input.shape[1]
    if any(not 0 <= k < hidden for k in chosen):
        raise ValueError(f"cells must lie in 0..{hidden - 1}")

    rgb = preview_rgb(pixels, card["bands"], card["input_scale"])
    rows: list[tuple[str, np.ndarray, dict[str, Any]]] = [("input", rgb, {})]
    if opacity is not None:
        rows.append(("cloud\n(not an input)", opacity, dict(cmap="gray", vmin=0, vmax=1)))
    for k in chosen:
        limit = float(np.abs(trace.cell[:, k]).max()) or 1.0
        rows += [(f"i, cell {k}", trace.input[:, k], dict(cmap="viridis", vmin=0, vmax=1)),
                 (f"j, cell {k}", trace.modulation[:, k], dict(cmap="RdBu_r", vmin=-1, vmax=1)),
                 (f"c, cell {k}", trace.cell[:, k], dict(cmap="RdBu_r", vmin=-limit, vmax=limit))]
    steps = len(ordered)
    figure, axes = plt.subplots(len(rows), steps, figsize=(0.62 * steps + 0.9, 0.66 * len(rows) + 0.3),
                                squeeze=False)
    for r, (label, data, style) in enumerate(rows):
        for t in range(steps):
            axis = axes[r, t]
            axis.imshow(data[t], interpolation="nearest", **style)
            axis.set_xticks([])
            axis.set_yticks([])
            if r == 0:
                axis.set_title(f"t={t + 1}\n{ordered[t].date:%m-%d}", fontsize=6)
        axes[r, 0].set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
    figure.subplots_adjust(left=0.06, right=0.995, top=0.92, bottom=0.01, wspace=0.04, hspace=0.06)
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=90)
    plt.close(figure)

    numbers: dict[str, Any] = {
        "checkpoint": str(checkpoint), "layer": layer, "cells": chosen, "hidden_cells": hidden,
        "dates": [r.date.isoformat() for r in ordered],
        "window": {"col": window.col_off, "row": window.row_off, "width": window.width, "height": window.height},
    }
    if closure is not None:
        cloudy = opacity > CLOUDY_PIXEL_OPACITY
        numbers.update({
            "cloudy_pixel_share": float(cloudy.mean()),
            "closure_of_chosen_cells": {str(k): float(closure[k]) for k in chosen},
            "closure_mean_over_cells": float(np.nanmean(closure)),
            "cells_closing_by_more_than_0.2": int(np.sum(closure > 0.2)),
            "cells_opening_by_more_than_0.2": int(np.sum(closure < -0.2)),
            "closure_per_cell": [round(float(v), 4) for v in closure],
        })
    write_text_atomic(output.with_suffix(".json"), json.dumps(numbers, indent=1))
    return numbers
