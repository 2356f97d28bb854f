"""Uncertainty scores (and, later, estimators) behind one registry."""

from .scores import entropy, get_score, list_scores, max_softmax_uncertainty, normalized_entropy, register_score

__all__ = ["entropy", "get_score", "list_scores", "max_softmax_uncertainty", "normalized_entropy", "register_score"]
