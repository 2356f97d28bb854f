"""Voxel uncertainty scores computed from class probabilities (higher = less sure).

Each score maps probabilities ``(B, K, *S)`` to an uncertainty map ``(B, *S)`` and is differentiable, so it can
drive the uncertainty ranking loss. Scores are registered by name in :data:`SCORES`, each with its range for K
classes (:class:`ScoreInfo`); ``register_score`` adds a new one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .._registry import Registry

__all__ = [
    "SCORES",
    "ScoreInfo",
    "entropy",
    "get_score",
    "list_scores",
    "max_softmax_uncertainty",
    "normalized_entropy",
    "register_score",
]

ScoreFn = Callable[[torch.Tensor], torch.Tensor]
Bounds = Callable[[int], tuple[float, float]]


@dataclass(frozen=True)
class ScoreInfo:
    """What the score registry knows of a score besides its function.

    Attributes:
        bounds: ``bounds(K) -> (low, high)``, the range of the score's values for K classes (attained by a one-hot
            and a uniform prediction for the built-in scores); None where not documented.
    """

    bounds: Bounds | None = None


SCORES: Registry[ScoreFn, ScoreInfo] = Registry("uncertainty", ScoreInfo)
"""The voxel uncertainty scores by name: ``probs (B, K, *S) -> uncertainty (B, *S)``, with :class:`ScoreInfo`."""


def register_score(name: str, *, bounds: Bounds | None = None) -> Callable[[ScoreFn], ScoreFn]:
    """Register an uncertainty score ``probs (B, K, *S) -> uncertainty (B, *S)`` under ``name`` in :data:`SCORES`.

    Args:
        name: the score's name.
        bounds: ``bounds(K) -> (low, high)``, the range of its values for K classes (checked by the contract tests).

    Raises:
        TypeError: if ``name`` is not a string.
        ValueError: if ``name`` is invalid or already registered.
    """
    return SCORES.register(name, bounds=bounds)


def list_scores() -> list[str]:
    """Names of the registered uncertainty scores, sorted."""
    return SCORES.names()


def get_score(name: str) -> ScoreFn:
    """Return the registered score called ``name``.

    Raises:
        ValueError: if no score has that name (the message lists them and suggests a near match).
    """
    return SCORES.get(name)


@register_score("max_softmax", bounds=lambda k: (0.0, 1.0 - 1.0 / k))
def max_softmax_uncertainty(probs: torch.Tensor) -> torch.Tensor:
    """Uncertainty ``1 - max_k p_k`` (Ding et al. 2020); 0 for a one-hot prediction, at most ``1 - 1/K``.

    Shape:
        probs: ``(B, K, *S)``. Returns ``(B, *S)``.
    """
    return 1.0 - probs.amax(dim=1)


@register_score("entropy", bounds=lambda k: (0.0, math.log(k)))
def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Predictive entropy ``-sum_k p_k log p_k`` in nats, in [0, log K].

    Probabilities are clamped below at the dtype's smallest normal number inside the log, so the gradient is
    finite where a probability is exactly 0.

    Shape:
        probs: ``(B, K, *S)``. Returns ``(B, *S)``.
    """
    tiny = torch.finfo(probs.dtype).tiny
    return -(probs * probs.clamp_min(tiny).log()).sum(dim=1)


@register_score("normalized_entropy", bounds=lambda k: (0.0, 1.0))
def normalized_entropy(probs: torch.Tensor) -> torch.Tensor:
    """Entropy divided by ``log K``, in [0, 1] (the same scale as the ranking loss's margin 0.1).

    Shape:
        probs: ``(B, K, *S)`` with K >= 2. Returns ``(B, *S)``.
    """
    return entropy(probs) / math.log(probs.shape[1])
