"""Slow, obviously-correct references for the pixel error-detection metrics and the oracle Dice AURC.

Plain loops over pixel pairs and over every distinct threshold; small inputs only.
"""

from __future__ import annotations

import numpy as np

from .dice_curve import slow_dice_curve


def pooled(preds, targets, uncs) -> tuple[list[float], list[bool]]:
    """Every pixel of every image: (uncertainty, wrong) as Python lists."""
    u = [float(v) for x in uncs for v in np.asarray(x).reshape(-1)]
    wrong = [bool(a != b) for p, t in zip(preds, targets) for a, b in zip(np.ravel(p), np.ravel(t))]
    return u, wrong


def slow_error_auroc(preds, targets, uncs) -> float:
    """All (wrong, correct) pairs: 1 when the wrong pixel is less sure, 1/2 on a tie, 0 otherwise; the mean."""
    u, wrong = pooled(preds, targets, uncs)
    wins, pairs = 0.0, 0
    for uj, wj in zip(u, wrong):
        if not wj:
            continue
        for uk, wk in zip(u, wrong):
            if wk:
                continue
            pairs += 1
            wins += 1.0 if uj > uk else 0.5 if uj == uk else 0.0
    return wins / pairs


def slow_generalized_risk_curve(preds, targets, uncs) -> tuple[list[float], list[float]]:
    """(0, 0), then for every distinct threshold t (ascending): coverage #(u <= t) / n and risk #(u <= t, wrong) / n."""
    u, wrong = pooled(preds, targets, uncs)
    n = len(u)
    coverage, risk = [0.0], [0.0]
    for t in sorted(set(u)):
        coverage.append(sum(1 for v in u if v <= t) / n)
        risk.append(sum(1 for v, w in zip(u, wrong) if v <= t and w) / n)
    return coverage, risk


def slow_augrc(preds, targets, uncs) -> float:
    """Trapezoids between consecutive points of the generalized risk-coverage curve."""
    coverage, risk = slow_generalized_risk_curve(preds, targets, uncs)
    return sum((coverage[i] - coverage[i - 1]) * (risk[i] + risk[i - 1]) / 2 for i in range(1, len(coverage)))


def slow_oracle_aurc(preds, targets, num_classes: int) -> float:
    """The Dice AURC (slow curve over every distinct threshold) with the oracle uncertainty 1[wrong] as input."""
    oracle = [(np.asarray(p) != np.asarray(t)).astype(np.float64) for p, t in zip(preds, targets)]
    _, coverage, dice, _ = slow_dice_curve(preds, targets, oracle, num_classes)
    return sum((coverage[i] - coverage[i - 1]) * (2 - dice[i] - dice[i - 1]) / 2 for i in range(1, len(coverage)))
