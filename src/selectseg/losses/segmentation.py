"""Segmentation losses by name, all ``loss(logits (B, K, *S), labels (B, *S) int64) -> scalar`` (lower is better)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from .._validation import look_up_option

__all__ = ["SEGMENTATION_LOSSES", "segmentation_loss"]

SEGMENTATION_LOSSES = ("ce", "dice", "dice_ce")


def segmentation_loss(
    name: str, *, class_weights: Sequence[float] | None = None
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The segmentation loss called ``name``, optionally class-weighted.

    - ``"ce"``: cross-entropy of the softmax, mean over voxels; with ``class_weights`` w, PyTorch's weighted mean
      ``sum_i w_{y_i} l_i / sum_i w_{y_i}``.
    - ``"dice"``: MONAI ``DiceLoss(softmax=True, to_onehot_y=True)``, soft Dice averaged over all K classes and the
      batch; with ``class_weights`` each class's Dice loss is multiplied by its weight before the mean over classes.
    - ``"dice_ce"``: MONAI ``DiceCELoss`` with the same options: the sum of the two (both weighted).

    Args:
        name: ``"ce"``, ``"dice"`` or ``"dice_ce"``.
        class_weights: K positive weights (e.g. Ding et al.'s released code weights the myocardium x2), or None.

    Raises:
        ValueError: on an unknown name (with the closest valid one), or a weight that is not positive and finite.

    Example:
        >>> loss = segmentation_loss("ce")
        >>> round(float(loss(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))), 4)  # log 2
        0.6931
    """
    look_up_option("segmentation loss", name, SEGMENTATION_LOSSES)
    weight = None
    if class_weights is not None:
        values = [float(w) for w in class_weights]
        if not values or any(not math.isfinite(w) or w <= 0 for w in values):
            raise ValueError(f"Expected `class_weights` to be positive finite numbers, but got {list(class_weights)}.")
        weight = torch.tensor(values, dtype=torch.float32)
    if name == "ce":

        def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            w = None if weight is None else weight.to(logits.device, logits.dtype)
            return F.cross_entropy(logits, labels, weight=w)

        return cross_entropy
    from monai.losses import DiceCELoss, DiceLoss

    options = {"softmax": True, "to_onehot_y": True, "weight": weight}
    inner = DiceLoss(**options) if name == "dice" else DiceCELoss(**options)  # type: ignore[arg-type]

    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if weight is not None:  # the class weights are buffers: follow the logits' device and dtype
            inner.to(device=logits.device, dtype=logits.dtype)
        out: torch.Tensor = inner(logits, labels.unsqueeze(1))
        return out

    return loss
