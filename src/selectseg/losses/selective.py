"""Selective segmentation loss: ``L = L_seg + ranking_weight * L_unc`` (Ding et al. 2020, eq. 3), for one output or
summed over the heads of a multi-head network with EDUE's disagreement guidance added.

Every loss here returns one :class:`LossParts` ``(total, segmentation, ranking, guidance)``; the same four names are
used from the loss through the training loop's progress events to the command line (``metrics.csv`` keeps its
column ``loss`` for the total). Functional core (:func:`selective_segmentation_loss`,
:func:`multi_head_selective_loss`), thin modules (:class:`SelectiveSegmentationLoss`, :class:`MultiHeadSelectiveLoss`)
that hold options checked once, at construction, and a settable ``ranking_weight``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn

from .._validation import check_finite, check_integer_dtype, check_label_range, check_non_negative
from ..uncertainty.scores import get_score
from .guidance import disagreement_guidance_loss
from .ranking import UncertaintyRankingLoss

__all__ = [
    "LossParts",
    "MultiHeadSelectiveLoss",
    "SelectiveSegmentationLoss",
    "multi_head_selective_loss",
    "selective_segmentation_loss",
]

SegmentationLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``loss(logits (B, K, *S), labels (B, *S)) -> scalar``."""
Uncertainty = Callable[[torch.Tensor], torch.Tensor]
"""``uncertainty(logits (B, K, *S)) -> (B, *S)``, higher = less sure, differentiable in the logits."""


class LossParts(NamedTuple):
    """A training loss and its parts, all scalars: ``total = segmentation + ranking_weight * ranking + guidance``.

    ``ranking`` is unweighted (0 without a ranking loss), ``guidance`` already weighted (0 without guidance).
    """

    total: torch.Tensor
    segmentation: torch.Tensor
    ranking: torch.Tensor
    guidance: torch.Tensor

    @classmethod
    def combine(
        cls, segmentation: torch.Tensor, ranking: torch.Tensor, guidance: torch.Tensor, *, ranking_weight: float
    ) -> LossParts:
        """The parts with their total ``segmentation + ranking_weight * ranking + guidance`` (the one place it is
        formed)."""
        return cls(segmentation + ranking_weight * ranking + guidance, segmentation, ranking, guidance)

    def reweighted(self, ranking_weight: float) -> LossParts:
        """The same parts with the total formed at another ranking weight (for a weight that depends on the parts
        themselves, e.g. one balanced by their gradient norms)."""
        return LossParts.combine(self.segmentation, self.ranking, self.guidance, ranking_weight=ranking_weight)

    def detach(self) -> LossParts:
        """The parts cut from the graph (for logging)."""
        return LossParts(*(part.detach() for part in self))


def selective_segmentation_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    segmentation_loss: SegmentationLoss,
    ranking_loss: UncertaintyRankingLoss | None,
    ranking_weight: float,
    uncertainty: str | Uncertainty = "max_softmax",
    validate_args: bool = True,
) -> LossParts:
    """Segmentation loss plus the weighted uncertainty ranking loss, computed from logits (lower is better).

    Args:
        logits: the network's output.
        labels: the reference label map.
        segmentation_loss: any ``loss(logits, labels) -> scalar``, e.g. ``torch.nn.CrossEntropyLoss()``.
        ranking_loss: an :class:`UncertaintyRankingLoss` holding margin, mode and reduction; None for the
            segmentation loss alone (the baseline: ranking part 0).
        ranking_weight: weight of the ranking term, >= 0.
        uncertainty: a registered score name (see :func:`selectseg.uncertainty.list_scores`), applied to the
            softmax of the logits, or a callable ``logits (B, K, *S) -> uncertainty (B, *S)`` differentiable in
            the logits.
        validate_args: check the tensors (types, shapes, label range, finiteness: the last two are host-device
            syncs on a GPU). False skips them, e.g. in a training loop whose data were checked when loaded; invalid
            tensors then give undefined results. The options are always checked.

    Shape:
        logits ``(B, K, *S)`` float, labels ``(B, *S)`` int in [0, K) -> :class:`LossParts` of scalars, guidance 0.

    Raises:
        TypeError: if ``segmentation_loss``/``uncertainty`` is not callable, ``ranking_loss`` neither an
            :class:`UncertaintyRankingLoss` nor None, ``logits`` not floating or ``labels`` not integer.
        ValueError: if ``ranking_weight < 0``, ``uncertainty`` names no registered score, the shapes do not
            match ``(B, K, *S)``/``(B, *S)``, labels lie outside [0, K) or logits are not finite.

    Example:
        >>> logits = torch.zeros(1, 2, 4, 4)
        >>> parts = selective_segmentation_loss(
        ...     logits,
        ...     torch.zeros(1, 4, 4, dtype=torch.long),
        ...     segmentation_loss=torch.nn.CrossEntropyLoss(),
        ...     ranking_loss=UncertaintyRankingLoss(),
        ...     ranking_weight=2000.0,
        ... )
        >>> round(float(parts.total), 4), float(parts.ranking), float(parts.guidance)  # no wrong pixel: ranking 0
        (0.6931, 0.0, 0.0)

    References:
        Ding et al., Uncertainty-Aware Training of Neural Networks for Selective Medical Image Segmentation,
        MIDL 2020, eq. 3.
    """
    _check_parts(segmentation_loss, ranking_loss)
    weight = check_non_negative("ranking_weight", ranking_weight)
    segmentation, ranking = _selective_terms(
        logits, labels, segmentation_loss, ranking_loss, _uncertainty_function(uncertainty), validate_args
    )
    return LossParts.combine(segmentation, ranking, segmentation.new_zeros(()), ranking_weight=weight)


def multi_head_selective_loss(
    head_logits: torch.Tensor,
    labels: torch.Tensor,
    annotator_mean: torch.Tensor | None = None,
    *,
    segmentation_loss: SegmentationLoss,
    ranking_loss: UncertaintyRankingLoss | None,
    ranking_weight: float,
    guidance_weight: float = 0.0,
    uncertainty: str | Uncertainty = "max_softmax",
    validate_args: bool = True,
) -> LossParts:
    """The selective loss of every head, summed over the heads, plus EDUE's weighted disagreement guidance.

    ``segmentation`` and ``ranking`` are the sums over the heads of each head's parts (layer ensembles, EDUE);
    ``guidance = guidance_weight * disagreement_guidance_loss(head_logits, annotator_mean)`` (0 when
    ``guidance_weight`` is 0, and ``annotator_mean`` is then not needed). Arguments as in
    :func:`selective_segmentation_loss`.

    Shape:
        head_logits ``(M, B, K, *S)`` (M heads), labels ``(B, *S)``, annotator_mean ``(B, *S)`` in [0, 1] ->
        :class:`LossParts` of scalars.

    Raises:
        TypeError, ValueError: as :func:`selective_segmentation_loss`; ValueError also if ``guidance_weight < 0``,
            or ``guidance_weight > 0`` without ``annotator_mean`` or with fewer than 2 heads.

    Example:
        >>> parts = multi_head_selective_loss(
        ...     torch.zeros(2, 1, 2, 4, 4),
        ...     torch.zeros(1, 4, 4, dtype=torch.long),
        ...     torch.full((1, 4, 4), 0.5),
        ...     segmentation_loss=torch.nn.CrossEntropyLoss(),
        ...     ranking_loss=None,
        ...     ranking_weight=0.0,
        ...     guidance_weight=1.0,
        ... )
        >>> round(float(parts.segmentation), 4), float(parts.guidance)  # 2 heads x log 2; (0 - 1/4)^2
        (1.3863, 0.0625)

    References:
        Abutalip et al., EDUE: Expert Disagreement-Guided One-Pass Uncertainty Estimation for Medical Image
        Segmentation, 2024.
    """
    _check_parts(segmentation_loss, ranking_loss)
    weight = check_non_negative("ranking_weight", ranking_weight)
    guidance_weight = check_non_negative("guidance_weight", guidance_weight)
    if validate_args:
        _check_head_logits(head_logits)
    return _multi_head_parts(
        head_logits,
        labels,
        annotator_mean,
        segmentation_loss,
        ranking_loss,
        weight,
        guidance_weight,
        _uncertainty_function(uncertainty),
        validate_args,
    )


class SelectiveSegmentationLoss(nn.Module):
    """Module form of :func:`selective_segmentation_loss`: holds the options, checked once, at construction.

    The defaults reproduce the released code of Ding et al.: ``ranking_weight = 2000`` (lambda 2 x scale 1000),
    uncertainty ``1 - max softmax``, exact or sampled ranking loss as configured in ``ranking_loss``.
    ``ranking_weight`` may be set between calls (``loss.ranking_weight = w``, e.g. once per epoch by a schedule).

    Args:
        segmentation_loss, ranking_loss, ranking_weight, uncertainty, validate_args: see
            :func:`selective_segmentation_loss`.

    Shape:
        forward(logits ``(B, K, *S)`` float, labels ``(B, *S)`` int in [0, K)) -> scalar total.
        :meth:`parts` -> :class:`LossParts` attached to the graph; after each ``forward`` ``last_parts`` holds
        them detached, for logging.

    Raises:
        TypeError, ValueError: at construction on an invalid option, in ``forward``/``parts`` on invalid tensors
            (with ``validate_args``), as :func:`selective_segmentation_loss`.

    Example:
        >>> loss = SelectiveSegmentationLoss(torch.nn.CrossEntropyLoss(), UncertaintyRankingLoss())
        >>> logits = torch.zeros(1, 2, 4, 4, requires_grad=True)
        >>> total = loss(logits, torch.zeros(1, 4, 4, dtype=torch.long))
        >>> list(loss.last_parts._asdict())
        ['total', 'segmentation', 'ranking', 'guidance']
    """

    def __init__(
        self,
        segmentation_loss: SegmentationLoss,
        ranking_loss: UncertaintyRankingLoss | None,
        ranking_weight: float = 2000.0,
        *,
        uncertainty: str | Uncertainty = "max_softmax",
        validate_args: bool = True,
    ) -> None:
        super().__init__()
        _check_parts(segmentation_loss, ranking_loss)
        self.segmentation_loss = segmentation_loss
        self.ranking_loss = ranking_loss
        self.ranking_weight = ranking_weight
        self._uncertainty = _uncertainty_function(uncertainty)
        self.validate_args = validate_args
        self.last_parts: LossParts | None = None

    @property
    def ranking_weight(self) -> float:
        """Weight of the ranking term, >= 0; settable (checked when set)."""
        return self._ranking_weight

    @ranking_weight.setter
    def ranking_weight(self, value: float) -> None:
        self._ranking_weight = check_non_negative("ranking_weight", value)

    def parts(self, logits: torch.Tensor, labels: torch.Tensor) -> LossParts:
        """The total and its parts, attached to the graph (see the class doc for shapes)."""
        segmentation, ranking = _selective_terms(
            logits, labels, self.segmentation_loss, self.ranking_loss, self._uncertainty, self.validate_args
        )
        return LossParts.combine(segmentation, ranking, segmentation.new_zeros(()), ranking_weight=self.ranking_weight)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        parts = self.parts(logits, labels)
        self.last_parts = parts.detach()
        return parts.total

    def extra_repr(self) -> str:
        return f"ranking_weight={self.ranking_weight}"


class MultiHeadSelectiveLoss(nn.Module):
    """Module form of :func:`multi_head_selective_loss`: one :class:`SelectiveSegmentationLoss` applied to every
    head and summed, plus ``guidance_weight`` x EDUE's disagreement guidance loss.

    Args:
        head_loss: the per-head loss; its options (segmentation and ranking loss, uncertainty, ``validate_args``)
            are used, and its ``ranking_weight``, which ``ranking_weight`` here reads and sets.
        guidance_weight: lambda_g of the guidance term, >= 0 (0 = layer ensembles: no guidance).

    Shape:
        forward(head_logits ``(M, B, K, *S)``, labels ``(B, *S)``, annotator_mean ``(B, *S)`` or None) -> scalar
        total; :meth:`parts` (same arguments) -> :class:`LossParts` attached to the graph; after each ``forward``
        ``last_parts`` holds them detached, as :class:`SelectiveSegmentationLoss`.

    Raises:
        TypeError: if ``head_loss`` is not a :class:`SelectiveSegmentationLoss`.
        ValueError: if ``guidance_weight < 0``; in ``forward`` as :func:`multi_head_selective_loss`.

    Example:
        >>> head_loss = SelectiveSegmentationLoss(torch.nn.CrossEntropyLoss(), UncertaintyRankingLoss())
        >>> loss = MultiHeadSelectiveLoss(head_loss, guidance_weight=1.0)
        >>> loss.ranking_weight = 0.5  # the per-head loss's weight
        >>> total = loss(torch.zeros(2, 1, 2, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long), torch.zeros(1, 4, 4))
        >>> head_loss.ranking_weight, round(float(total), 4), float(loss.last_parts.guidance)
        (0.5, 1.3863, 0.0)
    """

    def __init__(self, head_loss: SelectiveSegmentationLoss, guidance_weight: float = 0.0) -> None:
        super().__init__()
        if not isinstance(head_loss, SelectiveSegmentationLoss):
            raise TypeError(
                f"Expected `head_loss` to be a SelectiveSegmentationLoss, but got {type(head_loss).__name__}."
            )
        self.head_loss = head_loss
        self.guidance_weight = check_non_negative("guidance_weight", guidance_weight)
        self.last_parts: LossParts | None = None

    @property
    def ranking_weight(self) -> float:
        """The per-head loss's ranking weight; settable."""
        return self.head_loss.ranking_weight

    @ranking_weight.setter
    def ranking_weight(self, value: float) -> None:
        self.head_loss.ranking_weight = value

    def parts(
        self, head_logits: torch.Tensor, labels: torch.Tensor, annotator_mean: torch.Tensor | None = None
    ) -> LossParts:
        """The total and its parts, attached to the graph (see the class doc for shapes)."""
        head = self.head_loss
        if head.validate_args:
            _check_head_logits(head_logits)
        return _multi_head_parts(
            head_logits,
            labels,
            annotator_mean,
            head.segmentation_loss,
            head.ranking_loss,
            head.ranking_weight,
            self.guidance_weight,
            head._uncertainty,
            head.validate_args,
        )

    def forward(
        self, head_logits: torch.Tensor, labels: torch.Tensor, annotator_mean: torch.Tensor | None = None
    ) -> torch.Tensor:
        parts = self.parts(head_logits, labels, annotator_mean)
        self.last_parts = parts.detach()
        return parts.total

    def extra_repr(self) -> str:
        return f"guidance_weight={self.guidance_weight}"


def _selective_terms(
    logits: torch.Tensor,
    labels: torch.Tensor,
    segmentation_loss: SegmentationLoss,
    ranking_loss: UncertaintyRankingLoss | None,
    uncertainty: Uncertainty,
    validate_args: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(segmentation, unweighted ranking) of one output; options already checked."""
    labels = channel_free_labels(logits, labels)
    if validate_args:
        _check_logits_labels(logits, labels)
    labels = labels.long()  # uint8/int32 label maps are fine; torch's losses index with int64 (free for int64)
    segmentation = segmentation_loss(logits, target_for(segmentation_loss, labels, logits))
    if ranking_loss is None:
        return segmentation, segmentation.new_zeros(())
    scores = uncertainty(logits)
    if validate_args and tuple(scores.shape) != tuple(labels.shape):
        raise ValueError(
            f"Expected the uncertainty function to return shape {tuple(labels.shape)}, but got {tuple(scores.shape)}."
        )
    # max().indices, not argmax(): same first-maximum tie rule, ~10x faster over a small class axis on CPU
    correct = logits.detach().max(dim=1).indices == labels
    return segmentation, ranking_loss(scores, correct, validate_args=validate_args)


def _multi_head_parts(
    head_logits: torch.Tensor,
    labels: torch.Tensor,
    annotator_mean: torch.Tensor | None,
    segmentation_loss: SegmentationLoss,
    ranking_loss: UncertaintyRankingLoss | None,
    ranking_weight: float,
    guidance_weight: float,
    uncertainty: Uncertainty,
    validate_args: bool,
) -> LossParts:
    """The multi-head :class:`LossParts`; options already checked."""
    per_head = [
        _selective_terms(logits, labels, segmentation_loss, ranking_loss, uncertainty, validate_args)
        for logits in head_logits
    ]
    segmentation = torch.stack([seg for seg, _ in per_head]).sum()
    ranking = torch.stack([rank.to(segmentation.device) for _, rank in per_head]).sum()
    guidance = torch.zeros((), device=segmentation.device)
    if guidance_weight > 0:
        if annotator_mean is None:
            raise ValueError("Expected `annotator_mean` (B, *S) with `guidance_weight` > 0, but got None.")
        guidance = guidance_weight * disagreement_guidance_loss(head_logits, annotator_mean)
    return LossParts.combine(segmentation, ranking, guidance, ranking_weight=ranking_weight)


def _check_parts(segmentation_loss: object, ranking_loss: object) -> None:
    if not callable(segmentation_loss):
        raise TypeError(f"Expected `segmentation_loss` to be callable, but got {type(segmentation_loss).__name__}.")
    if ranking_loss is not None and not isinstance(ranking_loss, UncertaintyRankingLoss):
        raise TypeError(
            f"Expected `ranking_loss` to be an UncertaintyRankingLoss or None, but got {type(ranking_loss).__name__}."
        )


def _uncertainty_function(uncertainty: str | Uncertainty) -> Uncertainty:
    """The uncertainty as a function of the logits: a registered score of their softmax, or the callable itself."""
    if isinstance(uncertainty, str):
        score = get_score(uncertainty)
        return lambda logits: score(logits.softmax(dim=1))
    if callable(uncertainty):
        return uncertainty
    raise TypeError(f"Expected `uncertainty` to be a score name or a callable, but got {type(uncertainty).__name__}.")


def _check_head_logits(head_logits: torch.Tensor) -> None:
    if not isinstance(head_logits, torch.Tensor) or head_logits.ndim < 4:
        got = tuple(head_logits.shape) if isinstance(head_logits, torch.Tensor) else type(head_logits).__name__
        raise ValueError(f"Expected `head_logits` of shape (M, B, K, *S), but got {got}.")


def channel_free_labels(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Labels ``(B, *S)``, also from MONAI's layout ``(B, 1, *S)`` (anything else is returned as it came, for the
    shape check to name).

    Example:
        >>> channel_free_labels(torch.zeros(2, 3, 4, 4), torch.zeros(2, 1, 4, 4, dtype=torch.long)).shape
        torch.Size([2, 4, 4])
    """
    if (
        isinstance(labels, torch.Tensor)
        and isinstance(logits, torch.Tensor)
        and labels.ndim == logits.ndim
        and labels.shape[1] == 1
        and labels.shape[0] == logits.shape[0]
        and labels.shape[2:] == logits.shape[2:]
    ):
        return labels[:, 0]
    return labels


def target_for(segmentation_loss: SegmentationLoss, labels: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """The target a segmentation loss expects, from labels ``(B, *S)``: MONAI's losses (``monai.losses``) take
    ``(B, 1, *S)`` with ``to_onehot_y=True`` and one-hot ``(B, K, *S)`` without; everything else (torch's
    ``CrossEntropyLoss``, selectseg's named losses, your own callables) gets ``(B, *S)``."""
    if not type(segmentation_loss).__module__.startswith("monai.losses"):
        return labels
    inner = getattr(segmentation_loss, "dice", None)  # DiceCELoss keeps the flag on its Dice part
    if getattr(segmentation_loss, "to_onehot_y", False) or getattr(inner, "to_onehot_y", False):
        return labels.unsqueeze(1)
    one_hot = torch.nn.functional.one_hot(labels, num_classes=logits.shape[1])
    return one_hot.movedim(-1, 1).to(logits.dtype)


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
