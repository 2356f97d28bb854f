from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom, binomtest

from selectseg.selection import (
    binomial_upper_bound,
    hoeffding_bentkus_bound,
    hoeffding_bentkus_pvalue,
    minimum_calibration_size,
    require_calibration_size,
)
from selectseg.selection.bounds import sgr_steps
from tests.reference.selection import binomial_cdf, hb_pvalue, tail_bound


@pytest.mark.parametrize("n", [1, 7, 50, 300])
@pytest.mark.parametrize("alpha", [0.02, 0.1, 0.3])
@pytest.mark.parametrize("fraction", [0.0, 0.3, 0.9, 1.0, 1.7, 5.0])
def test_hoeffding_bentkus_pvalue_equals_direct_formula(n, alpha, fraction):
    risk = min(1.0, fraction * alpha)
    assert hoeffding_bentkus_pvalue(risk, n, alpha) == pytest.approx(hb_pvalue(risk, n, alpha), rel=1e-9, abs=1e-300)


def test_hoeffding_bentkus_pvalue_hand_computed():
    # Zero risk: h1(0, a) = -log(1 - a), so the Hoeffding part is (1 - a)^n and the Bentkus part e (1 - a)^n.
    assert hoeffding_bentkus_pvalue(0.0, 45, 0.05) == pytest.approx(0.95**45, rel=1e-12)
    # Risk at or above alpha: the Hoeffding part is 1, so p = min(1, e P(Bin <= ceil(n R))) = 1 here.
    assert hoeffding_bentkus_pvalue(0.1, 20, 0.1) == 1.0
    # One image of risk 0.5 at alpha 0.1: Hoeffding exp(-h1(0.1, 0.1)) = 1; Bentkus e P(Bin(1, .1) <= 1) = e.
    assert hoeffding_bentkus_pvalue(0.5, 1, 0.1) == 1.0


def test_hoeffding_bentkus_pvalue_is_non_decreasing_in_the_risk():
    risks = np.linspace(0, 1, 401)
    p = [hoeffding_bentkus_pvalue(float(r), 80, 0.1) for r in risks]
    assert np.all(np.diff(p) >= 0)


@pytest.mark.parametrize(("n", "alpha"), [(20, 0.1), (100, 0.1), (300, 0.05), (60, 0.3)])
def test_hoeffding_bentkus_pvalue_is_valid_under_the_null(n, alpha):
    # Bernoulli(alpha) risks, the worst case of a [0, 1] risk of mean alpha: P(p <= delta) <= delta, summed exactly
    # over the Binomial(n, alpha) distribution of n R.
    for delta in (0.01, 0.05, 0.1, 0.2):
        k = np.arange(n + 1)
        rejected = np.array([hoeffding_bentkus_pvalue(float(j) / n, n, alpha) <= delta for j in k])
        assert binom.pmf(k, n, alpha)[rejected].sum() <= delta


@pytest.mark.parametrize(("risk", "n", "delta"), [(0.0, 45, 0.1), (0.02, 200, 0.1), (0.3, 10, 0.05), (0.9, 3, 0.2)])
def test_hoeffding_bentkus_bound_inverts_the_pvalue(risk, n, delta):
    bound = hoeffding_bentkus_bound(risk, n, delta)
    assert risk < bound <= 1
    assert hb_pvalue(risk, n, bound + 1e-9) <= delta < hb_pvalue(risk, n, bound - 1e-6)


def test_hoeffding_bentkus_bound_hand_computed():
    assert hoeffding_bentkus_bound(0.0, 45, 0.1) == pytest.approx(1 - 0.1 ** (1 / 45), abs=1e-11)
    assert hoeffding_bentkus_bound(1.0, 10, 0.1) == 1.0


@pytest.mark.parametrize(("errors", "n"), [(0, 1), (0, 100), (3, 100), (50, 100), (99, 100), (7, 2000), (1, 5)])
@pytest.mark.parametrize("delta", [0.01, 0.1, 0.4])
def test_binomial_upper_bound_equals_clopper_pearson_and_lemma(errors, n, delta):
    bound = binomial_upper_bound(errors, n, delta)
    # One-sided exact (Clopper-Pearson) upper limit from scipy.
    outside = binomtest(errors, n, alternative="less").proportion_ci(confidence_level=1 - delta, method="exact").high
    assert bound == pytest.approx(outside, rel=1e-9)
    # The defining equation of Lemma 3.1, solved by bisection.
    assert bound == pytest.approx(tail_bound(errors, n, delta), rel=1e-9)
    assert binomial_cdf(errors, n, bound) == pytest.approx(delta, rel=1e-7)


def test_binomial_upper_bound_hand_computed():
    assert binomial_upper_bound(0, 100, 0.05) == pytest.approx(1 - 0.05 ** (1 / 100), rel=1e-12)
    assert binomial_upper_bound(4, 4, 0.05) == 1.0


def _smallest(criterion) -> int:
    n = 1
    while not criterion(n):
        n += 1
    return n


@pytest.mark.parametrize(("alpha", "delta"), [(0.05, 0.1), (0.1, 0.1), (0.2, 0.05), (0.01, 0.2), (0.5, 0.5)])
def test_minimum_calibration_size_is_the_first_certifiable_size(alpha, delta):
    ltt = minimum_calibration_size(alpha, delta, "ltt")
    assert ltt == _smallest(lambda n: hb_pvalue(0.0, n, alpha) <= delta)
    crc = minimum_calibration_size(alpha, delta, "crc")
    assert crc == _smallest(lambda n: 1 / (n + 1) <= alpha)
    sgr = minimum_calibration_size(alpha, delta, "sgr")
    assert sgr == _smallest(lambda m: binomial_upper_bound(0, m, delta / sgr_steps(m)) < alpha)


def test_minimum_calibration_size_hand_computed():
    assert minimum_calibration_size(0.05, 0.1) == 45  # log(0.1) / log(0.95) = 44.9
    assert minimum_calibration_size(0.05, 0.1, "crc") == 19  # 1 / 0.05 - 1
    assert minimum_calibration_size(0.1, 0.1, "ltt") == math.ceil(math.log(0.1) / math.log(0.9))
    assert sgr_steps(1) == sgr_steps(2) == 1 and sgr_steps(1024) == 10 and sgr_steps(1025) == 11


def test_require_calibration_size_says_how_many_are_needed():
    assert require_calibration_size(45, max_risk=0.05, delta=0.1, method="ltt") == 45
    with pytest.raises(ValueError, match=r"needs at least 45 calibration images for max_risk=0.05, delta=0.1; got 44"):
        require_calibration_size(44, max_risk=0.05, delta=0.1, method="ltt")
    with pytest.raises(ValueError, match=r"'crc' needs at least 19 calibration images for max_risk=0.05; got 3"):
        require_calibration_size(3, max_risk=0.05, delta=0.1, method="crc")
    with pytest.raises(ValueError, match=r"calibration voxels"):
        require_calibration_size(10, max_risk=0.05, delta=0.1, method="sgr")


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: hoeffding_bentkus_pvalue(1.5, 10, 0.1), ValueError, r"`risk_mean` to be a float in \[0, 1\]"),
        (lambda: hoeffding_bentkus_pvalue("0", 10, 0.1), TypeError, "`risk_mean`"),
        (lambda: hoeffding_bentkus_pvalue(0.1, 0, 0.1), ValueError, "`n` to be an int >= 1"),
        (lambda: hoeffding_bentkus_pvalue(0.1, 2.0, 0.1), TypeError, "`n`"),
        (lambda: hoeffding_bentkus_pvalue(0.1, 10, 1.0), ValueError, r"`alpha` to be a float in \(0, 1\)"),
        (lambda: hoeffding_bentkus_bound(0.1, 10, 0.0), ValueError, "`delta`"),
        (lambda: hoeffding_bentkus_bound(-0.1, 10, 0.1), ValueError, "`risk_mean`"),
        (lambda: hoeffding_bentkus_bound(0.1, 0, 0.1), ValueError, "`n`"),
        (lambda: binomial_upper_bound(5, 4, 0.1), ValueError, r"`errors` to be an int in \[0, n=4\]"),
        (lambda: binomial_upper_bound(-1, 4, 0.1), ValueError, "`errors`"),
        (lambda: binomial_upper_bound(1.0, 4, 0.1), TypeError, "`errors`"),
        (lambda: binomial_upper_bound(1, 0, 0.1), ValueError, "`n`"),
        (lambda: binomial_upper_bound(1, 4, None), TypeError, "`delta`"),
        (lambda: minimum_calibration_size(0.0, 0.1), ValueError, "`max_risk`"),
        (lambda: minimum_calibration_size(0.1, 1.2), ValueError, "`delta`"),
        (lambda: minimum_calibration_size(0.1, 0.1, "lt"), ValueError, "Did you mean 'ltt'"),
        (lambda: minimum_calibration_size(0.1, 0.1, 3), TypeError, "`method`"),
    ],
)
def test_bounds_reject_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
