"""Slow, obviously-correct ranking loss: the full pair matrix of Ding et al. eq. 2 (float64)."""

from __future__ import annotations

import torch


def naive_ranking_loss(uncertainty: torch.Tensor, correct: torch.Tensor, margin: float, reduction: str) -> torch.Tensor:
    """``reduce_{j wrong, k correct} relu(u_k - u_j + margin)`` by forming every pair; 0 if a side is empty."""
    u = uncertainty.reshape(-1)
    ok = correct.reshape(-1)
    wrong, right = u[~ok], u[ok]
    if wrong.numel() == 0 or right.numel() == 0:
        return u.sum() * 0.0
    pairs = torch.relu(right[None, :] - wrong[:, None] + margin)
    return pairs.mean() if reduction == "mean" else pairs.sum()
