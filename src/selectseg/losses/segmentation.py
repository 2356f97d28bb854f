"""Segmentation losses by name, all ``loss(logits (B, K, *S), labels (B, *S) int64) -> scalar`` (lower is better)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from .._registry import NoMetadata, Registry
from .._validation import check_num_classes

__all__ = ["SEGMENTATION_LOSSES", "register_segmentation_loss", "segmentation_loss"]

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
LossFactory = Callable[[torch.Tensor | None], Loss]
"""``factory(class_weights (K,) float32 or None) -> loss(logits (B, K, *S), labels (B, *S)) -> scalar``."""

SEGMENTATION_LOSSES: Registry[LossFactory, NoMetadata] = Registry("segmentation loss", NoMetadata)
"""The segmentation losses by name (``ce``, ``dice``, ``dice_ce``): factories taking the validated class weights."""


def register_segmentation_loss(name: str) -> Callable[[LossFactory], LossFactory]:
    """Register ``factory(class_weights (K,) or None) -> loss`` under ``name`` in :data:`SEGMENTATION_LOSSES`.

    Raises:
        TypeError: if ``name`` is not a string.
        ValueError: if ``name`` is invalid or already registered.
    """
    return SEGMENTATION_LOSSES.register(name)


def segmentation_loss(
    name: str, *, class_weights: Sequence[float] | None = None, num_classes: int | None = None
) -> Loss:
    """The segmentation loss called ``name``, optionally class-weighted.

    - ``"ce"``: cross-entropy of the softmax, mean over voxels; with ``class_weights`` w, PyTorch's weighted mean
      ``sum_i w_{y_i} l_i / sum_i w_{y_i}``.
    - ``"dice"``: MONAI ``DiceLoss(softmax=True, to_onehot_y=True)``, soft Dice averaged over all K classes and the
      batch; with ``class_weights`` each class's Dice loss is multiplied by its weight before the mean over classes.
    - ``"dice_ce"``: MONAI ``DiceCELoss`` with the same options: the sum of the two (both weighted).

    Args:
        name: a registered loss, ``"ce"``, ``"dice"`` or ``"dice_ce"`` (see :data:`SEGMENTATION_LOSSES`).
        class_weights: K positive weights (e.g. Ding et al.'s released code weights the myocardium x2), or None.
        num_classes: K where it is known when the loss is built: the number of ``class_weights`` is checked against
            it at once. Either way the loss checks it against the logits' K at every call (an int comparison).

    Shape:
        the loss maps logits ``(B, K, *S)`` and labels ``(B, *S)`` of any integer dtype (int64 is used as is,
        uint8/int32 are cast) to a scalar.

    Raises:
        TypeError: if ``class_weights`` is not a list of numbers.
        ValueError: on an unknown name (with the closest valid one), a weight that is not positive and finite, or
            a number of weights other than ``num_classes`` (at construction) or the logits' K (at the call).

    Example:
        >>> loss = segmentation_loss("ce")
        >>> round(float(loss(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))), 4)  # log 2
        0.6931
    """
    factory = SEGMENTATION_LOSSES.get(name)
    weight = None
    if class_weights is not None:
        if isinstance(class_weights, (str, bytes)) or not isinstance(class_weights, Sequence | torch.Tensor):
            raise TypeError(
                f"Expected `class_weights` to be a list of K positive numbers or None, but got "
                f"{type(class_weights).__name__}."
            )
        try:
            values = [float(w) for w in class_weights]
        except (TypeError, ValueError):
            raise TypeError(f"Expected `class_weights` to hold numbers, but got {list(class_weights)}.") from None
        if not values or any(not math.isfinite(w) or w <= 0 for w in values):
            raise ValueError(f"Expected `class_weights` to be positive finite numbers, but got {list(class_weights)}.")
        if num_classes is not None and len(values) != check_num_classes(num_classes):
            raise ValueError(
                f"Expected `class_weights` to hold one weight per class (K = {num_classes}), but got {len(values)}: "
                f"{values}."
            )
        weight = torch.tensor(values, dtype=torch.float32)
    inner = factory(weight)
    if weight is None:
        return _with_int64_labels(inner)
    return _with_int64_labels(_checking_weights(inner, len(weight)))


def _with_int64_labels(loss: Loss) -> Loss:
    """Labels of any integer dtype: torch's losses index with int64 only (``.long()`` is free for int64)."""

    @functools.wraps(loss)
    def wrapped(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return loss(logits, labels.long() if labels.dtype != torch.long and not labels.is_floating_point() else labels)

    return wrapped


def _checking_weights(loss: Loss, count: int) -> Loss:
    """Refuse logits whose K is not the number of class weights (else MONAI or torch fails with a shape error)."""

    @functools.wraps(loss)
    def wrapped(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if logits.ndim < 2 or logits.shape[1] != count:
            raise ValueError(
                f"Expected logits with K = {count} classes (one per class weight), but got shape "
                f"{tuple(logits.shape)}; `class_weights` must hold one weight per class."
            )
        return loss(logits, labels)

    return wrapped


@register_segmentation_loss("ce")
def _cross_entropy(weight: torch.Tensor | None) -> Loss:
    def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        w = None if weight is None else weight.to(logits.device, logits.dtype)
        return F.cross_entropy(logits, labels, weight=w)

    return cross_entropy


def _monai(name: str, weight: torch.Tensor | None) -> Loss:
    from monai.losses import DiceCELoss, DiceLoss

    options = {"softmax": True, "to_onehot_y": True, "weight": weight}
    inner = DiceLoss(**options) if name == "dice" else DiceCELoss(**options)  # type: ignore[arg-type]

    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if weight is not None:  # the class weights are buffers: follow the logits' device and dtype
            inner.to(device=logits.device, dtype=logits.dtype)
        out: torch.Tensor = inner(logits, labels.unsqueeze(1))
        return out

    return loss


@register_segmentation_loss("dice")
def _dice(weight: torch.Tensor | None) -> Loss:
    return _monai("dice", weight)


@register_segmentation_loss("dice_ce")
def _dice_ce(weight: torch.Tensor | None) -> Loss:
    return _monai("dice_ce", weight)
