"""Selection with guaranteed risk (SGR, Geifman & El-Yaniv 2017, Algorithm 1) for the voxel error rate (numpy).

Voxels are the samples: the selective risk at threshold t is the error rate among kept voxels
(``uncertainty <= t``). SGR binary-searches the kept count over ``k = ceil(log2 m)`` steps and certifies a cut when
the exact binomial-tail bound ``b*`` at confidence ``delta / k`` is below the target. The guarantee assumes i.i.d.
voxels; voxels of one image are correlated, so it is weaker than the per-image guarantee of
:func:`selectseg.selection.dice_risk_threshold` (see ``docs/referral.md``).

References:
    Geifman, El-Yaniv. Selective Classification for Deep Neural Networks. NeurIPS 2017, section 3, Algorithm 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_finite, to_numpy
from .bounds import _binomial_bounds, check_open_unit, require_calibration_size, sgr_steps
from .thresholds import ReferralThreshold

__all__ = ["selective_guaranteed_risk"]

_REPORT_GRID = 1000


def selective_guaranteed_risk(uncertainty: Any, errors: Any, *, max_risk: float, delta: float) -> ReferralThreshold:
    """The threshold of largest coverage SGR certifies with voxel error rate < ``max_risk`` (lower risk is better).

    Algorithm 1 of Geifman & El-Yaniv (2017) with confidence ``-uncertainty``: sort the m voxels; ``lo, hi = 1, m``
    (kept counts); for ``k = max(1, ceil(log2 m))`` steps test ``c = floor((lo + hi) / 2)``: keep every voxel with
    uncertainty <= the c-th smallest (tied voxels are kept together, so the cut is a distinct value and may keep
    more than c), count its errors e among the kept n_c and compute ``b* = binomial_upper_bound(e, n_c, delta / k)``;
    if ``b* < max_risk`` the cut is certified and ``lo = c``, else ``hi = c``. The paper outputs the last tested
    cut; we output the certified cut of largest coverage (the last certified one), so the returned bound is always
    below the target. Guarantee (union bound over the k tests): with probability >= 1 - delta the error rate of
    new i.i.d. voxels kept at the threshold is <= ``bound`` < max_risk.

    Args:
        uncertainty: each calibration voxel's uncertainty, higher = less sure (all images pooled).
        errors: True (or 1) where the voxel's prediction is wrong.
        max_risk: the target error rate among kept voxels, in (0, 1).
        delta: the failure probability, in (0, 1).

    Shape:
        uncertainty ``(m,)`` (any shape is flattened), errors of the same shape. Returns a
        :class:`~selectseg.selection.ReferralThreshold` with ``method="sgr"``.

    Raises:
        TypeError: if an input is not a list, numpy array or torch tensor of numbers, or ``max_risk``/``delta`` is
            not a number.
        ValueError: if m is below ``minimum_calibration_size(max_risk, delta, "sgr")`` (checked first; the message
            says how many voxels are needed), the shapes differ, ``uncertainty`` holds NaN/inf, ``errors`` holds
            values other than 0/1, ``max_risk`` or ``delta`` is outside (0, 1), or no tested cut is certified (the
            message gives the best bound over a grid of cuts and its coverage).

    Example:
        >>> u = np.linspace(0, 1, 1000)
        >>> wrong = np.arange(1000) >= 950  # the 50 most uncertain voxels are wrong
        >>> r = selective_guaranteed_risk(u, wrong, max_risk=0.05, delta=0.1)
        >>> r.coverage, round(r.risk, 4), round(r.bound, 4)
        (0.983, 0.0336, 0.0495)

    References:
        Geifman, El-Yaniv, NeurIPS 2017, Algorithm 1 and Lemma 3.1.
    """
    alpha = check_open_unit("max_risk", max_risk)
    level = check_open_unit("delta", delta)
    u = to_numpy("uncertainty", uncertainty)
    wrong = to_numpy("errors", errors)
    if u.shape != wrong.shape:
        raise ValueError(
            f"Expected `uncertainty` and `errors` to have the same shape, but got {u.shape} and {wrong.shape}."
        )
    m = u.size
    require_calibration_size(m, max_risk=alpha, delta=level, method="sgr")
    u = u.astype(np.float64, copy=False).reshape(-1)
    check_finite("uncertainty", u)
    wrong = wrong.reshape(-1)
    if wrong.dtype != np.bool_:
        if np.any((wrong != 0) & (wrong != 1)):
            raise ValueError("Expected `errors` to hold only 0/1 or booleans.")
        wrong = wrong.astype(bool)
    order = np.argsort(u, kind="stable")
    ordered = u[order]
    cumulative_errors = np.r_[0, np.cumsum(wrong[order], dtype=np.int64)]
    steps = sgr_steps(m)
    level_per_test = level / steps
    lo, hi = 1, m
    best: tuple[float, int, int, float] | None = None
    for _ in range(steps):
        c = (lo + hi) // 2
        threshold = float(ordered[c - 1])
        kept = int(np.searchsorted(ordered, threshold, side="right"))
        errors_kept = int(cumulative_errors[kept])
        bound = float(_binomial_bounds(np.array([errors_kept]), np.array([kept]), level_per_test)[0])
        if bound < alpha:
            lo = c
            best = (threshold, kept, errors_kept, bound)
        else:
            hi = c
    target = {"max_risk": alpha, "delta": level}
    if best is None:
        raise ValueError(_unreachable(ordered, cumulative_errors, alpha, level, steps))
    threshold, kept, errors_kept, bound = best
    return ReferralThreshold(threshold, kept / m, errors_kept / kept, bound, "sgr", target)


def _unreachable(ordered: np.ndarray, cumulative_errors: np.ndarray, alpha: float, delta: float, steps: int) -> str:
    """The message when no cut is certified, with the smallest b* over a grid of at most 1000 cuts."""
    m = ordered.size
    j = np.arange(1, min(m, _REPORT_GRID) + 1, dtype=np.int64)
    positions = (j * m + j.size - 1) // j.size
    kept = np.unique(np.searchsorted(ordered, ordered[positions - 1], side="right"))
    bounds = _binomial_bounds(cumulative_errors[kept], kept, delta / steps)
    best = int(np.argmin(bounds))
    return (
        f"The target max_risk={alpha} is unreachable by SGR with delta={delta} at any coverage > 0 on {m} calibration "
        f"voxels: none of its {steps} binary-search cuts has b* < max_risk. For reference, the smallest b* (at "
        f"delta/{steps}) over a grid of {kept.size} cuts is {bounds[best]:.4g} at coverage {kept[best] / m:.4g} "
        f"(error rate {cumulative_errors[kept[best]] / kept[best]:.4g}); ask for a larger max_risk or calibrate on "
        "more voxels."
    )
