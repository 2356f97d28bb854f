"""Slow, obviously-correct references for the distribution metrics: plain loops over pixels, pairs and permutations."""

from __future__ import annotations

import itertools
import math

import numpy as np


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """|A & B| / |A | B| with Python sets of foreground indices; 1 for two empty masks."""
    sa = {idx for idx, v in np.ndenumerate(a) if v}
    sb = {idx for idx, v in np.ndenumerate(b) if v}
    return 1.0 if not sa and not sb else len(sa & sb) / len(sa | sb)


def generalized_energy_distance(a: np.ndarray, b: np.ndarray, include_self_pairs: bool) -> float:
    def mean_distance(xs, ys, same):
        total, count = 0.0, 0
        for i, x in enumerate(xs):
            for j, y in enumerate(ys):
                if same and i == j and not include_self_pairs:
                    continue
                total += 1 - iou(x, y)
                count += 1
        return total / count

    return 2 * mean_distance(a, b, False) - mean_distance(a, a, True) - mean_distance(b, b, True)


def hungarian_brute_force(a: np.ndarray, b: np.ndarray, unequal: str) -> float:
    """Best mean IoU over every one-to-one matching (after replicating both sets to lcm(P, Q) for "replicate")."""
    if unequal == "replicate":
        size = math.lcm(len(a), len(b))
        a = np.concatenate([a] * (size // len(a)))
        b = np.concatenate([b] * (size // len(b)))
    if len(a) > len(b):
        a, b = b, a
    table = [[iou(x, y) for y in b] for x in a]
    best = -1.0
    for cols in itertools.permutations(range(len(b)), len(a)):
        best = max(best, sum(table[i][j] for i, j in enumerate(cols)) / len(a))
    return best


def soft_dice(probs: np.ndarray, masks: np.ndarray, thresholds: list[float]) -> list[float]:
    out = []
    for t in thresholds:
        pred, ref = set(), set()
        for idx in np.ndindex(*probs.shape):
            if probs[idx] >= t:
                pred.add(idx)
            if sum(int(masks[(a, *idx)]) for a in range(masks.shape[0])) / masks.shape[0] >= t:
                ref.add(idx)
        out.append(1.0 if not pred and not ref else 2 * len(pred & ref) / (len(pred) + len(ref)))
    return out
