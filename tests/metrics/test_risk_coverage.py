from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from selectseg.metrics import aurc, eaurc, risk_coverage_curve
from tests.reference.risk_coverage import brute_expected_aurc, n_point_aurc, slow_aurc_interpolate, slow_curve


def _cases(rng, n, levels=None):
    conf = rng.random(n) if levels is None else rng.integers(0, levels, n) / levels
    risk = rng.random(n) * (rng.random(n) < 0.6)
    return conf, risk


def test_risk_coverage_curve_hand_case():
    curve = risk_coverage_curve([0.9, 0.8, 0.8, 0.1], [0, 1, 0, 1])
    np.testing.assert_allclose(curve.coverage, [0.25, 0.75, 1.0])
    np.testing.assert_allclose(curve.risk, [0.0, 1 / 3, 0.5])
    np.testing.assert_allclose(curve.thresholds, [0.9, 0.8, 0.1])


def test_aurc_hand_cases():
    # Perfect ranking of one error in four: points (0.25,0) (0.5,0) (0.75,0) (1,0.25): area 0.25*0.25/2.
    assert aurc([4, 3, 2, 1], [0, 0, 0, 1]) == pytest.approx(0.03125)
    # Worst ranking: points (0.25,1) (0.5,.5) (0.75,1/3) (1,.25), flat from 0 to 0.25.
    want = 0.25 * 1 + 0.25 * (1 + 0.5) / 2 + 0.25 * (0.5 + 1 / 3) / 2 + 0.25 * (1 / 3 + 0.25) / 2
    assert aurc([1, 2, 3, 4], [0, 0, 0, 1]) == pytest.approx(want)
    # All tied: one point at coverage 1, flat to 0 -> the mean risk.
    assert aurc([0.5] * 4, [0, 0, 0, 1]) == pytest.approx(0.25)
    # Expected n-point mean: a random j-subset of one tie group has the group's mean risk for every j.
    assert aurc([0.5] * 4, [0, 0, 0, 1], ties="expected") == pytest.approx(0.25)


@pytest.mark.parametrize("levels", [None, 3, 10])
@pytest.mark.parametrize("n", [1, 2, 7, 60])
def test_curve_and_aurc_equal_slow_reference(rng, levels, n):
    conf, risk = _cases(rng, n, levels)
    curve = risk_coverage_curve(conf, risk)
    cov, r, thr = slow_curve(conf, risk)
    np.testing.assert_allclose(curve.coverage, cov, rtol=1e-12)
    np.testing.assert_allclose(curve.risk, r, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(curve.thresholds, thr)
    assert aurc(conf, risk) == pytest.approx(slow_aurc_interpolate(conf, risk), rel=1e-12, abs=1e-15)


def test_aurc_interpolate_equals_numpy_trapezoid_on_the_curve(rng):
    conf, risk = _cases(rng, 200, 20)
    curve = risk_coverage_curve(conf, risk)
    outside = np.trapezoid(np.r_[curve.risk[0], curve.risk], np.r_[0.0, curve.coverage])
    assert aurc(conf, risk) == pytest.approx(outside, rel=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_aurc_expected_equals_brute_force_over_tie_orderings(seed):
    rng = np.random.default_rng(seed)
    conf, risk = _cases(rng, 8, 3)
    assert aurc(conf, risk, ties="expected") == pytest.approx(brute_expected_aurc(conf, risk), rel=1e-12, abs=1e-15)


def test_aurc_expected_without_ties_is_the_n_point_mean_and_differs_by_half_a_step(rng):
    conf, risk = _cases(rng, 50)
    order = np.argsort(-conf)
    r = risk[order]
    assert aurc(conf, risk, ties="expected") == pytest.approx(n_point_aurc(r.tolist()), rel=1e-12)
    first, last = r[0], r.mean()
    assert aurc(conf, risk) - aurc(conf, risk, ties="expected") == pytest.approx((first - last) / (2 * 50), abs=1e-12)


def test_eaurc_is_zero_for_the_oracle_and_positive_for_a_reversed_ranking(rng):
    _, risk = _cases(rng, 100)
    for ties in ("interpolate", "expected"):
        assert eaurc(-risk, risk, ties=ties) == pytest.approx(0.0, abs=1e-15)
        assert eaurc(risk, risk, ties=ties) > 0


def test_eaurc_interpolate_can_be_negative_with_ties_but_expected_cannot():
    # The chord across the model's tie group (coverage 1/4 to 1) runs below the oracle's concave curve
    # (0, .45, .633, .725 at coverage 1/4 .. 1).
    conf, risk = np.array([1.0, 0.0, 0.0, 0.0]), np.array([0.0, 0.9, 1.0, 1.0])
    assert eaurc(conf, risk) < 0
    assert eaurc(conf, risk, ties="expected") >= 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.floats(0, 1)), min_size=1, max_size=30))
def test_eaurc_expected_is_never_negative(pairs):
    conf = np.array([c for c, _ in pairs], dtype=float)
    risk = np.array([r for _, r in pairs])
    assert eaurc(conf, risk, ties="expected") >= -1e-12


@pytest.mark.parametrize("fn", [aurc, eaurc, lambda c, r: risk_coverage_curve(c, r).risk.sum()])
def test_case_metrics_accept_lists_numpy_torch_and_ignore_case_order(rng, fn):
    conf, risk = _cases(rng, 40, 6)
    value = fn(conf, risk)
    assert fn(conf.tolist(), risk.tolist()) == pytest.approx(value, rel=1e-12)
    assert fn(torch.from_numpy(conf), torch.from_numpy(risk)) == pytest.approx(value, rel=1e-12)
    perm = rng.permutation(40)
    assert fn(conf[perm], risk[perm]) == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize(
    ("conf", "risk", "kwargs", "error", "match"),
    [
        ([0.1, 0.2], [0.0], {}, ValueError, r"1-D of one length \(N,\), but got \(2,\) and \(1,\)"),
        ([[0.1]], [[0.0]], {}, ValueError, "1-D"),
        ([], [], {}, ValueError, "at least one case"),
        ([0.1, float("nan")], [0, 1], {}, ValueError, "`confidence` to be finite"),
        ([0.1, 0.2], [0, float("inf")], {}, ValueError, "`risk` to be finite"),
        ({"a": 1}, [0], {}, TypeError, "`confidence` to be a list, numpy array or torch tensor"),
        ("abc", [0], {}, TypeError, "`confidence` to hold numbers"),
        ([0.1], ["a"], {}, TypeError, "`risk` to hold numbers"),
        ([0.1], [0.0], {"ties": "expect"}, ValueError, "Did you mean 'expected'"),
    ],
)
def test_case_metrics_reject_bad_input(conf, risk, kwargs, error, match):
    with pytest.raises(error, match=match):
        aurc(conf, risk, **kwargs)
    if not kwargs:
        with pytest.raises(error, match=match):
            risk_coverage_curve(conf, risk)


@pytest.mark.parametrize("ties", ["interpolate", "expected"])
def test_huge_finite_risks_do_not_overflow(ties: str) -> None:
    # issue 16: finite risks near the float64 maximum gave inf (the cumulative sum overflowed)
    confidence = np.array([0.9, 0.8, 0.8, 0.6])
    risk = np.array([1.0, 1.5, 1.7, 0.5]) * 1e308
    scaled = aurc(confidence, risk / 1e300, ties=ties) * 1e300
    assert aurc(confidence, risk, ties=ties) == pytest.approx(scaled, rel=1e-12)
    assert math.isfinite(eaurc(confidence, risk, ties=ties))
    curve = risk_coverage_curve(confidence, risk)
    expected = risk_coverage_curve(confidence, risk / 1e300).risk * 1e300
    assert np.isfinite(curve.risk).all() and curve.risk == pytest.approx(expected)
    top = np.finfo(np.float64).max
    assert aurc([1.0, 2.0, 3.0], [top, top, top], ties=ties) == pytest.approx(top, rel=1e-12)


def test_small_risks_are_unchanged_bit_for_bit_by_the_scaling() -> None:
    rng = np.random.default_rng(0)
    confidence, risk = rng.random(50), rng.random(50)
    from selectseg.metrics.risk_coverage import _aurc_scaled

    assert aurc(confidence, risk) == _aurc_scaled(confidence, risk, "interpolate")
