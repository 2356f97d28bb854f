"""Paired comparison of two methods over training runs (seeds): differences, t interval, paired t-test, sign test.

The unit of replication is the training run: a candidate and a reference trained with the same seed form one pair,
and the n paired differences ``d_s = candidate_s - reference_s`` are what varies from one replication of the
experiment to the next. Images are not replications of the training (they share one model), so they do not enter
here; their uncertainty is the bootstrap over images of :mod:`selectseg.metrics.bootstrap`.

- mean difference ``d = mean_s d_s``; ``sd`` the sample standard deviation (ddof = 1); ``se = sd / sqrt(n)``;
- the t confidence interval ``d -/+ t_{(1 + level) / 2, n - 1} se`` and the paired t-test of "mean difference = 0",
  ``t = d / se`` with n - 1 degrees of freedom, two-sided (equal to ``scipy.stats.ttest_rel``);
- the exact two-sided sign test: zero differences are dropped, and of the m nonzero ones the count better is tested
  against Binomial(m, 1/2): ``p = min(1, 2 P(X <= min(better, worse)))`` (equal to ``scipy.stats.binomtest``). It
  assumes no distribution of the differences, only their sign;
- counts better / worse / equal, by the metric's direction (``higher_is_better``).

Undefined cases (NaN with an :class:`UndefinedMetricWarning`): with n < 2 pairs every t quantity (sd, se, interval,
t, p); with all differences equal (sd = 0) the t statistic and its p-value (the interval is then the point ``d``);
with no nonzero difference the sign test's p-value.

References:
    W. S. Gosset ("Student"). The Probable Error of a Mean. Biometrika 6(1), 1908.
    W. J. Dixon, A. M. Mood. The Statistical Theory of the Sign Test. JASA 41(236), 1946.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from .._validation import UndefinedMetricWarning, check_paired_vectors

__all__ = ["PairedComparison", "paired_comparison"]


@dataclass(frozen=True, eq=False)
class PairedComparison:
    """Candidate against reference over n paired runs; differences are candidate - reference.

    Attributes:
        differences: ``(n,)`` candidate - reference, one per pair.
        higher_is_better: the metric's direction (False: lower is better, e.g. AURC).
        mean, sd, se: mean difference, its sample standard deviation (ddof = 1) and standard error.
        ci: ``(low, high)`` t confidence interval of the mean difference at ``confidence_level``.
        t_statistic, df, p_value: the paired t-test (two-sided), df = n - 1.
        sign_p_value: the exact two-sided sign test (zero differences dropped).
        better, worse, equal: pairs where the candidate is better, worse, equal (by ``higher_is_better``).
        n: the number of pairs.
    """

    differences: np.ndarray = field(repr=False)
    higher_is_better: bool
    mean: float
    sd: float
    se: float
    ci: tuple[float, float]
    confidence_level: float
    t_statistic: float
    df: int
    p_value: float
    sign_p_value: float
    better: int
    worse: int
    equal: int

    @property
    def n(self) -> int:
        """The number of pairs."""
        return int(self.differences.size)

    def to_json(self) -> dict[str, Any]:
        """A JSON object (NaN as None)."""
        return {
            "n": self.n,
            "higher_is_better": self.higher_is_better,
            "differences": [_none(v) for v in self.differences.tolist()],
            "mean_difference": _none(self.mean),
            "sd": _none(self.sd),
            "se": _none(self.se),
            "ci": [_none(self.ci[0]), _none(self.ci[1])],
            "confidence_level": self.confidence_level,
            "t_statistic": _none(self.t_statistic),
            "df": self.df,
            "p_value": _none(self.p_value),
            "sign_p_value": _none(self.sign_p_value),
            "better": self.better,
            "worse": self.worse,
            "equal": self.equal,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PairedComparison:
        """Read back :meth:`to_json` (None as NaN; infinities as written by Python's json).

        Raises:
            ValueError: if a key is missing.
        """
        try:
            return cls(
                differences=np.array([_nan(v) for v in data["differences"]], dtype=np.float64),
                higher_is_better=bool(data["higher_is_better"]),
                mean=_nan(data["mean_difference"]),
                sd=_nan(data["sd"]),
                se=_nan(data["se"]),
                ci=(_nan(data["ci"][0]), _nan(data["ci"][1])),
                confidence_level=float(data["confidence_level"]),
                t_statistic=_nan(data["t_statistic"]),
                df=int(data["df"]),
                p_value=_nan(data["p_value"]),
                sign_p_value=_nan(data["sign_p_value"]),
                better=int(data["better"]),
                worse=int(data["worse"]),
                equal=int(data["equal"]),
            )
        except (KeyError, IndexError, TypeError) as err:
            raise ValueError(f"Expected a paired comparison object with key {err}, but got {sorted(data)}.") from None


def paired_comparison(
    candidate: Any, reference: Any, *, higher_is_better: bool, confidence_level: float = 0.95
) -> PairedComparison:
    """Compare a candidate with a reference over paired runs (one pair per seed); see the module doc.

    Args:
        candidate: the candidate's metric, one value per run.
        reference: the reference's metric for the same runs (same seeds, same order).
        higher_is_better: the metric's direction: True for Dice, False for AURC (lower is better).
        confidence_level: of the t interval, in (0, 1).

    Shape:
        candidate, reference: ``(n,)``, n >= 1.

    Returns:
        The differences (candidate - reference) and their statistics.

    Raises:
        TypeError: if ``higher_is_better`` is not a bool, ``confidence_level`` is not a number, or the values are not
            numeric vectors.
        ValueError: if the vectors differ in length or shape, are empty or hold NaN/inf, or ``confidence_level`` is
            outside (0, 1).

    Warns:
        UndefinedMetricWarning: when a quantity is NaN because it is undefined (n < 2, equal differences, no nonzero
            difference).

    Example:
        >>> r = paired_comparison([0.10, 0.12, 0.08], [0.12, 0.15, 0.09], higher_is_better=False)
        >>> round(r.mean, 4), (r.better, r.worse, r.equal), round(r.p_value, 4), r.sign_p_value
        (-0.02, (3, 0, 0), 0.0742, 0.25)
    """
    if not isinstance(higher_is_better, bool):
        raise TypeError(f"Expected `higher_is_better` to be a bool, but got {type(higher_is_better).__name__}.")
    if isinstance(confidence_level, bool) or not isinstance(confidence_level, (int, float, np.floating)):
        raise TypeError(
            f"Expected `confidence_level` to be a float in (0, 1), but got {type(confidence_level).__name__}."
        )
    if not 0.0 < confidence_level < 1.0:
        raise ValueError(f"Expected `confidence_level` to be a float in (0, 1), but got {confidence_level}.")
    cand, ref = check_paired_vectors("candidate", candidate, "reference", reference, unit="run")
    d = cand - ref
    n = int(d.size)
    mean = float(d.mean())
    sign = 1.0 if higher_is_better else -1.0
    better = int(np.count_nonzero(sign * d > 0))
    worse = int(np.count_nonzero(sign * d < 0))
    equal = n - better - worse
    sd = se = t_stat = p_value = math.nan
    ci = (math.nan, math.nan)
    if n < 2:
        _warn(f"The t quantities need at least 2 pairs, but got {n}; they are NaN.")
    else:
        sd = float(d.std(ddof=1))
        se = sd / math.sqrt(n)
        half = float(stats.t.ppf(0.5 + confidence_level / 2.0, n - 1)) * se
        ci = (mean - half, mean + half)
        if se > 0:
            t_stat = mean / se
            p_value = float(2.0 * stats.t.sf(abs(t_stat), n - 1))
        else:
            _warn("Every paired difference is equal (sd = 0); the t statistic and its p-value are NaN.")
    nonzero = better + worse
    if nonzero == 0:
        _warn("No paired difference is nonzero; the sign test's p-value is NaN.")
        sign_p = math.nan
    else:
        sign_p = min(1.0, float(2.0 * stats.binom.cdf(min(better, worse), nonzero, 0.5)))
    return PairedComparison(
        differences=d,
        higher_is_better=higher_is_better,
        mean=mean,
        sd=sd,
        se=se,
        ci=ci,
        confidence_level=float(confidence_level),
        t_statistic=t_stat,
        df=n - 1,
        p_value=p_value,
        sign_p_value=sign_p,
        better=better,
        worse=worse,
        equal=equal,
    )


def _warn(message: str) -> None:
    warnings.warn(message, UndefinedMetricWarning, stacklevel=3)


def _none(value: float) -> float | None:
    return None if math.isnan(value) else value


def _nan(value: Any) -> float:
    return math.nan if value is None else float(value)
