"""Slow, obviously-correct image-level scores: explicit loops over voxels, members and pairs."""

from __future__ import annotations

import math

import numpy as np

from .annotators import pairwise_dice
from .layers import aula


def image_scores(probs: np.ndarray, uncertainty: np.ndarray, members: np.ndarray | None, layered: bool) -> dict:
    k = probs.shape[0]
    flat = probs.reshape(k, -1)
    entropies = [-sum(p * math.log(p) for p in flat[:, v] if p > 0) for v in range(flat.shape[1])]
    out = {
        "mean_uncertainty": sum(uncertainty.reshape(-1).tolist()) / uncertainty.size,
        "mean_entropy": sum(entropies) / len(entropies),
    }
    if members is None or members.shape[0] < 2:
        return out
    m = members.shape[0]
    fg = [(1.0 - members[i, 0]).reshape(-1) for i in range(m)]
    sv = 0.0
    for v in range(fg[0].size):
        values = [fg[i][v] for i in range(m)]
        mean = sum(values) / m
        sv += sum((x - mean) ** 2 for x in values) / m
    out["sv"] = sv
    labels = members.argmax(axis=1)
    out["model_disagreement"] = 1.0 - sum(pairwise_dice(labels, k)) / (k - 1)
    if layered:
        out["layer_disagreement"] = 1.0 - aula(labels, k)
    return out
