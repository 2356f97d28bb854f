"""Per-image risk after referral on a grid of thresholds: ``risk_matrix`` and the label-free ``candidate_thresholds``
(numpy float64).

The risk of image i at threshold t is ``1 - Dice_i(t)`` with the voxels above t replaced by the reference (Ding et al.,
MIDL 2020; the definition of :func:`selectseg.metrics.selective_dice_curve`). It is non-decreasing in t.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._types import ImageArray
from .._validation import check_finite, check_non_empty_sequence, check_num_classes, check_positive_int, to_numpy
from ..metrics.dice_curve import check_selective_images

__all__ = ["DEFAULT_MAX_CANDIDATES", "candidate_thresholds", "risk_matrix"]

DEFAULT_MAX_CANDIDATES = 200


def _pooled_sorted(uncertainties: Sequence[ImageArray]) -> np.ndarray:
    """All voxels' uncertainties, float64 (exact for float16/32), ascending; validated."""
    uncs = check_non_empty_sequence("uncertainties", uncertainties)
    flat = []
    for i, u in enumerate(uncs):
        values = to_numpy(f"uncertainties[{i}]", u).astype(np.float64, copy=False).reshape(-1)
        if values.size == 0:
            raise ValueError(f"Expected `uncertainties[{i}]` to hold at least one voxel, but got 0.")
        check_finite(f"uncertainties[{i}]", values)
        flat.append(values)
    return np.sort(np.concatenate(flat))


def candidate_thresholds(
    uncertainties: Sequence[ImageArray], *, max_candidates: int = DEFAULT_MAX_CANDIDATES
) -> tuple[np.ndarray, np.ndarray]:
    """A label-free grid of at most ``max_candidates + 1`` thresholds for :func:`risk_matrix`, with coverages.

    -inf, then for ``j = 1..max_candidates`` the threshold of the smallest achievable pooled coverage
    >= ``j / max_candidates`` (a distinct uncertainty value), duplicates removed; every distinct value when there
    are at most ``max_candidates`` of them. The last threshold keeps every voxel.

    Args:
        uncertainties: per-image uncertainty maps.
        max_candidates: the most finite thresholds, >= 1.

    Shape:
        A list of N arrays ``(*S_i)`` -> thresholds ``(T,)`` increasing from -inf, coverages ``(T,)``.

    Raises:
        TypeError: if ``uncertainties`` is not a list of arrays of numbers or ``max_candidates`` not an int.
        ValueError: if the list is empty, an image is empty or holds NaN/inf, or ``max_candidates`` < 1.

    Example:
        >>> t, c = candidate_thresholds([np.array([0.3, 0.1, 0.1, 0.2, 0.5])], max_candidates=2)
        >>> t.tolist(), c.tolist()
        ([-inf, 0.2, 0.5], [0.0, 0.6, 1.0])
    """
    count = check_positive_int("max_candidates", max_candidates)
    ordered = _pooled_sorted(uncertainties)
    total = ordered.size
    distinct = np.unique(ordered)
    if distinct.size <= count:
        values = distinct
    else:
        j = np.arange(1, count + 1, dtype=np.int64)
        needed = (j * total + count - 1) // count  # ceil(j total / count), exact in integers
        values = np.unique(ordered[needed - 1])
    thresholds = np.r_[-np.inf, values]
    coverages = np.divide(np.searchsorted(ordered, thresholds, side="right"), total)
    return thresholds, coverages


def _check_images(
    predictions: Sequence[ImageArray], references: Sequence[ImageArray], uncertainties: Sequence[ImageArray], k: int
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Flat per-image int64 labels and float64 uncertainties, validated as :func:`selective_dice_curve` does."""
    preds, refs, uncs = check_selective_images(predictions, references, uncertainties, k, target_name="references")
    return (
        [p.astype(np.int64, copy=False) for p in preds],
        [r.astype(np.int64, copy=False) for r in refs],
        [u.astype(np.float64, copy=False) for u in uncs],
    )


def _check_thresholds(thresholds: Any) -> np.ndarray:
    values = to_numpy("thresholds", thresholds, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"Expected `thresholds` to be 1-D with at least one value (T,), but got shape {values.shape}.")
    if np.isnan(values).any():
        raise ValueError("Expected `thresholds` to hold no NaN, but got NaN.")
    return values


def risk_matrix(
    predictions: Sequence[ImageArray],
    references: Sequence[ImageArray],
    uncertainties: Sequence[ImageArray],
    thresholds: Any,
    *,
    num_classes: int,
) -> np.ndarray:
    """Per-image risk ``1 - Dice_i`` after referral at each threshold (lower is better).

    Image i at threshold t: voxels with ``uncertainty > t`` take the reference label (the radiologist corrects
    them) and ``Dice_i`` is the mean over foreground classes ``1..K-1`` of ``2 TP / (2 TP + FP + FN)``, 1 for a
    class absent from both: the definition of :func:`selectseg.metrics.selective_dice_curve`. Only kept wrong
    voxels count, so each image's wrong voxels are sorted once and the per-class FP/FN counts at every threshold
    come from cumulative counts and a binary search: O(W log W + T K) per image for W wrong voxels. The risk is
    non-decreasing in t (referring a wrong voxel can only raise Dice).

    Args:
        predictions: per-image integer label maps predicted by the model.
        references: per-image integer reference label maps.
        uncertainties: per-image uncertainty maps, higher = less sure.
        thresholds: thresholds in any order (infinities allowed, NaN not).
        num_classes: K >= 2; labels lie in [0, K) and class 0 is background.

    Shape:
        Three lists of N arrays, image i's three of one shape ``(*S_i)``; thresholds ``(T,)``. Returns ``(N, T)``
        float64 in [0, 1].

    Raises:
        TypeError: if an argument is not a list of arrays/tensors, labels are not integers or ``num_classes`` is
            not an int.
        ValueError: if the lists are empty or of different lengths, an image's arrays differ in shape or are
            empty, labels lie outside [0, K), uncertainties hold NaN/inf, ``thresholds`` is not 1-D, is empty or
            holds NaN, or ``num_classes`` < 2.

    Example:
        >>> label = np.array([1, 1, 0, 0])
        >>> pred = np.array([1, 0, 0, 1])
        >>> unc = np.array([0.1, 0.5, 0.2, 0.9])
        >>> risk_matrix([pred], [label], [unc], [-np.inf, 0.5, 1.0], num_classes=2).round(4).tolist()
        [[0.0, 0.3333, 0.5]]
    """
    k = check_num_classes(num_classes)
    t = _check_thresholds(thresholds)
    preds, refs, uncs = _check_images(predictions, references, uncertainties, k)
    out = np.empty((len(preds), t.size))
    for i, (p, r, u) in enumerate(zip(preds, refs, uncs)):
        reference = np.bincount(r, minlength=k)
        wrong = np.flatnonzero(p != r)
        order = np.argsort(u[wrong], kind="stable")
        wrong_u = u[wrong][order]
        kept = np.searchsorted(wrong_u, t, side="right")  # (T,) wrong voxels kept at each threshold
        false_pos = _cumulative_counts(p[wrong][order], k)[kept]  # (T, K)
        false_neg = _cumulative_counts(r[wrong][order], k)[kept]
        numerator = 2.0 * (reference - false_neg)
        denominator = 2.0 * reference - false_neg + false_pos
        dice = np.divide(numerator, denominator, out=np.ones_like(numerator), where=denominator > 0)
        out[i] = 1.0 - dice[:, 1:].mean(axis=1)
    return out


def _cumulative_counts(labels: np.ndarray, k: int) -> np.ndarray:
    """``(W + 1, K)``: row j counts each class among the first j labels."""
    counts = np.zeros((labels.size + 1, k), dtype=np.int64)
    np.add.at(counts, (np.arange(1, labels.size + 1), labels), 1)
    return np.cumsum(counts, axis=0)
