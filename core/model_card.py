"""The model card: what a TimeSeg ONNX file says about itself.

Each field is one key of the ONNX ``metadata_props``, its value a JSON string, as the
Deepness plugin does. The card is the interface between training (``models``) and
inference (``core``, the plugin); extend it, do not rename its keys.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .harmonisation import problem as harmonisation_problem

MODEL_TYPE = "segmentation"
INPUT_DTYPES = ("uint8", "uint16", "int16", "float32")
SHIPPED_MODELS_DIR = Path(__file__).resolve().parents[1] / "models" / "weights"
SHIPPED_ROAD_MODEL = SHIPPED_MODELS_DIR / "roads.onnx"
SHIPPED_CROP_MODEL = SHIPPED_MODELS_DIR / "crops.onnx"


def shipped_models() -> list[Path]:
    """The ``.onnx`` models that come with TimeSeg, by name (not their int8/fp16 variants, which run in
    their place when ``--precision`` says so)."""
    return sorted(p for p in SHIPPED_MODELS_DIR.glob("*.onnx") if not p.stem.endswith((".int8", ".fp16")))


class ModelCardError(ValueError):
    """The file is not a TimeSeg model, or its card is incomplete."""


@dataclass(frozen=True)
class ModelCard:
    """Self-description of an exported model.

    ``input_scale`` multiplies the raw pixel values (e.g. 1/255 for uint8 true colour);
    then ``(x - standardization_mean[b]) / standardization_std[b]`` per band when given.
    """

    architecture: str
    class_names: list[str]
    bands: list[str]
    input_scale: float
    sequence_length: int
    min_sequence_length: int
    tile_size: int
    tiles_overlap: int
    resolution: float
    threshold: float = 0.5
    standardization_mean: list[float] | None = None
    standardization_std: list[float] | None = None
    input_dtype: str = "uint8"
    dynamic_time: bool = True  # the model takes any number of dates T >= min_sequence_length
    trained_on: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    model_type: str = MODEL_TYPE
    precision: str = "fp32"  # of the weights and activations: fp32, int8 (CPU), fp16 (GPU); bf16 when run so
    harmonisation: dict[str, Any] | None = None  # each date's bands stretched first (core.harmonisation)
    # each band's value, as the rasters hold it, read where a date has no data (beyond a swath's edge): one the
    # model learnt to pass over (the crop model: an opaque cloud's reflectance); None: 0
    no_data_value: list[float] | None = None
    one_year: bool = False  # the model reads one calendar year's dates (the crop model: a season from January)
    # Deepness's class rule: classes below ``threshold`` are dropped before the likeliest is taken (none left:
    # class 0), and the class map goes through a median filter of ``class_median_px`` pixels (seg_small_segment)
    deepness_classes: bool = False
    class_median_px: int = 0

    @property
    def is_binary(self) -> bool:
        """Two classes (background, target): the output is one channel, P(target)."""
        return len(self.class_names) == 2

    @property
    def takes_threshold(self) -> bool:
        """The class map depends on ``threshold``: two classes, or a Deepness model's (``deepness_classes``)."""
        return self.is_binary or self.deepness_classes

    @property
    def output_channels(self) -> int:
        """Channels of the ``probabilities`` output."""
        return 1 if self.is_binary else len(self.class_names)

    def to_metadata(self) -> dict[str, str]:
        """Card -> ``metadata_props`` (key -> JSON string)."""
        return {key: json.dumps(value) for key, value in dataclasses.asdict(self).items()}

    @classmethod
    def from_metadata(cls, metadata: dict[str, str]) -> ModelCard:
        """``metadata_props`` -> card; raises ``ModelCardError`` naming what is missing."""
        if "model_type" not in metadata:
            raise ModelCardError(
                "this ONNX file has no TimeSeg model card (no 'model_type' in its metadata): "
                "export it with 'timeseg export', or give a Deepness segmentation model with its metadata"
            )
        known = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, text in metadata.items():
            if key not in known:
                continue
            try:
                values[key] = json.loads(text)
            except json.JSONDecodeError as error:
                raise ModelCardError(f"model card field '{key}' is not valid JSON: {error}") from None
        missing = [
            name
            for name, f in known.items()
            if name not in values
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ]
        if missing:
            raise ModelCardError(f"model card lacks {', '.join(missing)}")
        if values["model_type"] != MODEL_TYPE:
            raise ModelCardError(
                f"model_type is '{values['model_type']}', TimeSeg runs '{MODEL_TYPE}' models"
            )
        problem = card_problem(values)
        if problem:
            raise ModelCardError(f"the model card is inconsistent: {problem}; "
                                 "re-export the model with 'timeseg export'")
        return cls(**values)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_text_list(value: Any, at_least: int) -> bool:
    return isinstance(value, list) and len(value) >= at_least and all(isinstance(v, str) and v for v in value)


def card_problem(values: dict[str, Any]) -> str | None:
    """What is wrong with a card's values (types, ranges, lengths), or None."""
    bands = values.get("bands")
    if not _is_text_list(values.get("class_names"), 2):
        return "class_names must list at least two names"
    if not _is_text_list(bands, 1):
        return "bands must list at least one band name"
    for key in ("input_scale", "resolution"):
        if not _is_number(values.get(key)) or values[key] <= 0:
            return f"{key} must be a positive number"
    for key in ("sequence_length", "min_sequence_length", "tile_size"):
        if not isinstance(values.get(key), int) or isinstance(values[key], bool) or values[key] < 1:
            return f"{key} must be a positive whole number"
    if not isinstance(values.get("one_year", False), bool):
        return "one_year must be true or false"
    fill = values.get("no_data_value")
    if fill is not None and not (isinstance(fill, list) and len(fill) == len(bands) and all(map(_is_number, fill))):
        return "no_data_value must give one number per band"
    median = values.get("class_median_px", 0)
    if not isinstance(median, int) or isinstance(median, bool) or median < 0:
        return "class_median_px must be a whole number of pixels, 0 or more"
    overlap = values.get("tiles_overlap")
    if not isinstance(overlap, int) or not 0 <= overlap < values["tile_size"]:
        return "tiles_overlap must be a whole number of pixels below tile_size"
    if values["min_sequence_length"] > values["sequence_length"]:
        return "min_sequence_length is above sequence_length"
    if not _is_number(values.get("threshold", 0.5)) or not 0 < values.get("threshold", 0.5) < 1:
        return "threshold must lie between 0 and 1"
    for key in ("standardization_mean", "standardization_std"):
        series = values.get(key)
        if series is None:
            continue
        if not isinstance(series, list) or len(series) != len(bands) or not all(_is_number(v) for v in series):
            return f"{key} must hold one number per band ({len(bands)})"
    if values.get("standardization_std") is not None and min(values["standardization_std"]) <= 0:
        return "standardization_std must be above 0 for every band"
    if values.get("precision", "fp32") not in ("fp32", "int8", "fp16"):
        return "precision must be fp32, int8 or fp16"
    if values.get("input_dtype", "uint8") not in INPUT_DTYPES:
        return f"input_dtype must be one of {', '.join(INPUT_DTYPES)}"
    harmonisation = values.get("harmonisation")
    if harmonisation is not None:
        if values.get("input_dtype", "uint8") != "uint8":
            return "harmonisation is for uint8 (true-colour) inputs only"
        problem = harmonisation_problem(harmonisation)
        if problem or len(harmonisation["target_low"]) != len(bands):
            return problem or f"harmonisation must give one target per band ({len(bands)})"
    return None


def read_model_card(path: str | Path) -> ModelCard:
    """Card of an ONNX file, checked against its network (``core.runtime.load_model`` on the CPU)."""
    from .runtime import load_model

    return load_model(path, "cpu", threads=1).card
