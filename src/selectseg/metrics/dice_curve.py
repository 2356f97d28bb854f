"""Dice-based selective segmentation: the Dice-coverage curve of Ding et al. (2020, Table 1 and Fig. 3); numpy.

Definition. One global uncertainty threshold ``t`` across all test images (a clinic fixes one threshold). A pixel
is kept when its uncertainty is <= ``t``; a referred pixel is assumed correctly labelled by the radiologist (its
prediction is replaced by the ground truth) and Dice is computed over the whole image:

- coverage(t) = kept pixels / all evaluated pixels (all images together);
- Dice_i(t) = mean over foreground classes ``c = 1..K-1`` of ``2 TP / (2 TP + FP + FN)`` on image i after
  substitution, with 1 when the class is absent from both (empty vs empty = 1);
- Dice(t) = mean over images of Dice_i(t); risk = 1 - Dice(t).

Only wrong pixels change Dice: with ``Y`` the class's reference pixels and ``FN_k``/``FP_k`` the kept false
negatives/positives, ``Dice_c = 2 (Y - FN_k) / (2 Y - FN_k + FP_k)``. The curve is computed exactly over every
distinct threshold by sorting the wrong pixels once and accumulating per-(image, class) counts, and coverage by
one sort of all uncertainties, in which only the distinct wrong uncertainties are searched: no loop over
thresholds re-scans pixels.

Points stored. The coverage-0 point (threshold -inf, Dice 1), then for each distinct threshold at which Dice can
change (an uncertainty of a wrong pixel) that point and the distinct threshold just before it, and the largest
threshold (coverage 1). The other distinct thresholds lie on flat runs between these points, so the
piecewise-linear curve, and its area, equal those through every distinct threshold; :meth:`at_coverage` still
chooses among every distinct threshold.

References:
    Ding et al., Uncertainty-Aware Training of Neural Networks for Selective Medical Image Segmentation,
    MIDL 2020, section 2.1, Table 1, Fig. 2-3.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch

from .._types import ImageArray
from .._validation import (
    check_finite,
    check_integer_dtype,
    check_label_range,
    check_non_empty_sequence,
    check_num_classes,
    check_threshold,
    to_numpy,
)

__all__ = ["DiceOperatingPoint", "SelectiveDiceCurve", "coverage_threshold", "selective_dice_curve"]

ImageBatch = Sequence[ImageArray] | ImageArray
"""N images: a list of per-image arrays ``(*S_i)``, or one batch array/tensor ``(B, *S)`` (each row one image)."""


@dataclass(frozen=True)
class DiceOperatingPoint:
    """One operating point of a :class:`SelectiveDiceCurve` (the paper's Table 1 row and Fig. 2 data).

    Attributes:
        threshold: uncertainty threshold (kept where uncertainty <= threshold; -inf keeps nothing).
        coverage: achieved coverage over all pixels.
        dice_mean: mean per-image Dice; dice_std: its standard deviation over images (ddof=0);
        dice_p5: its 5th percentile over images (numpy's linear interpolation).
        gamma: fraction of wrong pixels among the referred ones (NaN when nothing is referred).
        image_coverage: ``(N,)`` coverage of each image; image_dice: ``(N,)`` Dice of each image.
        psi_c: pixel accuracy on the kept pixels (NaN when nothing is kept), from the curve's own counts: equal to
            :func:`~selectseg.metrics.selective_pixel_metrics` at ``threshold``.
    """

    threshold: float
    coverage: float
    dice_mean: float
    dice_std: float
    dice_p5: float
    gamma: float
    image_coverage: np.ndarray = field(repr=False)
    image_dice: np.ndarray = field(repr=False)
    psi_c: float = math.nan


@dataclass(frozen=True, eq=False)
class SelectiveDiceCurve:
    """The Dice-coverage curve; see the module doc for the definition and the points stored.

    Attributes:
        thresholds: ``(P,)`` increasing uncertainty thresholds, the first -inf (coverage 0).
        coverage: ``(P,)`` increasing coverage, from 0 to 1.
        dice: ``(P,)`` mean Dice over images at each point.
        num_images: N, the number of images.
    """

    thresholds: np.ndarray
    coverage: np.ndarray
    dice: np.ndarray
    num_images: int
    _sorted_uncertainty: np.ndarray = field(repr=False)
    _image_uncertainty: list[np.ndarray] = field(repr=False)
    _events: _WrongPixels = field(repr=False)
    _point_events: np.ndarray = field(repr=False)

    @property
    def aurc(self) -> float:
        """Area under the risk (1 - Dice) over coverage 0..1, trapezoid rule (lower is better)."""
        return float(np.trapezoid(1.0 - self.dice, self.coverage))

    @property
    def oracle_aurc(self) -> float:
        """AURC of the same segmentation with the oracle uncertainty ``1[wrong]`` (lower is better).

        A perfect error detector refers every wrong pixel before any correct one. Its wrong pixels are tied, and
        ties are one operating point, so the curve runs through (0, Dice 1), (1 - e, Dice 1) and (1, D_1), with
        e the fraction of wrong pixels and D_1 the mean Dice at coverage 1: ``oracle_aurc = e (1 - D_1) / 2``.
        It depends on the segmentation only (0 when every pixel is right); see ``docs/metrics.md``.
        """
        error_rate = self._events.uncertainty.size / self._sorted_uncertainty.size
        return float(error_rate * (1.0 - self.dice[-1]) / 2.0)

    @property
    def excess_aurc(self) -> float:
        """``aurc - oracle_aurc``: the part of the AURC due to how the uncertainty orders the pixels.

        0 when every wrong pixel has one uncertainty above every correct pixel's. It can be negative: Dice is
        not linear in the kept wrong pixels, and an uncertainty that orders the wrong pixels among themselves (e.g.
        missed foreground pixels one by one) can run below the oracle's straight chord; see ``docs/metrics.md``.
        """
        return self.aurc - self.oracle_aurc

    def image_dice(self, index: int | Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Per-image Dice at stored point(s): ``(N,)`` for one index, ``(len(index), N)`` for several or all.

        Raises:
            IndexError: if an index is outside ``[-P, P)``.
        """
        points = np.arange(self.coverage.size) if index is None else np.asarray(index)
        if np.any(points >= self.coverage.size) or np.any(points < -self.coverage.size):
            raise IndexError(f"Expected point indices in [-{self.coverage.size}, {self.coverage.size}), got {index}.")
        dice = np.stack([self._events.image_dice(int(self._point_events[p])) for p in points.reshape(-1)])
        return dice.reshape(*points.shape, self.num_images)

    def at_coverage(self, coverage: float) -> DiceOperatingPoint:
        """The operating point with the largest coverage <= ``coverage`` among every distinct threshold.

        Raises:
            TypeError: if ``coverage`` is not a number.
            ValueError: if ``coverage`` is outside [0, 1].
        """
        if isinstance(coverage, bool) or not isinstance(coverage, (int, float, np.floating)):
            raise TypeError(f"Expected `coverage` to be a float in [0, 1], but got {type(coverage).__name__}.")
        if not 0.0 <= coverage <= 1.0:
            raise ValueError(f"Expected `coverage` to be a float in [0, 1], but got {coverage}.")
        threshold, kept = _coverage_cut(self._sorted_uncertainty, coverage)
        return self._operating_point(threshold, kept)

    def at_threshold(self, threshold: float) -> DiceOperatingPoint:
        """The operating point that keeps the pixels with uncertainty <= ``threshold`` (a clinic's fixed threshold).

        Raises:
            TypeError: if ``threshold`` is not a number.
            ValueError: if ``threshold`` is NaN.
        """
        threshold = check_threshold("threshold", threshold)
        floored = _floor_to(threshold, self._sorted_uncertainty.dtype)
        kept = int(np.searchsorted(self._sorted_uncertainty, floored, side="right"))
        return self._operating_point(threshold, kept)

    def _operating_point(self, threshold: float, kept: int) -> DiceOperatingPoint:
        events = self._events
        floored = _floor_to(threshold, events.uncertainty.dtype)
        n_events = int(np.searchsorted(events.uncertainty, floored, side="right"))
        image_dice = events.image_dice(n_events)
        image_coverage = np.array([np.count_nonzero(u <= floored) / u.size for u in self._image_uncertainty])
        referred = self._sorted_uncertainty.size - kept
        wrong_referred = events.uncertainty.size - n_events
        return DiceOperatingPoint(
            threshold=threshold,
            coverage=kept / self._sorted_uncertainty.size,
            dice_mean=float(image_dice.mean()),
            dice_std=float(image_dice.std()),
            dice_p5=float(np.percentile(image_dice, 5)),
            gamma=wrong_referred / referred if referred else math.nan,
            image_coverage=image_coverage,
            image_dice=image_dice,
            psi_c=(kept - n_events) / kept if kept else math.nan,
        )


def _coverage_cut(ordered: np.ndarray, coverage: float) -> tuple[float, int]:
    """(threshold, kept) of the largest achievable coverage <= ``coverage`` over ascending ``ordered`` values.

    Ties are kept or referred together, so the threshold is a distinct value (or -inf, keeping nothing).
    """
    total = ordered.size
    allowed = min(total, math.floor(coverage * total))  # largest m with m / total <= coverage
    while allowed < total and (allowed + 1) / total <= coverage:
        allowed += 1
    while allowed > 0 and allowed / total > coverage:
        allowed -= 1
    if allowed == total:
        return float(ordered[-1]), total
    kept = int(np.searchsorted(ordered, ordered[allowed], side="left"))  # all below the first excluded value
    return (float(ordered[kept - 1]) if kept > 0 else -math.inf), kept


def coverage_threshold(uncertainty: ImageArray, coverage: float) -> float:
    """The uncertainty threshold whose coverage is the largest achievable one <= ``coverage`` (one image or a set).

    The same rule as :meth:`SelectiveDiceCurve.at_coverage`: voxels of equal uncertainty are kept or referred
    together, so the achieved coverage may be below the target; the threshold is one of the distinct values, or
    -inf to refer everything. Keep voxels with ``uncertainty <= threshold``.

    Shape:
        uncertainty: any shape, e.g. ``(*S)``. Returns a float.

    Raises:
        TypeError: if ``coverage`` is not a number or ``uncertainty`` is not numeric.
        ValueError: if ``coverage`` is outside [0, 1], or ``uncertainty`` is empty or holds NaN/inf.

    Example:
        >>> coverage_threshold(np.array([0.1, 0.2, 0.2, 0.9]), 0.75)  # 0.2 keeps 3/4
        0.2
        >>> coverage_threshold(np.array([0.1, 0.2, 0.2, 0.9]), 0.5)  # ties: keeping 0.2 would be 3/4 > 1/2
        0.1
    """
    if isinstance(coverage, bool) or not isinstance(coverage, (int, float, np.floating)):
        raise TypeError(f"Expected `coverage` to be a float in [0, 1], but got {type(coverage).__name__}.")
    if not 0.0 <= coverage <= 1.0:
        raise ValueError(f"Expected `coverage` to be a float in [0, 1], but got {coverage}.")
    values = to_numpy("uncertainty", uncertainty)
    if values.size == 0:
        raise ValueError("Expected `uncertainty` to hold at least one value, but got 0.")
    check_finite("uncertainty", values)
    return _coverage_cut(np.sort(values, axis=None), float(coverage))[0]


def _floor_to(threshold: float, dtype: np.dtype) -> np.floating:
    """The largest value of ``dtype`` <= ``threshold``, so that comparing in ``dtype`` keeps ``u <= threshold``."""
    value: np.floating = dtype.type(threshold)
    if float(value) > threshold:  # compare in float64 (a Python float would be cast to dtype)
        value = np.nextafter(value, dtype.type(-np.inf))
    return value


@dataclass(frozen=True)
class _WrongPixels:
    """The wrong pixels of all images by increasing uncertainty (stable), with per-image class counts."""

    uncertainty: np.ndarray  # (W,) sorted
    image: np.ndarray  # (W,)
    predicted: np.ndarray  # (W,)
    label: np.ndarray  # (W,)
    reference_counts: np.ndarray  # (N, K) pixels of each class in each image's reference

    def image_dice(self, n_events: int) -> np.ndarray:
        """Per-image Dice ``(N,)`` with the first ``n_events`` wrong pixels kept, directly from counts."""
        n_images, k = self.reference_counts.shape
        image = self.image[:n_events]
        false_pos = np.bincount(image * k + self.predicted[:n_events], minlength=n_images * k).reshape(n_images, k)
        false_neg = np.bincount(image * k + self.label[:n_events], minlength=n_images * k).reshape(n_images, k)
        return _dice_of(self.reference_counts, false_pos, false_neg)[:, 1:].mean(axis=1)


def selective_dice_curve(
    predictions: ImageBatch,
    targets: ImageBatch,
    uncertainties: ImageBatch,
    *,
    num_classes: int,
) -> SelectiveDiceCurve:
    """Dice-coverage curve with referred pixels corrected by a radiologist (higher Dice is better).

    Args:
        predictions: integer label maps predicted by the model (argmax over the classes, not probabilities).
        targets: integer reference label maps.
        uncertainties: uncertainty maps, higher = less sure.
        num_classes: K >= 2; labels lie in [0, K) and class 0 is background.

    Shape:
        Each argument holds N images, either as a list of N arrays/tensors ``(*S_i)`` (shapes may differ between
        images) or as one batch array/tensor ``(B, *S)``, each row one image (N = B); lists and batches may be
        mixed and give bit-identical results. Image i's three arrays share one shape; a singleton channel axis
        (MONAI's ``(1, *S)`` per image, ``(B, 1, *S)`` per batch) is dropped first, which changes no number (only
        pixel counts matter). An array is always a batch: pass one image ``(*S)`` as ``[image]``. Returns a curve
        of P points. To accumulate over batches (and DDP ranks), see :class:`~selectseg.metrics.SelectiveDiceMetric`.

    Raises:
        TypeError: if an argument is neither a list of arrays/tensors nor an array/tensor, labels are not integers
            or ``num_classes`` is not an int.
        ValueError: if the lists are empty or of different lengths, a batch has fewer than 2 dimensions, an image's
            arrays differ in shape or are empty, labels lie outside [0, K), uncertainties hold NaN/inf, or
            ``num_classes`` < 2.

    Example (the issue's worked example: one binary image of 10 pixels):
        >>> label = np.array([1, 1, 1, 0, 0, 0, 0, 0, 1, 0])
        >>> pred = np.array([1, 1, 0, 0, 1, 0, 0, 0, 1, 1])
        >>> conf = np.array([0.99, 0.95, 0.55, 0.9, 0.6, 0.97, 0.98, 0.96, 0.7, 0.52])
        >>> curve = selective_dice_curve([pred], [label], [1 - conf], num_classes=2)
        >>> [round(curve.at_coverage(c).dice_mean, 4) for c in (1.0, 0.9, 0.8, 0.7)]
        [0.6667, 0.75, 0.8889, 1.0]
        >>> round(curve.aurc, 6)
        0.052778
        >>> round(curve.oracle_aurc, 6), round(curve.excess_aurc, 6)  # 3 of 10 wrong: 0.3 * (1 - 2/3) / 2
        (0.05, 0.002778)

    References:
        Ding et al., MIDL 2020, section 2.1 and Table 1.
    """
    k = check_num_classes(num_classes)
    pred_flat, tgt_flat, unc_flat = check_selective_images(*image_lists(predictions, targets, uncertainties), k)
    return _dice_curve(pred_flat, tgt_flat, unc_flat, k)


def image_list(name: str, value: Any) -> list[Any]:
    """N images as a list: a list/tuple as given, a batch array/tensor ``(B, *S)`` split into its B rows.

    A leading singleton channel axis is dropped: a list item ``(1, *S)`` becomes ``(*S)`` and a batch
    ``(B, 1, *S)`` becomes ``(B, *S)`` (the selective metrics count pixels, so this changes no number; it lets a
    MONAI channel-first label map meet a ``(B, *S)`` uncertainty map). A tensor batch is moved to the CPU once.

    Raises:
        TypeError: if ``value`` is neither a list/tuple nor a numpy array/torch tensor, or holds non-numbers.
        ValueError: if a batch has fewer than 2 dimensions (``(B, *S)`` needs one spatial axis).
    """
    if isinstance(value, (list, tuple)):
        return [_drop_channel(item) for item in value]
    if not isinstance(value, (np.ndarray, torch.Tensor)):
        raise TypeError(
            f"Expected `{name}` to be a list of per-image arrays or a batch array/tensor (B, *S), "
            f"but got {type(value).__name__}."
        )
    batch = to_numpy(name, value)
    if batch.ndim < 2:
        raise ValueError(
            f"Expected `{name}` to be a batch (B, *S) with at least 2 dimensions, but got shape {batch.shape}; "
            "pass one image (*S) as a list, [image]."
        )
    if batch.ndim >= 3 and batch.shape[1] == 1:
        batch = batch[:, 0]
    return list(batch)


def image_lists(
    predictions: Any, targets: Any, uncertainties: Any, *, target_name: str = "targets"
) -> tuple[list[Any], list[Any], list[Any]]:
    """:func:`image_list` of the three arguments of a selective metric."""
    return (
        image_list("predictions", predictions),
        image_list(target_name, targets),
        image_list("uncertainties", uncertainties),
    )


def _drop_channel(item: Any) -> Any:
    shape = getattr(item, "shape", None)
    return item[0] if shape is not None and len(shape) >= 2 and shape[0] == 1 else item


def check_selective_images(
    predictions: Sequence[ImageArray],
    targets: Sequence[ImageArray],
    uncertainties: Sequence[ImageArray],
    num_classes: int | None,
    *,
    target_name: str = "targets",
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Validate per-image (prediction, target, uncertainty) triples and flatten them (the checks of
    :func:`selective_dice_curve`); ``target_name`` is how the targets are called in the messages. With
    ``num_classes=None`` the label range is not checked (metrics that only compare labels for equality).

    Shape:
        N images ``(*S_i)`` each -> three lists of N flat arrays (labels as given, integer; uncertainties floating).

    Raises:
        TypeError: if a label map is not integer or a value is not numeric.
        ValueError: if a list is empty, the lists differ in length, an image's arrays differ in shape or are empty,
            an uncertainty is NaN/inf or a label lies outside [0, K).
    """
    k = num_classes
    preds = check_non_empty_sequence("predictions", predictions)
    tgts = check_non_empty_sequence(target_name, targets)
    uncs = check_non_empty_sequence("uncertainties", uncertainties)
    if not len(preds) == len(tgts) == len(uncs):
        raise ValueError(
            f"Expected `predictions`, `{target_name}` and `uncertainties` to hold one array per image each, "
            f"but got {len(preds)}, {len(tgts)} and {len(uncs)}."
        )
    single = target_name.rstrip("s")
    pred_flat, tgt_flat, unc_flat = [], [], []
    for i, (p, t, u) in enumerate(zip(preds, tgts, uncs)):
        p, t, u = (
            to_numpy(f"{name}[{i}]", v) for name, v in (("predictions", p), (target_name, t), ("uncertainties", u))
        )
        check_integer_dtype(f"predictions[{i}]", p)
        check_integer_dtype(f"{target_name}[{i}]", t)
        if p.shape != t.shape or p.shape != u.shape:
            raise ValueError(
                f"Expected image {i}'s prediction, {single} and uncertainty to share one shape, "
                f"but got {p.shape}, {t.shape} and {u.shape}."
            )
        if p.size == 0:
            raise ValueError(f"Expected image {i} to hold at least one pixel, but got shape {p.shape}.")
        if u.dtype == np.bool_ or not np.issubdtype(u.dtype, np.floating):
            u = u.astype(np.float64)
        check_finite(f"uncertainties[{i}]", u)
        if k is not None:
            check_label_range(f"predictions[{i}]", p, k)
            check_label_range(f"{target_name}[{i}]", t, k)
        pred_flat.append(p.reshape(-1))
        tgt_flat.append(t.reshape(-1))
        unc_flat.append(u.reshape(-1))
    return pred_flat, tgt_flat, unc_flat


class DiceParts(NamedTuple):
    """One image reduced to what the Dice curve needs (exact: the curve of a list of parts equals the curve of the
    images). The predictions and references of correct pixels are dropped.

    Shape:
        uncertainty ``(n,)`` (the image's pixels, flattened in C order); wrong_index, wrong_predicted, wrong_label
        ``(W,)`` int64 (the wrong pixels in pixel order); reference_counts ``(K,)`` int64 (pixels of each class).
    """

    uncertainty: np.ndarray
    wrong_index: np.ndarray
    wrong_predicted: np.ndarray
    wrong_label: np.ndarray
    reference_counts: np.ndarray


def dice_parts(pred: np.ndarray, target: np.ndarray, uncertainty: np.ndarray, k: int) -> DiceParts:
    """One validated flat image ``(n,)`` x 3 -> its :class:`DiceParts`."""
    wrong = np.flatnonzero(pred != target)
    return DiceParts(
        uncertainty=uncertainty,
        wrong_index=wrong.astype(np.int64, copy=False),
        wrong_predicted=pred[wrong].astype(np.int64),
        wrong_label=target[wrong].astype(np.int64),
        reference_counts=_class_counts(target, k),
    )


def _class_counts(labels: np.ndarray, k: int) -> np.ndarray:
    """``(K,)`` int64 pixels of each class in validated labels ``(n,)`` in [0, K).

    For few classes, K - 1 vectorised comparisons beat ``np.bincount`` (about 3x on 400k pixels), whose increments
    of a few counters stall on each other; the counts are the same integers.
    """
    if k > 4:
        return np.bincount(labels, minlength=k).astype(np.int64)
    counts = np.array([0] + [np.count_nonzero(labels == c) for c in range(1, k)], dtype=np.int64)
    counts[0] = labels.size - counts[1:].sum()
    return counts


def _dice_curve(preds: list[np.ndarray], tgts: list[np.ndarray], uncs: list[np.ndarray], k: int) -> SelectiveDiceCurve:
    return dice_curve_from_parts([dice_parts(p, t, u, k) for p, t, u in zip(preds, tgts, uncs)])


def dice_curve_from_parts(parts: Sequence[DiceParts]) -> SelectiveDiceCurve:
    """The curve of N >= 1 images given as their :class:`DiceParts` (in image order)."""
    n_images = len(parts)
    uncs = [q.uncertainty for q in parts]
    dtype = np.result_type(*uncs)
    all_sorted = np.concatenate(uncs).astype(dtype, copy=False)  # a fresh array: sorted in place, no second copy
    all_sorted.sort()
    reference = np.stack([q.reference_counts for q in parts])

    w_u = np.concatenate([q.uncertainty[q.wrong_index] for q in parts]).astype(dtype, copy=False)
    order = _stable_argsort(w_u)
    events = _WrongPixels(
        uncertainty=w_u[order],
        image=np.concatenate([np.full(q.wrong_index.size, i, dtype=np.int64) for i, q in enumerate(parts)])[order],
        predicted=np.concatenate([q.wrong_predicted for q in parts])[order],
        label=np.concatenate([q.wrong_label for q in parts])[order],
        reference_counts=reference,
    )
    n_w = events.uncertainty.size
    delta = _event_dice_changes(events)
    mean_dice_after = 1.0 + np.cumsum(delta) / n_images  # (W,) mean Dice once events 0..e are kept

    # Points: coverage 0; for each distinct wrong uncertainty v, the distinct threshold just below it (the end of
    # the flat run before v) unless that is the previous point, and v itself; the largest threshold. Each point
    # records how many events (wrong pixels, in sorted order) it keeps. Kept counts: #u < v (which is #u <= the
    # value just below v) and #u <= v, two binary searches of the distinct wrong values only.
    last_of_value = np.flatnonzero(np.r_[events.uncertainty[1:] != events.uncertainty[:-1], n_w > 0])
    values = events.uncertainty[last_of_value]
    below = np.searchsorted(all_sorted, values, side="left")
    up_to = _end_of_runs(all_sorted, values, below + np.diff(np.r_[0, last_of_value + 1]))
    prev_value = all_sorted[np.maximum(below - 1, 0)]
    prev_is_new = (below > 0) & (prev_value > np.r_[-np.inf, values[:-1]])
    pair_thresholds = np.stack([prev_value, values], axis=1).reshape(-1)
    pair_kept = np.stack([below, up_to], axis=1).reshape(-1)
    previous_events = np.r_[0, last_of_value[:-1] + 1][: last_of_value.size]
    pair_events = np.stack([previous_events, last_of_value + 1], axis=1).reshape(-1)
    keep = np.stack([prev_is_new, np.ones_like(prev_is_new)], axis=1).reshape(-1)
    thresholds = [np.array([-np.inf]), pair_thresholds[keep]]
    n_events = [np.array([0]), pair_events[keep]]
    n_kept = [np.array([0]), pair_kept[keep]]
    if n_w == 0 or all_sorted[-1] > values[-1]:
        thresholds.append(all_sorted[-1:])
        n_events.append(np.array([n_w]))
        n_kept.append(np.array([all_sorted.size]))
    t = np.concatenate(thresholds).astype(np.float64)
    e = np.concatenate(n_events).astype(np.int64)
    coverage = np.concatenate(n_kept) / all_sorted.size
    dice = np.r_[1.0, mean_dice_after][e]
    return SelectiveDiceCurve(
        thresholds=t,
        coverage=coverage,
        dice=dice,
        num_images=n_images,
        _sorted_uncertainty=all_sorted,
        _image_uncertainty=uncs,
        _events=events,
        _point_events=e,
    )


def _end_of_runs(ordered: np.ndarray, values: np.ndarray, start: np.ndarray) -> np.ndarray:
    """``np.searchsorted(ordered, values, side="right")`` given ``start`` <= it, inside each value's run of ties.

    Steps forward while the next element still equals the value (few steps where ties are rare), then searches
    for the values whose runs are still longer.
    """
    end = start.copy()
    pending = np.arange(values.size)
    for _ in range(4):
        pending = pending[end[pending] < ordered.size]
        pending = pending[ordered[end[pending]] == values[pending]]
        if pending.size == 0:
            return end
        end[pending] += 1
    end[pending] = np.searchsorted(ordered, values[pending], side="right")
    return end


def _stable_argsort(values: np.ndarray) -> np.ndarray:
    """``np.argsort(values, kind="stable")``, faster: numpy's quicksort (vectorised), then the positions inside each
    run of equal values put back in increasing order by one sort of packed ``(run, position)`` int64 keys.

    Without ties the sorted order is unique, so quicksort's is the stable one. Needs ``values.size < 2**32``.
    """
    order = np.argsort(values)
    ordered = values[order]
    new_run = np.empty(values.size, dtype=bool)
    new_run[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new_run[1:])
    if new_run.all():
        return order
    key = np.cumsum(new_run, dtype=np.int64) - 1
    key <<= 32
    key |= order
    key.sort()
    return key & 0xFFFFFFFF


def _event_dice_changes(events: _WrongPixels) -> np.ndarray:
    """``(W,)`` the change of its image's Dice (mean over foreground classes) as each wrong pixel is kept, in event
    order: the cumulative sum over an image's events is its Dice curve minus 1."""
    n_w = events.uncertainty.size
    k = events.reference_counts.shape[1]
    reference = events.reference_counts
    # Dice change of each wrong pixel's image when it is kept: it adds one FP to its predicted class and one FN to
    # its reference class (background ignored). Touches of one (image, class) are cumulated in event order.
    touch_class = np.stack([events.predicted, events.label], axis=1).reshape(-1)  # touch 2e: FP, 2e + 1: FN
    touch = np.flatnonzero(touch_class > 0)
    group = events.image[touch >> 1] * k + touch_class[touch]
    # Stable grouping by (image, class), keeping event order inside a group: numpy's radix sort of uint16 keys
    # where the groups fit, else one sort of packed int64 (group, touch index) keys. Both give the same order.
    if events.reference_counts.size <= 1 << 16:
        by_group = np.argsort(group.astype(np.uint16), kind="stable")
        touch, group = touch[by_group], group[by_group]
    else:
        key = group << 32
        key |= np.arange(group.size, dtype=np.int64)
        key.sort()
        touch = touch[key & 0xFFFFFFFF]
        group = key >> 32
    touch_event, touch_is_fp = touch >> 1, (touch & 1) == 0
    starts = np.r_[True, group[1:] != group[:-1]]
    false_pos = _cumcount_within(touch_is_fp, starts)
    false_neg = _cumcount_within(np.ones_like(starts), starts) - false_pos  # touches so far minus the FPs
    y = reference.reshape(-1)[group]  # group = image * K + class
    after = _dice_of(y, false_pos, false_neg)
    before = np.where(starts, 1.0, np.r_[1.0, after[:-1]])
    return np.bincount(touch_event, weights=(after - before) / (k - 1), minlength=n_w)


def _cumcount_within(flags: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Running count of ``flags`` that restarts where ``starts`` is True."""
    total = np.cumsum(flags, dtype=np.int64)
    start_idx = np.flatnonzero(starts)
    offset = np.r_[0, total[start_idx[1:] - 1]] if start_idx.size else np.zeros(0, np.int64)
    group_of = np.cumsum(starts) - 1
    return total - offset[group_of]


def _dice_of(reference: np.ndarray, false_pos: np.ndarray, false_neg: np.ndarray) -> np.ndarray:
    """Elementwise ``2 (Y - FN) / (2 Y - FN + FP)``, 1 where the denominator is 0 (class absent from both)."""
    numerator = 2.0 * (reference - false_neg)
    denominator = 2.0 * reference - false_neg + false_pos
    return np.divide(numerator, denominator, out=np.ones_like(numerator, dtype=np.float64), where=denominator > 0)
