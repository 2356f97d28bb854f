"""Slow, obviously-correct references for referral calibration: explicit loops, direct formulas, and selection with
guaranteed risk transcribed step by step from the paper's pseudo-code (Geifman & El-Yaniv 2017, Algorithm 1)."""

from __future__ import annotations

import math

import numpy as np

from .dice_curve import image_dice


def image_risks(preds, refs, uncs, thresholds, num_classes) -> np.ndarray:
    """(N, T): 1 - Dice of each image with the voxels above each threshold replaced by the reference."""
    out = np.zeros((len(preds), len(thresholds)))
    for i, (p, y, u) in enumerate(zip(preds, refs, uncs)):
        for j, t in enumerate(thresholds):
            substituted = np.where(u <= t, p, y)
            out[i, j] = 1.0 - image_dice(substituted, y, num_classes)
    return out


def coverage_from_above(uncs, target: float) -> tuple[float, float]:
    """Among -inf and every distinct value, the threshold of the smallest pooled coverage >= target."""
    pooled = [float(v) for u in uncs for v in np.asarray(u).reshape(-1)]
    for t in [-math.inf, *sorted(set(pooled))]:
        coverage = sum(1 for v in pooled if v <= t) / len(pooled)
        if coverage >= target:
            return t, coverage
    raise AssertionError("unreachable: the largest value keeps everything")


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(Binomial(n, p) <= k) by summing the probability mass function (log-space terms)."""
    if k >= n:
        return 1.0
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    total = 0.0
    for j in range(k + 1):
        log_term = math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1)
        total += math.exp(log_term + j * math.log(p) + (n - j) * math.log1p(-p))
    return total


def hb_pvalue(risk_mean: float, n: int, alpha: float) -> float:
    """Hoeffding-Bentkus p-value (Bates et al. 2021): min(exp(-n h1(R ^ alpha, alpha)), e P(Bin(n, alpha) <= ceil(nR)))
    (the ceiling forgives 1e-9 of rounding in n R, as the library does)."""
    a = min(risk_mean, alpha)
    h1 = (a * math.log(a / alpha) if a > 0 else 0.0) + (1 - a) * math.log((1 - a) / (1 - alpha))
    return min(math.exp(-n * h1), math.e * binomial_cdf(math.ceil(n * risk_mean - 1e-9), n, alpha))


def tail_bound(errors: int, m: int, delta: float) -> float:
    """b solving sum_{j <= errors} C(m, j) b^j (1 - b)^(m - j) = delta (Lemma 3.1), by bisection."""
    if errors >= m:
        return 1.0
    lo, hi = 0.0, 1.0  # the CDF decreases in b from 1 to 0
    for _ in range(80):
        mid = (lo + hi) / 2
        if binomial_cdf(errors, m, mid) > delta:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def fixed_sequence(risks: np.ndarray, alpha: float, delta: float, method: str) -> int:
    """Index of the last candidate certified before the first failure, testing from index 0 (-1 if none)."""
    n = risks.shape[0]
    last = -1
    for j in range(risks.shape[1]):
        mean = float(np.mean(risks[:, j]))
        adjusted = n / (n + 1) * mean + 1 / (n + 1)  # conformal risk control
        ok = hb_pvalue(mean, n, alpha) <= delta if method == "ltt" else adjusted <= alpha
        if not ok:
            break
        last = j
    return last


def sgr_paper(uncertainty, errors, r_star: float, delta: float):
    """Algorithm 1 of Geifman & El-Yaniv (2017) with kappa = -uncertainty, returning the last certified selector.

    Returns (threshold on the uncertainty, coverage, empirical risk, bound) of the last tested g_i with
    b*_i < r*, or None when none is certified.
    """
    kappa = [-float(v) for v in np.asarray(uncertainty).reshape(-1)]
    err = [bool(v) for v in np.asarray(errors).reshape(-1)]
    m = len(kappa)
    ordered = sorted(kappa)  # S_m sorted by kappa (ascending)
    k = max(1, math.ceil(math.log2(m)))
    z_min, z_max = 1, m
    certified = None
    for _ in range(k):
        z = -(-(z_min + z_max) // 2)  # ceil((z_min + z_max) / 2)
        theta = ordered[z - 1]  # kappa(x_z)
        selected = [i for i in range(m) if kappa[i] >= theta]  # g_theta
        risk = sum(err[i] for i in selected) / len(selected)
        bound = tail_bound(sum(err[i] for i in selected), len(selected), delta / k)
        if bound < r_star:
            z_max = z
            certified = (-theta, len(selected) / m, risk, bound)
        else:
            z_min = z
    return certified
