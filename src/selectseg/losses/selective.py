"""Selective segmentation loss: ``L = L_seg + ranking_weight * L_unc`` (Ding et al. 2020, eq. 3)."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn

from .._validation import check_finite, check_integer_dtype, check_label_range, check_non_negative
from ..uncertainty.scores import get_score
from .ranking import UncertaintyRankingLoss

__all__ = ["SelectiveLossParts", "SelectiveSegmentationLoss"]


class SelectiveLossParts(NamedTuple):
    """The total loss and its two parts (``total = segmentation + ranking_weight * ranking``)."""

    total: torch.Tensor
    segmentation: torch.Tensor
    ranking: torch.Tensor


class SelectiveSegmentationLoss(nn.Module):
    """Segmentation loss plus the weighted uncertainty ranking loss, computed from logits (lower is better).

    The defaults reproduce the released code of Ding et al.: ``ranking_weight = 2000`` (lambda 2 x scale 1000),
    uncertainty ``1 - max softmax``, exact or sampled ranking loss as configured in ``ranking_loss``.

    Args:
        segmentation_loss: any ``loss(logits (B, K, *S), labels (B, *S)) -> scalar``, e.g.
            ``torch.nn.CrossEntropyLoss()``.
        ranking_loss: an :class:`UncertaintyRankingLoss` holding margin, mode and reduction.
        ranking_weight: weight of the ranking term, >= 0.
        uncertainty: a registered score name (see :func:`selectseg.uncertainty.list_scores`), applied to the
            softmax of the logits, or a callable ``logits (B, K, *S) -> uncertainty (B, *S)`` differentiable in
            the logits.

    Shape:
        forward(logits ``(B, K, *S)`` float, labels ``(B, *S)`` int in [0, K)) -> scalar.
        After each call ``last_parts`` holds the detached :class:`SelectiveLossParts` for logging.

    Raises:
        TypeError: if ``segmentation_loss``/``uncertainty`` is not callable, ``ranking_loss`` not an
            :class:`UncertaintyRankingLoss`, ``logits`` not floating or ``labels`` not integer.
        ValueError: if ``ranking_weight < 0``, ``uncertainty`` names no registered score, the shapes do not
            match ``(B, K, *S)``/``(B, *S)``, labels lie outside [0, K) or logits are not finite.

    Example:
        >>> loss = SelectiveSegmentationLoss(torch.nn.CrossEntropyLoss(), UncertaintyRankingLoss())
        >>> logits = torch.zeros(1, 2, 4, 4, requires_grad=True)
        >>> total = loss(logits, torch.zeros(1, 4, 4, dtype=torch.long))
        >>> sorted(loss.last_parts._asdict())
        ['ranking', 'segmentation', 'total']

    References:
        Ding et al., Uncertainty-Aware Training of Neural Networks for Selective Medical Image Segmentation,
        MIDL 2020, eq. 3.
    """

    def __init__(
        self,
        segmentation_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        ranking_loss: UncertaintyRankingLoss,
        ranking_weight: float = 2000.0,
        *,
        uncertainty: str | Callable[[torch.Tensor], torch.Tensor] = "max_softmax",
    ) -> None:
        super().__init__()
        if not callable(segmentation_loss):
            raise TypeError(f"Expected `segmentation_loss` to be callable, but got {type(segmentation_loss).__name__}.")
        if not isinstance(ranking_loss, UncertaintyRankingLoss):
            raise TypeError(
                f"Expected `ranking_loss` to be an UncertaintyRankingLoss, but got {type(ranking_loss).__name__}."
            )
        self.segmentation_loss = segmentation_loss
        self.ranking_loss = ranking_loss
        self.ranking_weight = check_non_negative("ranking_weight", ranking_weight)
        if isinstance(uncertainty, str):
            score = get_score(uncertainty)
            self._uncertainty: Callable[[torch.Tensor], torch.Tensor] = lambda logits: score(logits.softmax(dim=1))
        elif callable(uncertainty):
            self._uncertainty = uncertainty
        else:
            raise TypeError(
                f"Expected `uncertainty` to be a score name or a callable, but got {type(uncertainty).__name__}."
            )
        self.last_parts: SelectiveLossParts | None = None

    def parts(self, logits: torch.Tensor, labels: torch.Tensor) -> SelectiveLossParts:
        """The total and both parts, attached to the graph (see the class doc for shapes)."""
        _check_logits_labels(logits, labels)
        segmentation = self.segmentation_loss(logits, labels)
        uncertainty = self._uncertainty(logits)
        if tuple(uncertainty.shape) != tuple(labels.shape):
            raise ValueError(
                f"Expected the uncertainty function to return shape {tuple(labels.shape)}, "
                f"but got {tuple(uncertainty.shape)}."
            )
        # max().indices, not argmax(): same first-maximum tie rule, ~10x faster over a small class axis on CPU
        correct = logits.detach().max(dim=1).indices == labels
        ranking = self.ranking_loss(uncertainty, correct)
        return SelectiveLossParts(segmentation + self.ranking_weight * ranking, segmentation, ranking)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        parts = self.parts(logits, labels)
        self.last_parts = SelectiveLossParts(*(p.detach() for p in parts))
        return parts.total

    def extra_repr(self) -> str:
        return f"ranking_weight={self.ranking_weight}"


def _check_logits_labels(logits: torch.Tensor, labels: torch.Tensor) -> None:
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        got = logits.dtype if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise TypeError(f"Expected `logits` to be a floating-point torch.Tensor of shape (B, K, *S), but got {got}.")
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"Expected `labels` to be a torch.Tensor of shape (B, *S), but got {type(labels).__name__}.")
    check_integer_dtype("labels", labels)
    if logits.ndim < 3 or logits.shape[1] < 2:
        raise ValueError(f"Expected `logits` of shape (B, K, *S) with K >= 2, but got {tuple(logits.shape)}.")
    expected = (logits.shape[0], *logits.shape[2:])
    if tuple(labels.shape) != expected:
        raise ValueError(
            f"Expected `labels` of shape (B, *S) = {expected} to match `logits` {tuple(logits.shape)}, "
            f"but got {tuple(labels.shape)}."
        )
    check_label_range("labels", labels, logits.shape[1])
    check_finite("logits", logits.detach())
