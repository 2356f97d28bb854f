"""The training loop: baseline or uncertainty-aware, resumable, single process or DistributedDataParallel.

Run folder (written by rank 0 only, every file atomically)::

    RUN/config.yaml          the fully resolved TrainConfig
    RUN/run.json             data set facts the run depends on (classes, channels, patch size, cases)
    RUN/metrics.csv          one row per finished epoch: loss parts, validation Dice and AURC, seconds
    RUN/checkpoints/last.pt  model, optimizer, epoch, history and RNG state after the last finished epoch
    RUN/model.pt             final weights + architecture (what predict/evaluate load)
    RUN/snapshots/epoch_NNNN.pt  the weights after the epochs in ``snapshot_epochs`` (same format as model.pt)
    RUN/tensorboard/         when TensorBoard is installed and ``tensorboard: true``

Reproducibility: the initial weights come from ``seed``; at the start of every epoch all random streams (data
order, augmentation, dropout, the sampled ranking loss) are re-seeded from ``(seed, epoch, rank)``. A run killed at
any moment and resumed with ``resume=True`` therefore redoes the unfinished epoch exactly, and in deterministic mode
ends with the same weights and metrics as an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import __version__
from .._io import atomic_write_text
from .._versions import package_versions
from ..data.annotators import reference_labels
from ..data.splits import kfold_split
from ..losses import (
    LossParts,
    MultiHeadSelectiveLoss,
    SelectiveSegmentationLoss,
    UncertaintyRankingLoss,
    segmentation_loss,
)
from ..metrics import selective_dice_curve
from ..models import ModelSpec, SegmentationNet, build_model
from ..models.inference import normalize_image, predict_probabilities
from ..runs import folder
from ..runs.checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from ..runs.config import (
    LossConfig,
    TrainConfig,
    config_diff,
    config_to_dict,
    ranking_weight_at,
    save_config,
    with_overrides,
)
from ..runs.data import load_cases
from ..runs.device import is_main_process
from ..uncertainty import get_score
from .data import epoch_loader, resolve_patch_size, split_cases, training_items
from .distributed import DistributedContext, init_distributed
from .schedule import balanced_ranking_weight, ema, lr_factor

__all__ = ["METRIC_COLUMNS", "ProgressEvent", "TrainResult", "loss_from_config", "train"]

TrainingLoss = SelectiveSegmentationLoss | MultiHeadSelectiveLoss
"""What :func:`loss_from_config` builds: either gives :class:`~selectseg.losses.LossParts` through ``parts(...)``."""

METRIC_COLUMNS = (
    "epoch",
    "loss",
    "segmentation",
    "ranking",
    "guidance",
    "ranking_weight",
    "lr",
    "grad_segmentation",
    "grad_ranking",
    "grad_guidance",
    "grad_ratio",
    "val_dice",
    "val_aurc",
    "seconds",
)
"""``metrics.csv`` columns: the epoch's mean :class:`~selectseg.losses.LossParts` (``loss`` = ``total``; ranking
unweighted, guidance weighted), the mean ranking weight and learning rate of its steps, the mean parameter-gradient
norms of the parts measured in the epoch (``grad_ranking`` unweighted; ``grad_ratio`` = weight x ``grad_ranking`` /
``grad_segmentation``; empty when no step of the epoch was measured), validation Dice and AURC, seconds."""


@dataclass(frozen=True)
class ProgressEvent:
    """What the loop reports to a progress display (the library itself never prints).

    ``kind`` is ``"start"`` (``steps`` = batches per epoch), ``"step"`` (``parts`` = this batch's
    :class:`~selectseg.losses.LossParts` as floats: ``total``, ``segmentation``, ``ranking``, ``guidance``) or
    ``"epoch"`` (``parts`` = the epoch's logged row, :data:`METRIC_COLUMNS`, where ``loss`` is the mean ``total``).
    """

    kind: str
    epoch: int
    epochs: int
    step: int = 0
    steps: int = 0
    parts: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainResult:
    """A finished run: its folder, the final weights' path, one logged row per epoch, and the trained network
    (this process's copy; under DistributedDataParallel every rank's copy is identical)."""

    run_dir: Path
    model_path: Path
    history: list[dict[str, float]]
    model: SegmentationNet


def train(
    config: TrainConfig | None,
    run_dir: str | Path,
    *,
    resume: bool = False,
    progress: Callable[[ProgressEvent], None] | None = None,
) -> TrainResult:
    """Train a segmentation network as ``config`` says, into ``run_dir``.

    Everything that can be checked is checked before the first step: the data (every case read and validated),
    the run folder, the checkpoint's architecture on resume.

    Args:
        config: the resolved configuration; None with ``resume`` to take the one saved in ``run_dir``.
        run_dir: output folder; must be new or empty unless ``resume``.
        resume: continue from ``run_dir/checkpoints/last.pt`` (optimizer, epoch, history and RNG state included).
            A given ``config`` may only differ from the saved one in ``optim.epochs`` (to train longer).
        progress: called with a :class:`ProgressEvent` at the start of each epoch, after each step and after each
            epoch, on rank 0.

    Returns:
        :class:`TrainResult`.

    Raises:
        ValueError: on a bad data set, a non-empty run folder without ``resume``, a missing or foreign checkpoint,
            a config differing from the saved one on resume, or a run folder locked by another process
            (:func:`selectseg.runs.folder.lock`, held for the whole training).
    """
    run_dir = Path(run_dir)
    # One process owns the folder; the lock comes before the new-run check, so check and start are one step.
    # Under torchrun only rank 0 (the one writing files) takes it.
    owner = folder.lock(run_dir, purpose="train") if is_main_process() else contextlib.nullcontext(run_dir)
    with owner:
        resolved = _prepare_run_dir(config, run_dir, resume)
        ctx = init_distributed(resolved.device)
        try:
            return _train(resolved, run_dir, ctx, resume, progress)
        finally:
            ctx.close()


def _prepare_run_dir(config: TrainConfig | None, run_dir: Path, resume: bool) -> TrainConfig:
    """The config to train with: a new run's, with its data path made absolute; on resume the saved one, where a
    given config may change only ``optim.epochs`` (train longer) and ``data.path`` (data that moved)."""
    config = None if config is None else _absolute_data_path(config)
    if resume:
        if not folder.has_config(run_dir):
            raise ValueError(
                f"Cannot resume: {str(run_dir / folder.CONFIG)!r} not found (was {str(run_dir)!r} a training run?)."
            )
        saved = folder.read_config(run_dir)
        if config is None:
            return saved
        mine, theirs = config_to_dict(config), config_to_dict(saved)
        mine["optim"]["epochs"] = theirs["optim"]["epochs"]
        mine["data"]["path"] = theirs["data"]["path"]
        if not mine["data"]["patch_size"]:  # not given: the saved, resolved one stands
            mine["data"]["patch_size"] = theirs["data"]["patch_size"]
        if mine != theirs:
            raise ValueError(
                f"Cannot resume {str(run_dir)!r} with a different config ({_dict_diff(theirs, mine)}); "
                "only optim.epochs (train longer) and data.path (data that moved) may change."
            )
        changed = with_overrides(saved, {"optim.epochs": config.optim.epochs, "data.path": config.data.path})
        if changed != saved and is_main_process():
            atomic_write_text(run_dir / folder.CONFIG, save_config(changed))
        return changed
    if config is None:
        raise ValueError("A config is needed to start a new run (only `resume` can take the saved one).")
    folder.check_new_run(run_dir)
    return config


def _absolute_data_path(config: TrainConfig) -> TrainConfig:
    """``data.path`` resolved to an absolute path (the built-in ``synthetic`` set stays as it is), so that a run can
    be used from any working directory."""
    path = config.data.path
    if path == "synthetic" or not path:
        return config
    return with_overrides(config, {"data.path": str(Path(path).expanduser().resolve())})


def _dict_diff(a: dict[str, Any], b: dict[str, Any]) -> str:
    return "; ".join(f"{key}: saved {va!r}, given {vb!r}" for key, va, vb in config_diff(a, b))


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - third-party code may draw from the legacy global state
    torch.manual_seed(seed)


def _epoch_seed(seed: int, epoch: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1, dtype=np.uint32)[0])


def _set_deterministic(enabled: bool) -> None:
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    torch.backends.cudnn.benchmark = not enabled


@dataclass
class _Run:
    """What a training run holds from its setup to its end (``history`` and ``balance`` grow epoch by epoch)."""

    config: TrainConfig
    run_dir: Path
    ctx: DistributedContext
    progress: Callable[[ProgressEvent], None] | None
    info: Any
    spec: ModelSpec
    patch_size: tuple[int, ...]
    items: list[Any]
    val_cases: list[Any]
    model: SegmentationNet
    net: nn.Module
    optimizer: torch.optim.Optimizer
    loss: TrainingLoss
    writer: Any = None
    start_epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    balance: dict[str, float | None] = field(default_factory=lambda: {"segmentation": None, "ranking": None})
    """Moving averages of the segmentation and ranking gradient norms (for ``loss.ranking_balance``)."""

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / folder.CHECKPOINT


@dataclass
class _EpochLog:
    """One epoch's per-step records: loss-part sums (LossParts order), ranking weights, learning rates, gradient
    norm rows (segmentation, ranking, guidance, ratio)."""

    sums: np.ndarray = field(default_factory=lambda: np.zeros(4))
    weights: list[float] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    grad_rows: list[list[float]] = field(default_factory=list)


def _train(
    config: TrainConfig,
    run_dir: Path,
    ctx: DistributedContext,
    resume: bool,
    progress: Callable[[ProgressEvent], None] | None,
) -> TrainResult:
    _set_deterministic(config.deterministic)
    run = _setup(config, run_dir, ctx, resume, progress)
    for epoch in range(run.start_epoch, config.optim.epochs):
        _train_epoch(run, epoch)
    return _finish(run)


def _setup(
    config: TrainConfig,
    run_dir: Path,
    ctx: DistributedContext,
    resume: bool,
    progress: Callable[[ProgressEvent], None] | None,
) -> _Run:
    """Data, model, optimizer and loss; the checkpoint's state on resume, else the run folder's first files."""
    dataset = load_cases(config.data, split="train")
    if len(dataset) == 0:
        raise ValueError(f"The training set {config.data.path!r} has no cases.")
    info = dataset.info
    if config.loss.class_weights and len(config.loss.class_weights) != info.num_classes:
        raise ValueError(
            f"Expected `loss.class_weights` to hold one weight per class ({info.num_classes}: "
            f"{list(info.class_names)}), but got {len(config.loss.class_weights)}."
        )
    if config.data.folds:
        train_cases, val_cases = kfold_split(list(dataset.cases), config.data.folds, config.data.fold, seed=config.seed)
    else:
        train_cases, val_cases = split_cases(list(dataset.cases), config.data.val_fraction, config.seed)
    spec = _model_spec(config, info)
    patch_size = resolve_patch_size(
        config.data.patch_size, [c.spatial_shape for c in dataset.cases], info.spatial_dims, spec.size_divisor
    )
    items = training_items(train_cases, config.data.normalize)

    _seed_everything(config.seed)
    model = build_model(spec).to(ctx.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.optim.lr, weight_decay=config.optim.weight_decay)
    run = _Run(
        config=config,
        run_dir=run_dir,
        ctx=ctx,
        progress=progress,
        info=info,
        spec=spec,
        patch_size=patch_size,
        items=items,
        val_cases=val_cases,
        model=model,
        net=model,
        optimizer=optimizer,
        loss=loss_from_config(config.loss, validate_args=False),  # the data were checked when loaded
    )
    if resume and run.checkpoint_path.is_file():
        _restore(run)
    elif ctx.is_main:
        _write_run_files(config, run_dir, ctx, info, patch_size, train_cases, val_cases)
    ctx.barrier()
    if ctx.distributed:
        from torch.nn.parallel import DistributedDataParallel

        run.net = DistributedDataParallel(model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
    run.writer = _tensorboard(run_dir, config) if ctx.is_main else None
    return run


def _model_spec(config: TrainConfig, info: Any) -> ModelSpec:
    return ModelSpec(
        name=config.model.name,
        spatial_dims=info.spatial_dims,
        in_channels=len(info.channel_names),
        num_classes=info.num_classes,
        channels=config.model.channels,
        num_res_units=config.model.num_res_units,
        dropout=config.model.dropout,
        norm=config.model.norm,
        head_upsample=config.model.head_upsample,
    )


def _restore(run: _Run) -> None:
    """Model, optimizer, epoch, history, RNG state and gradient-norm averages from ``checkpoints/last.pt``."""
    payload = load_checkpoint(run.checkpoint_path, spec=run.spec)
    run.model.load_state_dict(payload["model"])
    run.optimizer.load_state_dict(payload["optimizer"])
    run.start_epoch = int(payload["epoch"])
    run.history = [dict(row) for row in payload["history"]]
    restore_rng_state(payload["rng"])
    run.balance.update(payload.get("balance", {}))


def library_versions() -> dict[str, str]:
    """The versions of Python and of every library a run's numbers depend on (``run.json`` records them)."""
    versions = package_versions(("selectseg", "torch", "monai", "numpy", "scipy", "nibabel", "pillow"))
    versions["cuda"] = str(torch.version.cuda) if torch.version.cuda else "none"
    return versions


def _write_run_files(
    config: TrainConfig,
    run_dir: Path,
    ctx: DistributedContext,
    info: Any,
    patch_size: tuple[int, ...],
    train_cases: list[Any],
    val_cases: list[Any],
) -> None:
    """``config.yaml`` (fully resolved: the patch size the data gave) and ``run.json`` of a new run: the data facts
    and every library version that matters."""
    resolved = with_overrides(config, {"data.patch_size": list(patch_size)})
    atomic_write_text(run_dir / folder.CONFIG, save_config(resolved))
    run_info = {
        "selectseg_version": __version__,
        "torch_version": torch.__version__,
        "versions": library_versions(),
        "dataset": info.name,
        "format": info.format,
        "class_names": list(info.class_names),
        "channel_names": list(info.channel_names),
        "spatial_dims": info.spatial_dims,
        "patch_size": list(patch_size),
        "train_cases": [c.case_id for c in train_cases],
        "val_cases": [c.case_id for c in val_cases],
        "world_size": ctx.world_size,
    }
    atomic_write_text(run_dir / folder.RUN_INFO, json.dumps(run_info, indent=2))


def _train_epoch(run: _Run, epoch: int) -> None:
    """One epoch: re-seed, train every batch, validate, log and save (rank 0)."""
    config, ctx = run.config, run.ctx
    started = time.perf_counter()
    seed = _epoch_seed(config.seed, epoch, ctx.rank)
    _seed_everything(seed)
    loader = epoch_loader(
        run.items,
        config=config.data,
        spatial_dims=run.info.spatial_dims,
        patch_size=run.patch_size,
        num_classes=run.info.num_classes,
        batch_size=config.optim.batch_size,
        epoch_seed=seed,
        world_size=ctx.world_size,
        rank=ctx.rank,
    )
    steps = len(loader)
    if run.progress and ctx.is_main:
        run.progress(ProgressEvent("start", epoch + 1, config.optim.epochs, 0, steps))
    run.net.train()
    factor = _ranking_factor(config.loss, epoch)
    run.loss.ranking_weight = _ranking_weight(config.loss, factor, run.balance, required=False)
    log = _EpochLog()
    for step, batch in enumerate(loader, start=1):
        _train_step(run, epoch, step, steps, batch, factor, log)
    row = _epoch_row(run, epoch, steps, factor, log)
    if ctx.is_main and run.val_cases and config.val_every and _validates(config, epoch):
        row["val_dice"], row["val_aurc"] = validate(
            run.model, run.val_cases, config, run.patch_size, run.info.num_classes
        )
    row["seconds"] = time.perf_counter() - started
    run.history.append(row)
    if ctx.is_main:
        _save_epoch(run, epoch, row, steps)
    ctx.barrier()


def _train_step(
    run: _Run, epoch: int, step: int, steps: int, batch: dict[str, Any], factor: float, log: _EpochLog
) -> None:
    """One optimizer step on ``batch``; its loss parts, ranking weight, learning rate, gradient norms to ``log``."""
    config, loss_cfg, epochs = run.config, run.config.loss, run.config.optim.epochs
    global_step = epoch * steps + step - 1
    lr = config.optim.lr * lr_factor(
        config.optim.schedule, global_step, epochs * steps, config.optim.warmup_epochs * steps
    )
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    image = _plain(batch["image"]).to(run.ctx.device, dtype=torch.float32)
    label = _plain(batch["label"]).to(run.ctx.device, dtype=torch.long)
    run.optimizer.zero_grad(set_to_none=True)
    parts = _loss_parts(run, image, label, batch)
    norms = None
    if loss_cfg.grad_norm_every and global_step % loss_cfg.grad_norm_every == 0:
        norms = run.ctx.mean(_grad_norms(parts[1:], run.model))
        for key, value in zip(("segmentation", "ranking"), norms):
            run.balance[key] = ema(run.balance[key], value, loss_cfg.balance_momentum)
    weight = _ranking_weight(loss_cfg, factor, run.balance, required=True)
    if weight != run.loss.ranking_weight:  # a gradient-balanced weight, just measured on these parts
        run.loss.ranking_weight = weight
        parts = parts.reweighted(weight)
    if norms is not None:
        ratio = weight * norms[1] / norms[0] if norms[0] > 0 else float("nan")
        log.grad_rows.append([*norms, ratio])
    values = [p.detach().item() for p in parts]
    named = dict(zip(LossParts._fields, values))
    # Checked before the optimizer step, on every rank together: a non-finite step never reaches the weights, and
    # no checkpoint is written from it (checkpoints/last.pt keeps the state after the last finished epoch).
    total = run.ctx.mean([named["total"]])[0] if run.ctx.distributed else named["total"]
    if not math.isfinite(total):
        ids = batch.get("case_id")
        cases = f", cases {list(ids)}" if isinstance(ids, (list, tuple)) and ids else ""
        raise ValueError(
            f"Expected a finite training loss, but got {named['total']} at epoch {epoch + 1}, step {step} of "
            f"{steps}{cases} ({named}); the weights were not updated from this step and nothing was saved from it "
            f"(checkpoints/last.pt holds the last finished epoch, {epoch}). Try a lower `optim.lr` or "
            "`loss.ranking_weight`."
        )
    parts.total.backward()
    run.optimizer.step()
    log.sums += values
    log.weights.append(weight)
    log.lrs.append(lr)
    if run.progress and run.ctx.is_main:
        run.progress(ProgressEvent("step", epoch + 1, epochs, step, steps, named))


def _loss_parts(run: _Run, image: torch.Tensor, label: torch.Tensor, batch: dict[str, Any]) -> LossParts:
    """The batch's loss parts at the loss's current ranking weight (all heads with ``loss.heads: all``)."""
    if isinstance(run.loss, MultiHeadSelectiveLoss):
        head_logits = run.net(image, heads=True)
        mean = None
        if run.loss.guidance_weight > 0:
            mean = _plain(batch["annotator_mean"]).to(run.ctx.device, dtype=torch.float32)
        return run.loss.parts(head_logits, label, mean)
    return run.loss.parts(run.net(image), label)


def _ranking_factor(loss: LossConfig, epoch: int) -> float:
    """The epoch's ranking weight, or with ``ranking_balance`` its two-stage / warm-up factor (times the balanced
    weight)."""
    if loss.ranking_balance > 0:
        return ranking_weight_at(dataclasses.replace(loss, ranking_weight=1.0), epoch)
    return ranking_weight_at(loss, epoch)


def _ranking_weight(loss: LossConfig, factor: float, balance: dict[str, float | None], *, required: bool) -> float:
    """``factor``, times the gradient-balanced weight with ``ranking_balance`` (``factor`` alone before the first
    gradient measurement unless ``required``)."""
    if loss.ranking_balance <= 0:
        return factor
    s_norm, r_norm = balance["segmentation"], balance["ranking"]
    if s_norm is None or r_norm is None:
        assert not required  # measured at global step 0 of the run
        return factor
    return factor * balanced_ranking_weight(s_norm, r_norm, loss.ranking_balance)


def _validates(config: TrainConfig, epoch: int) -> bool:
    return (epoch + 1) % config.val_every == 0 or epoch + 1 == config.optim.epochs


def _epoch_row(run: _Run, epoch: int, steps: int, factor: float, log: _EpochLog) -> dict[str, float]:
    """The epoch's ``metrics.csv`` row, validation not yet filled in (NaN)."""
    means = run.ctx.mean((log.sums / max(steps, 1)).tolist())  # LossParts order; ``loss`` is the column of the total
    grads = np.mean(log.grad_rows, axis=0).tolist() if log.grad_rows else [float("nan")] * 4
    return {
        "epoch": float(epoch + 1),
        "loss": means[0],
        "segmentation": means[1],
        "ranking": means[2],
        "guidance": means[3],
        "ranking_weight": float(np.mean(log.weights)) if log.weights else factor,
        "lr": float(np.mean(log.lrs)) if log.lrs else float("nan"),
        "grad_segmentation": grads[0],
        "grad_ranking": grads[1],
        "grad_guidance": grads[2],
        "grad_ratio": grads[3],
        "val_dice": float("nan"),
        "val_aurc": float("nan"),
    }


def _save_epoch(run: _Run, epoch: int, row: dict[str, float], steps: int) -> None:
    """Rank 0 after each epoch: checkpoint, snapshot, ``metrics.csv``, TensorBoard, the progress event."""
    config, model = run.config, run.model
    rng = capture_rng_state()
    save_checkpoint(
        run.checkpoint_path,
        {
            "model": model.state_dict(),
            "spec": run.spec.to_dict(),
            "optimizer": run.optimizer.state_dict(),
            "epoch": epoch + 1,
            "history": run.history,
            "rng": rng,
            "config": config_to_dict(config),
            "balance": {k: v for k, v in run.balance.items() if v is not None},
        },
    )
    if epoch + 1 in config.snapshot_epochs:
        _save_weights(folder.snapshot_path(run.run_dir, epoch + 1), model, run.spec, config, epoch + 1)
    if is_best_epoch(run.history, config.best_metric):
        _save_weights(run.run_dir / folder.BEST, model, run.spec, config, epoch + 1)
    atomic_write_text(run.run_dir / folder.METRICS, _metrics_csv(run.history))
    if run.writer is not None:
        for key, value in row.items():
            if key != "epoch" and np.isfinite(value):
                run.writer.add_scalar(key, value, epoch + 1)
        run.writer.flush()
    if run.progress:
        run.progress(ProgressEvent("epoch", epoch + 1, config.optim.epochs, steps, steps, row))


BEST_METRICS = {"val_dice": True, "val_aurc": False, "none": True}
"""``best_metric`` -> whether higher is better (``"none"``: no best checkpoint)."""


def is_best_epoch(history: list[dict[str, float]], metric: str) -> bool:
    """Whether the last row of ``history`` is strictly the best so far in ``metric`` (NaN rows, e.g. epochs without
    validation, never are). Decided from the history alone, so a resumed run keeps the same best checkpoint.

    Example:
        >>> rows = [{"val_dice": 0.5}, {"val_dice": float("nan")}, {"val_dice": 0.7}]
        >>> is_best_epoch(rows, "val_dice"), is_best_epoch(rows[:2], "val_dice"), is_best_epoch(rows, "none")
        (True, False, False)
    """
    if metric == "none" or not history:
        return False
    value = history[-1].get(metric, math.nan)
    if not math.isfinite(value):
        return False
    earlier = [r.get(metric, math.nan) for r in history[:-1]]
    earlier = [v for v in earlier if math.isfinite(v)]
    if not earlier:
        return True
    return value > max(earlier) if BEST_METRICS[metric] else value < min(earlier)


def _finish(run: _Run) -> TrainResult:
    """The final weights (``model.pt``, unless resuming a finished run) and the result."""
    ctx, epochs = run.ctx, run.config.optim.epochs
    model_path = run.run_dir / folder.MODEL
    finished_before = run.start_epoch == epochs and model_path.is_file()  # resuming a finished run: nothing to redo
    if ctx.is_main and not finished_before:
        _save_weights(model_path, run.model, run.spec, run.config, epochs)
    if ctx.is_main and run.writer is not None:
        run.writer.close()
    ctx.barrier()
    return TrainResult(run_dir=run.run_dir, model_path=model_path, history=run.history, model=run.model.eval())


def _save_weights(path: Path, model: SegmentationNet, spec: ModelSpec, config: TrainConfig, epoch: int) -> None:
    """Final weights (or a snapshot) + architecture: what ``load_model`` reads."""
    save_checkpoint(
        path,
        {
            "model": model.state_dict(),
            "spec": spec.to_dict(),
            "config": config_to_dict(config),
            "epoch": epoch,
            "selectseg_version": __version__,
        },
    )


def _grad_norms(parts: tuple[torch.Tensor, ...], model: nn.Module) -> list[float]:
    """The L2 norm of each loss part's gradient with respect to all trainable parameters (0 for a part that does not
    depend on them, e.g. the baseline's zero ranking loss). One extra backward pass per part; the graph is kept for
    the training step's own backward, and no ``.grad`` is touched."""
    params = [p for p in model.parameters() if p.requires_grad]
    norms = []
    for part in parts:
        if not part.requires_grad:
            norms.append(0.0)
            continue
        grads = torch.autograd.grad(part, params, retain_graph=True, allow_unused=True)
        squares = [g.detach().float().pow(2).sum() for g in grads if g is not None]
        norms.append(float(torch.stack(squares).sum().sqrt()) if squares else 0.0)
    return norms


def _plain(value: Any) -> torch.Tensor:
    """A plain tensor from MONAI's MetaTensor (or anything tensor-like)."""
    as_tensor = getattr(value, "as_tensor", None)
    return as_tensor() if callable(as_tensor) else torch.as_tensor(value)


def loss_from_config(loss: LossConfig, *, validate_args: bool = True) -> TrainingLoss:
    """The whole training loss that ``loss`` describes, at its configured ``ranking_weight``.

    A :class:`~selectseg.losses.SelectiveSegmentationLoss` (without a ranking loss for ``ranking: none``, the
    baseline: ranking part 0), or with ``heads: all`` a :class:`~selectseg.losses.MultiHeadSelectiveLoss` around it
    (summed over the heads, plus ``guidance_weight`` x EDUE's guidance). Both give
    :class:`~selectseg.losses.LossParts` through ``parts(...)`` and take a new ``ranking_weight`` between steps.

    Args:
        loss: the ``loss`` section of a :class:`TrainConfig`.
        validate_args: check every batch's tensors (see :func:`~selectseg.losses.selective_segmentation_loss`).

    Example:
        >>> from selectseg.runs.config import LossConfig
        >>> loss_from_config(LossConfig(ranking="exact", segmentation="ce"))
        SelectiveSegmentationLoss(
          ranking_weight=2000.0
          (ranking_loss): UncertaintyRankingLoss(margin=0.1, mode='exact', reduction='mean')
        )
    """
    seg = segmentation_loss(loss.segmentation, class_weights=loss.class_weights or None)
    ranking = None
    if loss.ranking != "none":
        ranking = UncertaintyRankingLoss(
            margin=loss.margin,
            mode=loss.ranking,
            n_wrong=loss.n_wrong,
            n_correct=loss.n_correct,
            reduction=loss.reduction,
            validate_args=validate_args,
        )
    selective = SelectiveSegmentationLoss(
        seg, ranking, loss.ranking_weight, uncertainty=loss.uncertainty, validate_args=validate_args
    )
    if loss.heads == "all":
        return MultiHeadSelectiveLoss(selective, guidance_weight=loss.guidance_weight)
    return selective


def validate(
    model: SegmentationNet,
    cases: list[Any],
    config: TrainConfig,
    patch_size: tuple[int, ...],
    num_classes: int,
) -> tuple[float, float]:
    """Mean Dice at coverage 1 and Dice-AURC (max-softmax uncertainty) of ``model`` on ``cases``."""
    device = next(model.parameters()).device
    score = get_score("max_softmax")
    preds, refs, uncs = [], [], []
    was_training = model.training
    for case in cases:
        image = normalize_image(case.image, config.data.normalize).to(device)
        probs = predict_probabilities(
            model,
            image,
            size_divisor=model.spec.size_divisor,
            roi_size=patch_size,
            sw_batch_size=config.inference.sw_batch_size,
            overlap=config.inference.overlap,
        )
        preds.append(probs.max(0).indices.cpu().numpy())
        uncs.append(score(probs.unsqueeze(0))[0].cpu().numpy())
        refs.append(reference_labels(case, config.data.annotator, num_classes))
    model.train(was_training)
    curve = selective_dice_curve(preds, refs, uncs, num_classes=num_classes)
    return float(curve.dice[-1]), curve.aurc


def _metrics_csv(history: list[dict[str, float]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(METRIC_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (int(row[k]) if k == "epoch" else f"{row[k]:.6g}") for k in METRIC_COLUMNS})
    return buffer.getvalue()


def _tensorboard(run_dir: Path, config: TrainConfig) -> Any:
    if not config.tensorboard:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))
