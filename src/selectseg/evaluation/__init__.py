"""Inference on trained runs: per-case predictions with referral masks, selective evaluation, image-level scores
and the out-of-distribution protocol."""

from .cv import evaluate_folds
from .evaluate import DEFAULT_COVERAGES, evaluate_cases
from .image_scores import IMAGE_SCORES, image_scores
from .ood import evaluate_ood
from .predict import coverage_threshold, predict_cases, referral_mask
from .referral import choose_referral_threshold, load_referral
from .run import CaseOutput, LoadedRun, load_run

__all__ = [
    "DEFAULT_COVERAGES",
    "IMAGE_SCORES",
    "CaseOutput",
    "LoadedRun",
    "choose_referral_threshold",
    "coverage_threshold",
    "evaluate_cases",
    "evaluate_folds",
    "evaluate_ood",
    "image_scores",
    "load_referral",
    "load_run",
    "predict_cases",
    "referral_mask",
]
