"""The settings of training runs: plain dataclasses, no torch, so that the command line (whose
options are made from these fields, ``core.options``) starts without importing it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..core.definitions import FINE_TUNE_EPOCHS, FINE_TUNE_MINUTES
from ..core.options import option
from ..core.raster_stack import DatedRaster
from .labels import LabelSource

SCHEDULES = ("paper", "constant", "cosine")
ARCHITECTURES = ("fcn_convlstm", "biconvlstm")
TRAIN_PRECISIONS = ("fp32", "bf16", "auto")
REAL_WEIGHTINGS = ("area", "scene")  # how the real patches are shared among real scenes
# left out of training around each traced real road, beyond its width (and around its uncertain lines, 1 px
# more): the tracing's tolerance (vertices lie 1-3 px off); 1 px leaves out only what the score's 2 px forgives
TRACING_TOLERANCE_PX = 3.0


@dataclass(frozen=True)
class NetworkConfig:
    """Constructor arguments of a network; ``output_channels`` is 1 for binary maps."""

    architecture: str = "fcn_convlstm"
    in_channels: int = 3
    output_channels: int = 1
    depth: int = option(4, "U-Net levels", minimum=1, maximum=6)
    base_channels: int = option(16, "U-Net first-level width", minimum=1, maximum=256)
    hidden_channels: int | None = option(8, "ConvLSTM width (paper A: l_c)", minimum=1, maximum=512)
    kernel_size: int = 3
    # fcn_convlstm: context maps per date beside the PMap; 4 in the shipped road model, 0: paper A
    context_channels: int = option(4, "context maps per date the ConvLSTM reads beside the PMap, so that it can "
                                   "tell a date hidden by cloud from a date without roads (0: paper A's "
                                   "PMap-only network)", minimum=0, maximum=64)
    batch_norm: bool = option(False, "batch normalisation in the U-Net (not in paper A)")
    # fcn_convlstm: a per-pixel share of each date the ConvLSTM states take in (0 on a date it cannot see);
    # the shipped road model has one, trained alone (--gate-only; docs/models.md)
    date_gate: bool = option(False, "a learned per-pixel gate that lets the ConvLSTM keep its state through a "
                             "date it cannot see (white with cloud), so that such a date leaves the map as it was "
                             "(the shipped road model has one: see docs/models.md)")

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {', '.join(ARCHITECTURES)}")


@dataclass
class TrainOptions:
    """Everything a training run needs besides its sites; defaults are the shipped road model's."""

    output: Path
    network: NetworkConfig = field(default_factory=NetworkConfig)
    class_names: list[str] = field(default_factory=lambda: ["background", "road"])
    bands: list[str] = field(default_factory=lambda: ["B04", "B03", "B02"])
    input_scale: float = 1 / 255
    patch_size: int = option(512, "patch size in pixels (paper A: 512)", minimum=32, maximum=2048)
    sequence_length: int = option(5, "dates per sequence (paper A: 5)", minimum=1, maximum=100)
    # sequence stages also train on random shorter subsets, down to this
    min_sequence_length: int = option(1, "the ConvLSTM stages also see random shorter sequences down to N dates, "
                                      "so the model works with 1 to N dates", minimum=1, maximum=100)
    batch_size: int = option(8, "patches per training step", minimum=1, maximum=512)
    fcn_epochs: int = option(30, "stage 1: FCN on single dates", minimum=0)
    sequence_epochs: int = option(30, "stage 2: ConvLSTM, FCN frozen", minimum=0)
    joint_epochs: int = option(0, "stage 3: both, at a tenth of the rate", minimum=0)
    samples_per_epoch: int = option(256, "training patches per epoch", minimum=1)
    learning_rate: float = option(1e-3, "base rate (paper A's 0.1 diverges with Adam here; 1e-3 to 3e-3 work)",
                                  minimum=0, maximum=1)
    schedule: str = option("paper", "paper: base, /10, /100 over thirds of each stage (paper A); cosine: "
                           "base down to base/100 along half a cosine", choices=SCHEDULES)
    alpha: float = option(0.7, "loss a*H - (1-a)*log(J)", minimum=0, maximum=1)
    seed: int = option(0, "random seed of sampling and initialisation")
    # Polyak averaging: the weights scored and kept are an exponential moving average of the steps'
    ema_decay: float = option(0.0, "score and keep an exponential moving average of the weights, this much of "
                              "the average kept per step (0.998: about the last 500 steps; 0: the raw weights)",
                              minimum=0, maximum=0.9999)
    # early stopping: the epochs after the best that a stage may run without a better score
    patience: int = option(0, "end a stage once N epochs in a row have not bettered its best score (selection "
                           "strips, else validation IoU); 0: every epoch runs", minimum=0)
    # a stage's first epochs are not kept: a ConvLSTM fresh from its initialisation can score well on the strips
    # at the threshold while its P is not yet calibrated (seen: mean P 0.21-0.36 off the roads, docs/models.md)
    warmup_epochs: int = option(0, "a stage's first N epochs are neither kept nor counted by --patience", minimum=0)
    device: str = option("cpu", "torch device: cpu or cuda", choices=("cpu", "cuda"))
    train_precision: str = option("fp32", "arithmetic of the forward passes: fp32, or bf16 autocast (about 1.5x "
                                  "faster on CPUs with AVX-512 BF16, and on GPUs); auto picks bf16 where the "
                                  "device has it", choices=TRAIN_PRECISIONS)
    trained_on: str = ""
    no_data_value: list[float] | None = None  # the card's (core.model_card): each band's value where a date has none
    one_year: bool = False  # the card's: the model reads one calendar year's dates
    resolution: float = 10.0
    tile_size: int = option(256, "inference tile size for the card", minimum=32, maximum=2048)
    tiles_overlap: int = option(32, "inference tile overlap for the card", flag="--overlap", minimum=0)
    threshold: float = 0.5
    input_dtype: str = "uint8"
    validation_patch_size: int | None = None  # None: patch_size
    # true-colour sites: conventions, haze, clouds and overcast dates (models.weather)
    weather: bool = option(False, "draw TCI conventions (L1C, L2A), haze, clouds with shadows and overcast dates "
                           "at any position into the training sequences (true-colour models)")
    data_edges: float = option(0.0, "share of training patches that hold an edge of the data (a raster's edge or "
                               "corner, a swath's edge; white beyond it, as a harmonising model reads no data), "
                               "so that the step to white is learnt as no road", minimum=0.0, maximum=1.0)
    shore_weight: float = option(1.0, "weight in the loss of the real images' shores (not-road pixels next to a "
                                 "traced water edge), where false roads gather; 1: as any other pixel (5, tried "
                                 "with --real-weights scene, lost F1: docs/models.md)", minimum=1.0)
    focal_gamma: float = option(0.0, "the loss's cross entropy weighs each pixel (1 - P(its label))^gamma, so that "
                                "the pixels the model gets wrong count most (focal loss); 0: plain", minimum=0.0)
    real_ring_px: float = option(TRACING_TOLERANCE_PX, "px left out of training around each traced real road, "
                                 "beyond its width: the tracing's tolerance (1: only what the real score's 2 px "
                                 "tolerance forgives; docs/models.md)", minimum=0.0)
    frozen_statistics: bool = option(False, "batch normalisation keeps the running statistics it starts with (those "
                                     "of --init) in every stage, as when fitting a trained model to one small "
                                     "area: its few patches' statistics would replace those of its training")
    # start from this checkpoint's weights (those whose shapes fit)
    init_checkpoint: Path | None = option(None, "start from this checkpoint's weights (e.g. models/weights/roads.pt; "
                                          "with --fcn-epochs 0 only the temporal stage trains)", flag="--init")
    # with date_gate: the sequence stage trains the gate alone (make model's stage 3: docs/models.md)
    gate_only: bool = option(False, "with --date-gate: the sequence stage trains the gate alone, the ConvLSTM "
                             "and head stay as --init gave them (make model's third stage)")
    # the sequence stage trains the 1x1 head alone: P recalibrated after a gate (make model's stage 4)
    head_only: bool = option(False, "the sequence stage trains the temporal head (1x1 convolution) alone, everything "
                             "else as --init gave it: recalibrates P after a gate stage (make model's fourth stage)")



@dataclass
class FineTuneRequest:
    """One training run on the analyst's area.

    ``extent``: (xmin, ymin, xmax, ymax) in the first raster's CRS, None for its whole extent.
    ``area_polygons``: a polygon layer; only inside its polygons are labels used and scored (the
    area is then their extent, within ``extent`` if both are given).
    ``epochs``: of the single-date stage; the sequence stage runs a third of them (at least one). From
    scratch, each stage keeps none of its first ninth of ``epochs`` (a third of the sequence stage's)
    unless its time runs out in it.
    ``minutes``: time budget of the training (``models.fine_tune.STAGE_SHARES``: 70 % single date, 30 %
    sequence), None for none; by default it ends the training before ``epochs`` do on 2 cores. Scoring the
    held-out part and writing the model (and its int8 variant) follow it.
    """

    rasters: Sequence[DatedRaster]
    labels: LabelSource
    output_model: Path
    init_checkpoint: Path | None = None
    extent: tuple[float, float, float, float] | None = None
    epochs: int = option(FINE_TUNE_EPOCHS, "with --output-model: single-date epochs at most; the sequence stage "
                         "runs a third", minimum=1, maximum=10_000)
    minutes: float | None = option(FINE_TUNE_MINUTES, "with --output-model: time budget of the training; "
                                   "scoring the held-out part and writing the model follow it", minimum=0.1)
    seed: int = 0
    layer_names: list[str] = field(default_factory=list)  # for the card's trained_on; default: file names
    area_polygons: LabelSource | None = None
    # for the card's trained_on too: the QGIS layers the labels and the area came from (their files may be
    # temporary copies: a scratch or filtered layer); default: the files' names
    labels_name: str | None = None
    area_name: str | None = None


@dataclass
class CropTraining:
    """Data and training settings of the crop classifier; the defaults fit a 2-core CPU (paper B: 256
    cells, 48 px)."""

    output: Path
    data_dir: Path = option(Path("data/simulated/crops"), "where the simulated crop region is written and reused")
    train_scenes: int = option(12, "training scenes", minimum=1)
    validation_scenes: int = option(4, "held-out scenes, never trained on", minimum=1)
    scene_size: int = option(128, "scene width and height in pixels (10 m)", minimum=32, maximum=4096)
    dates: int = option(46, "observations in the year (20 to 46)", minimum=20, maximum=46)
    epochs: int = option(20, "training epochs", minimum=1)
    samples_per_epoch: int = option(256, "training patches per epoch", minimum=1)
    patch_size: int = option(24, "training patch size in pixels (paper B: 48)", minimum=8, maximum=512)
    validation_patch_size: int = 64
    hidden_channels: int = option(16, "recurrent cells (paper B: 256)", minimum=1, maximum=1024)
    batch_size: int = 16
    learning_rate: float = option(3e-3, "base learning rate", minimum=0, maximum=1)
    seed: int = option(0, "random seed")
