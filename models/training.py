"""Training. Paper A (``train``): the FCN on single dates, then the ConvLSTM on the frozen
FCN's PMap sequences, then (optionally) both together. Paper B (``train_classifier``): the
BiConvLSTM end to end on all observations.

Each stage keeps the checkpoint of its best validation IoU (mean over classes for more
than two); the last stage's best is ``model.pt``, the file ``timeseg export`` takes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..core.atomic import write_text_atomic
from ..core.harmonisation import Harmonisation
from ..core.normalisation import Normalisation
from .checkpoint import build_network, load_checkpoint, save_checkpoint
from .dataset import OpenSite, SequencePatches, Site, band_statistics
from .metrics import ConfusionMatrix
from .networks import FcnConvLstm, JointLoss
from .networks.unet import probabilities_from_logits
from .settings import SCHEDULES, NetworkConfig, TrainOptions
from .weather import Weather

log = logging.getLogger("timeseg.train")
OVERCAST_WEIGHT = 4.0  # weight of the with/without-overcast map difference in the sequence stages
VALIDATION_EVERY = 10  # epochs: how often a stage that selects on its own strips also scores the
# validation scenes (they only report there; the kept epoch is scored on them at the end)


class TrainingCancelled(Exception):
    """The caller asked the training to stop; no model was written."""


@dataclass
class TrainingMonitor:
    """Hooks for a caller that shows progress and may stop the run (the dock, Processing).

    ``on_epoch`` gets each epoch's record (stage, epoch, epochs, seconds since the stage began, loss,
    validation metrics);
    ``cancelled`` is polled after every batch; ``stage_seconds`` caps a stage's time (by name:
    fcn, sequence, joint, classifier): the stage ends after the batch that passes it."""

    on_epoch: Callable[[dict[str, Any]], None] | None = None
    cancelled: Callable[[], bool] = lambda: False
    stage_seconds: dict[str, float] = field(default_factory=dict)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def learning_rate_schedule(optimizer: torch.optim.Optimizer, epochs: int, schedule: str):
    """``paper``: base rate for the first third of the epochs, /10 for the second, /100
    for the last (paper A, section 3: 0.1, 0.01, 0.001 for 10 epochs each); ``cosine``: from
    the base rate down to a hundredth of it along half a cosine (Loshchilov and Hutter 2017)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}")
    if schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, max(epochs, 1), eta_min=optimizer.param_groups[0]["lr"] / 100)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda epoch: 10.0 ** -min(2, (3 * epoch) // max(epochs, 1))
    )


def native_bf16(device: str) -> bool:
    """Whether ``device`` computes bf16 natively (CPUs with AVX-512 BF16 or AMX, GPUs since Ampere);
    elsewhere torch emulates it, many times slower than float32 (about 40x, seen on an AVX2 CPU)."""
    if device == "cuda":
        return torch.cuda.is_bf16_supported()
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def compute_precision(options: TrainOptions) -> str:
    """The arithmetic of a run's forward passes, ``fp32`` or ``bf16``; ``auto`` is bf16 where the
    device computes it natively."""
    if options.train_precision != "auto":
        return options.train_precision
    return "bf16" if native_bf16(options.device) else "fp32"


def autocast(options: TrainOptions) -> torch.autocast:
    """bf16 autocast of convolutions when the run computes in bf16; weights, optimiser, losses
    and probabilities stay float32 (``probabilities_from_logits``)."""
    return torch.autocast(options.device, dtype=torch.bfloat16, enabled=compute_precision(options) == "bf16")


def single_date_probabilities(network: FcnConvLstm, images: torch.Tensor) -> torch.Tensor:
    """FCN alone on each date: ``[B, T, C, H, W]`` -> ``[B * T, K, H, W]``."""
    return network.fcn(images.flatten(0, 1))


def with_overcast_dates(images: torch.Tensor, overcast: torch.Tensor,
                        generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Insert 1 to N of the overcast dates ``[B, N, C, H, W]`` at random positions (the same for
    the batch, first and last included) into ``images`` ``[B, T, C, H, W]``.
    -> ``([B, T + n, C, H, W], overcast positions [T + n] bool)``."""
    count = int(torch.randint(1, overcast.shape[1] + 1, (1,), generator=generator))
    total = images.shape[1] + count
    is_overcast = torch.zeros(total, dtype=torch.bool)
    is_overcast[torch.randperm(total, generator=generator)[:count]] = True
    sequence = images.new_empty((images.shape[0], total, *images.shape[2:]))
    sequence[:, is_overcast] = overcast[:, :count]
    sequence[:, ~is_overcast] = images
    return sequence, is_overcast


def overcast_contract_loss(network: FcnConvLstm, images: torch.Tensor, overcast: torch.Tensor,
                           labels: torch.Tensor, valid: torch.Tensor, loss_fn: nn.Module,
                           generator: torch.Generator) -> torch.Tensor:
    """The label loss of the sequence ``images`` ``[B, T, C, H, W]`` and how far from its map lies
    the map with 1 to N of the ``overcast`` dates ``[B, N, C, H, W]`` inserted anywhere: a date white
    with cloud must change the map by almost nothing, wherever it comes in the sequence.

    With a date gate (``network.gated``): the mean absolute difference, with the map without the
    overcast dates as the reference (no gradient through it there), and no label loss on the map
    with them, so that an overcast date can only be learned to be ignored, never used (as an extra
    step of computation that lowers P where the labels say so: with a label loss on that map, or a
    squared difference, the gate stayed open on white dates). Without a gate (paper A's PMap-only
    network, make model's stage 2): the loss they were trained with, the label loss of both
    maps and their squared difference."""
    sequence, is_overcast = with_overcast_dates(images, overcast, generator)
    steps = network.date_steps(sequence)
    with_overcast = probabilities_from_logits(network.logits_from_steps(steps))
    without = probabilities_from_logits(network.logits_from_steps(steps[:, ~is_overcast]))
    mask = valid.unsqueeze(1).expand_as(with_overcast)
    no_pixel = with_overcast.sum() * 0  # the difference where no pixel is valid, still tied to the graph
    if network.gated:
        difference = (with_overcast - without.detach()).abs()[mask].mean() if mask.any() else no_pixel
        return loss_fn(without, labels, valid) + OVERCAST_WEIGHT * difference
    difference = ((with_overcast - without) ** 2)[mask].mean() if mask.any() else no_pixel
    return loss_fn(with_overcast, labels, valid) + loss_fn(without, labels, valid) + OVERCAST_WEIGHT * difference


def selection_patches(sites: Sequence[OpenSite], options: TrainOptions, normalisation: Normalisation,
                      per_date: bool) -> DataLoader:
    """The selection strips of ``sites`` for a stage; scored date by date (``per_date``), sites of one
    date give it once, not repeated to the sequence length: the same IoU for a fifth of the computation."""
    one_date = per_date and all(len(site.stack.rasters) == 1 for site in sites)
    return DataLoader(SequencePatches(sites, options.validation_patch_size or options.patch_size,
                                      1 if one_date else options.sequence_length, normalisation, "grid"),
                      batch_size=options.batch_size)


def _repeat_per_date(tensor: torch.Tensor, dates: int) -> torch.Tensor:
    """``[B, H, W]`` -> ``[B * T, H, W]``, matching ``single_date_probabilities``."""
    return tensor.repeat_interleave(dates, dim=0)


@torch.no_grad()
def evaluate(predict: Callable[[torch.Tensor], torch.Tensor], loader: DataLoader, class_count: int,
             device: str, per_date: bool, threshold: float = 0.5) -> dict[str, float]:
    """Metrics of ``predict`` over ``loader``; ``per_date`` scores each date against the labels."""
    confusion = ConfusionMatrix(class_count)
    for batch in loader:
        images = batch["images"].to(device)
        labels, valid = batch["labels"].to(device), batch["valid"].to(device)
        if per_date:
            labels = _repeat_per_date(labels, images.shape[1])
            valid = _repeat_per_date(valid, images.shape[1])
        confusion.add(predict(images), labels, valid, threshold)
    return confusion.summary()


@contextlib.contextmanager
def averaged_weights(network: nn.Module, averaged: AveragedModel | None):
    """Inside: ``network`` holds ``averaged``'s weights (the moving average of its training
    steps); after: its own again. ``averaged`` None: nothing changes."""
    if averaged is None:
        yield
        return
    own = {name: tensor.clone() for name, tensor in network.state_dict().items()}
    network.load_state_dict(averaged.module.state_dict())
    try:
        yield
    finally:
        network.load_state_dict(own)


def _stage(
    name: str,
    network: nn.Module,
    parameters: Sequence[nn.Parameter],
    forward: Callable[[torch.Tensor], torch.Tensor],
    per_date: bool,
    train_data: SequencePatches,
    val_loader: DataLoader,
    epochs: int,
    learning_rate: float,
    options: TrainOptions,
    card: dict[str, Any],
    history: list[dict[str, Any]],
    min_dates: int | None = None,
    monitor: TrainingMonitor | None = None,
    selection_loader: DataLoader | None = None,
) -> dict[str, float]:
    """Train ``parameters`` through ``forward`` for ``epochs``; keep the best validation IoU
    (on ``selection_loader`` when given: the reported validation stays on ``val_loader``).
    With ``options.ema_decay``, each epoch scores and may keep the moving average of the weights
    (Polyak averaging: smooths the epoch-to-epoch swings that make a noisy selection pick a
    poor epoch); training goes on from the raw weights.

    With ``selection_loader``, the validation scenes are scored every ``VALIDATION_EVERY`` epochs,
    on the last, and on the kept epoch once the stage ends (for its checkpoint's metrics): the
    same choice and the same weights for a fraction of the scoring (a third of a single-date epoch).

    A stage that starts from a trained checkpoint (``options.init_checkpoint``) scores its start first
    (epoch 0 in the history), on the selection strips or, without them, on the validation scenes (a
    fit to an analyst's area: its validation part): an epoch must beat it to be kept, and a stage that
    none beats keeps its start (a stage that only harms, as a date gate that shuts on clear dates, or a
    fit that unlearns roads, is undone, not shipped). A date gate trained alone (``options.gate_only``)
    keeps its latest epoch that beats its start, not its best: it learns the overcast contract, which
    the strips do not measure, and its epochs differ there by less than the strips can tell (the
    shipped recipe's gate: 0.2304 to 0.2326 IoU), while it shuts on grey overcast dates epoch by epoch
    (a mean share of 0.12 after its first epoch, 0.06 after its fourth).

    With ``options.patience``, the stage ends once that many epochs in a row did not better its best
    score (early stopping): it keeps the best of the epochs it ran, the same weights as the full stage
    unless a later epoch would have scored better.

    With ``options.warmup_epochs``, the stage's first epochs are never kept (its last, or the one its time
    ran out in, always may be) and its patience counts from the end of them.

    With ``min_dates``, each batch keeps a random, time-ordered subset of ``min_dates`` to all
    of its dates, so that the network is calibrated for any sequence length it may be given."""
    monitor = monitor or TrainingMonitor()
    budget = monitor.stage_seconds.get(name)
    started = time.monotonic()
    deadline = None if budget is None else started + budget
    loss_fn = JointLoss(options.alpha, options.shore_weight, options.focal_gamma)
    optimizer = torch.optim.Adam(parameters, lr=learning_rate)
    scheduler = learning_rate_schedule(optimizer, epochs, options.schedule)
    class_count = max(2, len(options.class_names))
    best: dict[str, float] = {"score": -1.0}  # score: the selection IoU, or the validation IoU without strips
    path = options.output / f"{name}_best.pt"
    generator = torch.Generator().manual_seed(options.seed)
    averaged = AveragedModel(network, multi_avg_fn=get_ema_multi_avg_fn(options.ema_decay),
                             use_buffers=True) if options.ema_decay else None
    chosen_on = "the selection strips" if selection_loader is not None else "the validation data"
    if options.init_checkpoint is not None:
        start = _start_scores(network, forward, val_loader, selection_loader, class_count, per_date, options)
        history.append({"stage": name, "epoch": 0, "epochs": epochs, **start})
        best = {**start, "epoch": 0, "score": start["selection_iou"] if selection_loader is not None else start["iou"]}
        log.info("%s start: IoU %.4f on %s", name, best["score"], chosen_on)
        save_checkpoint(path, network, options.network, card, name, 0, _without_score(best))
    start_score = best["score"]
    warmup = min(options.warmup_epochs, max(epochs - 1, 0))
    for epoch in range(epochs):
        train_data.epoch = epoch
        loader = DataLoader(train_data, batch_size=options.batch_size, shuffle=True, generator=generator)
        network.train()
        _keep_frozen_statistics(network, options.frozen_statistics)
        losses = []
        bar = tqdm(loader, desc=f"{name} {epoch + 1}/{epochs}", leave=False, unit="batch",
                   disable=None)  # a bar on a terminal only, not in QGIS's or a log's stderr
        out_of_time = False
        for batch in bar:
            if monitor.cancelled():
                raise TrainingCancelled(f"training cancelled during {name} epoch {epoch + 1}")
            images = batch["images"].to(options.device)
            labels, valid = batch["labels"].to(options.device), batch["valid"].to(options.device)
            if min_dates is not None and images.shape[1] > min_dates:
                count = int(torch.randint(min_dates, images.shape[1] + 1, (1,), generator=generator))
                keep = torch.randperm(images.shape[1], generator=generator)[:count].sort().values
                images = images[:, keep]
            with autocast(options):
                if per_date:
                    labels = _repeat_per_date(labels, images.shape[1])
                    valid = _repeat_per_date(valid, images.shape[1])
                    loss = loss_fn(forward(images), labels, valid)
                elif "overcast" in batch and isinstance(network, FcnConvLstm) and not options.head_only:
                    # the head alone cannot shut a date: were a gate left open on white dates, it would meet
                    # the contract by saturating P everywhere (seen: P 0.69 on every pixel); label loss only
                    loss = overcast_contract_loss(network, images, batch["overcast"].to(options.device), labels,
                                                  valid, loss_fn, generator)
                else:
                    loss = loss_fn(forward(images), labels, valid)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if averaged is not None:
                averaged.update_parameters(network)
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses):.4f}")
            if deadline is not None and time.monotonic() > deadline:
                out_of_time = True
                break
        scheduler.step()
        network.eval()
        with averaged_weights(network, averaged):
            with autocast(options):
                scores_validation = selection_loader is None or (epoch + 1) % VALIDATION_EVERY == 0 \
                    or epoch + 1 == epochs
                metrics = evaluate(forward, val_loader, class_count, options.device, per_date,
                                   options.threshold) if scores_validation else {}
                if selection_loader is not None:
                    metrics.update(_selection_scores(network, forward, selection_loader, class_count, per_date,
                                                     options))
            record = {"stage": name, "epoch": epoch + 1, "epochs": epochs,
                      "seconds": round(time.monotonic() - started, 3), "loss": float(np.mean(losses)),
                      **metrics}
            history.append(record)
            if monitor.on_epoch is not None:
                monitor.on_epoch(record)
            log.info("%s epoch %d/%d: loss %.4f, %s", name, epoch + 1, epochs, record["loss"],
                     ", ".join(f"{key} {value:.4f}" for key, value in metrics.items()))
            score = metrics["selection_iou"] if selection_loader is not None else metrics["iou"]
            if (epoch + 1 > warmup or out_of_time) and score > (start_score if options.gate_only else best["score"]):
                best = {**metrics, "epoch": epoch + 1, "score": score}
                save_checkpoint(path, network, options.network, card, name, epoch + 1, _without_score(best))
        if out_of_time:
            break
        if options.patience and epoch + 1 - max(best.get("epoch", 0), warmup) >= options.patience:
            log.info("%s: no better score for %d epochs, stopped at epoch %d of %d", name, options.patience,
                     epoch + 1, epochs)
            break
    if best["epoch"] == 0:
        log.warning("%s: no epoch scored above the stage's start on %s (%.4f): it keeps its start", name,
                    chosen_on, best["score"])
    # continue from the best weights of this stage
    network.load_state_dict(torch.load(path, weights_only=True)["state_dict"])
    if "iou" not in best:  # kept on the selection strips in an epoch that did not score the validation scenes
        network.eval()
        with autocast(options):
            best.update(evaluate(forward, val_loader, class_count, options.device, per_date, options.threshold))
        save_checkpoint(path, network, options.network, card, name, best["epoch"], _without_score(best))
    return _without_score(best)


def _start_scores(network: nn.Module, forward: Callable[[torch.Tensor], torch.Tensor], val_loader: DataLoader,
                  selection_loader: DataLoader | None, class_count: int, per_date: bool,
                  options: TrainOptions) -> dict[str, float]:
    """A stage's start scored where the stage chooses its epoch: ``_selection_scores`` on the selection
    strips, else the validation scenes' metrics (their ``iou``)."""
    network.eval()
    with autocast(options):
        if selection_loader is not None:
            return _selection_scores(network, forward, selection_loader, class_count, per_date, options)
        return evaluate(forward, val_loader, class_count, options.device, per_date, options.threshold)


def _selection_scores(network: nn.Module, forward: Callable[[torch.Tensor], torch.Tensor], loader: DataLoader,
                      class_count: int, per_date: bool, options: TrainOptions) -> dict[str, float]:
    """``selection_iou`` of ``forward`` on the selection strips. A gated sequence model is chosen on
    one date too (``selection_iou`` is then the mean of the strips as given and of their last date
    alone): a gate half open on every date passes the strips, which give their date 5 times, and
    calls no road on one date."""
    selection = evaluate(forward, loader, class_count, options.device, per_date, options.threshold)["iou"]
    if per_date or not getattr(network, "gated", False):
        return {"selection_iou": selection}
    one_date = evaluate(lambda x: forward(x[:, -1:]), loader, class_count, options.device, False,
                        options.threshold)["iou"]
    return {"selection_iou": (selection + one_date) / 2, "selection_iou_one_date": one_date}


def _keep_frozen_statistics(network: nn.Module, everywhere: bool = False) -> None:
    """Batch normalisation in a frozen part (the FCN in the sequence stages), or ``everywhere``,
    normalises with its running statistics and leaves them as they were: the temporal stage learns
    from the maps the exported FCN will give, and the FCN stays the single-date model it was chosen as."""
    for module in network.modules():
        parameters = list(module.parameters())
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and parameters and (everywhere or not any(
                p.requires_grad for p in parameters)):
            module.eval()


def _without_score(best: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in best.items() if key != "score"}


def model_card_fields(options: TrainOptions) -> dict[str, Any]:
    """The card fields known before training (``core.model_card.ModelCard``)."""
    return {
        "architecture": options.network.architecture,
        "class_names": options.class_names,
        "bands": options.bands,
        "input_scale": options.input_scale,
        "input_dtype": options.input_dtype,
        "sequence_length": options.sequence_length,
        "min_sequence_length": options.min_sequence_length,
        "tile_size": options.tile_size,
        "tiles_overlap": options.tiles_overlap,
        "resolution": options.resolution,
        "threshold": options.threshold,
        "trained_on": options.trained_on,
        "no_data_value": options.no_data_value,
        "one_year": options.one_year,
    }


@contextlib.contextmanager
def opened_sites(options: TrainOptions, train_sites: Sequence[Site], val_sites: Sequence[Site],
                 card: dict[str, Any]):
    """Open all sites; yields ``(train_open, val_open, normalisation)`` with the training
    sites' band statistics (or those of ``options.init_checkpoint``) written into ``card``. A starting
    checkpoint that harmonises its dates (``core.harmonisation``) passes that on: the sites are read
    harmonised and the new card says so."""
    init_card = load_checkpoint(options.init_checkpoint)[2]["card"] if options.init_checkpoint is not None else {}
    if init_card.get("harmonisation") is not None:
        card["harmonisation"] = init_card["harmonisation"]
    harmonisation = Harmonisation.from_card(init_card.get("harmonisation"))
    opened = []
    try:
        for site in [*train_sites, *val_sites]:
            opened.append(OpenSite(site, harmonisation, options.bands, options.input_dtype))
        train_open, val_open = opened[: len(train_sites)], opened[len(train_sites):]
        if options.init_checkpoint is not None:  # its weights expect its normalisation
            mean, std = init_card["standardization_mean"], init_card["standardization_std"]
        else:
            mean, std = band_statistics(train_open, options.input_scale, seed=options.seed)
        card.update(standardization_mean=list(mean), standardization_std=list(std))
        yield train_open, val_open, Normalisation(options.input_scale, mean, std)
    finally:
        for site in opened:
            site.__exit__(None, None, None)


def plain_settings(settings: Any) -> dict[str, Any]:
    """A settings dataclass as JSON-ready values (paths as text)."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(settings).items()}


def _write_summary(options: TrainOptions, network: nn.Module, card: dict[str, Any],
                   history: list[dict[str, Any]], final: dict[str, Any], kept: dict[str, int] | None = None) -> None:
    """``model.pt`` (card with its metrics) and ``history.json`` under ``options.output`` (with ``kept``:
    the epoch each stage kept, 0 for its start, as ``kept_epochs``)."""
    card["metrics"] = final
    save_checkpoint(options.output / "model.pt", network, options.network, card, "final", 0, final)
    summary = {"options": plain_settings(options),
               "history": history, "final": final, **({"kept_epochs": kept} if kept is not None else {})}
    write_text_atomic(options.output / "history.json", json.dumps(summary, indent=2))


def _start(options: TrainOptions, architecture: str) -> tuple[nn.Module, dict[str, Any], list[dict[str, Any]]]:
    """Seeded, fresh ``(network, card fields, empty history)`` for a run of ``architecture``."""
    if options.network.architecture != architecture:
        raise ValueError(f"this trainer runs {architecture}, the options ask for {options.network.architecture} "
                         "(train: fcn_convlstm; train_classifier: biconvlstm)")
    seed_everything(options.seed)
    if options.train_precision == "bf16" and not native_bf16(options.device):
        log.warning("this %s has no native bf16, so --train-precision bf16 runs many times slower than fp32: "
                    "use --train-precision auto or fp32", "CPU" if options.device == "cpu" else "GPU")
    options.output.mkdir(parents=True, exist_ok=True)
    network = build_network(options.network)
    if options.init_checkpoint is not None:
        saved = load_checkpoint(options.init_checkpoint)[2]
        _check_same_fcn(options.network, saved["network"], options.init_checkpoint)
        started = load_matching_weights(network, saved, options.init_checkpoint)
        if (getattr(network, "gated", False) and not any(name.startswith("gate.") for name in started)
                and saved["stage"] != "fcn"):
            network.gate.start_open()  # a gate added to a trained ConvLSTM: start as that network
    return network.to(options.device), model_card_fields(options), []


def _check_same_fcn(config: NetworkConfig, saved: dict[str, Any], checkpoint: Path) -> None:
    """Refuse to start from a checkpoint whose U-Net is laid out otherwise (``saved``: its network
    config): its convolutions would not all fit by name, and the FCN would start half trained."""
    differing = [key for key in ("depth", "base_channels", "batch_norm") if saved.get(key, getattr(config, key))
                 != getattr(config, key)]
    if differing:
        theirs = ", ".join(f"{key} {saved[key]}" for key in differing)
        ours = ", ".join(f"{key} {getattr(config, key)}" for key in differing)
        raise ValueError(f"{checkpoint} has a U-Net of {theirs}, this run asks for {ours}: give the U-Net options "
                         "it was trained with (--depth, --base-channels, --batch-norm)")


def load_matching_weights(network: nn.Module, saved: dict[str, Any], checkpoint: Path) -> list[str]:
    """Copy the weights of ``saved`` (the checkpoint file ``checkpoint``, loaded) whose names and
    shapes fit ``network``; -> their names. Refuses a checkpoint of which nothing fits (another
    architecture, other bands)."""
    own = network.state_dict()
    fitting = {k: v for k, v in saved["state_dict"].items() if k in own and own[k].shape == v.shape}
    if not fitting:
        raise ValueError(f"no weight of {checkpoint} fits this network (other architecture or bands); "
                         "train from scratch or pick a checkpoint of the same kind")
    network.load_state_dict(fitting, strict=False)
    log.info("started from %d of %d weight tensors of %s", len(fitting), len(own), checkpoint)
    return sorted(fitting)


def train(options: TrainOptions, train_sites: Sequence[Site], val_sites: Sequence[Site],
          site_weights: Sequence[float] | None = None, monitor: TrainingMonitor | None = None,
          selection_sites: Sequence[Site] = ()) -> dict[str, Any]:
    """Run the stages; write ``<stage>_best.pt``, ``model.pt`` and ``history.json`` under
    ``options.output``. Returns the final validation metrics of the single-date FCN and
    of the sequence model, measured on the same held-out sites. ``site_weights``: how often
    each training site is drawn (default: equally); ``monitor``: progress, cancel, time caps;
    ``selection_sites``: where each stage's best epoch is chosen (default: the validation sites)."""
    if options.gate_only and not options.network.date_gate:
        raise ValueError("--gate-only trains the date gate alone: give --date-gate too")
    if options.gate_only and options.head_only:
        raise ValueError("--gate-only and --head-only each train one part alone: give one of them")
    network, card, history = _start(options, "fcn_convlstm")
    with opened_sites(options, train_sites, [*val_sites, *selection_sites], card) as (
            train_open, all_val_open, normalisation):
        val_open, selection_open = all_val_open[: len(val_sites)], all_val_open[len(val_sites):]

        def selection_loader(per_date: bool) -> DataLoader | None:
            return selection_patches(selection_open, options, normalisation, per_date) if selection_open else None

        def patches(length: int) -> SequencePatches:
            weather = (Weather.light() if length == 1 else Weather()) if options.weather else None
            return SequencePatches(train_open, options.patch_size, length, normalisation, "random",
                                   options.samples_per_epoch, options.seed, weather, site_weights,
                                   options.data_edges)

        val_loader = DataLoader(
            SequencePatches(val_open, options.validation_patch_size or options.patch_size,
                            options.sequence_length, normalisation, "grid"),
            batch_size=options.batch_size,
        )
        fcn_params = list(network.fcn.parameters())
        temporal = "gate." if options.gate_only else "head." if options.head_only else ""
        sequence_params = [p for n, p in network.named_parameters()
                           if not n.startswith("fcn.") and n.startswith(temporal)]
        kept: dict[str, int] = {}  # stage -> the epoch it kept (0: its start)
        if options.fcn_epochs:
            kept["fcn"] = _stage("fcn", network, fcn_params, lambda x: single_date_probabilities(network, x), True,
                                 patches(1), val_loader, options.fcn_epochs, options.learning_rate, options,
                                 card, history, monitor=monitor,
                                 selection_loader=selection_loader(per_date=True))["epoch"]
        if options.sequence_epochs:
            for p in fcn_params:
                p.requires_grad_(False)
            kept["sequence"] = _stage("sequence", network, sequence_params, network, False,
                                      patches(options.sequence_length), val_loader, options.sequence_epochs,
                                      options.learning_rate, options, card, history, options.min_sequence_length,
                                      monitor, selection_loader(per_date=False))["epoch"]
            for p in fcn_params:
                p.requires_grad_(True)
        if options.joint_epochs:
            kept["joint"] = _stage("joint", network, list(network.parameters()), network, False,
                                   patches(options.sequence_length), val_loader, options.joint_epochs,
                                   options.learning_rate / 10, options, card, history, options.min_sequence_length,
                                   monitor, selection_loader(per_date=False))["epoch"]
        final = validation_metrics(network, val_loader, max(2, len(options.class_names)), options.device,
                                   options.threshold)
        final["validation_pixels_per_date"] = sum(s.shape[0] * s.shape[1] for s in val_open)
    _write_summary(options, network, card, history, final, kept)
    return final


def validation_metrics(network: FcnConvLstm, val_loader: DataLoader, class_count: int, device: str,
                       threshold: float) -> dict[str, Any]:
    """A road network's metrics on held-out sites (the card's ``metrics``): its single-date FCN, the whole
    network, and the network given only the last date; ``validation_sites``: the sites' dates and periods."""
    network.eval()
    final: dict[str, Any] = {
        "single_date_fcn": evaluate(lambda x: single_date_probabilities(network, x), val_loader,
                                    class_count, device, True, threshold),
        "sequence": evaluate(network, val_loader, class_count, device, False, threshold),
        # the same sequence model given only the last date of each sequence
        "sequence_model_last_date_only": evaluate(lambda x: network(x[:, -1:]), val_loader, class_count,
                                                  device, False, threshold),
        "validation_sites": len(val_loader.dataset.sites),
    }
    final["sequence_minus_single_date"] = {
        key: final["sequence"][key] - final["single_date_fcn"][key] for key in ("accuracy", "iou", "f1")
    }
    return final


def train_classifier(options: TrainOptions, train_sites: Sequence[Site], val_sites: Sequence[Site],
                     epochs: int, date_views: dict[str, Callable[[torch.Tensor], torch.Tensor]] | None = None,
                     ) -> dict[str, Any]:
    """Paper B: the BiConvLSTM classifier trained end to end on every observation of the
    sites, cloudy or not (cross entropy when ``options.alpha`` is 1). With
    ``options.min_sequence_length`` below the sites' date count, each batch keeps a random
    time-ordered subset of that many to all dates. ``date_views`` name other date selections
    ``[B, T, C, H, W] -> [B, T', C, H, W]`` the final model is also scored on. Writes
    ``classifier_best.pt``, ``model.pt`` and ``history.json``; returns the held-out metrics."""
    network, card, history = _start(options, "biconvlstm")
    dates = min(len(site.rasters) for site in train_sites)
    min_dates = options.min_sequence_length if options.min_sequence_length < dates else None
    with opened_sites(options, train_sites, val_sites, card) as (train_open, val_open, normalisation):
        train_data = SequencePatches(train_open, options.patch_size, None, normalisation, "random",
                                     options.samples_per_epoch, options.seed)
        val_loader = DataLoader(SequencePatches(val_open, options.validation_patch_size or options.patch_size,
                                                None, normalisation, "grid"), batch_size=options.batch_size)
        _stage("classifier", network, list(network.parameters()), network, False, train_data, val_loader,
               epochs, options.learning_rate, options, card, history, min_dates)
        network.eval()
        final = {
            "classifier": evaluate(network, val_loader, len(options.class_names), options.device, False),
            "validation_sites": len(val_sites),
            "validation_pixels": sum(s.shape[0] * s.shape[1] for s in val_open),
            "dates": dates,
        }
        for name, view in (date_views or {}).items():
            final[name] = evaluate(lambda images, view=view: network(view(images)), val_loader,
                                   len(options.class_names), options.device, False)
    _write_summary(options, network, card, history, final)
    return final
