"""Slow, obviously-correct class-weighted segmentation losses: explicit loops over voxels and classes."""

from __future__ import annotations

import math

import torch


def weighted_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, weights: list[float]) -> float:
    """sum_i w_{y_i} (-log softmax(x_i)_{y_i}) / sum_i w_{y_i} over every voxel i."""
    k = logits.shape[1]
    flat_logits = logits.movedim(1, -1).reshape(-1, k).tolist()
    flat_labels = labels.reshape(-1).tolist()
    num, den = 0.0, 0.0
    for x, y in zip(flat_logits, flat_labels):
        log_z = math.log(sum(math.exp(v) for v in x))
        num += weights[y] * (log_z - x[y])
        den += weights[y]
    return num / den


def weighted_soft_dice_loss(
    logits: torch.Tensor, labels: torch.Tensor, weights: list[float], smooth: float = 1e-5
) -> float:
    """MONAI DiceLoss(softmax, one-hot, include background, reduction mean): per (sample, class)
    1 - (2 sum p g + s) / (sum p + sum g + s), times the class weight, averaged over samples and classes."""
    probs = logits.softmax(dim=1)
    b, k = probs.shape[:2]
    total = 0.0
    for n in range(b):
        for c in range(k):
            p = probs[n, c].reshape(-1).tolist()
            g = [1.0 if v == c else 0.0 for v in labels[n].reshape(-1).tolist()]
            inter = sum(pi * gi for pi, gi in zip(p, g))
            total += weights[c] * (1.0 - (2.0 * inter + smooth) / (sum(p) + sum(g) + smooth))
    return total / (b * k)
