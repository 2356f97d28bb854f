"""Slow, obviously-correct bootstrap statistics: concatenate the resampled images, build their Dice curve."""

from __future__ import annotations

import numpy as np

from selectseg.metrics import selective_dice_curve


def concatenated_statistics(preds, targets, uncs, num_classes, weights, coverages):
    """For each row of ``weights`` (R, N): repeat image i weights[r, i] times, compute the whole curve of that set and
    return its AURC (R,), and the achieved coverage and mean Dice (R, C) at ``coverages``."""
    aurc, coverage, dice = [], [], []
    for row in np.asarray(weights):
        chosen = [i for i, count in enumerate(row) for _ in range(count)]
        curve = selective_dice_curve(
            [preds[i] for i in chosen], [targets[i] for i in chosen], [uncs[i] for i in chosen], num_classes=num_classes
        )
        points = [curve.at_coverage(float(c)) for c in coverages]
        aurc.append(curve.aurc)
        coverage.append([p.coverage for p in points])
        dice.append([p.dice_mean for p in points])
    return np.array(aurc), np.array(coverage), np.array(dice)
