"""The CPU's bfloat16 path (core/openvino_runner.py): OpenVINO runs a float32 model's graph in bfloat16
where the CPU computes it; auto takes it there and otherwise, or where OpenVINO cannot read the model,
runs onnxruntime as before."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnx
import onnxruntime
import pytest
import rasterio

from timeseg.cli import main
from timeseg.core import openvino_runner, runtime
from timeseg.core.model_card import SHIPPED_ROAD_MODEL, ModelCardError


@pytest.fixture
def bf16_cpu(monkeypatch):
    """This CPU taken as one that computes bfloat16 (on one that does not, OpenVINO computes float32)."""
    monkeypatch.setattr(openvino_runner, "native_bf16", lambda: True)
    monkeypatch.setattr(runtime, "native_bf16", lambda: True)


def test_the_exported_loop_carries_tensors_only(local_model):
    """The ConvLSTM's one loop carries its states as tensors, not as ONNX sequences, which OpenVINO
    does not read in a loop."""
    graph = onnx.load(str(local_model)).graph
    loops = [node for node in graph.node if node.op_type == "Loop"]
    assert len(loops) == 1
    body = loops[0].attribute[0].g
    assert not [node.op_type for node in body.node if "Sequence" in node.op_type]
    assert all(value.type.HasField("tensor_type") for value in body.output)


def test_openvino_runs_the_float32_graph_from_several_threads(local_model, bf16_cpu):
    """Each input shape compiled once; called from two threads at once (one run at a time); the
    probabilities onnxruntime's within bfloat16's rounding, for 1 and 3 dates."""
    session = openvino_runner.OpenVinoSession(local_model, threads=2)
    reference = onnxruntime.InferenceSession(str(local_model), providers=["CPUExecutionProvider"])
    generator = np.random.default_rng(0)
    inputs = [generator.standard_normal(shape, dtype=np.float32)
              for shape in [(1, 3, 3, 40, 40), (2, 1, 3, 56, 48), (1, 3, 3, 40, 40), (2, 1, 3, 56, 48)]]
    with ThreadPoolExecutor(2) as pool:
        outputs = list(pool.map(lambda images: session.run(["probabilities"], {"images": images})[0], inputs))
    for images, output in zip(inputs, outputs):
        expected = reference.run(["probabilities"], {"images": images})[0]
        assert output.shape == expected.shape == (images.shape[0], 1, *images.shape[3:])
        assert np.abs(output - expected).max() < 0.03
    assert len(session._requests) == 2  # one per shape, whichever thread asked first


def test_the_engine_compiles_the_shape_it_runs_before_the_first_run(small_scene, tmp_path, monkeypatch, bf16_cpu):
    """The engine has OpenVINO compile the tiles' input shape while it harmonises the dates: the runs find
    it compiled (none compiles again), and an onnxruntime session has nothing to prepare."""
    prepared, compiled, ran = [], [], []
    session = openvino_runner.OpenVinoSession
    prepare, request, run = session.prepare, session._request, session.run

    def counted_prepare(self, shape):
        prepared.append(shape)
        prepare(self, shape)

    def counted_request(self, shape):
        if shape not in self._requests:
            compiled.append(shape)
        return request(self, shape)

    def counted_run(self, names, feed):
        ran.append(next(iter(feed.values())).shape)
        return run(self, names, feed)

    monkeypatch.setattr(session, "prepare", counted_prepare)
    monkeypatch.setattr(session, "_request", counted_request)
    monkeypatch.setattr(session, "run", counted_run)
    rasters = [str(p) for p in small_scene.tci_paths[2019]]
    assert main(["segment", "--model", str(SHIPPED_ROAD_MODEL), "--output", str(tmp_path / "out"), "--tile-size",
                 "64", "--overlap", "16", *rasters]) == 0
    assert prepared == compiled == [(1, 3, 3, 64, 64)]
    assert len(ran) == 4 and set(ran) == {(1, 3, 3, 64, 64)}  # 96 px in 64 px tiles, 16 px overlap: 2 x 2
    onnxruntime_model = runtime.load_model(SHIPPED_ROAD_MODEL, "cpu", 1, "fp32")
    onnxruntime_model.prepare(1, 3, 64)  # nothing to do
    assert onnxruntime_model.provider == "CPUExecutionProvider"


def test_auto_takes_bf16_on_such_a_cpu_and_int8_elsewhere(small_scene, tmp_path, capsys, monkeypatch, bf16_cpu):
    rasters = [str(p) for p in small_scene.tci_paths[2019]]

    def segment(name: str, *options: str) -> int:
        return main(["segment", "--model", str(SHIPPED_ROAD_MODEL), "--output", str(tmp_path / name), *options,
                     *rasters])

    assert segment("auto") == 0 and "on CPU, bf16" in capsys.readouterr().out
    assert segment("fp32", "--precision", "fp32") == 0 and "on CPU, fp32" in capsys.readouterr().out
    with rasterio.open(tmp_path / "fp32" / "classes.tif") as a, rasterio.open(tmp_path / "auto" / "classes.tif") as b:
        assert (a.read(1) == b.read(1)).mean() >= 0.98  # a 96 px scene: a few hundred pixels decide
    with rasterio.open(tmp_path / "fp32" / "probability.tif") as a, \
            rasterio.open(tmp_path / "auto" / "probability.tif") as b:
        assert np.nanmean(np.abs(a.read(1) - b.read(1))) < 0.005  # bf16 rounds to about 3 digits
        # bfloat16's maps compress better without the floating-point predictor (core.outputs.predictor)
        assert [a.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR"), b.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR")] == \
            ["3", None]
    assert segment("on_cuda", "--precision", "bf16", "--device", "cuda") == 1
    assert "bf16 runs on the CPU: choose device cpu or auto, or precision fp16 for the GPU" in capsys.readouterr().err

    def unreadable(path, threads):
        raise ModelCardError(f"OpenVINO cannot read {path.name}")

    monkeypatch.setattr(runtime, "OpenVinoSession", unreadable)
    assert segment("fallback") == 0 and "on CPU, int8" in capsys.readouterr().out
    assert segment("refused", "--precision", "bf16") == 1
    assert "OpenVINO cannot read roads.onnx" in capsys.readouterr().err
    assert not (tmp_path / "refused").exists()
    monkeypatch.setattr(runtime, "native_bf16", lambda: False)
    assert segment("elsewhere") == 0 and "on CPU, int8" in capsys.readouterr().out


def test_bf16_asked_for_where_it_cannot_run(tmp_path, capsys, monkeypatch, small_scene):
    rasters = [str(p) for p in small_scene.tci_paths[2019]]
    int8 = str(SHIPPED_ROAD_MODEL.with_name("roads.int8.onnx"))
    monkeypatch.setattr(openvino_runner, "native_bf16", lambda: True)
    assert main(["segment", "--model", int8, "--output", str(tmp_path / "a"), "--precision", "bf16", *rasters]) == 1
    assert ("roads.int8.onnx is an int8 model; precision bf16 runs the float32 model it was made from: give that "
            ".onnx, or leave the precision to auto") in capsys.readouterr().err
    for precision in ("fp32", "fp16"):  # nor is any other precision asked of the int8 file dropped unsaid
        assert main(["segment", "--model", int8, "--output", str(tmp_path / "a"), "--precision", precision,
                     *rasters]) == 1
        assert f"roads.int8.onnx is an int8 model; precision {precision} runs the float32" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
    monkeypatch.setattr(openvino_runner, "native_bf16", lambda: False)
    assert main(["segment", "--model", str(SHIPPED_ROAD_MODEL), "--output", str(tmp_path / "b"), "--precision",
                 "bf16", *rasters]) == 1
    assert "this CPU does not compute bfloat16 (it has neither AMX nor AVX-512 BF16): choose precision auto, int8 " \
        "or fp32" in capsys.readouterr().err
