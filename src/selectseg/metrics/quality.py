"""Segmentation quality control and out-of-distribution detection from image-level uncertainty (numpy float64).

- :func:`quality_control_curve`: flag images by decreasing uncertainty for manual review and follow the fraction of
  failed segmentations still unflagged; its area above the ideal curve (d-AUC, Kushibar et al. 2022) is lower for
  a better uncertainty.
- :func:`ood_auroc`: probability that an out-of-distribution image gets a higher uncertainty than an
  in-distribution one (ties count 1/2; the Mann-Whitney U statistic over ``n m``).

See ``docs/metrics.md``.

References:
    Kushibar, Campello, Garrucho, Linardos, Radeva, Lekadir. Layer Ensembles: A Single-Pass Uncertainty Estimation
    in Deep Learning for Segmentation. MICCAI 2022.
    Mann, Whitney. On a Test of Whether one of Two Random Variables is Stochastically Larger than the Other.
    Ann. Math. Statist. 18(1), 1947.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
from scipy.stats import rankdata

from .._types import ArrayLike
from .._validation import check_finite, to_numpy

__all__ = ["QCCurve", "ood_auroc", "quality_control_curve"]

DEFAULT_TAU = 0.8


class QCCurve(NamedTuple):
    """Quality-control curve: fraction of images still failing and unflagged, against the fraction flagged.

    Attributes:
        fraction_flagged: ``(N + 1,)`` ``k / N`` for ``k = 0..N`` flagged images.
        fraction_failing: ``(N + 1,)`` failing and not yet flagged images over N, flagging by decreasing
            uncertainty (tied images: the expected value over their orders, see :func:`quality_control_curve`).
        ideal_fraction_failing: ``(N + 1,)`` the same when flagging by increasing Dice: ``max(F - k, 0) / N``.
        auc: trapezoidal area under ``fraction_failing`` over ``fraction_flagged`` in [0, 1].
        auc_ideal: the same for the ideal curve.
        d_auc: ``auc - auc_ideal`` (>= 0; lower is better, 0 when every failing image is flagged first).
    """

    fraction_flagged: np.ndarray
    fraction_failing: np.ndarray
    ideal_fraction_failing: np.ndarray
    auc: float
    auc_ideal: float
    d_auc: float


def quality_control_curve(image_uncertainty: ArrayLike, image_dice: ArrayLike, *, tau: float = DEFAULT_TAU) -> QCCurve:
    """Segmentation quality-control curve and its d-AUC (lower is better).

    Images are flagged for review one by one by decreasing uncertainty. An image is failing when its Dice is
    ``< tau``. After k flagged images, ``y_k`` = (failing images not yet flagged) / N, for ``k = 0..N``
    (``y_0 = F / N``, ``y_N = 0``). The ideal curve flags by increasing Dice: ``max(F - k, 0) / N``. Areas are
    trapezoids over ``x = k / N`` in [0, 1]; ``d_auc = auc - auc_ideal``.

    Ties: images of equal uncertainty are flagged together, as one operating point (at the group's end); between
    operating points the curve is linear. For this curve that is also the expected value over uniformly random
    orders of the tied images (flagging j of a tied group of L images with f failing flags ``j f / L`` failing ones
    on average), so the N + 1 returned points and the areas never depend on the order of tied images.

    Args:
        image_uncertainty: per-image uncertainty, higher = less sure (flagged first).
        image_dice: per-image Dice of the segmentation, in [0, 1].
        tau: Dice threshold below which a segmentation is failing; default 0.8 (our choice; a parameter because the
            acceptable Dice depends on the structure).

    Shape:
        image_uncertainty, image_dice: ``(N,)``. Returns ``(N + 1,)`` arrays and floats.

    Returns:
        :class:`QCCurve`. With no failing image every curve is 0 and ``d_auc = 0``.

    Raises:
        TypeError: if an input is not a list, numpy array or torch tensor of numbers, or ``tau`` is not a number.
        ValueError: if the inputs are not 1-D of one length, are empty, hold NaN/inf, Dice lies outside [0, 1], or
            ``tau`` lies outside [0, 1].

    Example:
        >>> qc = quality_control_curve([0.9, 0.1, 0.5, 0.3], [0.5, 0.95, 0.9, 0.6], tau=0.8)
        >>> qc.fraction_failing.tolist()  # failing: images 0 and 3; flagged 0, 2, 3, 1
        [0.5, 0.25, 0.25, 0.0, 0.0]
        >>> qc.auc, qc.auc_ideal, qc.d_auc
        (0.1875, 0.125, 0.0625)
    """
    unc = to_numpy("image_uncertainty", image_uncertainty, dtype=np.float64)
    dice = to_numpy("image_dice", image_dice, dtype=np.float64)
    if unc.ndim != 1 or dice.ndim != 1 or unc.shape != dice.shape:
        raise ValueError(
            f"Expected `image_uncertainty` and `image_dice` to be 1-D of one length (N,), but got {unc.shape} and "
            f"{dice.shape}."
        )
    if unc.size == 0:
        raise ValueError("Expected `image_uncertainty` and `image_dice` to hold at least one image, but got 0.")
    check_finite("image_uncertainty", unc)
    check_finite("image_dice", dice)
    if dice.min() < 0 or dice.max() > 1:
        raise ValueError(f"Expected `image_dice` to lie in [0, 1], but got values in [{dice.min()}, {dice.max()}].")
    threshold = _check_tau(tau)

    n = unc.size
    failing = (dice < threshold).astype(np.float64)
    order = np.argsort(-unc, kind="stable")
    unc_sorted, fail_sorted = unc[order], failing[order]
    # Tie groups by decreasing uncertainty: flagged failing count at group ends, linear within a group.
    ends = np.flatnonzero(np.r_[unc_sorted[1:] != unc_sorted[:-1], True]) + 1  # exclusive end of each group
    starts = np.r_[0, ends[:-1]]
    cum = np.r_[0.0, np.cumsum(fail_sorted)]
    group_of = np.repeat(np.arange(ends.size), ends - starts)  # group of the k-th flagged image, k = 1..N
    k = np.arange(1, n + 1)
    s, e = starts[group_of], ends[group_of]
    flagged_failing = cum[s] + (k - s) * (cum[e] - cum[s]) / (e - s)
    total_failing = cum[-1]
    x = np.arange(n + 1) / n
    y = np.r_[total_failing, total_failing - flagged_failing] / n
    y[-1] = 0.0  # exact: every image is flagged
    ideal = np.maximum(total_failing - np.arange(n + 1), 0.0) / n
    auc = float(np.trapezoid(y, x))
    auc_ideal = float(np.trapezoid(ideal, x))
    return QCCurve(x, y, ideal, auc, auc_ideal, auc - auc_ideal)


def ood_auroc(scores_in: ArrayLike, scores_out: ArrayLike) -> float:
    """AUROC that out-of-distribution images get a higher uncertainty than in-distribution ones (higher is better).

    ``AUROC = (1 / (n m)) sum_{i in, j out} ([s_j > s_i] + 1/2 [s_j = s_i])``: the Mann-Whitney U statistic of the
    out-of-distribution scores over ``n m``; 0.5 is chance, 1 a perfect separation. Computed from average ranks of
    the pooled scores in O((n + m) log(n + m)).

    Args:
        scores_in: uncertainty of each in-distribution image.
        scores_out: uncertainty of each out-of-distribution image.

    Shape:
        scores_in ``(n,)``, scores_out ``(m,)`` -> float.

    Returns:
        The AUROC in [0, 1].

    Raises:
        TypeError: if an input is not a list, numpy array or torch tensor of numbers.
        ValueError: if an input is not 1-D, is empty, or holds NaN/inf.

    Example:
        >>> ood_auroc([0.1, 0.2, 0.4], [0.3, 0.4])  # pairs won: 2 + 2.5 of 6
        0.75
    """
    inside = _scores("scores_in", scores_in)
    outside = _scores("scores_out", scores_out)
    n, m = inside.size, outside.size
    ranks = rankdata(np.r_[inside, outside])
    u_out = float(ranks[n:].sum()) - m * (m + 1) / 2.0
    return u_out / (n * m)


def _scores(name: str, value: Any) -> np.ndarray:
    array = to_numpy(name, value, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"Expected `{name}` to be 1-D, but got shape {array.shape}.")
    if array.size == 0:
        raise ValueError(f"Expected `{name}` to hold at least one image, but got 0.")
    check_finite(name, array)
    return array


def _check_tau(tau: Any) -> float:
    if isinstance(tau, bool) or not isinstance(tau, (int, float, np.floating, np.integer)):
        raise TypeError(f"Expected `tau` to be a float in [0, 1], but got {type(tau).__name__}.")
    if not math.isfinite(tau) or not 0.0 <= tau <= 1.0:
        raise ValueError(f"Expected `tau` to be a float in [0, 1], but got {tau}.")
    return float(tau)
