"""The model card: what a TimeSeg ONNX file says about itself.

Each field is one key of the ONNX ``metadata_props``, its value a JSON string, as the
Deepness plugin does. The card is the interface between training (``models``) and
inference (``core``, the plugin); extend it, do not rename its keys.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODEL_TYPE = "segmentation"
SHIPPED_MODELS_DIR = Path(__file__).resolve().parents[1] / "models" / "weights"
SHIPPED_ROAD_MODEL = SHIPPED_MODELS_DIR / "roads.onnx"
SHIPPED_CROP_MODEL = SHIPPED_MODELS_DIR / "crops.onnx"


def shipped_models() -> list[Path]:
    """The ``.onnx`` models that come with TimeSeg, by name."""
    return sorted(SHIPPED_MODELS_DIR.glob("*.onnx"))


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

    @property
    def is_binary(self) -> bool:
        """Two classes (background, target): the output is one channel, P(target)."""
        return len(self.class_names) == 2

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
                "this ONNX file has no TimeSeg model card (no 'model_type' in its metadata); "
                "export it with 'timeseg export'"
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
        return cls(**values)


def read_model_card(path: str | Path) -> ModelCard:
    """Card of an ONNX file, read with onnxruntime (no ``onnx`` package needed)."""
    import onnxruntime

    path = Path(path)
    if not path.is_file():
        raise ModelCardError(f"model file not found: {path}")
    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types
        raise ModelCardError(f"{path} is not a readable ONNX model ({error})") from None
    return ModelCard.from_metadata(session.get_modelmeta().custom_metadata_map)
