"""Uncertainty: voxel scores from probabilities, member-based maps, and estimators behind one registry."""

from .estimators import (
    Estimate,
    build_estimator,
    estimator_options,
    list_estimators,
    register_estimator,
    sliding_window_predictor,
    whole_image,
)
from .members import expected_entropy, member_variance, mutual_information
from .scores import entropy, get_score, list_scores, max_softmax_uncertainty, normalized_entropy, register_score

__all__ = [
    "Estimate",
    "build_estimator",
    "entropy",
    "estimator_options",
    "expected_entropy",
    "get_score",
    "list_estimators",
    "list_scores",
    "max_softmax_uncertainty",
    "member_variance",
    "mutual_information",
    "normalized_entropy",
    "register_estimator",
    "register_score",
    "sliding_window_predictor",
    "whole_image",
]
