"""Uncertainty maps from several members' probabilities (ensemble members, MC samples, heads, TTA views).

Each maps member probabilities ``(M, B, K, *S)`` to a map ``(B, *S)`` (higher = less sure).
"""

from __future__ import annotations

import torch

from .scores import entropy

__all__ = ["expected_entropy", "member_variance", "mutual_information"]


def expected_entropy(members: torch.Tensor) -> torch.Tensor:
    """Mean over members of each member's predictive entropy (aleatoric part), in nats.

    Shape:
        members ``(M, B, K, *S)`` -> ``(B, *S)``.
    """
    return torch.stack([entropy(m) for m in members]).mean(dim=0)


def mutual_information(members: torch.Tensor) -> torch.Tensor:
    """Mutual information (BALD): entropy of the mean minus the mean entropy, >= 0 (epistemic part), in nats.

    Shape:
        members ``(M, B, K, *S)`` -> ``(B, *S)``.

    Example:
        >>> agree = torch.tensor([[[[0.9], [0.1]]], [[[0.9], [0.1]]]])  # M=2, B=1, K=2, S=(1,)
        >>> float(mutual_information(agree)[0, 0])
        0.0
    """
    return (entropy(members.mean(dim=0)) - expected_entropy(members)).clamp_min(0.0)


def member_variance(members: torch.Tensor) -> torch.Tensor:
    """Variance across members (population, ddof = 0) of each class probability, averaged over the K classes.

    For K = 2 this equals the variance of the foreground probability (both classes vary alike), the quantity EDUE
    compares with the annotators' variance m(1 - m).

    Shape:
        members ``(M, B, K, *S)`` -> ``(B, *S)``.

    Example:
        >>> m = torch.tensor([[[[0.8], [0.2]]], [[[0.4], [0.6]]]])
        >>> round(float(member_variance(m)[0, 0]), 4)  # var(0.8, 0.4) = 0.04
        0.04
    """
    return members.var(dim=0, unbiased=False).mean(dim=1)
