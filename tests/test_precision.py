"""The int8 variant: exported from a checkpoint, chosen by --precision auto on the CPU, refused when missing;
and the shipped road model's int8 variant against its float32 original."""

from __future__ import annotations

import shutil

import onnx
import pytest
import rasterio

from timeseg.cli import main
from timeseg.core import runtime
from timeseg.core.model_card import SHIPPED_ROAD_MODEL, read_model_card

SHIPPED_INT8 = SHIPPED_ROAD_MODEL.with_name("roads.int8.onnx")


@pytest.fixture
def no_bf16_cpu(monkeypatch):
    """A CPU that does not compute bfloat16, where auto takes the int8 file (with bf16: tests/test_bf16.py)."""
    monkeypatch.setattr(runtime, "native_bf16", lambda: False)


def test_the_shipped_int8_variant_agrees_with_float32(tmp_path, capsys, no_bf16_cpu):
    """On the demo sample (simulated), the default on a CPU without bfloat16 is the int8 file; its classes are the
    float32 model's on at least 99 % of the pixels (on the real held-out area: docs/precision.md)."""
    card = read_model_card(SHIPPED_INT8)
    assert card.precision == "int8" and card.metrics["int8_equal_class_pixels"] >= 0.99
    assert card.class_names == read_model_card(SHIPPED_ROAD_MODEL).class_names
    rasters = sorted(str(p) for p in (SHIPPED_ROAD_MODEL.parents[2] / "data" / "sample" / "2019").glob("*_TCI.tif"))
    if not rasters:  # make demo writes the sample; make one the same way when it is not there yet
        from timeseg.models.simulator import simulate_scene

        scene = simulate_scene(tmp_path / "sample", seed=2019, size=512, dates_per_period=5)
        rasters = [str(p) for p in scene.tci_paths[2019]]
    for precision in ("fp32", "auto"):
        assert main(["segment", "--model", str(SHIPPED_ROAD_MODEL), "--output", str(tmp_path / precision),
                     "--precision", precision, *rasters]) == 0
    said = capsys.readouterr().out
    assert "on CPU, fp32" in said and "on CPU, int8" in said
    with rasterio.open(tmp_path / "fp32" / "classes.tif") as a, rasterio.open(tmp_path / "auto" / "classes.tif") as b:
        assert (a.read(1) == b.read(1)).mean() >= 0.99


def test_export_int8_and_choose_it(small_scene, tmp_path, capsys, no_bf16_cpu):
    """A model's int8 sibling is made by export (here from the shipped checkpoint, calibrated on simulated
    rasters), runs any number of dates, and is what auto picks on the CPU; fp32 still runs the original."""
    model = tmp_path / "mine.onnx"
    shutil.copy(SHIPPED_ROAD_MODEL, model)
    rasters = [str(p) for p in small_scene.tci_paths[2019]]
    assert main(["segment", "--model", str(model), "--output", str(tmp_path / "x"), "--precision", "int8",
                 *rasters]) == 1
    assert "there is no int8 variant of mine.onnx (mine.int8.onnx): make one with 'timeseg export --precision " \
        "int8', or choose fp32" in capsys.readouterr().err
    assert main(["export", str(SHIPPED_ROAD_MODEL.with_suffix(".pt")), "--output", str(tmp_path / "mine.int8.onnx"),
                 "--precision", "int8", "--calibration", *map(str, small_scene.tci_paths[2016])]) == 0
    assert "class pixels equal to the float32 model's" in capsys.readouterr().out
    card = read_model_card(tmp_path / "mine.int8.onnx")
    assert card.precision == "int8" and card.dynamic_time and card.metrics["int8_equal_class_pixels"] >= 0.99
    graph = onnx.load(str(tmp_path / "mine.int8.onnx")).graph
    int8_weights = {w.name for w in graph.initializer if w.name.endswith("_quantized")}
    # the whole per-date graph ("fcn/...") in int8: every convolution of it reads dequantised int8 weights
    # (the U-Net's own carry no name of theirs: batch normalisation is folded into them on export), among
    # them the PMap and context convolutions and the date gate
    made_by = {output: node for node in graph.node for output in node.output}
    convolutions = [node for node in graph.node if node.op_type == "Conv" and node.output[0].startswith("fcn/")]
    assert len(convolutions) >= 15 and all(getattr(made_by.get(node.input[1]), "op_type", None) == "DequantizeLinear"
                                           for node in convolutions)
    assert all(any(part in name for name in int8_weights) for part in (".fcn.head.", ".context.", ".gate."))
    for dates in (1, 3):
        assert main(["segment", "--model", str(model), "--output", str(tmp_path / f"auto{dates}"),
                     *rasters[:dates]]) == 0
        assert "on CPU, int8" in capsys.readouterr().out
    assert main(["segment", "--model", str(model), "--output", str(tmp_path / "fp32"), "--precision", "fp32",
                 *rasters]) == 0
    with rasterio.open(tmp_path / "fp32" / "classes.tif") as a, rasterio.open(tmp_path / "auto3" / "classes.tif") as b:
        assert (a.read(1) == b.read(1)).mean() >= 0.98  # a 96 px scene: a few hundred pixels decide


@pytest.mark.parametrize("date_gate", [False, True])
def test_int8_gate_convolutions_run_as_qlinearconv_inside_the_loop(tmp_path, date_gate):
    """The temporal stage's gate convolutions are quantised too: their QDQ pairs export into the Loop
    body, onnxruntime fuses them into QLinearConv there, and the map stays the float32 one's."""
    import numpy as np
    import onnx
    import onnxruntime
    import torch

    from timeseg.models.networks import FcnConvLstm
    from timeseg.models.quantise import export_temporal, gate_ranges, with_int8_gates

    torch.manual_seed(0)
    network = FcnConvLstm(3, 1, depth=2, base_channels=4, hidden_channels=4, context_channels=2,
                          date_gate=date_gate).eval()
    images = torch.rand(2, 3, 3, 32, 32)
    ranges = gate_ranges(network, [images[:1].numpy(), images[1:].numpy()])
    assert len(ranges) == 2 and all(low < 0 < high for low, high in ranges)
    int8 = with_int8_gates(network, ranges)
    with torch.no_grad():
        assert (int8(images) - network(images)).abs().max() < 0.02  # 8 bits on inputs, weights and gates
    with torch.no_grad():
        export_temporal(int8, network.date_steps(images), tmp_path / "temporal.onnx", 17)
    options = onnxruntime.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimised.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "temporal.onnx"), options,
                                           providers=["CPUExecutionProvider"])
    loops = [n for n in onnx.load(str(tmp_path / "optimised.onnx")).graph.node if n.op_type == "Loop"]
    bodies = [[n.op_type for n in loop.attribute[0].g.node] for loop in loops]
    assert len(bodies) == 1  # one Loop over the dates, both ConvLSTM layers' cells in it
    assert bodies[0].count("QLinearConv") == 2 and "Conv" not in bodies[0]
    assert "Shape" not in bodies[0]  # gates cut at fixed channels: no dequantised copy made to read a size
    with torch.no_grad():
        steps = network.date_steps(images)
        expected = network(images).numpy()
    got = session.run(None, {"steps": steps.numpy()})[0]
    assert got.shape == expected.shape and np.abs(got - expected).max() < 0.02


def test_export_fp16_and_choose_it(small_scene, tmp_path, capfd, no_bf16_cpu):
    """The GPU variant: float16 weights, float32 input and output, the same card but its precision; on the CPU
    (which computes it in float32) it gives the float32 model's classes; auto on a CPU does not take it."""
    model = tmp_path / "mine.onnx"
    shutil.copy(SHIPPED_ROAD_MODEL, model)
    assert main(["export", str(SHIPPED_ROAD_MODEL.with_suffix(".pt")), "--output", str(tmp_path / "mine.fp16.onnx"),
                 "--precision", "fp16"]) == 0
    printed = capfd.readouterr()
    assert "fp16" in printed.out and "onnxruntime" not in printed.err  # its buffer-reuse warnings stay out
    card = read_model_card(tmp_path / "mine.fp16.onnx")
    assert card.precision == "fp16" and card.class_names == read_model_card(model).class_names
    graph = onnx.load(str(tmp_path / "mine.fp16.onnx")).graph
    assert {w.data_type for w in graph.initializer if w.dims} == {onnx.TensorProto.FLOAT16}
    assert graph.input[0].type.tensor_type.elem_type == graph.output[0].type.tensor_type.elem_type == \
        onnx.TensorProto.FLOAT
    rasters = [str(p) for p in small_scene.tci_paths[2019]]
    for precision in ("fp16", "auto", "fp32"):
        assert main(["segment", "--model", str(model), "--output", str(tmp_path / precision), "--device", "cpu",
                     "--precision", precision, *rasters]) == 0
    said = capfd.readouterr().out
    assert said.count("on CPU, fp16") == 1 and said.count("on CPU, fp32") == 2  # auto: no int8 file, so fp32
    with rasterio.open(tmp_path / "fp32" / "classes.tif") as a, rasterio.open(tmp_path / "fp16" / "classes.tif") as b:
        assert (a.read(1) == b.read(1)).mean() >= 0.99


def test_the_shipped_fp16_variant_is_the_same_model():
    fp16, fp32 = read_model_card(SHIPPED_ROAD_MODEL.with_name("roads.fp16.onnx")), read_model_card(SHIPPED_ROAD_MODEL)
    assert fp16.precision == "fp16" and fp16.metrics == fp32.metrics and fp16.class_names == fp32.class_names


@pytest.mark.parametrize(("variant", "reuse"), [("fp16", [True, False]), ("fp32", [True])])
def test_fp16_on_a_gpu_runs_without_shared_buffers(monkeypatch, variant, reuse):
    """On CUDA the fp16 file is opened again without onnxruntime's buffer sharing (with it, ORT 1.31.1's CUDA
    provider failed on an H200 at the network's SequenceAt); other files keep it. CUDA is faked here: the
    session runs on the CPU and says it is CUDA's."""
    import onnxruntime

    asked = []

    def fake_open_session(path, device, threads, reuse_memory=True):
        asked.append(reuse_memory)
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return runtime.ModelSession(session, "CUDAExecutionProvider")

    monkeypatch.setattr(runtime, "open_session", fake_open_session)
    monkeypatch.setattr(runtime, "cuda_usable", lambda: True)
    loaded = runtime.load_model(SHIPPED_ROAD_MODEL, "cuda", precision=variant)
    assert asked == reuse and loaded.card.precision == variant and loaded.tiles_per_run == 8


def test_precision_check_reads_kept_truth_masks_without_the_labels(tmp_path):
    """A work folder made elsewhere (truth.npz beside each crop) is enough: the labels are not read, so the
    check runs on a GPU machine without GDAL's vector bindings."""
    import dataclasses

    import numpy as np

    from timeseg.models.road_scores import HeldOut
    from timeseg.research.precision_check import _held_out

    rng = np.random.default_rng(0)
    kept = HeldOut(rng.integers(0, 255, (3, 8, 8), np.uint8), *(rng.random((4, 8, 8)) > 0.5))
    np.savez_compressed(tmp_path / "truth.npz", **dataclasses.asdict(kept))
    read = _held_out(tmp_path, scene=None)  # no scene: reading its labels would fail
    assert all(np.array_equal(getattr(read, f.name), getattr(kept, f.name)) for f in dataclasses.fields(HeldOut))
