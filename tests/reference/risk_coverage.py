"""Slow references for case-level risk-coverage curves (plain loops, float64)."""

from __future__ import annotations

import itertools
import math

import numpy as np


def slow_curve(confidence: np.ndarray, risk: np.ndarray) -> tuple[list[float], list[float], list[float]]:
    """For every distinct confidence t (descending), keep the cases with confidence >= t."""
    n = len(confidence)
    coverage, selective_risk, thresholds = [], [], []
    for t in sorted(set(confidence.tolist()), reverse=True):
        kept = [r for c, r in zip(confidence, risk) if c >= t]
        coverage.append(len(kept) / n)
        selective_risk.append(sum(kept) / len(kept))
        thresholds.append(t)
    return coverage, selective_risk, thresholds


def slow_aurc_interpolate(confidence: np.ndarray, risk: np.ndarray) -> float:
    """Trapezoids between consecutive points plus the flat rectangle from coverage 0 to the first point."""
    coverage, selective_risk, _ = slow_curve(confidence, risk)
    area = coverage[0] * selective_risk[0]
    for i in range(1, len(coverage)):
        area += (coverage[i] - coverage[i - 1]) * (selective_risk[i] + selective_risk[i - 1]) / 2
    return area


def n_point_aurc(order_risk: list[float]) -> float:
    """(1/n) sum_i mean(risk of the first i cases), for cases already in decreasing-confidence order."""
    n = len(order_risk)
    return sum(sum(order_risk[:i]) / i for i in range(1, n + 1)) / n


def brute_expected_aurc(confidence: np.ndarray, risk: np.ndarray) -> float:
    """Average of the n-point AURC over every ordering of the tied cases (exponential: tiny inputs only)."""
    groups = [[r for c, r in zip(confidence, risk) if c == t] for t in sorted(set(confidence.tolist()), reverse=True)]
    total, count = 0.0, 0
    for orderings in itertools.product(*(itertools.permutations(g) for g in groups)):
        total += n_point_aurc([r for g in orderings for r in g])
        count += 1
    assert count == math.prod(math.factorial(len(g)) for g in groups)
    return total / count
