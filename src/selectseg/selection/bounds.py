"""Finite-sample upper bounds behind the referral-threshold guarantees (numpy float64, scipy).

- :func:`hoeffding_bentkus_pvalue` / :func:`hoeffding_bentkus_bound`: the Hoeffding-Bentkus p-value for the null
  "mean risk >= alpha" of n i.i.d. risks in [0, 1] (Bates et al. 2021, RCPS, Prop. 5 / Angelopoulos et al., Learn
  then Test) and the upper confidence bound it inverts to.
- :func:`binomial_upper_bound`: the exact binomial-tail bound ``b*`` of Gascuel & Caraux (1992) used by selection
  with guaranteed risk (Geifman & El-Yaniv 2017, Lemma 3.1); it is the one-sided Clopper-Pearson upper limit.
- :func:`minimum_calibration_size`: the smallest calibration set with which a method can certify anything at all.

See ``docs/referral.md``.

References:
    Bates, Angelopoulos, Lei, Malik, Jordan. Distribution-Free, Risk-Controlling Prediction Sets. JACM 68(6), 2021.
    Angelopoulos, Bates, Candes, Jordan, Lei. Learn then Test: Calibrating Predictive Algorithms to Achieve Risk
    Control. arXiv:2110.01052, 2021 (Ann. Appl. Stat. 2025).
    Angelopoulos, Bates, Fisch, Lei, Schuster. Conformal Risk Control. ICLR 2024 (arXiv:2208.02814, 2022).
    Geifman, El-Yaniv. Selective Classification for Deep Neural Networks. NeurIPS 2017.
    Gascuel, Caraux. Distribution-free performance bounds with the resubstitution error estimate. Pattern
    Recognition Letters 13(11), 1992.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.optimize import brentq
from scipy.special import xlogy
from scipy.stats import beta, binom

from .._validation import check_positive_int, look_up_option

__all__ = [
    "METHODS",
    "binomial_upper_bound",
    "hoeffding_bentkus_bound",
    "hoeffding_bentkus_pvalue",
    "minimum_calibration_size",
    "require_calibration_size",
]

METHODS = ("ltt", "crc", "sgr")
"""Certification methods: Learn then Test with Hoeffding-Bentkus p-values, conformal risk control (both per image),
selection with guaranteed risk (per voxel)."""


_CEIL_TOLERANCE = 1e-9
"""``ceil(n R)`` is taken as ``ceil(n R - 1e-9)``: ``n R`` is a sum of risks, and rounding in the mean (0.08 * 50 =
4.000000000000001) must not add a whole error."""


def check_open_unit(name: str, value: Any) -> float:
    """Return ``value`` as a float after checking it is a number in the open interval (0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise TypeError(f"Expected `{name}` to be a float in (0, 1), but got {type(value).__name__}.")
    if not 0.0 < value < 1.0:
        raise ValueError(f"Expected `{name}` to be a float in (0, 1), but got {value}.")
    return float(value)


def _hb_pvalues(risk_mean: np.ndarray, n: int, alpha: float) -> np.ndarray:
    """Vectorised Hoeffding-Bentkus p-values; trusts its input (risk_mean in [0, 1], n >= 1, alpha in (0, 1))."""
    a = np.minimum(risk_mean, alpha)
    h1 = xlogy(a, a / alpha) + xlogy(1.0 - a, (1.0 - a) / (1.0 - alpha))
    hoeffding = np.exp(-n * h1)
    successes = np.ceil(n * np.asarray(risk_mean, dtype=np.float64) - _CEIL_TOLERANCE)  # n R is a sum of risks
    bentkus = math.e * binom.cdf(successes, n, alpha)
    return np.minimum(hoeffding, bentkus)


def hoeffding_bentkus_pvalue(risk_mean: float, n: int, alpha: float) -> float:
    """Hoeffding-Bentkus p-value of the null "the mean risk is >= ``alpha``" (small = evidence of a risk < alpha).

    For n i.i.d. risks in [0, 1] with empirical mean ``R``:
    ``p = min(exp(-n h1(min(R, alpha), alpha)), e P(Binomial(n, alpha) <= ceil(n R)))`` with
    ``h1(a, b) = a log(a / b) + (1 - a) log((1 - a) / (1 - b))`` (the ceiling with a 1e-9 tolerance for rounding
    in ``n R``). Under the null ``P(p <= u) <= u``. It is
    non-decreasing in ``R`` and at most 1.

    Args:
        risk_mean: the empirical mean risk, in [0, 1].
        n: the number of i.i.d. risks (calibration images), >= 1.
        alpha: the risk level tested, in (0, 1).

    Shape:
        Scalars -> float.

    Raises:
        TypeError: if an argument is not a number (``n`` not an int).
        ValueError: if ``risk_mean`` is outside [0, 1], ``n`` < 1 or ``alpha`` outside (0, 1).

    Example:
        >>> round(hoeffding_bentkus_pvalue(0.0, 45, 0.05), 4)  # (1 - alpha)^n with zero risk
        0.0994

    References:
        Bates et al., RCPS, JACM 2021, Prop. 5; Angelopoulos et al., Learn then Test, 2021, section 3.
    """
    r = _check_risk_mean(risk_mean)
    count = check_positive_int("n", n)
    level = check_open_unit("alpha", alpha)
    return float(_hb_pvalues(np.array([r]), count, level)[0])


def hoeffding_bentkus_bound(risk_mean: float, n: int, delta: float) -> float:
    """Upper confidence bound on the mean risk from the Hoeffding-Bentkus p-value (lower is better).

    ``UCB = inf{alpha : p_HB(risk_mean, n, alpha) <= delta}``: with probability >= 1 - delta the true mean risk is
    <= UCB. The p-value is decreasing in ``alpha`` above ``risk_mean`` and equals 1 at ``alpha = risk_mean``, so
    the bound is the unique root in (risk_mean, 1), found with Brent's method to 1e-12 (1 when risk_mean = 1).

    Args:
        risk_mean: the empirical mean risk, in [0, 1].
        n: the number of i.i.d. risks, >= 1.
        delta: the failure probability, in (0, 1).

    Shape:
        Scalars -> float.

    Raises:
        TypeError: if an argument is not a number (``n`` not an int).
        ValueError: if ``risk_mean`` is outside [0, 1], ``n`` < 1 or ``delta`` outside (0, 1).

    Example:
        >>> round(hoeffding_bentkus_bound(0.0, 45, 0.1), 4)  # 1 - delta^(1/n)
        0.0499

    References:
        Bates et al., RCPS, JACM 2021, section 3.
    """
    r = _check_risk_mean(risk_mean)
    count = check_positive_int("n", n)
    level = check_open_unit("delta", delta)
    return _hb_bound(r, count, level)


def _hb_bound(risk_mean: float, n: int, delta: float) -> float:
    if risk_mean >= 1.0:
        return 1.0

    def excess(alpha: float) -> float:
        return float(_hb_pvalues(np.array([risk_mean]), n, alpha)[0]) - delta

    high = 1.0 - 1e-15
    if excess(high) > 0:  # not even alpha just below 1 is certified (tiny n)
        return 1.0
    return float(brentq(excess, max(risk_mean, 1e-300), high, xtol=1e-12))  # p = 1 at alpha = risk_mean


def binomial_upper_bound(errors: int, n: int, delta: float) -> float:
    """Exact binomial-tail upper bound ``b*`` on an error rate from ``errors`` mistakes in ``n`` trials.

    ``b*`` solves ``sum_{j <= errors} C(n, j) b^j (1 - b)^(n - j) = delta`` (Gascuel & Caraux 1992; Geifman &
    El-Yaniv 2017, Lemma 3.1): with probability >= 1 - delta the true rate is <= b*. It is the one-sided
    Clopper-Pearson upper limit ``Beta.ppf(1 - delta; errors + 1, n - errors)`` (1 when ``errors = n``).

    Args:
        errors: the number of errors, in [0, n].
        n: the number of trials, >= 1.
        delta: the failure probability, in (0, 1).

    Shape:
        Scalars -> float.

    Raises:
        TypeError: if ``errors`` or ``n`` is not an int, or ``delta`` not a number.
        ValueError: if ``n`` < 1, ``errors`` is outside [0, n] or ``delta`` outside (0, 1).

    Example:
        >>> round(binomial_upper_bound(0, 100, 0.05), 5)  # 1 - 0.05^(1/100)
        0.02951

    References:
        Geifman, El-Yaniv, NeurIPS 2017, Lemma 3.1; Gascuel, Caraux 1992.
    """
    count = check_positive_int("n", n)
    wrong = check_positive_int("errors", errors, minimum=0)
    if wrong > count:
        raise ValueError(f"Expected `errors` to be an int in [0, n={count}], but got {wrong}.")
    level = check_open_unit("delta", delta)
    return float(_binomial_bounds(np.array([wrong]), np.array([count]), level)[0])


def _binomial_bounds(errors: np.ndarray, n: np.ndarray, delta: float) -> np.ndarray:
    """Vectorised :func:`binomial_upper_bound`; trusts its input."""
    errors = np.asarray(errors, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    out = np.ones(np.broadcast(errors, n).shape)
    below = errors < n
    out[below] = beta.ppf(1.0 - delta, (errors + 1.0)[below], (n - errors)[below])
    return out


def sgr_steps(m: int) -> int:
    """The number of binary-search steps (and union-bound terms) of SGR on ``m`` samples: ``max(1, ceil(log2 m))``."""
    return max(1, math.ceil(math.log2(m))) if m > 1 else 1


def _certifiable(count: int, alpha: float, delta: float, method: str) -> bool:
    """Whether ``count`` calibration units could certify ``alpha`` at all (zero empirical risk)."""
    if method == "ltt":
        return bool(_hb_pvalues(np.zeros(1), count, alpha)[0] <= delta)
    if method == "crc":
        return 1.0 / (count + 1) <= alpha
    return bool(_binomial_bounds(np.zeros(1), np.array([count]), delta / sgr_steps(count))[0] < alpha)


def minimum_calibration_size(max_risk: float, delta: float, method: str = "ltt") -> int:
    """The fewest calibration units with which ``method`` can certify ``max_risk`` at all (images or voxels).

    Even a perfect calibration set (zero risk everywhere) certifies nothing below this size:

    - ``"ltt"`` (images): the smallest n with ``p_HB(0, n, max_risk) = (1 - max_risk)^n <= delta``, about
      ``log(delta) / log(1 - max_risk)``;
    - ``"crc"`` (images): the smallest n with ``1 / (n + 1) <= max_risk`` (``delta`` is not used);
    - ``"sgr"`` (voxels): the smallest m with ``b*(0 errors, m, delta / max(1, ceil(log2 m))) < max_risk``. SGR
      also tests fewer than m voxels, so a set of this size may still certify nothing.

    Each is found by searching n from a closed-form start with the exact criterion the method uses.

    Args:
        max_risk: the target risk, in (0, 1).
        delta: the failure probability, in (0, 1).
        method: ``"ltt"``, ``"crc"`` or ``"sgr"``.

    Shape:
        Scalars -> int.

    Raises:
        TypeError: if ``max_risk`` or ``delta`` is not a number, or ``method`` not a string.
        ValueError: if ``max_risk`` or ``delta`` is outside (0, 1), or ``method`` is unknown.

    Example:
        >>> minimum_calibration_size(0.05, 0.1, "ltt"), minimum_calibration_size(0.05, 0.1, "crc")
        (45, 19)
    """
    alpha = check_open_unit("max_risk", max_risk)
    level = check_open_unit("delta", delta)
    method = look_up_option("method", method, METHODS)
    if method == "crc":
        start = max(1, math.ceil(1.0 / alpha - 1.0))
    elif method == "ltt":
        start = max(1, math.ceil(math.log(level) / math.log1p(-alpha)))
    else:  # least fixed point of m -> log(delta / k(m)) / log(1 - alpha) (k non-decreasing in m)
        start = 1
        while True:
            need = max(1, math.ceil(math.log(level / sgr_steps(start)) / math.log1p(-alpha)))
            if need <= start:
                break
            start = need
    n = start
    while n > 1 and _certifiable(n - 1, alpha, level, method):
        n -= 1
    while not _certifiable(n, alpha, level, method):
        n += 1
    return n


def require_calibration_size(count: int, *, max_risk: float, delta: float, method: str) -> int:
    """Raise unless ``count`` calibration units reach :func:`minimum_calibration_size`; return that minimum.

    Shape:
        Scalars -> int.

    Raises:
        TypeError: if an argument has the wrong type.
        ValueError: if ``count`` is below the minimum (the message says how many are needed), or an argument is out
            of range.
    """
    needed = minimum_calibration_size(max_risk, delta, method)
    if count < needed:
        unit = "voxels" if method == "sgr" else "images"
        target = f"max_risk={max_risk}" if method == "crc" else f"max_risk={max_risk}, delta={delta}"
        raise ValueError(
            f"Method {method!r} needs at least {needed} calibration {unit} for {target}; got {count}. "
            "Add calibration cases or relax the target."
        )
    return needed


def _check_risk_mean(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise TypeError(f"Expected `risk_mean` to be a float in [0, 1], but got {type(value).__name__}.")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"Expected `risk_mean` to be a float in [0, 1], but got {value}.")
    return float(value)
