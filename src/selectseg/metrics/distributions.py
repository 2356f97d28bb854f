"""Distribution metrics (numpy float64): how a set of segmentations (a model's samples) matches another set (the
annotators), as distributions rather than one mask against one reference.

- the generalized energy distance (:func:`generalized_energy_distance`, Kohl et al. 2018) with ``d = 1 - IoU``;
- the Hungarian-matched IoU (:func:`hungarian_matched_iou`, Kohl et al. 2019);
- the QUBIQ-style Dice at thresholds of a soft prediction against the annotators' mean
  (:func:`soft_dice_at_thresholds`).

Masks follow the conventions of :mod:`selectseg.metrics.annotators`: binary ``(P, *S)`` stacks (bool or 0/1), or
integer label maps with a ``foreground`` class argument. See ``docs/metrics.md``.

References:
    Kohl, Romera-Paredes, Meyer, De Fauw, Ledsam, Maier-Hein, Eslami, Rezende, Ronneberger. A Probabilistic U-Net
    for Segmentation of Ambiguous Images. NeurIPS 2018.
    Kohl, Romera-Paredes, Maier-Hein, Rezende, Eslami, Kohli, Zisserman, Ronneberger. A Hierarchical Probabilistic
    U-Net for Modeling Multi-Scale Ambiguities. arXiv:1905.13077, 2019.
    QUBIQ: Quantification of Uncertainties in Biomedical Image Quantification Challenge. MICCAI 2020/2021.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

import numpy as np
from scipy.optimize import linear_sum_assignment

from .._types import ArrayLike, ImageArray
from .._validation import UndefinedMetricWarning, check_finite, look_up_option, to_numpy
from .annotators import _binary_stack, _probabilities

__all__ = ["ThresholdDice", "generalized_energy_distance", "hungarian_matched_iou", "soft_dice_at_thresholds"]

UNEQUAL_POLICIES = ("replicate", "min")
DEFAULT_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


class ThresholdDice(NamedTuple):
    """Dice at each threshold and its mean (higher is better).

    Attributes:
        thresholds: ``(T,)`` the thresholds, as given.
        dice: ``(T,)`` Dice between the binarized prediction and the binarized annotator mean at each threshold.
        mean: the mean of ``dice``.
    """

    thresholds: np.ndarray
    dice: np.ndarray
    mean: float


def generalized_energy_distance(
    samples_a: ImageArray,
    samples_b: ImageArray,
    *,
    foreground: int | None = None,
    include_self_pairs: bool = True,
) -> float:
    """Squared generalized energy distance between two sets of segmentations, with ``d = 1 - IoU`` (lower is better).

    ``D^2_GED = 2 E[d(S, Y)] - E[d(S, S')] - E[d(Y, Y')]``, S from ``samples_a`` (e.g. the model's samples), Y from
    ``samples_b`` (e.g. the annotators), each expectation the mean over pairs of the two finite sets;
    ``IoU(empty, empty) = 1``, so two empty masks are at distance 0.

    Args:
        samples_a: P binary masks (bool or 0/1), or integer label maps with ``foreground`` given.
        samples_b: Q masks, as ``samples_a``.
        foreground: if given, the class compared (``samples == foreground``).
        include_self_pairs: ``True`` (default, the convention of Kohl et al.'s released code): the within-set means
            run over all ``P^2`` (``Q^2``) ordered pairs, including ``i == j`` (which contribute 0). ``False``: over the
            ``P (P - 1)`` pairs with ``i != j`` (the unbiased U-statistic), which needs at least 2 masks per set and
            can be negative (a set against itself gives ``2 mean_all d - 2 mean_{i != j} d < 0``).

    Shape:
        samples_a ``(P, *S)``, samples_b ``(Q, *S)`` -> float.

    Returns:
        The squared distance; NaN (with an :class:`UndefinedMetricWarning`) when ``include_self_pairs=False`` and a
        set holds a single mask.

    Raises:
        TypeError: if an input is not an array of numbers (integers when ``foreground`` is given), or
            ``include_self_pairs`` is not a bool.
        ValueError: if an input has fewer than 2 axes, is not binary, or the spatial shapes differ.

    Example:
        >>> a = np.array([[1, 1, 0, 0], [0, 0, 0, 0]])
        >>> b = np.array([[1, 1, 0, 0], [1, 0, 0, 0]])
        >>> generalized_energy_distance(a, b)  # 2 * 0.625 - 0.5 - 0.25
        0.5
    """
    if not isinstance(include_self_pairs, (bool, np.bool_)):
        raise TypeError(f"Expected `include_self_pairs` to be a bool, but got {type(include_self_pairs).__name__}.")
    a, b = _binary_pair(samples_a, samples_b, foreground, "P", "Q")
    if not include_self_pairs and min(a.shape[0], b.shape[0]) < 2:
        warnings.warn(
            "The generalized energy distance without self pairs needs at least 2 masks per set; returning NaN.",
            UndefinedMetricWarning,
            2,
        )
        return math.nan
    d_ab = 1.0 - _iou_matrix(a, b)
    d_aa = 1.0 - _iou_matrix(a, a)
    d_bb = 1.0 - _iou_matrix(b, b)
    return float(2.0 * d_ab.mean() - _within_mean(d_aa, include_self_pairs) - _within_mean(d_bb, include_self_pairs))


def hungarian_matched_iou(
    samples_a: ImageArray,
    samples_b: ImageArray,
    *,
    foreground: int | None = None,
    unequal: str = "replicate",
) -> float:
    """Mean IoU under the optimal one-to-one matching of two sets of segmentations (higher is better).

    The matching maximizes the total IoU (``scipy.optimize.linear_sum_assignment`` on ``1 - IoU``);
    ``IoU(empty, empty) = 1``.

    Args:
        samples_a: P binary masks (bool or 0/1), or integer label maps with ``foreground`` given.
        samples_b: Q masks, as ``samples_a``.
        foreground: if given, the class compared (``samples == foreground``).
        unequal: when ``P != Q``: ``"replicate"`` (default; as we read Kohl et al. 2019, who repeat the 4 LIDC
            annotations to match 16 samples): both sets are repeated to ``L = lcm(P, Q)`` masks (set a ``L / P``
            times, set b ``L / Q`` times) and all L pairs are matched, so every mask takes part. ``"min"``: the
            ``min(P, Q)`` best pairs of a one-to-one matching of the sets as they are; the extra masks of the larger
            set are ignored.

    Shape:
        samples_a ``(P, *S)``, samples_b ``(Q, *S)`` -> float.

    Returns:
        The mean IoU over the matched pairs, in [0, 1].

    Raises:
        TypeError: if an input is not an array of numbers (integers when ``foreground`` is given), or ``unequal`` is
            not a string.
        ValueError: if an input has fewer than 2 axes, is not binary, the spatial shapes differ, or ``unequal`` is
            unknown.

    Example:
        >>> a = np.array([[1, 1, 0, 0], [0, 0, 1, 1]])
        >>> b = np.array([[0, 0, 1, 0], [1, 1, 0, 0]])
        >>> hungarian_matched_iou(a, b)  # pairs (a0, b1): 1, (a1, b0): 0.5
        0.75
    """
    policy = look_up_option("unequal", unequal, UNEQUAL_POLICIES)
    a, b = _binary_pair(samples_a, samples_b, foreground, "P", "Q")
    iou = _iou_matrix(a, b)
    p, q = iou.shape
    if policy == "replicate" and p != q:
        size = math.lcm(p, q)
        iou = np.tile(iou, (size // p, size // q))
    rows, cols = linear_sum_assignment(1.0 - iou)
    return float(iou[rows, cols].mean())


def soft_dice_at_thresholds(
    probs: ImageArray,
    annotator_masks: ImageArray,
    *,
    thresholds: ArrayLike = DEFAULT_THRESHOLDS,
    foreground: int | None = None,
) -> ThresholdDice:
    """Dice between the binarized prediction and the binarized annotator mean at each threshold (higher is better).

    QUBIQ-style: at threshold t, ``P_t = probs >= t`` and ``Y_t = mean_a(mask_a) >= t``, Dice
    ``2 |P_t & Y_t| / (|P_t| + |Y_t|)`` with 1 when both are empty. The annotator mean is ``count / A`` in float64
    and compared with t as given (the default thresholds are the literals 0.1, 0.2, ..., 0.9, so e.g. 2 of 4
    annotators is ``>= 0.5``).

    Args:
        probs: the model's foreground probability, in [0, 1].
        annotator_masks: one mask per annotator: binary (bool or 0/1), or integer label maps with ``foreground``.
        thresholds: the thresholds t, finite.
        foreground: if given, the annotators' class compared (``annotator_masks == foreground``).

    Shape:
        probs ``(*S)``, annotator_masks ``(A, *S)``, thresholds ``(T,)``. Returns ``(T,)`` arrays and a float.

    Returns:
        :class:`ThresholdDice` ``(thresholds, dice, mean)``.

    Raises:
        TypeError: if an input is not an array of numbers (integers when ``foreground`` is given).
        ValueError: if ``probs`` holds NaN/inf or values outside [0, 1], ``annotator_masks`` is not binary or its
            spatial shape is not ``probs``'s, or ``thresholds`` is not a non-empty 1-D array of finite numbers.

    Example:
        >>> result = soft_dice_at_thresholds(np.array([0.9, 0.6, 0.2]), np.array([[1, 1, 0], [1, 0, 0]]),
        ...                                  thresholds=[0.25, 0.75])
        >>> result.dice.tolist(), result.mean  # t=0.25: {0,1} vs {0,1}; t=0.75: {0} vs {0}
        ([1.0, 1.0], 1.0)
    """
    p = _probabilities("probs", probs)
    masks = _binary_stack("annotator_masks", annotator_masks, foreground, "(A, *S)")
    if masks.shape[1:] != p.shape:
        raise ValueError(
            f"Expected `annotator_masks` of shape (A, *S) with *S = {p.shape} (the shape of `probs`), but got shape "
            f"{masks.shape}."
        )
    t = to_numpy("thresholds", thresholds, dtype=np.float64)
    if t.ndim != 1 or t.size == 0:
        raise ValueError(f"Expected `thresholds` to be a non-empty 1-D array (T,), but got shape {t.shape}.")
    check_finite("thresholds", t)
    p_flat = p.reshape(-1)
    mean = masks.reshape(masks.shape[0], -1).sum(axis=0) / masks.shape[0]
    dice = np.empty(t.size)
    for i, threshold in enumerate(t):
        pred, ref = p_flat >= threshold, mean >= threshold
        denominator = np.count_nonzero(pred) + np.count_nonzero(ref)
        dice[i] = 1.0 if denominator == 0 else 2.0 * np.count_nonzero(pred & ref) / denominator
    return ThresholdDice(t, dice, float(dice.mean()))


# ---------------------------------------------------------------------------------------------------------- helpers


def _binary_pair(a: Any, b: Any, foreground: int | None, first: str, second: str) -> tuple[np.ndarray, np.ndarray]:
    left = _binary_stack("samples_a", a, foreground, f"({first}, *S)")
    right = _binary_stack("samples_b", b, foreground, f"({second}, *S)")
    if left.shape[1:] != right.shape[1:]:
        raise ValueError(
            f"Expected `samples_a` and `samples_b` to have the same spatial shape *S, but got {left.shape[1:]} and "
            f"{right.shape[1:]}."
        )
    return left, right


def _iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(P, Q)`` IoU of every pair of masks, 1 for two empty masks."""
    flat_a, flat_b = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
    size_a, size_b = np.count_nonzero(flat_a, axis=1), np.count_nonzero(flat_b, axis=1)
    inter = np.stack([np.count_nonzero(row & flat_b, axis=1) for row in flat_a]).astype(np.float64)
    union = size_a[:, None] + size_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def _within_mean(distances: np.ndarray, include_self_pairs: bool) -> float:
    n = distances.shape[0]
    if include_self_pairs:
        return float(distances.mean())
    return float((distances.sum() - np.trace(distances)) / (n * (n - 1)))
