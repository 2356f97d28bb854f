from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from selectseg.metrics import selective_dice_curve
from selectseg.selection import (
    ReferralThreshold,
    candidate_thresholds,
    certify_image_risk,
    certify_mean_risk,
    dice_risk_threshold,
    hoeffding_bentkus_bound,
    minimum_calibration_size,
    risk_matrix,
    threshold_for_coverage,
)
from tests.reference.selection import coverage_from_above, fixed_sequence, image_risks


def _images(rng, n=4, k=3, levels=None, accuracy=0.8):
    """Images of different shapes; ``levels`` quantises the uncertainty (many ties)."""
    preds, refs, uncs = [], [], []
    for i in range(n):
        shape = (5 + i % 3, 7) if i % 2 else (3, 4, 5)
        y = rng.integers(0, k, shape)
        p = np.where(rng.random(shape) < accuracy, y, rng.integers(0, k, shape))
        u = rng.random(shape) if levels is None else rng.integers(0, levels, shape) / levels
        preds.append(p)
        refs.append(y)
        uncs.append(u)
    return preds, refs, uncs


# --- threshold_for_coverage -------------------------------------------------------------------------------------


def test_threshold_for_coverage_hand_computed():
    u = [np.array([0.1, 0.2, 0.2, 0.9])]
    table = [(0.0, -math.inf, 0.0), (0.1, 0.1, 0.25), (0.25, 0.1, 0.25), (0.26, 0.2, 0.75), (0.75, 0.2, 0.75)]
    table += [(0.76, 0.9, 1.0), (1.0, 0.9, 1.0)]
    for target, threshold, coverage in table:
        r = threshold_for_coverage(u, target)
        assert (r.threshold, r.coverage) == (threshold, coverage), target
        assert r.method == "coverage" and r.target == {"coverage": target}
        assert math.isnan(r.risk) and math.isnan(r.bound)


@pytest.mark.parametrize("levels", [None, 3, 11])
def test_threshold_for_coverage_equals_brute_force_pooled_over_images(levels, rng):
    _, _, uncs = _images(rng, levels=levels)
    pooled = np.concatenate([u.reshape(-1) for u in uncs])
    exact = float(np.mean(pooled <= np.median(pooled)))  # an achievable coverage: that threshold exactly
    for target in [0.0, 1e-9, 0.05, 0.3, 0.5, 0.77, 0.9, 0.999, 1.0, exact]:
        r = threshold_for_coverage(uncs, float(target))
        want = coverage_from_above(uncs, float(target))
        assert (r.threshold, r.coverage) == pytest.approx(want, rel=0, abs=0)
        assert r.coverage >= target
        assert r.coverage == np.mean(pooled <= r.threshold)


def test_threshold_for_coverage_keeps_ties_together_and_accepts_torch_and_float32(rng):
    u = np.full((4, 4), 0.5, dtype=np.float32)
    r = threshold_for_coverage([u], 0.01)
    assert (r.threshold, r.coverage) == (0.5, 1.0)  # one tie group: everything or nothing
    _, _, uncs = _images(rng, levels=7)
    a = threshold_for_coverage(uncs, 0.6)
    b = threshold_for_coverage([torch.from_numpy(x.astype(np.float32)) for x in uncs], 0.6)
    assert a.coverage == b.coverage and b.threshold == float(np.float32(a.threshold))


# --- candidate_thresholds -----------------------------------------------------------------------------------------


def test_candidate_thresholds_are_distinct_values_at_coverage_quantiles(rng):
    _, _, uncs = _images(rng, n=6)
    pooled = np.concatenate([u.reshape(-1) for u in uncs])
    t, c = candidate_thresholds(uncs, max_candidates=10)
    assert t[0] == -math.inf and c[0] == 0 and c[-1] == 1 and t.size == 11
    assert np.all(np.diff(t) > 0) and np.all(np.isin(t[1:], pooled))
    want = [coverage_from_above(uncs, j / 10)[0] for j in range(1, 11)]
    np.testing.assert_array_equal(t[1:], want)
    np.testing.assert_array_equal(c, [np.mean(pooled <= x) for x in t])


def test_candidate_thresholds_keep_every_distinct_value_when_few(rng):
    _, _, uncs = _images(rng, levels=5)
    t, _ = candidate_thresholds(uncs, max_candidates=200)
    np.testing.assert_array_equal(t, np.r_[-np.inf, np.unique(np.concatenate([u.reshape(-1) for u in uncs]))])


# --- risk_matrix --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("levels", [None, 4])
@pytest.mark.parametrize("k", [2, 4])
def test_risk_matrix_equals_brute_force_and_the_dice_curve(levels, k, rng):
    preds, refs, uncs = _images(rng, k=k, levels=levels)
    thresholds = np.r_[-np.inf, -1.0, np.quantile(np.concatenate([u.ravel() for u in uncs]), [0, 0.3, 0.6, 1]), 3.0]
    thresholds = np.r_[thresholds, 0.25, 0.5]  # any order
    risks = risk_matrix(preds, refs, uncs, thresholds, num_classes=k)
    np.testing.assert_allclose(risks, image_risks(preds, refs, uncs, thresholds, k), rtol=0, atol=1e-12)
    curve = selective_dice_curve(preds, refs, uncs, num_classes=k)
    for j, t in enumerate(thresholds):
        np.testing.assert_allclose(1 - risks[:, j], curve.at_threshold(float(t)).image_dice, atol=1e-12)


def test_risk_matrix_is_monotone_and_zero_when_everything_is_referred(rng):
    preds, refs, uncs = _images(rng, levels=9)
    t, _ = candidate_thresholds(uncs)
    risks = risk_matrix(preds, refs, uncs, t, num_classes=3)
    assert np.all(risks[:, 0] == 0)
    assert np.all(np.diff(risks, axis=1) >= -1e-15)


def test_risk_matrix_hand_computed_and_float32_threshold_semantics():
    label = np.array([1, 1, 0, 0])
    pred = np.array([1, 0, 0, 1])
    unc = np.array([0.1, 0.5, 0.2, 0.9], dtype=np.float32)
    # Keep 0.1, 0.2 (correct) -> Dice 1; add 0.5 (FN) -> 2/3; add 0.9 (FP) -> 2 / 4.
    got = risk_matrix([pred], [label], [unc], [0.2, 0.5, 1.0], num_classes=2)
    np.testing.assert_allclose(got, [[0.0, 1 / 3, 0.5]])
    # 0.5 is exact in float32 but 0.1 is not: a float64 threshold of 0.1 must not keep float32(0.1) > 0.1.
    wrong_first = risk_matrix([pred[::-1].copy()], [label], [unc], [0.1], num_classes=2)
    assert wrong_first[0, 0] == 0.0


# --- certify_image_risk / certify_mean_risk -----------------------------------------------------------------------


def _curves(rng, n, t=12):
    """Monotone per-image risk curves over t thresholds (the first -inf with risk 0)."""
    steps = rng.exponential(0.02, size=(n, t - 1)) * (rng.random((n, t - 1)) < 0.7)
    risks = np.minimum(1.0, np.c_[np.zeros(n), np.cumsum(steps, axis=1)])
    thresholds = np.r_[-np.inf, np.linspace(0, 1, t - 1)]
    coverages = np.r_[0.0, np.linspace(0.1, 1, t - 1)]
    return risks, thresholds, coverages


@pytest.mark.parametrize("method", ["ltt", "crc"])
@pytest.mark.parametrize("seed", range(6))
def test_certify_image_risk_equals_fixed_sequence_reference(method, seed):
    rng = np.random.default_rng(seed)
    risks, thresholds, coverages = _curves(rng, n=int(rng.integers(60, 200)))
    for alpha in (0.03, 0.05, 0.1, 0.2):
        last = fixed_sequence(risks, alpha, 0.1, method)
        if last < 1:
            with pytest.raises(ValueError, match="unreachable"):
                certify_image_risk(risks, thresholds, coverages, max_risk=alpha, delta=0.1, method=method)
            continue
        r = certify_image_risk(risks, thresholds, coverages, max_risk=alpha, delta=0.1, method=method)
        assert r.threshold == thresholds[last] and r.coverage == coverages[last]
        assert r.risk == pytest.approx(risks[:, last].mean(), rel=1e-12)
        n = risks.shape[0]
        if method == "ltt":
            assert r.bound == pytest.approx(hoeffding_bentkus_bound(r.risk, n, 0.1), abs=1e-9)
            assert r.target == {"max_risk": alpha, "delta": 0.1}
        else:
            assert r.bound == pytest.approx((n * r.risk + 1) / (n + 1), rel=1e-12)
            assert r.target == {"max_risk": alpha, "delta": None}
        assert r.risk <= r.bound <= alpha and r.method == method
        same = certify_mean_risk(risks.mean(axis=0), n, thresholds, coverages, max_risk=alpha, delta=0.1, method=method)
        assert same == r


def test_certify_stops_at_the_first_failure_for_non_monotone_risks():
    # LTT is a fixed-sequence test: a certifiable candidate after a failure is not reached.
    risks = np.zeros((100, 4))
    risks[:, 2] = 0.5
    r = certify_image_risk(risks, [-np.inf, 0.1, 0.2, 0.3], [0, 0.2, 0.5, 0.9], max_risk=0.1, delta=0.1)
    assert r.threshold == 0.1 and r.coverage == 0.2


def test_certify_image_risk_unreachable_gives_the_best_achievable_bound():
    n = 50
    risks = np.tile([0.0, 0.08, 0.1, 0.3], (n, 1))
    with pytest.raises(ValueError, match="unreachable") as info:
        certify_image_risk(risks, [-np.inf, 0.1, 0.2, 0.3], [0, 0.4, 0.6, 1], max_risk=0.1, delta=0.1)
    best = hoeffding_bentkus_bound(0.08, n, 0.1)
    assert f"best achievable bound is {best:.4g}" in str(info.value) and "at coverage 0.4" in str(info.value)
    # CRC: (n R + 1) / (n + 1) = (50 * 0.1 + 1) / 51.
    with pytest.raises(ValueError, match=r"in expectation.*best achievable bound is 0.1176 \(empirical risk 0.1\)"):
        certify_image_risk(risks[:, [0, 2]], [-np.inf, 0.1], [0, 0.4], max_risk=0.09, delta=0.1, method="crc")
    with pytest.raises(ValueError, match="no candidate threshold keeps any voxel"):
        certify_image_risk(np.zeros((n, 1)), [-np.inf], [0.0], max_risk=0.1, delta=0.1)


def test_certify_checks_the_calibration_size_before_anything_else():
    # Bad risks too, but the size message comes first.
    with pytest.raises(ValueError, match=r"needs at least 45 calibration images for max_risk=0.05, delta=0.1; got 10"):
        certify_image_risk(np.full((10, 3), 7.0), [0, 1, 2], [0, 0.5, 1], max_risk=0.05, delta=0.1)
    with pytest.raises(ValueError, match=r"needs at least 19 calibration images for max_risk=0.05; got 10"):
        certify_mean_risk([0.0], 10, [0.0], [0.0], max_risk=0.05, delta=0.1, method="crc")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"risks": np.zeros(60)}, ValueError, r"`risks` to be 2-D \(N, T\)"),
        ({"risks": np.full((60, 3), 1.5)}, ValueError, r"`risks` to lie in \[0, 1\]"),
        ({"risks": np.full((60, 3), np.nan)}, ValueError, "no NaN"),
        ({"risks": "x"}, TypeError, "`risks`"),
        ({"thresholds": [0.0, 0.0, 1.0]}, ValueError, "strictly increasing"),
        ({"thresholds": [0.0, np.nan, 1.0]}, ValueError, "`thresholds` to hold no NaN"),
        ({"thresholds": [0.0, 1.0]}, ValueError, r"one value per candidate \(3,\)"),
        ({"coverages": [0.0, 0.6, 0.5]}, ValueError, "`coverages` to be non-decreasing"),
        ({"coverages": [0.0, 0.5, 1.5]}, ValueError, "`coverages` to be non-decreasing and in"),
        ({"max_risk": 0.0}, ValueError, r"`max_risk` to be a float in \(0, 1\)"),
        ({"max_risk": "0.1"}, TypeError, "`max_risk`"),
        ({"delta": 1.0}, ValueError, "`delta`"),
        ({"method": "crd"}, ValueError, "Did you mean 'crc'"),
        ({"method": "sgr"}, ValueError, "`method` to be one of"),
        ({"method": "crc", "risks": np.tile([0.0, 0.2, 0.1], (60, 1))}, ValueError, "non-decreasing in the threshold"),
    ],
)
def test_certify_image_risk_rejects_bad_input(kwargs, error, match):
    args = {"risks": np.zeros((60, 3)), "thresholds": [-np.inf, 0.5, 1.0], "coverages": [0.0, 0.5, 1.0]}
    args.update({"max_risk": 0.1, "delta": 0.1, "method": "ltt"})
    args.update(kwargs)
    with pytest.raises(error, match=match):
        certify_image_risk(args.pop("risks"), args.pop("thresholds"), args.pop("coverages"), **args)


def test_certify_mean_risk_rejects_bad_input():
    good = {"thresholds": [0.0, 1.0], "coverages": [0.2, 1.0], "max_risk": 0.1, "delta": 0.1}
    with pytest.raises(ValueError, match=r"`mean_risk` to be 1-D"):
        certify_mean_risk(np.zeros((2, 2)), 60, **good)
    with pytest.raises(ValueError, match=r"`mean_risk` to lie in \[0, 1\]"):
        certify_mean_risk([0.0, -0.1], 60, **good)
    with pytest.raises(ValueError, match="`num_images` to be an int >= 1"):
        certify_mean_risk([0.0, 0.0], 0, **good)
    with pytest.raises(TypeError, match="`num_images`"):
        certify_mean_risk([0.0, 0.0], 60.0, **good)


# --- dice_risk_threshold: exact over every distinct threshold -----------------------------------------------------


@pytest.mark.parametrize("method", ["ltt", "crc"])
@pytest.mark.parametrize("levels", [None, 6])
def test_dice_risk_threshold_equals_certifying_every_distinct_threshold(method, levels, rng):
    preds, refs, uncs = _images(rng, n=60, k=3, levels=levels, accuracy=0.93)
    pooled = np.concatenate([u.reshape(-1) for u in uncs])
    every = np.r_[-np.inf, np.unique(pooled)]
    coverages = np.array([np.mean(pooled <= t) for t in every])
    risks = risk_matrix(preds, refs, uncs, every, num_classes=3)
    checked = 0
    for alpha in (0.06, 0.1, 0.2, 0.4):
        try:
            want = certify_image_risk(risks, every, coverages, max_risk=alpha, delta=0.2, method=method)
        except ValueError as err:
            with pytest.raises(ValueError, match="unreachable"):
                dice_risk_threshold(preds, refs, uncs, num_classes=3, max_risk=alpha, delta=0.2, method=method)
            assert "unreachable" in str(err)
            continue
        got = dice_risk_threshold(preds, refs, uncs, num_classes=3, max_risk=alpha, delta=0.2, method=method)
        assert got.threshold == want.threshold and got.coverage == want.coverage
        assert got.risk == pytest.approx(want.risk, abs=1e-12) and got.bound == pytest.approx(want.bound, abs=1e-9)
        checked += 1
    assert checked >= 2


def test_dice_risk_threshold_checks_size_first_and_validates_images():
    tiny = [np.zeros(3, int)] * 5
    with pytest.raises(ValueError, match="needs at least 22 calibration images"):
        dice_risk_threshold(tiny, [np.zeros(2, int)], [np.zeros(9)], num_classes=2, max_risk=0.1, delta=0.1)
    n = minimum_calibration_size(0.1, 0.1)
    with pytest.raises(ValueError, match="one array per image each"):
        dice_risk_threshold(
            [np.zeros(3, int)] * n, [np.zeros(3, int)], [np.zeros(3)], num_classes=2, max_risk=0.1, delta=0.1
        )
    with pytest.raises(TypeError, match="`predictions` to be a list of per-image arrays"):
        dice_risk_threshold(np.zeros((30, 3), int), [], [], num_classes=2, max_risk=0.1, delta=0.1)


def test_referral_threshold_is_a_named_tuple():
    r = ReferralThreshold(0.1, 0.5, 0.01, 0.02, "ltt", {"max_risk": 0.05, "delta": 0.1})
    assert r._asdict()["bound"] == 0.02 and r._replace(risk=0.0).risk == 0.0


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: threshold_for_coverage([np.ones(3)], 1.5), ValueError, r"`coverage` to be a float in \[0, 1\]"),
        (lambda: threshold_for_coverage([np.ones(3)], "0.5"), TypeError, "`coverage`"),
        (lambda: threshold_for_coverage(np.ones(3), 0.5), TypeError, "`uncertainties` to be a list"),
        (lambda: threshold_for_coverage([], 0.5), ValueError, "`uncertainties` to hold at least one image"),
        (lambda: threshold_for_coverage([np.zeros(0)], 0.5), ValueError, r"`uncertainties\[0\]` to hold at least one"),
        (lambda: threshold_for_coverage([np.array([np.nan])], 0.5), ValueError, r"`uncertainties\[0\]` to be finite"),
        (
            lambda: candidate_thresholds([np.ones(3)], max_candidates=0),
            ValueError,
            "`max_candidates` to be an int >= 1",
        ),
        (lambda: candidate_thresholds([np.ones(3)], max_candidates=2.0), TypeError, "`max_candidates`"),
        (
            lambda: risk_matrix([np.zeros(2, int)], [np.zeros(2, int)], [np.zeros(2)], [[0.0]], num_classes=2),
            ValueError,
            r"`thresholds` to be 1-D",
        ),
        (
            lambda: risk_matrix([np.zeros(2, int)], [np.zeros(2, int)], [np.zeros(2)], [np.nan], num_classes=2),
            ValueError,
            "`thresholds` to hold no NaN",
        ),
        (
            lambda: risk_matrix([np.zeros(2)], [np.zeros(2, int)], [np.zeros(2)], [0.0], num_classes=2),
            TypeError,
            r"`predictions\[0\]` to hold integer labels",
        ),
        (
            lambda: risk_matrix([np.zeros(2, int)], [np.full(2, 2)], [np.zeros(2)], [0.0], num_classes=2),
            ValueError,
            r"`references\[0\]` to hold labels in \[0, 2\)",
        ),
        (
            lambda: risk_matrix([np.zeros(2, int)], [np.zeros(3, int)], [np.zeros(2)], [0.0], num_classes=2),
            ValueError,
            "share one shape",
        ),
        (
            lambda: risk_matrix([np.zeros(0, int)], [np.zeros(0, int)], [np.zeros(0)], [0.0], num_classes=2),
            ValueError,
            "at least one pixel",
        ),
        (
            lambda: risk_matrix([np.zeros(2, int)], [np.zeros(2, int)], [np.array([0, np.inf])], [0.0], num_classes=2),
            ValueError,
            r"`uncertainties\[0\]` to be finite",
        ),
        (
            lambda: risk_matrix([np.zeros(2, int)] * 2, [np.zeros(2, int)], [np.zeros(2)], [0.0], num_classes=2),
            ValueError,
            "one array per image each, but got 2, 1 and 1",
        ),
        (
            lambda: risk_matrix([np.zeros(2, int)], [np.zeros(2, int)], [np.zeros(2)], [0.0], num_classes=1),
            ValueError,
            "`num_classes` to be an int >= 2",
        ),
    ],
)
def test_calibration_functions_reject_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
