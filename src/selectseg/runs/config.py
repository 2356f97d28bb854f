"""Training configuration: frozen dataclasses, loaded from YAML with ``key=value`` overrides, saved in every run.

A config file holds any subset of the sections below; everything else keeps its default. Keys are checked: a typo
stops with the closest valid key. Example ``config.yaml``::

    data:
      path: /data/Dataset001_Heart     # an nnU-Net/MSD folder, or "synthetic" (the built-in generator)
      patch_size: [96, 96, 96]
    loss:
      ranking: exact                   # none (baseline) | exact | sampled
    optim:
      epochs: 100

and on the command line ``selectseg train config.yaml --set optim.lr=1e-4 --set loss.ranking=sampled``.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .._validation import look_up_option
from ..data.annotators import ANNOTATOR_POLICIES
from ..losses.segmentation import SEGMENTATION_LOSSES
from ..models.factory import HEAD_UPSAMPLING

METHODS: dict[str, list[str]] = {
    "standard": [],
    "layer_ensemble": ["model.name=multihead_unet", "loss.heads=all"],
    "edue": ["model.name=multihead_unet", "loss.heads=all", "data.annotator=random", "loss.guidance_weight=1.0"],
}
"""``--method`` presets: the overrides each applies (before the user's own ``--set``)."""

RECOMMENDED = ("loss.ranking=exact", "loss.ranking_weight=2000", "loss.ranking_balance=0", "optim.schedule=poly")
"""The fixed part of the uncertainty-aware configuration chosen on validation images by the completed GlaS paired-seed
study (docs/results.md, section 1): the exact ranking loss at the paper's weight with a decaying learning rate, trained
to convergence, switched on halfway (:data:`RECOMMENDED_START_FRACTION`; use :func:`recommended_overrides`). It did
not measurably beat the baseline there (see docs/training.md, "Which configuration")."""

RECOMMENDED_START_FRACTION = 0.5
"""The two-stage schedule the study chose: the segmentation loss alone for this fraction of the epochs, then the
combined loss (Ding et al. Appendix C)."""


def recommended_overrides(epochs: int) -> list[str]:
    """The recommended uncertainty-aware overrides for a run of ``epochs`` epochs: :data:`RECOMMENDED` and the ranking
    loss from epoch ``floor(epochs * RECOMMENDED_START_FRACTION)``.

    Example:
        >>> recommended_overrides(80)[-1]
        'loss.ranking_start_epoch=40'
    """
    return [*RECOMMENDED, f"loss.ranking_start_epoch={int(epochs * RECOMMENDED_START_FRACTION)}"]


__all__ = [
    "METHODS",
    "RECOMMENDED",
    "RECOMMENDED_START_FRACTION",
    "DataConfig",
    "LossConfig",
    "ModelConfig",
    "OptimConfig",
    "SyntheticConfig",
    "TrainConfig",
    "apply_overrides",
    "config_diff",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "ranking_weight_at",
    "recommended_overrides",
    "with_overrides",
]

RANKING_MODES = ("none", "exact", "sampled")
SCHEDULES = ("constant", "cosine", "poly")
"""``optim.schedule`` values (see :func:`selectseg.training.schedule.lr_factor`)."""


@dataclass(frozen=True)
class SyntheticConfig:
    """The built-in synthetic data set (used when ``data.path`` is ``"synthetic"``)."""

    num_train: int = 24
    num_test: int = 12
    spatial_dims: int = 2
    size: int = 64
    num_classes: int = 2
    num_annotators: int = 3
    seed: int = 0


@dataclass(frozen=True)
class DataConfig:
    """Where the training cases come from and how patches are drawn.

    Attributes:
        path: a dataset folder (nnU-Net / MSD layout or a registered format) or ``"synthetic"``.
        format: a registered dataset format, or ``"auto"``.
        val_fraction: fraction of the training cases held out for per-epoch validation (seeded split; 0 = none).
        folds: when >= 2, validate on fold ``fold`` of a subject-level k-fold split instead (patients kept
            together where the format records them; see :func:`selectseg.data.splits.kfold_split`).
        fold: which fold is held out, in ``[0, folds)``.
        annotator: the training target when a case has several annotators: ``"majority"`` (per-voxel vote; a tie
            goes to the higher class), ``"first"``, or ``"random"`` (one annotator drawn per sample and iteration).
        patch_size: training patch size; empty = whole images (2D) or up to 96 per axis (3D), rounded up to the
            network's size divisor. Also the sliding-window size for 3D inference.
        augment: random flips, in-plane 90-degree rotations and intensity scale/shift (MONAI transforms).
        normalize: per-case, per-channel intensity normalisation: ``"zscore"`` or ``"none"``.
        samples_per_epoch: patches per epoch (0 = one per training case).
        num_workers: data-loading worker processes.
        scale: resampling factor in (0, 1] applied to every case after reading, any format (1 = as read; 0.25 brings a
            full-size RIGA photo, 2376 x 1584, to 594 x 396): images area-averaged, labels nearest, affine updated
            (:func:`selectseg.data.resize.resize_dataset`).
        crop_size: 0 = off; else the format reader's ``crop_size`` option (RIGA: the optic-disc region resampled to
            ``crop_size x crop_size``); a format whose reader has no such option refuses it when read.
    """

    path: str = "synthetic"
    format: str = "auto"
    val_fraction: float = 0.2
    folds: int = 0
    fold: int = 0
    annotator: str = "majority"
    patch_size: tuple[int, ...] = ()
    augment: bool = True
    normalize: str = "zscore"
    samples_per_epoch: int = 0
    num_workers: int = 0
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    scale: float = 1.0
    crop_size: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.scale <= 1.0:
            raise ValueError(f"Expected `data.scale` in (0, 1] (1 = as read), but got {self.scale}.")
        if self.crop_size < 0:
            raise ValueError(f"Expected `data.crop_size` >= 0 (0 = off), but got {self.crop_size}.")


@dataclass(frozen=True)
class ModelConfig:
    """The network; spatial dims, channels and classes come from the data (see :class:`~selectseg.models.ModelSpec`).

    ``head_upsample``: how a ``multihead_unet``'s coarser heads are brought to full resolution, ``"bilinear"``
    (trilinear in 3D, as Layer Ensembles do) or ``"nearest"`` (runs made before the option); other networks ignore it.
    """

    name: str = "unet"
    channels: tuple[int, ...] = (16, 32, 64, 128)
    num_res_units: int = 2
    dropout: float = 0.0
    norm: str = "instance"
    head_upsample: str = "bilinear"


@dataclass(frozen=True)
class LossConfig:
    """Segmentation loss, plus the uncertainty ranking loss of Ding et al. unless ``ranking`` is ``"none"``.

    Attributes:
        segmentation: ``"ce"``, ``"dice"`` or ``"dice_ce"`` (MONAI ``DiceCELoss``, softmax, background included).
        ranking: ``"none"`` (baseline), ``"exact"`` (all pairs) or ``"sampled"`` (the authors' subsample).
        ranking_weight: lambda x scale (2 x 1000 in the released code).
        margin, n_wrong, n_correct, reduction: options of :func:`~selectseg.losses.uncertainty_ranking_loss`.
        uncertainty: the registered uncertainty score the ranking loss orders.
        heads: ``"main"`` (the full-resolution output only) or ``"all"``: the loss (segmentation and ranking) summed
            over every head of a multi-head network (layer ensembles, EDUE; needs ``model.name='multihead_unet'``).
        guidance_weight: lambda_g of EDUE's disagreement guidance loss (MSE between the heads' foreground variance
            and the annotators' m(1-m)); 0 = off. Needs ``heads='all'``.
        class_weights: per-class weights of the segmentation loss, one per class (empty = unweighted); Ding et
            al.'s released code weights the myocardium x2.
        ranking_start_epoch: two-stage schedule (Ding et al. Appendix C): the first E epochs train with the
            segmentation loss alone (ranking weight 0), then the combined loss. 0 (the paper's best) = from the start.
        ranking_warmup_epochs: after the start epoch, ramp the ranking weight linearly over W epochs: epoch e
            (0-based) uses ``ranking_weight * min(1, (e - E + 1) / W)``; 0 = full weight at once.
        ranking_balance: 0 = the fixed ``ranking_weight``. > 0 = a gradient-balanced weight: at every gradient
            measurement (``grad_norm_every``) the weight is set so that the weighted ranking loss's parameter
            gradient has this fraction of the segmentation loss's gradient norm, ``w = f * |g_seg| / |g_rank|``
            (norms smoothed by an exponential moving average, momentum ``balance_momentum``); the two-stage
            schedule and warm-up above still multiply it. ``ranking_weight`` is then unused.
        balance_momentum: momentum of the moving averages of the two gradient norms, in [0, 1) (0 = the last
            measurement alone).
        grad_norm_every: measure the parameter-gradient norm of each loss part (segmentation, unweighted ranking,
            weighted guidance) every N optimizer steps, with one extra backward pass per part; their means are
            logged per epoch (``metrics.csv``). The training step itself is unchanged. 0 = never (then
            ``ranking_balance`` must be 0).
    """

    segmentation: str = "dice_ce"
    ranking: str = "none"
    ranking_weight: float = 2000.0
    margin: float = 0.1
    n_wrong: int = 300
    n_correct: int = 6600
    reduction: str = "mean"
    uncertainty: str = "max_softmax"
    heads: str = "main"
    guidance_weight: float = 0.0
    class_weights: tuple[float, ...] = ()
    ranking_start_epoch: int = 0
    ranking_warmup_epochs: int = 0
    ranking_balance: float = 0.0
    balance_momentum: float = 0.9
    grad_norm_every: int = 20


@dataclass(frozen=True)
class OptimConfig:
    """Adam (Ding et al.: learning rate 2e-4, batch 8) with a learning-rate schedule.

    Attributes:
        lr: the base learning rate.
        schedule: ``"constant"``, ``"cosine"`` or ``"poly"`` (nnU-Net's ``(1 - t/T) ** 0.9``), applied per optimizer
            step over the whole run (see :mod:`selectseg.training.schedule`). Resuming with a larger
            ``optim.epochs`` stretches the decay over the new length from the step reached.
        warmup_epochs: linear warm-up over the first N epochs (0 = none), at most ``epochs``.
    """

    lr: float = 2e-4
    weight_decay: float = 0.0
    batch_size: int = 8
    epochs: int = 50
    schedule: str = "constant"
    warmup_epochs: int = 0


@dataclass(frozen=True)
class InferenceConfig:
    """Sliding-window inference for 3D (and for validation); 2D images go through whole."""

    sw_batch_size: int = 4
    overlap: float = 0.25


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; saved resolved as ``config.yaml`` in the run folder.

    Attributes:
        seed: seeds the split, the initial weights, the data order and augmentation (per epoch).
        deterministic: ``torch.use_deterministic_algorithms(True)``; with it a resumed run ends bit-identical to an
            uninterrupted one on the same machine.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``/``"cuda:N"``.
        tensorboard: also log to TensorBoard when it is installed.
        val_every: validate every N epochs (0 = never).
        best_metric: keep ``checkpoints/best.pt``, the weights of the epoch with the best value of this validation
            metric so far: ``val_dice`` (higher is better; the default), ``val_aurc`` (lower) or ``none``.
        snapshot_epochs: also save the weights after these epochs as ``snapshots/epoch_NNNN.pt`` (same format as
            ``model.pt``; ``load_run(run, snapshot=N)`` evaluates one), e.g. to evaluate one run at several budgets.
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    seed: int = 0
    deterministic: bool = True
    device: str = "auto"
    tensorboard: bool = True
    val_every: int = 1
    snapshot_epochs: tuple[int, ...] = ()
    best_metric: str = "val_dice"

    def __post_init__(self) -> None:
        validate_config(self)


def ranking_weight_at(loss: LossConfig, epoch: int) -> float:
    """The ranking weight used in ``epoch`` (0-based) under the two-stage schedule and warm-up of ``loss``.

    Example:
        >>> cfg = LossConfig(ranking="exact", ranking_weight=2000.0, ranking_start_epoch=2, ranking_warmup_epochs=4)
        >>> [ranking_weight_at(cfg, e) for e in range(7)]
        [0.0, 0.0, 500.0, 1000.0, 1500.0, 2000.0, 2000.0]
    """
    if loss.ranking == "none" or epoch < loss.ranking_start_epoch:
        return 0.0
    if loss.ranking_warmup_epochs == 0:
        return loss.ranking_weight
    return loss.ranking_weight * min(1.0, (epoch - loss.ranking_start_epoch + 1) / loss.ranking_warmup_epochs)


def validate_config(config: TrainConfig) -> None:
    """Check values that types alone do not (choices, ranges).

    Raises:
        ValueError: naming the key, the expected values and the value found.
    """
    look_up_option("loss.segmentation", config.loss.segmentation, SEGMENTATION_LOSSES.names())
    look_up_option("loss.ranking", config.loss.ranking, RANKING_MODES)
    look_up_option("loss.reduction", config.loss.reduction, ("mean", "sum"))
    look_up_option("loss.heads", config.loss.heads, ("main", "all"))
    look_up_option("optim.schedule", config.optim.schedule, SCHEDULES)
    look_up_option("model.head_upsample", config.model.head_upsample, HEAD_UPSAMPLING)
    if not 0 <= config.optim.warmup_epochs <= config.optim.epochs:
        raise ValueError(
            f"Expected `optim.warmup_epochs` in [0, optim.epochs={config.optim.epochs}] (a warm-up cannot be longer "
            f"than training), but got {config.optim.warmup_epochs}."
        )
    _range("loss.ranking_balance", config.loss.ranking_balance, 0.0, None)
    if not 0 <= config.loss.balance_momentum < 1:
        raise ValueError(f"Expected `loss.balance_momentum` in [0, 1), but got {config.loss.balance_momentum}.")
    if config.loss.grad_norm_every < 0:
        raise ValueError(f"Expected `loss.grad_norm_every` >= 0, but got {config.loss.grad_norm_every}.")
    if config.loss.ranking_balance > 0:
        if config.loss.ranking == "none":
            raise ValueError("`loss.ranking_balance` > 0 balances the ranking loss, but `loss.ranking` is 'none'.")
        if config.loss.grad_norm_every == 0:
            raise ValueError("`loss.ranking_balance` > 0 needs gradient measurements: set `loss.grad_norm_every` >= 1.")
    look_up_option("best_metric", config.best_metric, ("val_dice", "val_aurc", "none"))
    bad = [e for e in config.snapshot_epochs if not 1 <= e <= config.optim.epochs]
    if bad:
        raise ValueError(
            f"Expected every `snapshot_epochs` entry in [1, optim.epochs={config.optim.epochs}], but got {bad}."
        )
    _range("loss.guidance_weight", config.loss.guidance_weight, 0.0, None)
    if config.loss.guidance_weight > 0 and config.loss.heads != "all":
        raise ValueError("`loss.guidance_weight` > 0 (EDUE) needs `loss.heads: all` (a multi-head network).")
    if config.loss.heads == "all" and config.model.name != "multihead_unet":
        raise ValueError(
            "`loss.heads: all` needs a multi-head network (`model.name: multihead_unet`), "
            f"but got {config.model.name!r}."
        )
    look_up_option("data.annotator", config.data.annotator, ANNOTATOR_POLICIES)
    look_up_option("data.normalize", config.data.normalize, ("zscore", "none"))
    _range("data.val_fraction", config.data.val_fraction, 0.0, 0.9)
    _range("loss.margin", config.loss.margin, 0.0, None)
    _range("loss.ranking_weight", config.loss.ranking_weight, 0.0, None)
    _range("optim.lr", config.optim.lr, 1e-12, None)
    _range("optim.weight_decay", config.optim.weight_decay, 0.0, None)
    _range("inference.overlap", config.inference.overlap, 0.0, 0.95)
    for key, value, low in (
        ("optim.batch_size", config.optim.batch_size, 1),
        ("optim.epochs", config.optim.epochs, 1),
        ("loss.n_wrong", config.loss.n_wrong, 1),
        ("loss.n_correct", config.loss.n_correct, 1),
        ("data.samples_per_epoch", config.data.samples_per_epoch, 0),
        ("data.num_workers", config.data.num_workers, 0),
        ("inference.sw_batch_size", config.inference.sw_batch_size, 1),
        ("val_every", config.val_every, 0),
        ("data.synthetic.num_train", config.data.synthetic.num_train, 1),
        ("data.synthetic.num_test", config.data.synthetic.num_test, 1),
        ("data.synthetic.size", config.data.synthetic.size, 16),
        ("data.synthetic.num_annotators", config.data.synthetic.num_annotators, 1),
    ):
        if value < low:
            raise ValueError(f"Expected `{key}` >= {low}, but got {value}.")
    if any(not w > 0 or w == float("inf") for w in config.loss.class_weights):
        raise ValueError(
            f"Expected `loss.class_weights` to be positive numbers, but got {list(config.loss.class_weights)}."
        )
    for key, value in (
        ("loss.ranking_start_epoch", config.loss.ranking_start_epoch),
        ("loss.ranking_warmup_epochs", config.loss.ranking_warmup_epochs),
    ):
        if value < 0:
            raise ValueError(f"Expected `{key}` >= 0, but got {value}.")
        if value > 0 and config.loss.ranking == "none":
            raise ValueError(f"`{key}` schedules the ranking loss, but `loss.ranking` is 'none'; set exact or sampled.")
    if config.loss.ranking != "none" and config.loss.ranking_start_epoch >= config.optim.epochs:
        raise ValueError(
            f"Expected `loss.ranking_start_epoch` < `optim.epochs` ({config.optim.epochs}) so that some epoch uses the "
            f"ranking loss, but got {config.loss.ranking_start_epoch}."
        )
    if config.data.folds == 1 or config.data.folds < 0:
        raise ValueError(f"Expected `data.folds` to be 0 (off) or >= 2, but got {config.data.folds}.")
    if config.data.folds and not 0 <= config.data.fold < config.data.folds:
        raise ValueError(f"Expected `data.fold` in [0, {config.data.folds}), but got {config.data.fold}.")
    if config.data.synthetic.spatial_dims not in (2, 3):
        raise ValueError(
            f"Expected `data.synthetic.spatial_dims` to be 2 or 3, but got {config.data.synthetic.spatial_dims}."
        )
    if config.data.synthetic.num_classes not in (2, 3):
        raise ValueError(
            f"Expected `data.synthetic.num_classes` to be 2 or 3, but got {config.data.synthetic.num_classes}."
        )
    weights, classes = config.loss.class_weights, config.data.synthetic.num_classes
    if config.data.path == "synthetic" and weights and len(weights) != classes:  # a folder's K is known when read
        raise ValueError(
            f"Expected `loss.class_weights` to hold one weight per class ({classes}, `data.synthetic.num_classes`), "
            f"but got {len(weights)}: {list(weights)}."
        )
    if any(p < 1 for p in config.data.patch_size):
        raise ValueError(f"Expected `data.patch_size` to hold positive ints, but got {list(config.data.patch_size)}.")
    if len(config.model.channels) < 2 or any(c < 1 for c in config.model.channels):
        raise ValueError(
            f"Expected `model.channels` to hold at least 2 positive ints, but got {list(config.model.channels)}."
        )


def _range(key: str, value: float, low: float, high: float | None) -> None:
    if value < low or (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"Expected `{key}` {bound}, but got {value}.")


def config_diff(saved: dict[str, Any], given: dict[str, Any], prefix: str = "") -> list[tuple[str, Any, Any]]:
    """``(dotted key, saved value, given value)`` for every leaf where two nested config dicts differ, sorted by key.

    Example:
        >>> config_diff({"optim": {"lr": 1.0, "epochs": 2}}, {"optim": {"lr": 0.5, "epochs": 2}})
        [('optim.lr', 1.0, 0.5)]
    """
    out = []
    for key in sorted(set(saved) | set(given)):
        a, b = saved.get(key), given.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_diff(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append((f"{prefix}{key}", a, b))
    return out


def config_to_dict(config: Any) -> dict[str, Any]:
    """Plain nested dict (lists for tuples) of a config dataclass, for YAML and JSON."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            out[f.name] = config_to_dict(value)
        elif isinstance(value, tuple):
            out[f.name] = list(value)
        else:
            out[f.name] = value
    return out


def config_from_dict(data: Any, cls: type[Any] = TrainConfig, *, prefix: str = "") -> Any:
    """Build a config dataclass from a nested dict, checking every key and type.

    Raises:
        ValueError: on an unknown key (with the closest valid one) or a value of the wrong type.
    """
    if not isinstance(data, dict):
        where = f"`{prefix.rstrip('.')}`" if prefix else "the config"
        raise ValueError(f"Expected {where} to be a mapping of keys to values, but got {type(data).__name__}.")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.5)
            hint = f" Did you mean '{prefix}{close[0]}'?" if close else ""
            raise ValueError(
                f"Unknown config key '{prefix}{key}'; expected one of {[prefix + n for n in names]}.{hint}"
            )
        kind = hints[key]
        if dataclasses.is_dataclass(kind):
            values[key] = config_from_dict(value, typing.cast(type, kind), prefix=f"{prefix}{key}.")
        else:
            values[key] = _coerce(f"{prefix}{key}", value, kind)
    return cls(**values)


def _coerce(key: str, value: Any, kind: Any) -> Any:
    """Check (and for strings from the command line, parse) a value against a field's type."""
    origin = typing.get_origin(kind)
    if origin is tuple:
        item = typing.get_args(kind)[0]
        noun = "ints" if item is int else "numbers"
        if isinstance(value, str):
            text = value.replace("[", "").replace("]", "")
            value = [v for v in (text.replace("x", ",") if item is int else text).split(",") if v.strip()]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"Expected `{key}` to be a list of {noun}, but got {value!r}.")
        try:
            return tuple(_coerce(key, v, item) for v in value)
        except ValueError:
            raise ValueError(f"Expected `{key}` to be a list of {noun}, but got {value!r}.") from None
    if origin in (typing.Union, types.UnionType):
        raise TypeError(f"Unsupported config field type for `{key}`: {kind}.")  # no such field today
    if kind is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        if isinstance(value, bool):
            return value
        raise ValueError(f"Expected `{key}` to be true or false, but got {value!r}.")
    if kind is int:
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        elif isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ValueError(f"Expected `{key}` to be an integer, but got {value!r}.")
    if kind is float:
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ValueError(f"Expected `{key}` to be a number, but got {value!r}.")
    if kind is str:
        if isinstance(value, (str, Path)):
            return str(value)
        raise ValueError(f"Expected `{key}` to be a string, but got {value!r}.")
    raise TypeError(f"Unsupported config field type for `{key}`: {kind}.")


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``"section.key=value"`` overrides to a nested config dict (values parsed against the field types later).

    Raises:
        ValueError: if an override is not of the form ``key=value``, or its value is not valid YAML (the message
            names the override).
    """
    out = _deep_copy(data)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"Expected an override of the form `section.key=value`, but got {item!r}.")
        node = out
        parts = key.strip().split(".")
        if any(not part.strip() for part in parts):
            raise ValueError(f"Expected an override of the form `section.key=value`, but got the key {key!r}.")
        parts = [part.strip() for part in parts]
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"Config key {'.'.join(parts[:-1])!r} is a value, not a section (in {item!r}).")
            node = child
        try:
            node[parts[-1]] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError as error:
            detail = " ".join(str(error).split())
            raise ValueError(
                f"Expected the value of override {item!r} to be valid YAML (a number, a string, a list such as "
                f"[1, 2]), but it is not: {detail}"
            ) from None
    return out


def _deep_copy(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in data.items()}


def with_overrides(config: TrainConfig, overrides: Mapping[str, Any]) -> TrainConfig:
    """A copy of ``config`` with dotted keys set to typed values, checked as a config file would be (no YAML round
    trip: ``{"optim.lr": 1e-3}`` sets the float 0.001).

    Args:
        config: the base configuration.
        overrides: dotted key -> value, e.g. ``{"optim.epochs": 5, "loss.ranking": "exact"}``; a None value leaves
            the key as it is (convenient for optional command-line options).

    Raises:
        ValueError: on an unknown key (with the closest valid one), a value of the wrong type or out of range.

    Example:
        >>> with_overrides(TrainConfig(), {"optim.lr": 1e-3, "loss.ranking": "exact", "seed": None}).optim.lr
        0.001
    """
    for key, value in overrides.items():
        if value is None:
            continue
        config = _replace_path(config, key.split("."), value, prefix="")
    return config


def _replace_path(node: Any, parts: list[str], value: Any, *, prefix: str) -> Any:
    names = [f.name for f in dataclasses.fields(node)]
    head = parts[0]
    if head not in names:
        close = difflib.get_close_matches(head, names, n=1, cutoff=0.5)
        hint = f" Did you mean '{prefix}{close[0]}'?" if close else ""
        raise ValueError(f"Unknown config key '{prefix}{head}'; expected one of {[prefix + n for n in names]}.{hint}")
    kind = typing.get_type_hints(type(node))[head]
    if len(parts) == 1:
        if dataclasses.is_dataclass(kind):
            raise ValueError(f"Config key '{prefix}{head}' is a section; set one of its keys instead.")
        return dataclasses.replace(node, **{head: _coerce(f"{prefix}{head}", value, kind)})
    if not dataclasses.is_dataclass(kind):
        raise ValueError(f"Config key '{prefix}{head}' is a value, not a section (in '{prefix}{'.'.join(parts)}').")
    child = _replace_path(getattr(node, head), parts[1:], value, prefix=f"{prefix}{head}.")
    return dataclasses.replace(node, **{head: child})


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Load a YAML config file (or the defaults when ``path`` is None) and apply overrides.

    Raises:
        ValueError: if the file is missing, not valid YAML, or holds an unknown key or a bad value.

    Example:
        >>> load_config(overrides=["loss.ranking=exact", "optim.epochs=3"]).loss.ranking
        'exact'
    """
    data: Any = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"Config file {str(path)!r} not found.")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as error:
            raise ValueError(f"Config file {str(path)!r} is not valid YAML: {error}") from None
        except (UnicodeDecodeError, OSError) as error:
            raise ValueError(f"Config file {str(path)!r} could not be read as UTF-8 text: {error}.") from None
        if not isinstance(data, dict):
            raise ValueError(f"Expected config file {str(path)!r} to hold a mapping, but got {type(data).__name__}.")
    return typing.cast(TrainConfig, config_from_dict(apply_overrides(data, overrides or [])))


def save_config(config: TrainConfig) -> str:
    """The resolved config as YAML text; without the ``data.synthetic`` block when the data are a folder (it describes
    nothing there, and reading the file back fills in its defaults)."""
    data = config_to_dict(config)
    if config.data.path != "synthetic":
        del data["data"]["synthetic"]
    return yaml.safe_dump(data, sort_keys=False)
