"""Slow, obviously-correct Dice-coverage curve: for every distinct threshold, substitute and recompute Dice."""

from __future__ import annotations

import numpy as np


def image_dice(pred: np.ndarray, target: np.ndarray, num_classes: int) -> float:
    """Mean over classes 1..K-1 of 2|P & Y| / (|P| + |Y|), 1 when both are empty."""
    scores = []
    for c in range(1, num_classes):
        p, y = pred == c, target == c
        denominator = p.sum() + y.sum()
        scores.append(1.0 if denominator == 0 else 2.0 * (p & y).sum() / denominator)
    return float(np.mean(scores))


def operating_point(preds, targets, uncs, num_classes, threshold):
    """(coverage, mean Dice, per-image Dice, per-image coverage, gamma) keeping pixels with u <= threshold."""
    kept_total = total = wrong_referred = referred = 0
    dice, coverage = [], []
    for p, y, u in zip(preds, targets, uncs):
        kept = u <= threshold
        substituted = np.where(kept, p, y)
        dice.append(image_dice(substituted, y, num_classes))
        coverage.append(kept.mean())
        kept_total += kept.sum()
        total += kept.size
        referred += (~kept).sum()
        wrong_referred += ((p != y) & ~kept).sum()
    gamma = wrong_referred / referred if referred else float("nan")
    return kept_total / total, float(np.mean(dice)), np.array(dice), np.array(coverage), gamma


def slow_dice_curve(preds, targets, uncs, num_classes):
    """Points at threshold -inf and at every distinct uncertainty: thresholds, coverage, mean Dice, per-image Dice."""
    values = np.unique(np.concatenate([u.reshape(-1) for u in uncs]))
    thresholds = np.r_[-np.inf, values]
    rows = [operating_point(preds, targets, uncs, num_classes, t) for t in thresholds]
    return (
        thresholds,
        np.array([r[0] for r in rows]),
        np.array([r[1] for r in rows]),
        np.stack([r[2] for r in rows]),
    )
