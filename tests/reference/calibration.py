"""Slow, obviously-correct calibration metrics: plain Python loops over samples, straight from the definitions.

Inputs are ``(N, K)`` probability rows and ``(N,)`` labels as Python floats/ints. Bins: edges
``np.linspace(0, 1, n_bins + 1)``; bin b holds ``edges[b] <= v < edges[b+1]``, and 1.0 goes into the last bin.
"""

from __future__ import annotations

import math

import numpy as np


def slow_nll(probs, labels, eps=1e-12):
    total = 0.0
    for row, y in zip(probs, labels):
        total += -math.log(max(float(row[y]), eps))
    return total / len(labels)


def slow_brier(probs, labels):
    total = 0.0
    for row, y in zip(probs, labels):
        for k, p in enumerate(row):
            target = 1.0 if k == y else 0.0
            total += (float(p) - target) ** 2
    return total / len(labels)


def slow_bin(value, n_bins):
    edges = np.linspace(0.0, 1.0, n_bins + 1).tolist()
    for b in range(n_bins):
        if edges[b] <= value < edges[b + 1]:
            return b
    assert value == 1.0, value
    return n_bins - 1


def slow_binned_error(confidences, hits, n_bins, norm="l1"):
    """Calibration error of (confidence, hit) pairs: l1 = sum_b |B_b|/N |acc_b - conf_b|; l2; max."""
    members = [[] for _ in range(n_bins)]
    for c, h in zip(confidences, hits):
        members[slow_bin(c, n_bins)].append((c, h))
    n = len(confidences)
    l1 = l2 = worst = 0.0
    for bin_members in members:
        if not bin_members:
            continue
        conf = sum(c for c, _ in bin_members) / len(bin_members)
        acc = sum(h for _, h in bin_members) / len(bin_members)
        gap = abs(acc - conf)
        l1 += len(bin_members) / n * gap
        l2 += len(bin_members) / n * gap**2
        worst = max(worst, gap)
    return {"l1": l1, "l2": math.sqrt(l2), "max": worst}[norm]


def slow_ece_top_label(probs, labels, n_bins, norm="l1"):
    confidences, hits = [], []
    for row, y in zip(probs, labels):
        row = [float(p) for p in row]
        prediction = row.index(max(row))  # first maximum on ties
        confidences.append(row[prediction])
        hits.append(1.0 if prediction == y else 0.0)
    return slow_binned_error(confidences, hits, n_bins, norm)


def slow_ece_classwise(probs, labels, n_bins, norm="l1", include_background=True):
    k = len(probs[0])
    errors = []
    for c in range(0 if include_background else 1, k):
        confidences = [float(row[c]) for row in probs]
        hits = [1.0 if y == c else 0.0 for y in labels]
        errors.append(slow_binned_error(confidences, hits, n_bins, norm))
    return sum(errors) / len(errors)
