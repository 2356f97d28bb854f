"""Inference on trained runs: per-case predictions with referral masks, and selective evaluation."""

from .evaluate import DEFAULT_COVERAGES, evaluate_cases
from .predict import coverage_threshold, predict_cases, referral_mask
from .run import CaseOutput, LoadedRun, load_run

__all__ = [
    "DEFAULT_COVERAGES",
    "CaseOutput",
    "LoadedRun",
    "coverage_threshold",
    "evaluate_cases",
    "load_run",
    "predict_cases",
    "referral_mask",
]
