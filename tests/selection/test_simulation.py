"""Repeated calibration/test splits of synthetic data with a known population risk: the guarantees hold.

Each trial draws a fresh calibration set, calibrates, and evaluates the *population* risk at the chosen threshold
(known in closed form or by quadrature, so the test side has no sampling error). Learn then Test and SGR must
violate the target in at most a fraction delta of trials, up to 3 binomial standard errors; conformal risk control
must keep the mean risk over trials <= max_risk up to 3 standard errors. Each also has to be useful: its mean
coverage is compared with the oracle's (the largest coverage whose population risk is <= max_risk).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from selectseg.selection import certify_image_risk, dice_risk_threshold, risk_matrix, selective_guaranteed_risk

TRIALS = 400
ALPHA = 0.1
DELTA = 0.1


def _allowed_rate(delta: float = DELTA, trials: int = TRIALS) -> float:
    return delta + 3 * math.sqrt(delta * (1 - delta) / trials)


def _calibrated_coverage(risks, thresholds, coverages, method) -> float:
    try:
        return certify_image_risk(risks, thresholds, coverages, max_risk=ALPHA, delta=DELTA, method=method).coverage
    except ValueError as err:  # unreachable: refer everything (coverage 0, risk 0)
        assert "unreachable" in str(err)
        return 0.0


def test_ltt_controls_a_dice_like_risk_with_probability_one_minus_delta():
    # Image i: risk_i(c) = 1 - exp(-s_i c^p_i) at coverage c (uncertainty ~ U(0, 1), so threshold = coverage), with
    # s ~ Exponential(mean 0.5), p ~ U(1, 3): E[risk(c)] = 1 - (1/2) int_1^3 dp / (1 + 0.5 c^p).
    rng = np.random.default_rng(0)
    grid = np.arange(1, 41) / 40
    coverages, thresholds = np.r_[0.0, grid], np.r_[-np.inf, grid]
    p = np.linspace(1, 3, 4001)
    population = np.r_[0.0, 1 - np.trapezoid(1 / (1 + 0.5 * np.power.outer(grid, p)), p, axis=1) / 2]
    oracle = coverages[population <= ALPHA].max()
    n = 150
    chosen = []
    for _ in range(TRIALS):
        s, shape = rng.exponential(0.5, n), rng.uniform(1, 3, n)
        risks = 1 - np.exp(-s[:, None] * coverages[None, :] ** shape[:, None])
        chosen.append(_calibrated_coverage(risks, thresholds, coverages, "ltt"))
    risk = np.interp(chosen, coverages, population)
    assert np.mean(risk > ALPHA) <= _allowed_rate()
    assert np.mean(chosen) >= 0.5 * oracle  # not vacuous (HB is conservative at n = 150)


@pytest.mark.parametrize("method", ["ltt", "crc"])
def test_image_failure_risk_on_a_fine_grid(method):
    # Image i fails (risk 1) once the coverage reaches v_i and is perfect before: P(v_i <= c) = 0.3 c^2, so the
    # population risk is R(c) = 0.3 c^2 exactly. Binary risks are where Hoeffding-Bentkus is tightest, and 400
    # candidates test that looking at many thresholds costs nothing (monotone risk, fixed-sequence testing).
    rng = np.random.default_rng(1)
    grid = np.arange(1, 401) / 400
    coverages, thresholds = np.r_[0.0, grid], np.r_[-np.inf, grid]
    oracle = math.sqrt(ALPHA / 0.3)
    n = 200
    chosen = []
    for _ in range(TRIALS):
        v = np.where(rng.random(n) < 0.3, np.sqrt(rng.random(n)), np.inf)
        risks = (coverages[None, :] >= v[:, None]).astype(np.float64)
        chosen.append(_calibrated_coverage(risks, thresholds, coverages, method))
    risk = 0.3 * np.asarray(chosen) ** 2
    if method == "ltt":
        assert np.mean(risk > ALPHA) <= _allowed_rate()
        assert np.mean(chosen) >= 0.7 * oracle
    else:  # in expectation only: the mean risk over calibration sets, not the violation rate
        assert risk.mean() <= ALPHA + 3 * risk.std() / math.sqrt(TRIALS)
        assert np.mean(chosen) >= 0.9 * oracle


def test_sgr_controls_the_error_rate_of_iid_voxels():
    # Voxel uncertainty u ~ U(0, 1), P(wrong | u) = 0.45 u^2: the selective risk at threshold t is 0.15 t^2.
    rng = np.random.default_rng(2)
    m, max_risk = 3000, 0.08
    oracle = math.sqrt(max_risk / 0.15)
    thresholds = []
    for _ in range(TRIALS):
        u = rng.random(m)
        wrong = rng.random(m) < 0.45 * u**2
        try:
            thresholds.append(selective_guaranteed_risk(u, wrong, max_risk=max_risk, delta=DELTA).threshold)
        except ValueError as err:
            assert "unreachable" in str(err)
            thresholds.append(0.0)
    t = np.asarray(thresholds)
    assert np.mean(0.15 * t**2 > max_risk) <= _allowed_rate()
    assert t.mean() >= 0.7 * oracle


def _disc_images(rng: np.random.Generator, count: int, size: int = 16):
    """Binary images: a disc of random centre and radius; the model's disc has a per-image radius error (errors
    are correlated within an image) and pixel noise; uncertainty = 1 - max softmax."""
    yy, xx = np.mgrid[:size, :size]
    centre = rng.uniform(5, size - 5, (count, 2))
    radius = rng.uniform(2.5, 5.5, count)
    dist = np.hypot(yy[None] - centre[:, 0, None, None], xx[None] - centre[:, 1, None, None])
    reference = (dist <= radius[:, None, None]).astype(np.int64)
    logit = (radius[:, None, None] + rng.normal(0, 0.7, (count, 1, 1)) - dist) / 0.8
    prob = 1 / (1 + np.exp(-(logit + rng.normal(0, 0.6, (count, size, size)))))
    return list((prob > 0.5).astype(np.int64)), list(reference), list(1 - np.maximum(prob, 1 - prob))


def test_ltt_end_to_end_on_images_with_referral():
    # The population risk E[1 - Dice_i(t)] comes from 2000 fresh images on a grid of 200 thresholds; the chosen
    # threshold is judged by the grid point at or above it (risk is monotone, so that over-counts violations).
    rng = np.random.default_rng(3)
    pred, ref, unc = _disc_images(rng, 2000)
    pooled = np.sort(np.concatenate([u.reshape(-1) for u in unc]))
    grid = np.r_[-np.inf, np.quantile(pooled, np.arange(1, 201) / 200)]
    population = risk_matrix(pred, ref, unc, grid, num_classes=2).mean(axis=0)
    oracle = np.searchsorted(pooled, grid[population <= ALPHA].max(), side="right") / pooled.size
    trials = 120
    violations, coverage = [], []
    for _ in range(trials):
        chosen = dice_risk_threshold(*_disc_images(rng, 100), num_classes=2, max_risk=ALPHA, delta=DELTA)
        above = min(int(np.searchsorted(grid, chosen.threshold, side="left")), grid.size - 1)
        violations.append(population[above] > ALPHA)
        coverage.append(chosen.coverage)
    assert np.mean(violations) <= _allowed_rate(trials=trials)
    assert np.mean(coverage) >= 0.8 * oracle
