"""Slow, obviously-correct references for the annotator metrics: plain loops over pixels, pairs and sets."""

from __future__ import annotations

import math

import numpy as np


def annotator_variance(masks: np.ndarray) -> np.ndarray:
    """m (1 - m) pixel by pixel, m = fraction of annotators marking the pixel."""
    out = np.zeros(masks.shape[1:])
    for idx in np.ndindex(*masks.shape[1:]):
        values = [float(masks[(a, *idx)]) for a in range(masks.shape[0])]
        m = sum(values) / len(values)
        out[idx] = m * (1 - m)
    return out


def population_variance(members: np.ndarray) -> np.ndarray:
    """sum (p - mean)^2 / M pixel by pixel."""
    out = np.zeros(members.shape[1:])
    for idx in np.ndindex(*members.shape[1:]):
        values = [float(members[(m, *idx)]) for m in range(members.shape[0])]
        mean = sum(values) / len(values)
        out[idx] = sum((v - mean) ** 2 for v in values) / len(values)
    return out


def pearson(x: list[float], y: list[float]) -> float:
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy)


def average_ranks(x: list[float]) -> list[float]:
    """1-based ranks, tied values sharing the mean of the ranks they span."""
    return [sum(1 for v in x if v < xi) + (sum(1 for v in x if v == xi) + 1) / 2 for xi in x]


def spearman(x: list[float], y: list[float]) -> float:
    return pearson(average_ranks(x), average_ranks(y))


def pixel_level_correlation(preds: list[np.ndarray], anns: list[np.ndarray], constant: str) -> float:
    values = []
    for p, a in zip(preds, anns):
        p_list, a_list = p.reshape(-1).tolist(), a.reshape(-1).tolist()
        p_const, a_const = len(set(p_list)) == 1, len(set(a_list)) == 1
        if not p_const and not a_const:
            values.append(pearson(p_list, a_list))
        elif constant == "zero":
            values.append(0.0)
        elif constant == "one_if_both_constant":
            values.append(1.0 if p_const and a_const else 0.0)
    return sum(values) / len(values) if values else float("nan")


def roi_sum(variance: np.ndarray, masks: np.ndarray, radius: int) -> float:
    """Sum of ``variance`` over the pixels within Euclidean distance ``radius`` of a pixel any annotator marked."""
    marked = [idx for idx in np.ndindex(*masks.shape[1:]) if any(masks[(a, *idx)] for a in range(masks.shape[0]))]
    total = 0.0
    for idx in np.ndindex(*variance.shape):
        if any(math.dist(idx, m) <= radius for m in marked):
            total += float(variance[idx])
    return total


def bootstrap_interval(statistic, columns: list[np.ndarray], index: np.ndarray, confidence: float) -> tuple:
    """Percentile interval of ``statistic(*resampled columns)`` over the rows of ``index`` (one resample per row),
    leaving out the resamples where it returns None."""
    values = []
    for row in index:
        value = statistic(*[[float(c[i]) for i in row] for c in columns])
        if value is not None:
            values.append(value)
    low = np.percentile(values, 100 * (1 - confidence) / 2)
    high = np.percentile(values, 100 * (1 + confidence) / 2)
    return float(low), float(high)


def pearson_or_none(x: list[float], y: list[float]) -> float | None:
    return None if len(set(x)) == 1 or len(set(y)) == 1 else pearson(x, y)


def spearman_or_none(x: list[float], y: list[float]) -> float | None:
    return None if len(set(x)) == 1 or len(set(y)) == 1 else spearman(x, y)


def mean(x: list[float]) -> float:
    return sum(x) / len(x)


def pairwise_dice(labels: np.ndarray, num_classes: int) -> list[float]:
    a = labels.shape[0]
    out = []
    for c in range(1, num_classes):
        values = []
        for i in range(a):
            for j in range(i + 1, a):
                si = {idx for idx, v in np.ndenumerate(labels[i]) if v == c}
                sj = {idx for idx, v in np.ndenumerate(labels[j]) if v == c}
                values.append(1.0 if not si and not sj else 2 * len(si & sj) / (len(si) + len(sj)))
        out.append(sum(values) / len(values))
    return out
