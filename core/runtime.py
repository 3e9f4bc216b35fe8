"""An onnxruntime session on CUDA when it is usable, on the CPU otherwise."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import shutil
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .deepness import deepness_card, is_deepness
from .definitions import DEVICES, GPU_RUNTIME_PIN, ONNXRUNTIME_PIN, PRECISIONS
from .model_card import ModelCard, ModelCardError
from .openvino_runner import OpenVinoSession, OpenVinoUnavailable, native_bf16

log = logging.getLogger("timeseg")
def python_for_pip() -> str:
    """The Python interpreter QGIS itself runs (``sys.executable`` is the qgis binary in QGIS): the one in
    QGIS's own prefix (Linux, macOS QGIS.app, Windows OSGeo4W), never another python3 on the PATH."""
    executable = Path(sys.executable)
    # embedded Python takes sys.executable from the PATH: a pyenv shim, conda's or a venv's python3 is not QGIS's
    if executable.name.lower().startswith("python") and Path(sys.prefix) in executable.absolute().parents:
        return str(executable)
    prefix = Path(sys.prefix)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (prefix / "bin" / version, prefix / "bin" / "python3", prefix / "python.exe",
                      prefix / "python3.exe"):
        if candidate.is_file():
            return str(candidate)
    return shutil.which(version) or "python3"


def install_hint() -> str:
    """How to install onnxruntime into the Python running now (QGIS's own, in QGIS)."""
    from .install import install_command

    return (f"install it into this Python with {install_command([ONNXRUNTIME_PIN])} ({GPU_RUNTIME_PIN} for "
            "CUDA); in QGIS, the TimeSeg dock's Install missing packages")


class RuntimeUnavailable(RuntimeError):
    """onnxruntime, or the device asked for, cannot be used; the message says what to do."""


# Model runs at once on a CPU, each on its share of the threads: on 2 cores two one-thread runs get
# 1.1x (float32) to 1.4x (int8) the tiles per second of one two-thread run, as the small per-date
# and ConvLSTM operators do not split well across threads (README, Speed and memory). Two at most,
# so that the activations in memory are those of two runs whatever the core count.
CPU_RUNS_AT_ONCE = 2
# Tiles per run by default (``LoadedModel.tiles_per_run``): two CPU runs of 2 float32 tiles of the
# road model hold ~0.7 GB of activations (the engine then peaks above 1 GB), of 1 tile ~0.33 GB. The
# gated road model's int8 variant at 2 tiles per run peaked at 1.01 GB at 4096 px, at 1 tile 0.72 GB in
# the same time (48.7-50.3 s against 50.9-51.4 s, 2 AVX-512 VNNI cores, 2026-12-04).
# On a GPU 8 tiles per call: on an H200 the road model's float32 time per tile falls from 4.2 ms at 2 to
# 3.1 ms at 8 and 2.8 ms at 32; 8 keeps the activations near 8 x 0.17 GB (float32), for smaller cards.
TILES_PER_RUN = {"cuda": 8, "cpu": 1}


def all_threads(threads: int | None) -> int:
    """The threads a model may use: ``threads``, or one per core."""
    return threads or max(1, os.cpu_count() or 1)


def cpu_threads(threads: int | None) -> tuple[int, int]:
    """``(runs at once, onnxruntime threads per run)`` for ``threads`` CPU threads (default: all cores)."""
    total = all_threads(threads)
    runs = min(CPU_RUNS_AT_ONCE, total)
    return runs, total // runs


def engine_threads(device: str, dates: int, threads: int | None) -> tuple[int, int]:
    """``(threads reading a tile's dates at once, threads compressing each output)``. On the CPU one and
    one: the model's runs take every core (on 2 cores, reading the dates at once and compressing on
    more threads slowed a 10980 px stack from 12.0 to 14.4 s). On a GPU the engine is the bound
    (10980 px, 5 dates, H200: 34 s with one reading thread, the model alone 6 s): the cores the model
    leaves read, up to one per date, and compress."""
    if device != "cuda":
        return 1, 1
    spare = max(1, (threads or os.cpu_count() or 1) - 2)  # the thread feeding the GPU, the writer
    return max(1, min(dates, spare)), spare


@dataclass
class ModelSession:
    session: object  # onnxruntime.InferenceSession
    provider: str  # the execution provider that runs the model
    runs_at_once: int = 1  # concurrent ``run`` calls that use the machine best (CPU: ``cpu_threads``)

    @property
    def device(self) -> str:
        return "cuda" if self.provider == "CUDAExecutionProvider" else "cpu"


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise RuntimeUnavailable(f"onnxruntime is not installed; {install_hint()}") from None
    return onnxruntime


def quiet_options(ort):
    """onnxruntime session options that log errors only: its warnings (shapes of reused buffers, a Loop's shared
    constants) are not the user's business."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return options


def _session_options(ort, threads: int, reuse_memory: bool = True):
    options = quiet_options(ort)
    options.intra_op_num_threads = threads
    options.enable_mem_reuse = reuse_memory
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


def _start_session(ort, path: Path, options, providers: list[str]):
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as error:  # onnxruntime raises its own types, with multi-line jargon (INVALID_PROTOBUF)
        log.debug("onnxruntime refused %s: %s", path, error)
        raise ModelCardError(f"{path.name} is not a readable ONNX model (damaged, or not ONNX): "
                             "give a model exported by 'timeseg export' or a Deepness model") from None


def open_session(model_path: str | Path, device: str = "auto", threads: int | None = None,
                 reuse_memory: bool = True) -> ModelSession:
    """Session for ``model_path``; ``device`` is auto, cpu or cuda.

    ``auto`` uses CUDA when this onnxruntime has the CUDA provider and a session starts
    on it, else the CPU. ``cuda`` fails with a clear message when it cannot run.
    ``reuse_memory``: onnxruntime's planner shares buffers between the graph's values.
    """
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    path = Path(model_path)
    if path.is_dir():
        raise ModelCardError(f"{path} is a folder: give the model's .onnx file in it")
    if not path.is_file():
        raise ModelCardError(f"model file not found: {path}")
    ort = import_onnxruntime()
    cuda_available = "CUDAExecutionProvider" in ort.get_available_providers()
    problem = cuda_missing(device)
    if problem:
        raise RuntimeUnavailable(problem)
    if device in ("auto", "cuda") and cuda_available:
        if hasattr(ort, "preload_dlls"):
            try:
                ort.preload_dlls()
            except Exception:  # CUDA libraries missing: the provider check below decides
                pass
        options = _session_options(ort, all_threads(threads), reuse_memory)
        session = _start_session(ort, path, options, ["CUDAExecutionProvider", "CPUExecutionProvider"])
        if session.get_providers()[0] == "CUDAExecutionProvider":
            return ModelSession(session, "CUDAExecutionProvider")
        if device == "cuda":
            raise RuntimeUnavailable("onnxruntime could not start CUDA (driver or CUDA/cuDNN libraries "
                                     "missing): choose device cpu or auto")
    runs, threads_per_run = cpu_threads(threads)
    return ModelSession(_start_session(ort, path, _session_options(ort, threads_per_run, reuse_memory),
                                       ["CPUExecutionProvider"]), "CPUExecutionProvider", runs)


@dataclass
class LoadedModel:
    """A model ready to run: its session, the card read from that session, the provider running it.

    ``run`` takes ``[batch, time, bands, h, w]`` whatever the network's own input: a one-date
    (Deepness) network gets the last date as ``[batch, bands, h, w]``, in the batch size it declares.
    """

    session: object  # onnxruntime.InferenceSession
    card: ModelCard
    provider: str
    input_name: str = "images"
    output_name: str = "probabilities"
    single_date: bool = False
    fixed_batch: int | None = None  # the network's static batch size, if any
    fixed_tile_size: int | None = None  # the network's static height and width, if any
    runs_at_once: int = 1  # concurrent ``run`` calls that use the machine best (``cpu_threads``)
    # a one-date (Deepness) network found to give logits, not probabilities (values beyond 0..1): set once
    gives_logits: threading.Event = dataclasses.field(default_factory=threading.Event)

    @property
    def device(self) -> str:
        return "cuda" if self.provider == "CUDAExecutionProvider" else "cpu"

    @property
    def tiles_per_run(self) -> int:
        """Tiles per onnxruntime call when the user gives none (``TILES_PER_RUN``)."""
        return self.fixed_batch or TILES_PER_RUN[self.device]

    def prepare(self, tiles: int, dates: int, tile_size: int) -> None:
        """Make ready now what the first ``run`` of ``tiles`` tiles of ``dates`` dates would make: OpenVINO
        compiles the network for that input shape (the engine has it done while it opens and harmonises the
        rasters); onnxruntime sessions have nothing to prepare."""
        prepare = getattr(self.session, "prepare", None)
        if prepare is None:
            return
        bands = len(self.card.bands)
        shape = (bands, tile_size, tile_size) if self.single_date else (dates, bands, tile_size, tile_size)
        prepare((self.fixed_batch or tiles, *shape))

    def run(self, images: np.ndarray) -> np.ndarray:
        """``[B, T, C, h, w]`` normalised images -> ``[B, K, h, w]`` probabilities (K as the card says)."""
        if self.single_date:
            images = images[:, -1]
        step = self.fixed_batch or len(images)
        parts = []
        for start in range(0, len(images), step):
            chunk = images[start:start + step]
            missing = step - len(chunk)
            if missing:  # a static batch size: pad the last chunk, keep only its own results
                chunk = np.concatenate([chunk, np.zeros((missing, *chunk.shape[1:]), chunk.dtype)])
            parts.append(self.session.run([self.output_name], {self.input_name: chunk})[0][:step - missing])
        probabilities = np.concatenate(parts)
        if self.single_date:
            probabilities = self._as_probabilities(probabilities)
        if probabilities.shape[1] == 2 and self.card.output_channels == 1:
            probabilities = probabilities[:, 1:]  # two softmax channels of a binary model: P(the class)
        return probabilities


    def _as_probabilities(self, outputs: np.ndarray) -> np.ndarray:
        """A Deepness network's ``[B, K, h, w]`` outputs as probabilities: as they are, unless the network is
        found to give logits (a value beyond 0..1 by more than ``LOGIT_MARGIN``, or classes that do not sum to 1:
        ``gives_logits``, which the run then says; ``core.segment`` probes tiles spread over the raster before it
        writes any), then through a softmax over the classes (a sigmoid for one channel), as Deepness's models
        end."""
        beyond = outputs.min(initial=0.0) < -LOGIT_MARGIN or outputs.max(initial=1.0) > 1 + LOGIT_MARGIN
        # softmax probabilities sum to 1 over the classes on every pixel; logits do not, even on a uniform tile
        unsummed = outputs.shape[1] > 1 and bool((np.abs(outputs.sum(axis=1) - 1) > LOGIT_MARGIN).any())
        if beyond or unsummed:
            self.gives_logits.set()
        if not self.gives_logits.is_set():
            return outputs
        if outputs.shape[1] == 1:
            return (1 / (1 + np.exp(-outputs))).astype(np.float32)
        exponentials = np.exp(outputs - outputs.max(axis=1, keepdims=True))
        return (exponentials / exponentials.sum(axis=1, keepdims=True)).astype(np.float32)


LOGIT_MARGIN = 1e-3  # probabilities a little beyond 0..1 (float rounding) are not logits
LOGITS_WARNING = ("the model gives values beyond 0 to 1, logits rather than probabilities: they were read through a "
                  "softmax (a sigmoid for one class), as a model made for Deepness ends; if the map looks wrong, "
                  "export the model with its last softmax")


def variant_sibling(model_path: str | Path, precision: str) -> Path:
    """Where ``model_path``'s ``precision`` variant lies: ``<stem>.<precision>.onnx`` beside it."""
    path = Path(model_path)
    return path.with_name(f"{path.stem}.{precision}{path.suffix}")


def model_fingerprint(model_path: str | Path) -> str:
    """What tells one model from another in the maps it makes (their ``model_sha256`` tag): the first 16 hex
    digits of the SHA-256 of the model's float32 file (of ``roads.onnx`` for ``roads.int8.onnx`` beside it), so
    that its precision variants make maps of one model and a retrained file of the same name another."""
    path = Path(model_path)
    stem, _, precision = path.stem.rpartition(".")
    base = path.with_name(stem + path.suffix) if precision in ("int8", "fp16") else path
    base = base if base.is_file() else path
    stat = base.stat()
    return _file_sha256(str(base.resolve()), stat.st_size, stat.st_mtime_ns)[:16]


@functools.lru_cache(maxsize=16)
def _file_sha256(path: str, size: int, modified_ns: int) -> str:
    """The file's SHA-256 (hex), read again only when its size or time changes."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def variant_path(model_path: str | Path, precision: str, gpu: bool) -> Path:
    """The file that runs ``model_path`` at ``precision``: ``<stem>.int8.onnx`` / ``<stem>.fp16.onnx``
    beside it; ``auto`` takes the int8 one on the CPU and the fp16 one on a GPU when they exist."""
    path = Path(model_path)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")

    if precision == "auto":
        preferred = variant_sibling(path, "fp16" if gpu else "int8")
        return preferred if preferred.is_file() else path
    if precision == "fp32" or not path.is_file():
        return path
    variant = variant_sibling(path, precision)
    if not variant.is_file():
        raise ModelCardError(f"there is no {precision} variant of {path.name} ({variant.name}): make "
                             f"one with 'timeseg export --precision {precision}', or choose fp32")
    return variant


def cuda_missing(device: str) -> str | None:
    """Why ``device`` cannot run here (the GPU asked for, and this onnxruntime has no CUDA provider), or None."""
    if device != "cuda" or cuda_usable():
        return None
    return ("GPU (CUDA) was asked for but this onnxruntime has no CUDA provider: install onnxruntime-gpu "
            "(pip uninstall onnxruntime; pip install onnxruntime-gpu) or choose device cpu or auto")


def cuda_usable() -> bool:
    """This onnxruntime has the CUDA provider (whether a session starts on it is checked when one is made)."""
    return "CUDAExecutionProvider" in import_onnxruntime().get_available_providers()


def runs_in_bf16(precision: str, device: str, gpu: bool) -> bool:
    """Whether ``precision`` on ``device`` means the CPU's bfloat16 path (OpenVINO): asked for, or ``auto``
    on the CPU where it computes bfloat16 itself and OpenVINO is installed."""
    if precision == "bf16" and device == "cuda":
        raise RuntimeUnavailable("bf16 runs on the CPU: choose device cpu or auto, or precision fp16 for the GPU")
    return precision == "bf16" or (precision == "auto" and device != "cuda" and not gpu and native_bf16())


def load_model(model_path: str | Path, device: str = "auto", threads: int | None = None,
               precision: str = "fp32") -> LoadedModel:
    """The one way to open a model: one session, its card checked against the network's inputs and
    outputs. TimeSeg models and Deepness segmentation models (``core.deepness``) both load here;
    ``precision`` picks the model's int8 or fp16 variant beside it (``variant_path``), or runs the
    float32 model in bfloat16 on the CPU (``runs_in_bf16``; ``auto`` goes on without it where
    OpenVINO cannot read the model)."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    gpu = device != "cpu" and cuda_usable()
    path = Path(model_path)
    given = any(path.stem.endswith(f".{p}") for p in ("int8", "fp16"))  # a variant's own file: run as it is
    if not given and runs_in_bf16(precision, device, gpu):
        loaded = _load_onnxruntime(path, "cpu", threads)
        try:
            return _on_openvino(loaded, path, threads)
        except OpenVinoUnavailable as error:
            if precision == "bf16":
                raise RuntimeUnavailable(str(error)) from None
            log.info("%s; running the model with onnxruntime", error)
        except ModelCardError as error:
            if precision == "bf16":
                raise
            log.info("%s; running the model with onnxruntime", error)
    return _load_onnxruntime(path if given else variant_path(path, precision, gpu), device, threads)


def precision_problems(model_path: str | Path, precision: str, card: ModelCard) -> list[str]:
    """A precision asked of a model file made at another one (``roads.int8.onnx`` with fp32), which
    ``load_model`` runs as it is: said, not dropped unsaid."""
    if precision in ("auto", card.precision) or card.precision not in ("int8", "fp16"):
        return []
    return [f"{Path(model_path).name} is an {card.precision} model; precision {precision} runs the float32 model "
            "it was made from: give that .onnx, or leave the precision to auto"]


def _on_openvino(loaded: LoadedModel, model_path: Path, threads: int | None) -> LoadedModel:
    """``loaded`` (a float32 model opened with onnxruntime, its card checked) run in bfloat16 by OpenVINO."""
    if loaded.card.precision != "fp32":
        raise ModelCardError(f"{model_path.name} is an {loaded.card.precision} model; bf16 runs a float32 model: "
                             "give its fp32 .onnx")
    session = OpenVinoSession(model_path, all_threads(threads))  # one run at a time, on every thread
    return dataclasses.replace(loaded, session=session, card=dataclasses.replace(loaded.card, precision="bf16"),
                               provider="OpenVINO", runs_at_once=1)


def _one_image_to_class_maps(session) -> bool:
    """A network of one input ``[batch, channels, height, width]`` and one output ``[batch, classes, height,
    width]`` of the same height and width where both are fixed: the form of a segmentation model."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) != 1 or len(inputs[0].shape) != 4 or len(outputs[0].shape) != 4:
        return False
    return all(not isinstance(a, int) or not isinstance(b, int) or a == b
               for a, b in zip(inputs[0].shape[2:], outputs[0].shape[2:]))


def _load_onnxruntime(model_path: Path, device: str, threads: int | None) -> LoadedModel:
    model = open_session(model_path, device, threads)
    declared = model.session.get_modelmeta().custom_metadata_map.get("precision")
    if model.device == "cuda" and declared == json.dumps("fp16"):
        # with shared buffers, onnxruntime's CUDA provider fails on the fp16 network's skip-connection
        # sequence ("Shape mismatch attempting to re-use buffer" at SequenceAt; seen on an H200, ORT 1.31.1)
        model = open_session(model_path, device, threads, reuse_memory=False)
    session = model.session
    metadata = session.get_modelmeta().custom_metadata_map
    without_metadata = "model_type" not in metadata and _one_image_to_class_maps(session)
    if without_metadata:
        # Deepness runs a model without metadata with its defaults, once its user says it segments: so does TimeSeg
        log.warning("warning: %s has no metadata: run as a Deepness segmentation model with Deepness's defaults "
                    "(values 0..255 scaled to 0..1, threshold 0.5, at the rasters' own resolution); its metadata "
                    "sets them (model_type Segmentor, class_names, resolution, ...)", Path(model_path).name)
        metadata = {**metadata, "model_type": json.dumps("Segmentor")}
    if is_deepness(metadata):
        inputs, outputs = session.get_inputs(), session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelCardError(f"{Path(model_path).name}: a Deepness model with {len(inputs)} inputs and "
                                 f"{len(outputs)} outputs; TimeSeg runs those with one of each")
        shape = inputs[0].shape
        if len(shape) == 4 and all(isinstance(side, int) for side in shape[2:]) and shape[2] != shape[3]:
            raise ModelCardError(f"{Path(model_path).name}: a Deepness model of {shape[2]} x {shape[3]} px tiles; "
                                 "TimeSeg, as Deepness, runs square tiles: export it with a square or dynamic input")
        if inputs[0].type != "tensor(float)":
            raise ModelCardError(f"{Path(model_path).name}: a Deepness model whose input is {inputs[0].type}; "
                                 "TimeSeg, as Deepness, gives it float32: export it with a float32 input")
        described = session.get_modelmeta().description or (
            "A segmentation model without metadata, run with Deepness's defaults" if without_metadata else "")
        card = deepness_card(metadata, inputs[0].shape, outputs[0].shape, described)
        return LoadedModel(session, card, model.provider, inputs[0].name, outputs[0].name, single_date=True,
                           fixed_batch=shape[0] if isinstance(shape[0], int) else None,
                           fixed_tile_size=shape[2] if isinstance(shape[2], int) else None,
                           runs_at_once=model.runs_at_once)
    card = ModelCard.from_metadata(metadata)
    problem = network_problem(session, card)
    if problem:
        raise ModelCardError(f"{Path(model_path).name}: {problem}; re-export the model with 'timeseg export'")
    return LoadedModel(session, card, model.provider, runs_at_once=model.runs_at_once)


def network_problem(session, card: ModelCard) -> str | None:
    """Where the network's declared input or output disagrees with its card, or None."""
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name: o for o in session.get_outputs()}
    if "images" not in inputs or "probabilities" not in outputs:
        return "the network has no 'images' input or no 'probabilities' output"
    shape = inputs["images"].shape
    if len(shape) != 5:
        return f"the network's input has {len(shape)} dimensions, not [batch, time, bands, height, width]"
    if isinstance(shape[2], int) and shape[2] != len(card.bands):
        return f"the network reads {shape[2]} bands, its card names {len(card.bands)}"
    if isinstance(shape[1], int) and (card.dynamic_time or shape[1] != card.sequence_length):
        return f"the network takes exactly {shape[1]} dates, its card says otherwise"
    output_shape = outputs["probabilities"].shape
    if len(output_shape) == 4 and isinstance(output_shape[1], int) and output_shape[1] != card.output_channels:
        return (f"the network gives {output_shape[1]} output channels, its card's {len(card.class_names)} "
                f"classes need {card.output_channels}")
    return None
