"""Uncertainty: voxel scores from probabilities, member-based maps, and estimators behind one registry."""

from .estimators import (
    ESTIMATORS,
    MEMBER_MAPS,
    SINGLE_MAPS,
    Estimate,
    EstimatorInfo,
    build_estimator,
    estimator_options,
    list_estimators,
    register_estimator,
    sliding_window_predictor,
    whole_image,
)
from .members import expected_entropy, member_variance, mutual_information
from .options import InferenceOptions
from .scores import (
    SCORES,
    ScoreInfo,
    entropy,
    get_score,
    list_scores,
    max_softmax_uncertainty,
    normalized_entropy,
    register_score,
)

__all__ = [
    "ESTIMATORS",
    "MEMBER_MAPS",
    "SCORES",
    "SINGLE_MAPS",
    "Estimate",
    "EstimatorInfo",
    "InferenceOptions",
    "ScoreInfo",
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
