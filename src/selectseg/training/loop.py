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

import csv
import dataclasses
import io
import json
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
from ..data.annotators import reference_labels
from ..data.splits import kfold_split
from ..losses import UncertaintyRankingLoss, segmentation_loss
from ..losses.guidance import disagreement_guidance_loss
from ..losses.selective import SelectiveSegmentationLoss
from ..metrics import selective_dice_curve
from ..models import ModelSpec, SegmentationNet, build_model
from ..models.inference import normalize_image, predict_probabilities
from ..runs import folder
from ..runs.checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from ..runs.config import TrainConfig, config_diff, config_to_dict, ranking_weight_at, save_config
from ..runs.data import load_cases
from ..uncertainty import get_score
from .data import epoch_loader, resolve_patch_size, split_cases, training_items
from .distributed import DistributedContext, init_distributed
from .schedule import balanced_ranking_weight, ema, lr_factor

__all__ = ["METRIC_COLUMNS", "ProgressEvent", "TrainResult", "train"]

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
"""``metrics.csv`` columns: the epoch's mean loss parts (ranking unweighted, guidance weighted), the mean ranking
weight and learning rate of its steps, the mean parameter-gradient norms of the parts measured in the epoch
(``grad_ranking`` unweighted; ``grad_ratio`` = weight x ``grad_ranking`` / ``grad_segmentation``; empty when no step
of the epoch was measured), validation Dice and AURC, seconds."""


@dataclass(frozen=True)
class ProgressEvent:
    """What the loop reports to a progress display (the library itself never prints).

    ``kind`` is ``"start"`` (``steps`` = batches per epoch), ``"step"`` (``parts`` = this batch's loss parts) or
    ``"epoch"`` (``parts`` = the epoch's logged row).
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
            or a config differing from the saved one on resume.
    """
    run_dir = Path(run_dir)
    resolved = _prepare_run_dir(config, run_dir, resume)
    ctx = init_distributed(resolved.device)
    try:
        return _train(resolved, run_dir, ctx, resume, progress)
    finally:
        ctx.close()


def _prepare_run_dir(config: TrainConfig | None, run_dir: Path, resume: bool) -> TrainConfig:
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
        if mine != theirs:
            raise ValueError(
                f"Cannot resume {str(run_dir)!r} with a different config ({_dict_diff(theirs, mine)}); "
                "only optim.epochs may change."
            )
        return config
    if config is None:
        raise ValueError("A config is needed to start a new run (only `resume` can take the saved one).")
    folder.check_new_run(run_dir)
    return config


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


def _train(
    config: TrainConfig,
    run_dir: Path,
    ctx: DistributedContext,
    resume: bool,
    progress: Callable[[ProgressEvent], None] | None,
) -> TrainResult:
    _set_deterministic(config.deterministic)
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
    spec = ModelSpec(
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
    patch_size = resolve_patch_size(
        config.data.patch_size, [c.spatial_shape for c in dataset.cases], info.spatial_dims, spec.size_divisor
    )
    items = training_items(train_cases, config.data.normalize)

    _seed_everything(config.seed)
    model = build_model(spec).to(ctx.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.optim.lr, weight_decay=config.optim.weight_decay)
    history: list[dict[str, float]] = []
    start_epoch = 0
    balance: dict[str, float | None] = {"segmentation": None, "ranking": None}  # moving averages of the norms
    checkpoint_path = run_dir / folder.CHECKPOINT
    if resume and checkpoint_path.is_file():
        payload = load_checkpoint(checkpoint_path, spec=spec)
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        start_epoch = int(payload["epoch"])
        history = [dict(row) for row in payload["history"]]
        restore_rng_state(payload["rng"])
        balance.update(payload.get("balance", {}))
    elif ctx.is_main:
        atomic_write_text(run_dir / folder.CONFIG, save_config(config))
        run_info = {
            "selectseg_version": __version__,
            "torch_version": torch.__version__,
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
    ctx.barrier()

    net: nn.Module = model
    if ctx.distributed:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
    loss_fn = _make_loss(config)
    writer = _tensorboard(run_dir, config) if ctx.is_main else None
    epochs = config.optim.epochs

    for epoch in range(start_epoch, epochs):
        started = time.perf_counter()
        seed = _epoch_seed(config.seed, epoch, ctx.rank)
        _seed_everything(seed)
        loader = epoch_loader(
            items,
            config=config.data,
            spatial_dims=info.spatial_dims,
            patch_size=patch_size,
            num_classes=info.num_classes,
            batch_size=config.optim.batch_size,
            epoch_seed=seed,
            world_size=ctx.world_size,
            rank=ctx.rank,
        )
        steps = len(loader)
        if progress and ctx.is_main:
            progress(ProgressEvent("start", epoch + 1, epochs, 0, steps))
        net.train()
        loss_cfg = config.loss
        if loss_cfg.ranking_balance > 0:  # the two-stage / warm-up factor of the epoch times the balanced weight
            factor = ranking_weight_at(dataclasses.replace(loss_cfg, ranking_weight=1.0), epoch)
        else:
            factor = ranking_weight_at(loss_cfg, epoch)
        sums, weights, lrs = np.zeros(4), [], []
        grad_rows: list[list[float]] = []
        for step, batch in enumerate(loader, start=1):
            global_step = epoch * steps + step - 1
            lr = config.optim.lr * lr_factor(
                config.optim.schedule, global_step, epochs * steps, config.optim.warmup_epochs * steps
            )
            for group in optimizer.param_groups:
                group["lr"] = lr
            image = _plain(batch["image"]).to(ctx.device, dtype=torch.float32)
            label = _plain(batch["label"]).to(ctx.device, dtype=torch.long)
            optimizer.zero_grad(set_to_none=True)
            _, seg, ranking, guidance = _step_loss(net, image, label, batch, loss_fn, factor, config, ctx.device)
            norms = None
            if loss_cfg.grad_norm_every and global_step % loss_cfg.grad_norm_every == 0:
                norms = ctx.mean(_grad_norms((seg, ranking, guidance), model))
                for key, value in zip(("segmentation", "ranking"), norms):
                    balance[key] = ema(balance[key], value, loss_cfg.balance_momentum)
            if loss_cfg.ranking_balance > 0:
                s_norm, r_norm = balance["segmentation"], balance["ranking"]
                assert s_norm is not None and r_norm is not None  # measured at global step 0 of the run
                weight = factor * balanced_ranking_weight(s_norm, r_norm, loss_cfg.ranking_balance)
            else:
                weight = factor
            if norms is not None:
                ratio = weight * norms[1] / norms[0] if norms[0] > 0 else float("nan")
                grad_rows.append([*norms, ratio])
            total = seg + weight * ranking + guidance
            total.backward()
            optimizer.step()
            values = [p.detach().item() for p in (total, seg, ranking, guidance)]
            sums += values
            weights.append(weight)
            lrs.append(lr)
            if progress and ctx.is_main:
                named = dict(zip(("loss", "seg", "rank", "guide"), values))
                progress(ProgressEvent("step", epoch + 1, epochs, step, steps, named))
        means = ctx.mean((sums / max(steps, 1)).tolist())
        grads = np.mean(grad_rows, axis=0).tolist() if grad_rows else [float("nan")] * 4
        row: dict[str, float] = {
            "epoch": float(epoch + 1),
            "loss": means[0],
            "segmentation": means[1],
            "ranking": means[2],
            "guidance": means[3],
            "ranking_weight": float(np.mean(weights)) if weights else factor,
            "lr": float(np.mean(lrs)) if lrs else float("nan"),
            "grad_segmentation": grads[0],
            "grad_ranking": grads[1],
            "grad_guidance": grads[2],
            "grad_ratio": grads[3],
            "val_dice": float("nan"),
            "val_aurc": float("nan"),
        }
        if (
            ctx.is_main
            and val_cases
            and config.val_every
            and ((epoch + 1) % config.val_every == 0 or epoch + 1 == epochs)
        ):
            row["val_dice"], row["val_aurc"] = validate(model, val_cases, config, patch_size, info.num_classes)
        row["seconds"] = time.perf_counter() - started
        history.append(row)
        if ctx.is_main:
            rng = capture_rng_state()
            save_checkpoint(
                checkpoint_path,
                {
                    "model": model.state_dict(),
                    "spec": spec.to_dict(),
                    "optimizer": optimizer.state_dict(),
                    "epoch": epoch + 1,
                    "history": history,
                    "rng": rng,
                    "config": config_to_dict(config),
                    "balance": {k: v for k, v in balance.items() if v is not None},
                },
            )
            if epoch + 1 in config.snapshot_epochs:
                _save_weights(folder.snapshot_path(run_dir, epoch + 1), model, spec, config, epoch + 1)
            atomic_write_text(run_dir / folder.METRICS, _metrics_csv(history))
            if writer is not None:
                for key, value in row.items():
                    if key != "epoch" and np.isfinite(value):
                        writer.add_scalar(key, value, epoch + 1)
                writer.flush()
            if progress:
                progress(ProgressEvent("epoch", epoch + 1, epochs, steps, steps, row))
        ctx.barrier()

    model_path = run_dir / folder.MODEL
    finished_before = start_epoch == epochs and model_path.is_file()  # resuming a finished run: nothing to redo
    if ctx.is_main and not finished_before:
        _save_weights(model_path, model, spec, config, epochs)
    if ctx.is_main and writer is not None:
        writer.close()
    ctx.barrier()
    return TrainResult(run_dir=run_dir, model_path=model_path, history=history, model=model.eval())


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


def _step_loss(
    net: nn.Module,
    image: torch.Tensor,
    label: torch.Tensor,
    batch: dict[str, Any],
    loss_fn: LossFn,
    weight: float,
    config: TrainConfig,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, segmentation, ranking, weighted guidance) of one batch, the ranking part weighted by ``weight`` in
    the total; with ``loss.heads: all`` the segmentation and ranking parts are summed over the heads (layer
    ensembles, EDUE) and the guidance term is added."""
    if config.loss.heads == "main":
        total, seg, ranking = loss_fn(net(image), label, weight)
        return total, seg, ranking, torch.zeros((), device=total.device)
    head_logits = net(image, heads=True)
    per_head = [loss_fn(logits, label, weight) for logits in head_logits]
    total = torch.stack([p[0] for p in per_head]).sum()
    seg = torch.stack([p[1] for p in per_head]).sum()
    ranking = torch.stack([p[2].to(total.device) for p in per_head]).sum()
    guidance = torch.zeros((), device=total.device)
    if config.loss.guidance_weight > 0:
        mean = _plain(batch["annotator_mean"]).to(device, dtype=torch.float32)
        guidance = config.loss.guidance_weight * disagreement_guidance_loss(head_logits, mean)
    return total + guidance, seg, ranking, guidance


def _plain(value: Any) -> torch.Tensor:
    """A plain tensor from MONAI's MetaTensor (or anything tensor-like)."""
    as_tensor = getattr(value, "as_tensor", None)
    return as_tensor() if callable(as_tensor) else torch.as_tensor(value)


LossFn = Callable[[torch.Tensor, torch.Tensor, float], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
"""``loss(logits, labels, ranking_weight) -> (total, segmentation, ranking)``."""


def _make_loss(config: TrainConfig) -> LossFn:
    seg = segmentation_loss(config.loss.segmentation, class_weights=config.loss.class_weights or None)
    if config.loss.ranking == "none":

        def baseline(
            logits: torch.Tensor, labels: torch.Tensor, weight: float
        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            value = seg(logits, labels)
            return value, value, torch.zeros(())

        return baseline
    selective = SelectiveSegmentationLoss(
        seg,
        UncertaintyRankingLoss(
            margin=config.loss.margin,
            mode=config.loss.ranking,
            n_wrong=config.loss.n_wrong,
            n_correct=config.loss.n_correct,
            reduction=config.loss.reduction,
        ),
        ranking_weight=config.loss.ranking_weight,
        uncertainty=config.loss.uncertainty,
    )

    def combined(
        logits: torch.Tensor, labels: torch.Tensor, weight: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        parts = selective.parts(logits, labels)  # the ranking part is computed (and logged) even at weight 0
        return parts.segmentation + weight * parts.ranking, parts.segmentation, parts.ranking

    return combined


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
