"""Checkpoint -> one ONNX file with dynamic batch, time, height and width and its model card.

The export checks itself before writing: onnxruntime runs the file on random inputs at
two sequence lengths and two sizes, and the file is written only when the largest
difference from PyTorch is at most ``PARITY_TOLERANCE``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from ..core.atomic import OutputSet, atomic_file
from ..core.definitions import MAX_TILE_SIZE, MIN_TILE_SIZE
from ..core.model_card import ModelCard, card_problem
from ..core.runtime import quiet_options
from .checkpoint import load_checkpoint

PARITY_TOLERANCE = 1e-4
# fp16 weights, run on the CPU (which computes them in float32): only the weights' rounding differs. A broken
# graph misses by 0.1 to 1; the rounding of weights with batch normalisation folded in moved P by up to 0.015
# (mean 8e-5, 99.94 % of classes equal) where a network answers 0.5 to the check's noise images
FP16_WEIGHT_TOLERANCE = 5e-2
OPSET = 17
INPUT_NAME = "images"
OUTPUT_NAME = "probabilities"


class ExportError(RuntimeError):
    """The export failed its own check; nothing was written."""


@dataclass(frozen=True)
class ParityCase:
    batch: int
    time: int
    height: int
    width: int


def parity_cases(card: ModelCard) -> list[ParityCase]:
    """Two sequence lengths and two sizes (one not a multiple of the pooling factor)."""
    long = max(card.sequence_length, card.min_sequence_length) + 1
    short = max(card.min_sequence_length, 1)
    return [ParityCase(1, short, 64, 64), ParityCase(2, long, 72, 50)]


def exported_card(trained: dict[str, Any], overrides: dict[str, Any] | None, precision: str) -> ModelCard:
    """The card a checkpoint's model is exported with: its training's card, ``overrides`` (a tile size, an
    overlap, ...) and ``precision``; ``ExportError`` before anything is written when it would be one the
    engine refuses to read or to run."""
    values = {**trained, **(overrides or {}), "precision": precision}
    problem = card_problem(values)
    if problem is None and not MIN_TILE_SIZE <= values["tile_size"] <= MAX_TILE_SIZE:
        problem = f"tile_size must be between {MIN_TILE_SIZE} and {MAX_TILE_SIZE} pixels"
    if problem is not None:
        raise ExportError(f"{problem} (--tile-size {values.get('tile_size')}, --overlap "
                          f"{values.get('tiles_overlap')}); nothing written")
    return ModelCard(**values)


def export_checkpoint(checkpoint_path: str | Path, output: str | Path,
                      card_overrides: dict[str, Any] | None = None, seed: int = 0,
                      outputs: OutputSet | None = None) -> tuple[ModelCard, float]:
    """Write ``output`` (.onnx); returns its card and the largest parity difference.

    With ``outputs`` (an ``OutputSet`` holding ``output``) the file is left for its owner to
    commit with the run's other files; without, it is committed here, only when parity holds.
    """
    network, config, checkpoint = load_checkpoint(checkpoint_path)
    card = exported_card(checkpoint["card"], card_overrides, "fp32")
    output = Path(output)
    with contextlib.nullcontext(outputs.partial(output)) if outputs is not None else atomic_file(output) as partial:
        example = torch.rand(1, card.sequence_length, config.in_channels, 64, 64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TorchScript deprecation notices
            torch.onnx.export(
                torch.jit.script(network), (example,), str(partial), dynamo=False, opset_version=OPSET,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch", 1: "time", 3: "height", 4: "width"},
                              OUTPUT_NAME: {0: "batch", 2: "height", 3: "width"}},
            )
        model = onnx.load(str(partial))
        write_card(model, card)
        onnx.checker.check_model(model)
        onnx.save(model, str(partial))
        difference = parity_difference(network, partial, card, config.in_channels, seed)
        if difference > PARITY_TOLERANCE:
            raise ExportError(
                f"ONNX output differs from PyTorch by {difference:.2e} (> {PARITY_TOLERANCE:.0e}); "
                "nothing written"
            )
    return card, difference


def write_card(model: onnx.ModelProto, card: ModelCard) -> None:
    """``card`` as the model's ``metadata_props`` (replacing any), and its description as the doc string."""
    variant = f" ({card.precision})" if card.precision != "fp32" else ""
    model.doc_string = card.description or f"TimeSeg {card.architecture}{variant}: {', '.join(card.class_names)}"
    del model.metadata_props[:]
    for key, value in card.to_metadata().items():
        model.metadata_props.add(key=key, value=value)


def parity_difference(network: torch.nn.Module, onnx_path: Path, card: ModelCard, bands: int,
                      seed: int = 0) -> float:
    """Largest absolute difference between onnxruntime and PyTorch over ``parity_cases``."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_path), quiet_options(onnxruntime),
                                           providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(seed)
    largest = 0.0
    for case in parity_cases(card):
        images = torch.rand(case.batch, case.time, bands, case.height, case.width, generator=generator)
        with torch.no_grad():
            expected = network(images).numpy()
        (actual,) = session.run([OUTPUT_NAME], {INPUT_NAME: images.numpy()})
        if actual.shape != expected.shape:
            raise ExportError(f"ONNX output shape {actual.shape} differs from PyTorch's {expected.shape}")
        largest = max(largest, float(np.abs(actual - expected).max()))
    return largest


def export_int8(checkpoint_path: str | Path, output: str | Path, calibration: Sequence[np.ndarray],
                card_overrides: dict[str, Any] | None = None, seed: int = 0) -> tuple[ModelCard, float]:
    """Write the int8 variant ``output`` (e.g. ``roads.int8.onnx`` beside ``roads.onnx``; see
    ``models.quantise``) calibrated on ``calibration`` (raw ``[C, H, W]`` images); returns its card
    and its share of class pixels equal to the float32 network's."""
    model, card, equal = int8_variant(checkpoint_path, calibration, card_overrides, seed)
    with atomic_file(Path(output)) as partial:
        onnx.save(model, str(partial))
    return card, equal


def int8_variant(checkpoint_path: str | Path, calibration: Sequence[np.ndarray],
                 card_overrides: dict[str, Any] | None = None,
                 seed: int = 0) -> tuple[onnx.ModelProto, ModelCard, float]:
    """The int8 variant of a checkpoint, its card written in, not yet saved: the model, its card and
    its share of class pixels equal to the float32 network's (``models.quantise.QuantisationError``
    below 99 %)."""
    from .networks import FcnConvLstm
    from .quantise import int8_model

    network, _, checkpoint = load_checkpoint(checkpoint_path)
    if not isinstance(network, FcnConvLstm):
        raise ExportError("int8 export is for the FCN + ConvLSTM models (roads, mangroves)")
    card = exported_card(checkpoint["card"], card_overrides, "int8")
    model, equal = int8_model(network, card, calibration, OPSET, seed)
    card = dataclasses.replace(card, metrics={**card.metrics, "int8_equal_class_pixels": round(equal, 4)})
    write_card(model, card)
    return model, card, equal


def export_fp16(checkpoint_path: str | Path, output: str | Path,
                card_overrides: dict[str, Any] | None = None, seed: int = 0) -> tuple[ModelCard, float]:
    """Write the GPU variant ``output`` (e.g. ``roads.fp16.onnx`` beside ``roads.onnx``): the float32
    export with every weight and activation in float16 by onnxruntime's converter, input and output
    kept float32 so that the engine feeds it as it feeds the original. Returns its card and the largest
    difference from PyTorch on the CPU, where onnxruntime computes float16 nodes in float32 (so this
    checks the graph and the weights' rounding; agreement on a GPU is measured by ``bench/gpu.py``)."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    network, config, checkpoint = load_checkpoint(checkpoint_path)
    output = Path(output)
    with tempfile.TemporaryDirectory() as folder, atomic_file(output) as partial:
        fp32_card, _ = export_checkpoint(checkpoint_path, Path(folder) / "fp32.onnx", card_overrides, seed)
        card = dataclasses.replace(fp32_card, precision="fp16")
        model = convert_float_to_float16(onnx.load(str(Path(folder) / "fp32.onnx")), keep_io_types=True)
        write_card(model, card)
        onnx.save(model, str(partial))
        difference = parity_difference(network, partial, card, config.in_channels, seed)
        if difference > FP16_WEIGHT_TOLERANCE:
            raise ExportError(f"the fp16 model differs from PyTorch by {difference:.2e} on the CPU "
                              f"(> {FP16_WEIGHT_TOLERANCE:.0e}); nothing written")
    return card, difference
