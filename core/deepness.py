"""Models made for the Deepness QGIS plugin, run as they are, as one-date TimeSeg models.

A Deepness segmentation model takes one image ``[batch, channels, height, width]`` (uint8
values divided by 255, then standardised) and gives class probabilities ``[batch, classes,
height, width]`` (one channel: P(the class)). Its ``metadata_props`` hold JSON values:
``model_type`` ``Segmentor``, ``class_names`` (``{"0": "background", "1": "field"}``),
``resolution`` in centimetres per pixel, ``tile_size`` (or ``tiles_size``), ``tiles_overlap``
in percent, ``standardization_mean``/``standardization_std``, ``seg_thresh``, ``seg_small_segment``.
This module turns that into a TimeSeg ``ModelCard``; ``runtime.LoadedModel`` feeds the network one date at a time.
"""

from __future__ import annotations

import ast
import json
from typing import Any

from .model_card import ModelCard, ModelCardError

DEEPNESS_SEGMENTOR = "segmentor"
DEFAULT_TILE_SIZE = 512
ARCHITECTURE = "deepness_segmentor"


def is_deepness(metadata: dict[str, str]) -> bool:
    """The metadata of a Deepness model (its ``model_type`` is a Deepness type, not TimeSeg's)."""
    text = metadata.get("model_type")
    if text is None:
        return False
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    return str(value).lower() in ("segmentor", "detector", "regressor", "recognition", "superresolution")


def _value(metadata: dict[str, str], *keys: str) -> Any:
    for key in keys:
        if key in metadata:
            try:
                return json.loads(metadata[key])
            except json.JSONDecodeError:
                try:
                    return ast.literal_eval(metadata[key])  # Deepness accepts Python literals too
                except (ValueError, SyntaxError):
                    return metadata[key]  # a plain word, as is_deepness reads model_type
    return None


def _number(metadata: dict[str, str], key: str, default: float) -> float:
    """A number of the metadata (``default`` when absent or empty); ``ModelCardError`` when it is not one."""
    value = _value(metadata, key)
    if value in (None, ""):
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ModelCardError(f"Deepness {key} must be a number, not {value!r}: fix the model's metadata") from None


def _per_channel(value: Any, channels: int) -> Any:
    """One number for every channel (a scalar standardisation) as a list of ``channels``; else ``value``."""
    return [value] * channels if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _class_names(metadata: dict[str, str], output_channels: int | None) -> list[str]:
    names = _value(metadata, "class_names", "names")
    if isinstance(names, dict):
        ordered = sorted(names.items(), key=lambda item: int(item[0]))
        if [int(k) for k, _ in ordered] != list(range(len(ordered))):
            raise ModelCardError("Deepness class_names are not numbered 0, 1, 2, ...: fix the model's metadata")
        names = [str(v) for _, v in ordered]
    elif names is not None and not isinstance(names, list):
        raise ModelCardError("Deepness class_names must map class numbers to names")
    channels = output_channels or (len(names) if names else 2)
    if not names:
        names = [f"class {i}" for i in range(max(channels, 2))]
    if channels == 1 and len(names) == 1:
        names = ["background", names[0]]  # one output channel: P(that class)
    return [str(n) for n in names]


def deepness_card(metadata: dict[str, str], input_shape: list, output_shape: list, doc: str = "") -> ModelCard:
    """The TimeSeg card of a Deepness model, from its metadata and its network's declared shapes."""
    model_type = str(_value(metadata, "model_type")).lower()
    if model_type != DEEPNESS_SEGMENTOR:
        raise ModelCardError(f"this is a Deepness {model_type} model; TimeSeg runs Deepness segmentation models "
                             "(model_type Segmentor)")
    if len(input_shape) != 4 or len(output_shape) != 4:
        raise ModelCardError("a Deepness segmentation model takes [batch, channels, height, width] and gives "
                             "[batch, classes, height, width]; this one does not")
    channels = input_shape[1] if isinstance(input_shape[1], int) else 3
    static_side = input_shape[2] if isinstance(input_shape[2], int) else None
    # a network of a fixed input size takes tiles of that size, whatever its metadata says
    tile_size = static_side or int(_number(metadata, "tile_size", 0) or _number(metadata, "tiles_size", 0)
                                   or DEFAULT_TILE_SIZE)
    overlap_percent = _number(metadata, "tiles_overlap", 0.0)
    mean, std = (_per_channel(_value(metadata, key), channels) for key in ("standardization_mean",
                                                                           "standardization_std"))
    output_channels = output_shape[1] if isinstance(output_shape[1], int) else None
    if std is not None and (not isinstance(std, list) or min(float(v) for v in std) <= 0):
        raise ModelCardError("Deepness standardization_std must list numbers above 0: fix the model's metadata")
    for name, values in (("standardization_mean", mean), ("standardization_std", std)):
        if values is not None and (not isinstance(values, list) or len(values) != channels):
            raise ModelCardError(f"Deepness {name} must list one number per input channel ({channels}): fix the "
                                 "model's metadata")
    class_names = _class_names(metadata, output_channels)
    if output_channels is not None and len(class_names) != max(output_channels, 2):
        raise ModelCardError(f"Deepness class_names lists {len(class_names)} class{'es' * (len(class_names) != 1)}, "
                             "the network gives "
                             f"{output_channels} channel{'s' * (output_channels != 1)}: fix the model's metadata")
    resolution, threshold = _number(metadata, "resolution", 0.0), _number(metadata, "seg_thresh", 0.5)
    small_segment = _number(metadata, "seg_small_segment", 0.0)
    if resolution < 0 or not 0 < threshold < 1 or not 0 <= overlap_percent < 100 or small_segment < 0:
        raise ModelCardError("Deepness resolution must be 0 or more centimetres, seg_thresh between 0 and 1, "
                             "tiles_overlap from 0 to 99 % and seg_small_segment 0 or more pixels: fix the model's "
                             "metadata")
    if output_channels == 2:  # two softmax channels: Deepness drops each below seg_thresh, then takes the larger,
        threshold = max(threshold, 0.5)  # so the class is P >= seg_thresh and above the background's 1 - P
    return ModelCard(
        architecture=ARCHITECTURE,
        class_names=class_names,
        bands=[f"band {i + 1}" for i in range(channels)],
        input_scale=1 / 255,
        sequence_length=1,
        min_sequence_length=1,
        tile_size=tile_size,
        tiles_overlap=min(tile_size - 1, round(tile_size * overlap_percent / 100)),
        resolution=resolution / 100,  # 0: not stated, any resolution runs
        threshold=threshold,
        standardization_mean=[float(v) for v in mean] if mean is not None else None,
        standardization_std=[float(v) for v in std] if std is not None else None,
        input_dtype="uint8",
        dynamic_time=False,
        deepness_classes=True,
        # Deepness's median filter is odd-sized: seg_small_segment 4 filters over 5 pixels, 0 and 1 not at all
        class_median_px=int(small_segment // 2) * 2 + 1 if small_segment >= 2 else 0,
        trained_on="a Deepness model (one date)",
        description=doc or "Deepness segmentation model",
    )
