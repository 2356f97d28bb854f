"""Referral thresholds: pick the uncertainty threshold on a held-out calibration set (numpy float64).

A voxel is kept (segmented by the model) when ``uncertainty <= threshold`` and referred otherwise; threshold -inf
refers everything. Voxels of equal uncertainty are kept or referred together, so the candidate thresholds are the
distinct uncertainty values plus -inf. Targets:

- a coverage (:func:`threshold_for_coverage`): the smallest achievable pooled coverage >= the target;
- a risk with a guarantee on new images: per-image risk ``1 - Dice_i`` after referral, certified by Learn then Test
  with Hoeffding-Bentkus p-values (``"ltt"``: the risk of new images is <= max_risk with probability >= 1 - delta)
  or by conformal risk control (``"crc"``: the expected risk is <= max_risk)
  (:func:`dice_risk_threshold`, exact over every distinct threshold; :func:`certify_image_risk` for a
  :func:`~selectseg.selection.risk_matrix` on any grid);
- the voxel error rate by selection with guaranteed risk (:mod:`selectseg.selection.sgr`).

See ``docs/referral.md`` for the formulas and why a data-dependent grid keeps the guarantee.

References:
    Angelopoulos, Bates, Candes, Jordan, Lei. Learn then Test. arXiv:2110.01052, 2021.
    Bates, Angelopoulos, Lei, Malik, Jordan. Distribution-Free, Risk-Controlling Prediction Sets. JACM 2021.
    Angelopoulos, Bates, Fisch, Lei, Schuster. Conformal Risk Control. ICLR 2024 (arXiv:2208.02814, 2022).
    Ding et al. Uncertainty-Aware Training of Neural Networks for Selective Medical Image Segmentation. MIDL 2020.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from .._types import ImageArray
from .._validation import (
    check_finite,
    check_non_empty_sequence,
    check_positive_int,
    look_up_option,
    to_numpy,
)
from ..metrics import selective_dice_curve
from .bounds import _hb_bound, _hb_pvalues, check_open_unit, require_calibration_size
from .risk import _check_thresholds, _pooled_sorted

__all__ = [
    "IMAGE_METHODS",
    "ReferralThreshold",
    "certify_image_risk",
    "certify_mean_risk",
    "dice_risk_threshold",
    "threshold_for_coverage",
]

IMAGE_METHODS = ("ltt", "crc")
"""Methods that certify a bounded per-image risk."""


class ReferralThreshold(NamedTuple):
    """A calibrated referral threshold: keep voxels with ``uncertainty <= threshold``, refer the rest.

    Attributes:
        threshold: the uncertainty threshold (a distinct calibration value, or -inf to refer everything).
        coverage: the fraction of calibration voxels kept (pooled over all images).
        risk: the empirical calibration risk at the threshold (mean ``1 - Dice_i``, or the error rate among kept
            voxels for ``"sgr"``); NaN where not computed (coverage mode without labels).
        bound: the certified bound: the Hoeffding-Bentkus upper confidence bound (``"ltt"``), the conformal
            adjusted risk ``(n R + 1) / (n + 1)`` (``"crc"``), ``b*`` (``"sgr"``); NaN for ``"coverage"``.
        method: ``"coverage"``, ``"ltt"``, ``"crc"`` or ``"sgr"``.
        target: what was asked, e.g. ``{"coverage": 0.9}`` or ``{"max_risk": 0.05, "delta": 0.1}`` (``delta`` is
            None for ``"crc"``, which does not use it).
    """

    threshold: float
    coverage: float
    risk: float
    bound: float
    method: str
    target: dict[str, Any]


def _check_coverage(coverage: Any) -> float:
    if isinstance(coverage, bool) or not isinstance(coverage, (int, float, np.floating)):
        raise TypeError(f"Expected `coverage` to be a float in [0, 1], but got {type(coverage).__name__}.")
    if not 0.0 <= coverage <= 1.0:
        raise ValueError(f"Expected `coverage` to be a float in [0, 1], but got {coverage}.")
    return float(coverage)


def threshold_for_coverage(uncertainties: Sequence[ImageArray], coverage: float) -> ReferralThreshold:
    """The threshold whose pooled coverage is the smallest achievable one >= ``coverage`` (refer the least).

    Coverage is counted over all voxels of all images together. Tied voxels are kept together, so the achieved
    coverage may exceed the target; the threshold is a distinct uncertainty value, or -inf for ``coverage = 0``.
    ``risk`` and ``bound`` are NaN (no labels here).

    Args:
        uncertainties: per-image uncertainty maps, higher = less sure.
        coverage: the target coverage, in [0, 1].

    Shape:
        A list of N arrays of any shapes ``(*S_i)``. Returns a :class:`ReferralThreshold`.

    Raises:
        TypeError: if ``uncertainties`` is not a list of arrays/tensors of numbers or ``coverage`` not a number.
        ValueError: if ``coverage`` is outside [0, 1], the list is empty, or an image is empty or holds NaN/inf.

    Example:
        >>> r = threshold_for_coverage([np.array([0.1, 0.2, 0.2, 0.9])], 0.5)  # ties: 0.2 keeps 3/4 >= 1/2
        >>> r.threshold, r.coverage
        (0.2, 0.75)
    """
    target = _check_coverage(coverage)
    ordered = _pooled_sorted(uncertainties)
    total = ordered.size
    needed = min(total, math.ceil(target * total))  # smallest m with m / total >= target
    while needed > 0 and (needed - 1) / total >= target:
        needed -= 1
    while needed < total and needed / total < target:
        needed += 1
    if needed == 0:
        threshold, kept = -math.inf, 0
    else:
        threshold = float(ordered[needed - 1])
        kept = int(np.searchsorted(ordered, threshold, side="right"))
    return ReferralThreshold(threshold, kept / total, math.nan, math.nan, "coverage", {"coverage": target})


def _check_grid(thresholds: Any, coverages: Any, size: int) -> tuple[np.ndarray, np.ndarray]:
    t = _check_thresholds(thresholds)
    c = to_numpy("coverages", coverages, dtype=np.float64)
    if t.shape != (size,) or c.shape != (size,):
        raise ValueError(
            f"Expected `thresholds` and `coverages` to have one value per candidate ({size},), "
            f"but got {t.shape} and {c.shape}."
        )
    if np.any(np.diff(t) <= 0):
        raise ValueError("Expected `thresholds` to be strictly increasing (the most conservative first).")
    check_finite("coverages", c)
    if c.min() < 0 or c.max() > 1 or np.any(np.diff(c) < 0):
        raise ValueError("Expected `coverages` to be non-decreasing and in [0, 1].")
    return t, c


def certify_image_risk(
    risks: Any,
    thresholds: Any,
    coverages: Any,
    *,
    max_risk: float,
    delta: float,
    method: str = "ltt",
) -> ReferralThreshold:
    """The largest-coverage threshold whose per-image risk on new images is certified <= ``max_risk``.

    The candidates are tested from the most conservative (lowest threshold) upwards and the last one certified
    before the first failure is returned (fixed-sequence testing):

    - ``"ltt"``: candidate t is certified when the Hoeffding-Bentkus p-value of its mean calibration risk
      ``R(t)`` at level ``max_risk`` is <= ``delta``. Guarantee: with probability >= 1 - delta over the
      calibration set, the expected risk of a new image at the returned threshold is <= max_risk. Valid for any
      risks in [0, 1] on a grid fixed before seeing the data, and for any grid when each image's risk is
      non-decreasing in t (as ``1 - Dice`` is), see ``docs/referral.md``.
    - ``"crc"``: certified when ``n / (n + 1) R(t) + 1 / (n + 1) <= max_risk`` (loss bound B = 1). Guarantee in
      expectation only: E[risk of a new image] <= max_risk; ``delta`` is ignored. Needs per-image risks
      non-decreasing in t.

    Args:
        risks: per-image risks in [0, 1] at each candidate (e.g. :func:`risk_matrix`).
        thresholds: strictly increasing candidate thresholds (may start with -inf).
        coverages: the pooled calibration coverage of each candidate, non-decreasing in [0, 1].
        max_risk: the target risk, in (0, 1).
        delta: the failure probability, in (0, 1) (validated but unused by ``"crc"``).
        method: ``"ltt"`` (default) or ``"crc"``.

    Shape:
        risks ``(N, T)``, thresholds ``(T,)``, coverages ``(T,)``. Returns a :class:`ReferralThreshold`.

    Raises:
        TypeError: if an argument has the wrong type.
        ValueError: if N is below :func:`~selectseg.selection.minimum_calibration_size` (checked first; the
            message says how many images are needed), shapes disagree, risks lie outside [0, 1] or hold NaN,
            thresholds are not strictly increasing, coverages are not non-decreasing in [0, 1], ``"crc"`` gets a
            risk that decreases with the threshold, or ``max_risk`` is unreachable at any coverage > 0 (the
            message gives the best achievable bound and its coverage).

    Example:
        >>> t = np.array([-np.inf, 0.5, 1.0])
        >>> risks = np.tile([0.0, 0.0, 0.2], (60, 1))  # 60 images
        >>> certify_image_risk(risks, t, [0.0, 0.5, 1.0], max_risk=0.1, delta=0.1).coverage
        0.5

    References:
        Angelopoulos et al., Learn then Test, 2021; Bates et al., RCPS, 2021; Angelopoulos et al., Conformal Risk
        Control, 2022, Theorem 1.
    """
    alpha = check_open_unit("max_risk", max_risk)
    level = check_open_unit("delta", delta)
    method = look_up_option("method", method, IMAGE_METHODS)
    r = to_numpy("risks", risks, dtype=np.float64)
    if r.ndim != 2 or r.shape[1] == 0:
        raise ValueError(f"Expected `risks` to be 2-D (N, T) with T >= 1, but got shape {r.shape}.")
    require_calibration_size(r.shape[0], max_risk=alpha, delta=level, method=method)
    t, c = _check_grid(thresholds, coverages, r.shape[1])
    if np.isnan(r).any() or r.min() < 0 or r.max() > 1:
        raise ValueError("Expected `risks` to lie in [0, 1] with no NaN.")
    if method == "crc" and np.any(np.diff(r, axis=1) < -1e-12):
        raise ValueError(
            "Expected every image's risk to be non-decreasing in the threshold for method 'crc' (conformal risk "
            "control needs monotone losses); use method 'ltt'."
        )
    return _certify(r.mean(axis=0), r.shape[0], t, c, alpha, level, method)


def certify_mean_risk(
    mean_risk: Any,
    num_images: int,
    thresholds: Any,
    coverages: Any,
    *,
    max_risk: float,
    delta: float,
    method: str = "ltt",
) -> ReferralThreshold:
    """:func:`certify_image_risk` from the mean risk over images (both methods only use the mean).

    Use it when per-image risks are monotone by construction and the mean is cheaper to get at every candidate
    (e.g. ``1 - SelectiveDiceCurve.dice``).

    Args:
        mean_risk: the mean per-image risk at each candidate, in [0, 1].
        num_images: N, the number of calibration images the mean is over.
        thresholds, coverages, max_risk, delta, method: as in :func:`certify_image_risk`.

    Shape:
        mean_risk, thresholds, coverages ``(T,)``. Returns a :class:`ReferralThreshold`.

    Raises:
        TypeError: if an argument has the wrong type.
        ValueError: as :func:`certify_image_risk` (N too small, checked first; bad shapes or ranges; unreachable
            target).

    Example:
        >>> certify_mean_risk([0.0, 0.0, 0.2], 60, [-np.inf, 0.5, 1.0], [0.0, 0.5, 1.0], max_risk=0.1,
        ...                   delta=0.1, method="crc").threshold
        0.5
    """
    alpha = check_open_unit("max_risk", max_risk)
    level = check_open_unit("delta", delta)
    method = look_up_option("method", method, IMAGE_METHODS)
    n = check_positive_int("num_images", num_images)
    require_calibration_size(n, max_risk=alpha, delta=level, method=method)
    r = to_numpy("mean_risk", mean_risk, dtype=np.float64)
    if r.ndim != 1 or r.size == 0:
        raise ValueError(f"Expected `mean_risk` to be 1-D (T,) with T >= 1, but got shape {r.shape}.")
    if np.isnan(r).any() or r.min() < 0 or r.max() > 1:
        raise ValueError("Expected `mean_risk` to lie in [0, 1] with no NaN.")
    t, c = _check_grid(thresholds, coverages, r.size)
    return _certify(r, n, t, c, alpha, level, method)


def dice_risk_threshold(
    predictions: Sequence[ImageArray],
    references: Sequence[ImageArray],
    uncertainties: Sequence[ImageArray],
    *,
    num_classes: int,
    max_risk: float,
    delta: float,
    method: str = "ltt",
) -> ReferralThreshold:
    """The largest-coverage threshold with per-image risk ``1 - Dice_i`` certified <= ``max_risk`` (exact).

    :func:`certify_mean_risk` over every distinct threshold: the mean risk ``1 - Dice(t)`` comes from
    :func:`selectseg.metrics.selective_dice_curve`, whose stored points include the end of every flat run, where
    the largest certified threshold lies (the risk, hence the p-value, is non-decreasing in t). No grid is needed.

    Args:
        predictions, references, uncertainties: per-image label maps and uncertainty maps (the calibration set).
        num_classes: K >= 2.
        max_risk, delta, method: as in :func:`certify_image_risk`.

    Shape:
        Three lists of N arrays, image i's of one shape ``(*S_i)``. Returns a :class:`ReferralThreshold`.

    Raises:
        TypeError: if an argument has the wrong type.
        ValueError: if N is below :func:`~selectseg.selection.minimum_calibration_size` (checked before anything
            else is computed), an input is invalid (as :func:`selectseg.metrics.selective_dice_curve`), or
            ``max_risk`` is unreachable at any coverage > 0.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> refs = [rng.integers(0, 2, 50) for _ in range(60)]
        >>> preds = [np.where(np.arange(50) < 5, 1 - r, r) for r in refs]  # 5 wrong voxels per image ...
        >>> uncs = [np.linspace(1, 0, 50) for _ in range(60)]  # ... the most uncertain ones
        >>> dice_risk_threshold(preds, refs, uncs, num_classes=2, max_risk=0.05, delta=0.1).coverage
        0.9
    """
    alpha = check_open_unit("max_risk", max_risk)
    level = check_open_unit("delta", delta)
    method = look_up_option("method", method, IMAGE_METHODS)
    n = len(check_non_empty_sequence("predictions", predictions))
    require_calibration_size(n, max_risk=alpha, delta=level, method=method)
    curve = selective_dice_curve(predictions, references, uncertainties, num_classes=num_classes)
    mean_risk = np.clip(1.0 - curve.dice, 0.0, 1.0)
    return _certify(mean_risk, n, curve.thresholds, curve.coverage, alpha, level, method)


def _certify(
    mean_risk: np.ndarray,
    n: int,
    thresholds: np.ndarray,
    coverages: np.ndarray,
    alpha: float,
    delta: float,
    method: str,
) -> ReferralThreshold:
    """Fixed-sequence testing from index 0 upwards; trusts its (validated) input."""
    if method == "ltt":
        passed = _hb_pvalues(mean_risk, n, alpha) <= delta
    else:
        adjusted = _crc_adjusted(mean_risk, n)
        passed = adjusted <= alpha
    failed = np.flatnonzero(~passed)
    last = (int(failed[0]) if failed.size else mean_risk.size) - 1
    target: dict[str, Any] = {"max_risk": alpha, "delta": delta if method == "ltt" else None}
    if last < 0 or coverages[last] <= 0:
        raise ValueError(_unreachable(mean_risk, n, coverages, alpha, delta, method))
    risk = float(mean_risk[last])
    bound = min(_hb_bound(risk, n, delta), alpha) if method == "ltt" else float(_crc_adjusted(mean_risk[last], n))
    return ReferralThreshold(float(thresholds[last]), float(coverages[last]), risk, bound, method, target)


def _crc_adjusted(mean_risk: np.ndarray | float, n: int) -> Any:
    """Conformal risk control's inflated risk ``n / (n + 1) R + B / (n + 1)`` with B = 1."""
    return (n * np.asarray(mean_risk) + 1.0) / (n + 1)


def _unreachable(mean_risk: np.ndarray, n: int, coverages: np.ndarray, alpha: float, delta: float, method: str) -> str:
    """The unreachable-target message with the best achievable bound at a coverage > 0."""
    guarantee = f"with delta={delta}" if method == "ltt" else "in expectation (crc)"
    head = f"The target max_risk={alpha} is unreachable {guarantee} at any coverage > 0 from {n} calibration images"
    positive = np.flatnonzero(coverages > 0)
    if positive.size == 0:
        return f"{head}: no candidate threshold keeps any voxel."
    lowest = mean_risk[positive].min()
    best = positive[np.flatnonzero(mean_risk[positive] == lowest)[-1]]  # the largest coverage at the lowest risk
    bound = _hb_bound(float(lowest), n, delta) if method == "ltt" else float(_crc_adjusted(lowest, n))
    return (
        f"{head}: the best achievable bound is {bound:.4g} (empirical risk {lowest:.4g}) at coverage "
        f"{coverages[best]:.4g}. Ask for max_risk >= {bound:.4g}, or calibrate on more images."
    )
