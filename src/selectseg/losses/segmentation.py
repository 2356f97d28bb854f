"""Segmentation losses by name, all ``loss(logits (B, K, *S), labels (B, *S) int64) -> scalar`` (lower is better)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .._validation import look_up_option

__all__ = ["SEGMENTATION_LOSSES", "segmentation_loss"]

SEGMENTATION_LOSSES = ("ce", "dice", "dice_ce")


def segmentation_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The segmentation loss called ``name``.

    - ``"ce"``: cross-entropy of the softmax, mean over voxels.
    - ``"dice"``: MONAI ``DiceLoss(softmax=True, to_onehot_y=True)``, soft Dice averaged over all K classes and the
      batch.
    - ``"dice_ce"``: MONAI ``DiceCELoss`` with the same options: the sum of the two.

    Raises:
        ValueError: on an unknown name (with the closest valid one).

    Example:
        >>> loss = segmentation_loss("ce")
        >>> round(float(loss(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))), 4)  # log 2
        0.6931
    """
    look_up_option("segmentation loss", name, SEGMENTATION_LOSSES)
    if name == "ce":
        return F.cross_entropy
    from monai.losses import DiceCELoss, DiceLoss

    inner = DiceLoss(softmax=True, to_onehot_y=True) if name == "dice" else DiceCELoss(softmax=True, to_onehot_y=True)

    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = inner(logits, labels.unsqueeze(1))
        return out

    return loss
