"""Voxel uncertainty scores computed from class probabilities (higher = less sure).

Each score maps probabilities ``(B, K, *S)`` to an uncertainty map ``(B, *S)`` and is differentiable, so it can
drive the uncertainty ranking loss. Scores are registered by name; ``register_score`` adds a new one.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .._validation import look_up_option

__all__ = [
    "entropy",
    "get_score",
    "list_scores",
    "max_softmax_uncertainty",
    "normalized_entropy",
    "register_score",
]

ScoreFn = Callable[[torch.Tensor], torch.Tensor]
_SCORES: dict[str, ScoreFn] = {}


def register_score(name: str) -> Callable[[ScoreFn], ScoreFn]:
    """Register an uncertainty score ``probs (B, K, *S) -> uncertainty (B, *S)`` under ``name``."""

    def decorator(fn: ScoreFn) -> ScoreFn:
        if name in _SCORES:
            raise ValueError(f"Expected a new score name, but {name!r} is already registered.")
        _SCORES[name] = fn
        return fn

    return decorator


def list_scores() -> list[str]:
    """Names of the registered uncertainty scores, sorted."""
    return sorted(_SCORES)


def get_score(name: str) -> ScoreFn:
    """Return the registered score called ``name``.

    Raises:
        ValueError: if no score has that name (the message lists them and suggests a near match).
    """
    return _SCORES[look_up_option("uncertainty", name, _SCORES)]


@register_score("max_softmax")
def max_softmax_uncertainty(probs: torch.Tensor) -> torch.Tensor:
    """Uncertainty ``1 - max_k p_k`` (Ding et al. 2020); 0 for a one-hot prediction, at most ``1 - 1/K``.

    Shape:
        probs: ``(B, K, *S)``. Returns ``(B, *S)``.
    """
    return 1.0 - probs.amax(dim=1)


@register_score("entropy")
def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Predictive entropy ``-sum_k p_k log p_k`` in nats, in [0, log K].

    Probabilities are clamped below at the dtype's smallest normal number inside the log, so the gradient is
    finite where a probability is exactly 0.

    Shape:
        probs: ``(B, K, *S)``. Returns ``(B, *S)``.
    """
    tiny = torch.finfo(probs.dtype).tiny
    return -(probs * probs.clamp_min(tiny).log()).sum(dim=1)


@register_score("normalized_entropy")
def normalized_entropy(probs: torch.Tensor) -> torch.Tensor:
    """Entropy divided by ``log K``, in [0, 1] (the same scale as the ranking loss's margin 0.1).

    Shape:
        probs: ``(B, K, *S)`` with K >= 2. Returns ``(B, *S)``.
    """
    return entropy(probs) / math.log(probs.shape[1])
