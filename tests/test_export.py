"""Export: one ONNX file with dynamic axes, the model card, and parity with PyTorch."""

import json

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from timeseg.core.model_card import ModelCard, ModelCardError, read_model_card
from timeseg.models.checkpoint import build_network, save_checkpoint
from timeseg.models.export import ExportError, export_checkpoint
from timeseg.models.settings import NetworkConfig

CARD = {
    "architecture": "fcn_convlstm", "class_names": ["background", "road"], "bands": ["B04", "B03", "B02"],
    "input_scale": 1 / 255, "sequence_length": 3, "min_sequence_length": 1, "tile_size": 64,
    "tiles_overlap": 16, "resolution": 10.0, "threshold": 0.5, "trained_on": "test",
    "standardization_mean": [0.3, 0.3, 0.4], "standardization_std": [0.1, 0.1, 0.1],
}


@pytest.fixture(scope="module", params=[False, True], ids=["ungated", "date_gate"])
def checkpoint(tmp_path_factory, request):
    torch.manual_seed(0)
    config = NetworkConfig(depth=3, base_channels=4, hidden_channels=3, date_gate=request.param)
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    save_checkpoint(path, build_network(config), config, CARD, "final", 0, {})  # a new gate: shares about 0.5
    return path


@pytest.fixture(scope="module")
def exported(checkpoint):
    output = checkpoint.parent / "roads.onnx"
    card, difference = export_checkpoint(checkpoint, output, {"description": "test roads"})
    return output, card, difference


def test_export_writes_an_onnx_file_with_dynamic_axes(exported):
    output, _, difference = exported
    assert difference <= 1e-4
    model = onnx.load(str(output))
    (images,) = model.graph.input
    (probabilities,) = model.graph.output
    assert images.name == "images" and probabilities.name == "probabilities"
    dims = [d.dim_param or d.dim_value for d in images.type.tensor_type.shape.dim]
    assert dims == ["batch", "time", 3, "height", "width"]
    assert not output.with_name(output.name + ".partial").exists()


def test_the_card_is_in_metadata_props_as_json_strings(exported):
    output, card, _ = exported
    props = {p.key: p.value for p in onnx.load(str(output)).metadata_props}
    assert json.loads(props["model_type"]) == "segmentation"
    assert json.loads(props["class_names"]) == ["background", "road"]
    assert json.loads(props["tile_size"]) == 64
    assert json.loads(props["description"]) == "test roads"
    assert read_model_card(output) == card


@pytest.mark.parametrize("time_steps,height,width", [(1, 40, 40), (6, 33, 70)])
def test_onnx_matches_pytorch_at_other_lengths_and_sizes(exported, checkpoint, time_steps, height, width):
    from timeseg.models.checkpoint import load_checkpoint

    output, _, _ = exported
    network, _, _ = load_checkpoint(checkpoint)
    images = torch.rand(2, time_steps, 3, height, width)
    session = onnxruntime.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    (actual,) = session.run(None, {"images": images.numpy()})
    with torch.no_grad():
        expected = network(images).numpy()
    assert actual.shape == (2, 1, height, width)
    np.testing.assert_allclose(actual, expected, atol=1e-4)


def test_export_refuses_to_write_when_parity_fails(checkpoint, tmp_path, monkeypatch):
    from timeseg.models import export

    monkeypatch.setattr(export, "PARITY_TOLERANCE", 0.0)
    monkeypatch.setattr(export, "parity_difference", lambda *args, **kwargs: 1e-3)
    output = tmp_path / "bad.onnx"
    with pytest.raises(ExportError, match="differs from PyTorch"):
        export_checkpoint(checkpoint, output)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("overrides,said", [
    ({"tile_size": 64, "tiles_overlap": 100}, "tiles_overlap must be a whole number of pixels below tile_size"),
    ({"tile_size": 0}, "tile_size must be a positive whole number"),
    ({"tile_size": 5000}, "tile_size must be between 32 and 2048 pixels"),
    ({"tiles_overlap": -5}, "tiles_overlap must be a whole number of pixels below tile_size"),
])
def test_export_refuses_a_tiling_the_engine_would_refuse(checkpoint, tmp_path, overrides, said):
    """A card the engine cannot read or run is refused before anything is written (it was written, and every
    later command then refused the model)."""
    with pytest.raises(ExportError, match=said):
        export_checkpoint(checkpoint, tmp_path / "tiled.onnx", overrides)
    assert list(tmp_path.iterdir()) == []


def test_cards_that_are_not_timeseg_are_refused(tmp_path):
    with pytest.raises(ModelCardError, match="no TimeSeg model card"):
        ModelCard.from_metadata({"author": '"someone"'})
    with pytest.raises(ModelCardError, match="lacks bands"):
        ModelCard.from_metadata({k: json.dumps(v) for k, v in {**CARD, "model_type": "segmentation"}.items()
                                 if k != "bands"})
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx file")
    with pytest.raises(ModelCardError, match="not a readable ONNX model"):
        read_model_card(broken)
