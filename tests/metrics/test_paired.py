from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from selectseg.metrics import PairedComparison, UndefinedMetricWarning, paired_comparison


def test_paired_comparison_hand_computed():
    # AURC of three seeds: differences -0.02, -0.03, -0.01 (all better), mean -0.02, sd 0.01, se 0.01 / sqrt(3).
    r = paired_comparison([0.10, 0.12, 0.08], [0.12, 0.15, 0.09], higher_is_better=False)
    np.testing.assert_allclose(r.differences, [-0.02, -0.03, -0.01], atol=1e-15)
    assert r.mean == pytest.approx(-0.02) and r.sd == pytest.approx(0.01) and r.se == pytest.approx(0.01 / 3**0.5)
    assert r.t_statistic == pytest.approx(-2 * 3**0.5) and r.df == 2
    # Student's t with 2 degrees of freedom in closed form: quantile q is (2q - 1) sqrt(2 / (4 q (1 - q))) (4.303 at
    # 0.975), and the two-sided p-value of t is 1 - |t| / sqrt(2 + t^2).
    t975 = 0.95 * (2 / (4 * 0.975 * 0.025)) ** 0.5
    assert r.ci == pytest.approx((-0.02 - t975 * 0.01 / 3**0.5, -0.02 + t975 * 0.01 / 3**0.5))
    assert r.p_value == pytest.approx(1 - (12 / 14) ** 0.5)
    assert (r.better, r.worse, r.equal, r.n) == (3, 0, 0, 3)
    assert r.sign_p_value == 0.25  # 2 * (1/2)^3


def test_paired_comparison_direction_and_zero_differences():
    # Dice, higher is better: two better, one worse, two equal; the sign test drops the zeros: 2 of 3, p = 1.
    r = paired_comparison([0.8, 0.9, 0.7, 0.5, 0.6], [0.7, 0.8, 0.75, 0.5, 0.6], higher_is_better=True)
    assert (r.better, r.worse, r.equal) == (2, 1, 2)
    assert r.sign_p_value == 1.0
    flipped = paired_comparison([0.8, 0.9, 0.7, 0.5, 0.6], [0.7, 0.8, 0.75, 0.5, 0.6], higher_is_better=False)
    assert (flipped.better, flipped.worse, flipped.equal) == (1, 2, 2)
    assert flipped.p_value == r.p_value and flipped.mean == r.mean  # direction changes only the counts


@pytest.mark.parametrize("n", [2, 3, 5, 10, 30])
def test_paired_comparison_equals_scipy_ttest_rel(n, rng):
    a, b = rng.normal(0.1, 0.02, n), rng.normal(0.11, 0.02, n)
    r = paired_comparison(a, b, higher_is_better=False, confidence_level=0.9)
    ref = stats.ttest_rel(a, b)
    assert r.t_statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert r.df == ref.df
    ci = ref.confidence_interval(confidence_level=0.9)
    assert r.ci == pytest.approx((ci.low, ci.high), rel=1e-12)
    assert r.sd == pytest.approx(np.std(a - b, ddof=1)) and r.se == pytest.approx(stats.sem(a - b))


@pytest.mark.parametrize("nonzero", range(1, 13))
def test_sign_test_equals_scipy_binomtest(nonzero):
    for better in range(nonzero + 1):
        d = np.r_[np.full(better, 1.0), np.full(nonzero - better, -1.0), 0.0, 0.0]
        r = paired_comparison(d, np.zeros_like(d), higher_is_better=True)
        assert r.sign_p_value == pytest.approx(stats.binomtest(better, nonzero, 0.5).pvalue, rel=1e-12)
        assert (r.better, r.worse, r.equal) == (better, nonzero - better, 2)


def test_paired_comparison_undefined_cases_warn():
    with pytest.warns(UndefinedMetricWarning, match="at least 2 pairs"):
        one = paired_comparison([0.1], [0.2], higher_is_better=False)
    assert math.isnan(one.sd) and math.isnan(one.p_value) and all(math.isnan(v) for v in one.ci)
    assert one.mean == pytest.approx(-0.1) and one.better == 1 and one.sign_p_value == 1.0
    with pytest.warns(UndefinedMetricWarning, match="sd = 0"):
        same = paired_comparison([1.5, 2.5, 3.5], [0.5, 1.5, 2.5], higher_is_better=True)
    assert math.isnan(same.t_statistic) and math.isnan(same.p_value)
    assert same.ci == (1.0, 1.0) and same.sign_p_value == 0.25
    with pytest.warns(UndefinedMetricWarning) as caught:
        tie = paired_comparison([0.3, 0.4], [0.3, 0.4], higher_is_better=True)
    assert {"sd = 0" in str(w.message) or "nonzero" in str(w.message) for w in caught} == {True}
    assert math.isnan(tie.sign_p_value) and tie.equal == 2


def test_paired_comparison_json_round_trip(rng):
    r = paired_comparison(rng.random(4), rng.random(4), higher_is_better=True)
    back = PairedComparison.from_json(r.to_json())
    np.testing.assert_array_equal(back.differences, r.differences)
    assert back.to_json() == r.to_json()
    with pytest.warns(UndefinedMetricWarning):
        single = paired_comparison([1.0], [0.5], higher_is_better=True)
    data = single.to_json()
    assert data["sd"] is None and data["ci"] == [None, None]
    assert math.isnan(PairedComparison.from_json(data).p_value)
    with pytest.raises(ValueError, match="paired comparison object"):
        PairedComparison.from_json({"n": 1})


def test_paired_comparison_errors():
    with pytest.raises(ValueError, match="1-D of one length"):
        paired_comparison([0.1, 0.2], [0.1], higher_is_better=False)
    with pytest.raises(ValueError, match="at least one run"):
        paired_comparison([], [], higher_is_better=False)
    with pytest.raises(ValueError, match="`candidate`"):
        paired_comparison([0.1, float("nan")], [0.1, 0.2], higher_is_better=False)
    with pytest.raises(TypeError, match="`higher_is_better` to be a bool"):
        paired_comparison([0.1], [0.2], higher_is_better=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`confidence_level` to be a float in \(0, 1\)"):
        paired_comparison([0.1, 0.2], [0.2, 0.3], higher_is_better=True, confidence_level=95)
    with pytest.raises(TypeError, match="`confidence_level`"):
        paired_comparison([0.1, 0.2], [0.2, 0.3], higher_is_better=True, confidence_level=None)  # type: ignore[arg-type]
