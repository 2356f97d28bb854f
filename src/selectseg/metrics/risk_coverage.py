"""Case-level risk-coverage curve, AURC and E-AURC (numpy float64, natural scale, not x1000).

Convention (fd-shifts): a case is kept when its confidence is >= the threshold; the curve has one point per
**distinct** confidence, so tied cases enter together and the result never depends on their order. AURC is the
area under the piecewise-linear curve through those points, extended flat from the first point (smallest
coverage) to coverage 0. E-AURC subtracts the AURC of the oracle ranking (confidence = -risk) under the same
convention. See ``docs/metrics.md``.

References:
    Geifman, Uziel, El-Yaniv. Bias-Reduced Uncertainty Estimation for Deep Neural Classifiers. ICLR 2019.
    Jaeger, Luth, Klein, Bungert. A Call to Reflect on Evaluation Practices for Failure Detection in Image
    Classification. ICLR 2023 (fd-shifts).
    Traub, Bungert, Luth, Baumgartner, Maier-Hein, Maier, Jaeger. Overcoming Common Flaws in the Evaluation of
    Selective Classification Systems. NeurIPS 2024.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy.special import digamma

from .._types import ArrayLike
from .._validation import check_paired_vectors, look_up_option

__all__ = ["RiskCoverageCurve", "aurc", "eaurc", "risk_coverage_curve"]

TIES = ("interpolate", "expected")


class RiskCoverageCurve(NamedTuple):
    """Points of a risk-coverage curve, one per distinct confidence, by increasing coverage.

    Attributes:
        coverage: ``(P,)`` fraction of cases with confidence >= threshold, increasing, ending at 1.
        risk: ``(P,)`` selective risk, the mean risk of those cases.
        thresholds: ``(P,)`` the distinct confidences, decreasing.
    """

    coverage: np.ndarray
    risk: np.ndarray
    thresholds: np.ndarray


def risk_coverage_curve(confidence: ArrayLike, risk: ArrayLike) -> RiskCoverageCurve:
    """Risk-coverage curve: selective risk at every distinct confidence threshold (lower risk is better).

    Args:
        confidence: per-case confidence, higher = surer (a list, numpy array or torch tensor).
        risk: per-case risk, e.g. 0/1 error or ``1 - Dice``; any finite real (values up to the float64 maximum:
            sums are taken on risks scaled by an exact power of two, so they never overflow).

    Shape:
        confidence, risk: ``(N,)``. Returns arrays ``(P,)``, P = number of distinct confidences.

    Raises:
        TypeError: if an input is not a list, numpy array or torch tensor of numbers.
        ValueError: if the inputs are not 1-D of one length, are empty, or hold NaN/inf.

    Example:
        >>> curve = risk_coverage_curve([0.9, 0.8, 0.8, 0.1], [0, 1, 0, 1])
        >>> curve.coverage.tolist(), curve.risk.tolist()
        ([0.25, 0.75, 1.0], [0.0, 0.3333333333333333, 0.5])
    """
    conf, rsk = _check_cases(confidence, risk)
    return _curve(conf, rsk)


def aurc(confidence: ArrayLike, risk: ArrayLike, *, ties: str = "interpolate") -> float:
    """Area under the risk-coverage curve (lower is better), natural scale (fd-shifts' value / 1000).

    Args:
        confidence: per-case confidence, higher = surer.
        risk: per-case risk.
        ties: ``"interpolate"``: area under the piecewise-linear curve through the points of
            :func:`risk_coverage_curve`, extended flat from the first point to coverage 0 (fd-shifts).
            ``"expected"``: the n-point mean ``(1/n) sum_{i=1..n} r_i`` of the selective risk ``r_i`` of the i
            most confident cases (Geifman et al.), averaged over uniformly random orderings of tied cases, in
            closed form. Without ties the two differ by ``(r_1 - r_n) / (2n)``.

    Shape:
        confidence, risk: ``(N,)``. Returns a float.

    Raises:
        TypeError: as :func:`risk_coverage_curve`, or if ``ties`` is not a string.
        ValueError: as :func:`risk_coverage_curve`, or for an unknown ``ties``.

    Example:
        >>> aurc([0.9, 0.8, 0.7], [0.0, 0.0, 1.0])  # 0.333*0 + (0+0)/2*0.333 + (0+0.333)/2*0.333
        0.05555555555555556
    """
    ties = look_up_option("ties", ties, TIES)
    conf, rsk = _check_cases(confidence, risk)
    return _aurc(conf, rsk, ties)


def eaurc(confidence: ArrayLike, risk: ArrayLike, *, ties: str = "interpolate") -> float:
    """Excess AURC: ``aurc(confidence, risk) - aurc(-risk, risk)`` (lower is better; 0 for a perfect ranking).

    With ``ties="interpolate"`` tied confidences are joined by a straight line, which can put the value slightly
    below 0. With ``ties="expected"`` it is never negative: every prefix of the oracle ordering has the smallest
    possible mean risk.

    Shape:
        confidence, risk: ``(N,)``. Returns a float.

    Raises:
        TypeError, ValueError: as :func:`aurc`.

    Example:
        >>> eaurc([0.9, 0.8, 0.7], [0.0, 0.0, 1.0])
        0.0
    """
    ties = look_up_option("ties", ties, TIES)
    conf, rsk = _check_cases(confidence, risk)
    return _aurc(conf, rsk, ties) - _aurc(-rsk, rsk, ties)


def _check_cases(confidence: Any, risk: Any) -> tuple[np.ndarray, np.ndarray]:
    return check_paired_vectors("confidence", confidence, "risk", risk, unit="case")


def _groups(conf: np.ndarray, rsk: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cases by decreasing confidence: the sorted confidences, risks, and the last index of each tie group."""
    order = np.argsort(-conf, kind="stable")
    conf_sorted, risk_sorted = conf[order], rsk[order]
    ends = np.flatnonzero(np.r_[conf_sorted[1:] != conf_sorted[:-1], True])
    return conf_sorted, risk_sorted, ends


def _scale(rsk: np.ndarray) -> tuple[np.ndarray, int]:
    """Risks divided by a power of two ``2**e`` (exact) so that their largest magnitude is at most 1, and ``e``.

    Every value computed from the risks (cumulative sums, selective risks, areas) is linear in them, so it is
    computed on the scaled risks and multiplied back by ``2**e``: finite risks near the float64 maximum no longer
    overflow to inf in a sum. Risks up to 1 in magnitude are left as they are (``e = 0``), bit for bit.
    """
    largest = float(np.max(np.abs(rsk))) if rsk.size else 0.0
    if largest <= 1.0:
        return rsk, 0
    exponent = int(np.frexp(largest)[1])  # largest < 2**exponent
    return np.ldexp(rsk, -exponent), exponent


def _curve(conf: np.ndarray, rsk: np.ndarray) -> RiskCoverageCurve:
    scaled, exponent = _scale(rsk)
    conf_sorted, risk_sorted, ends = _groups(conf, scaled)
    kept = ends + 1
    risk = np.cumsum(risk_sorted)[ends] / kept
    return RiskCoverageCurve(kept / conf.size, np.ldexp(risk, exponent) if exponent else risk, conf_sorted[ends])


def _aurc(conf: np.ndarray, rsk: np.ndarray, ties: str) -> float:
    scaled, exponent = _scale(rsk)
    area = _aurc_scaled(conf, scaled, ties)
    return float(np.ldexp(area, exponent)) if exponent else area


def _aurc_scaled(conf: np.ndarray, rsk: np.ndarray, ties: str) -> float:
    """:func:`_aurc` of risks of magnitude at most 1 (no overflow)."""
    if ties == "interpolate":
        curve = _curve(conf, rsk)
        return float(curve.coverage[0] * curve.risk[0] + np.trapezoid(curve.risk, curve.coverage))
    # Expected n-point mean. In a tie group of size L after b cases of total risk a, keeping j of its cases
    # (j = 1..L, a uniformly random subset) has expected selective risk (a + j m) / (b + j), m = group mean, and
    # sum_j (a + j m) / (b + j) = L m + (a - m b) (digamma(b + L + 1) - digamma(b + 1)).
    _, risk_sorted, ends = _groups(conf, rsk)
    cum = np.cumsum(risk_sorted)
    size = np.diff(np.r_[0, ends + 1])
    before = (ends + 1 - size).astype(np.float64)
    risk_before = np.r_[0.0, cum[ends][:-1]]
    mean = (cum[ends] - risk_before) / size
    harmonic = np.where(size == 1, 1.0 / (before + 1.0), digamma(before + size + 1.0) - digamma(before + 1.0))
    return float(np.sum(size * mean + (risk_before - mean * before) * harmonic) / conf.size)
