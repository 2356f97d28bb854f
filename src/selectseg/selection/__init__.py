"""Referral thresholds: choose the uncertainty threshold on a held-out calibration set, for a target coverage or
for a target risk with a finite-sample guarantee on new images (Learn then Test, conformal risk control, selection
with guaranteed risk). Pure numpy/scipy; see ``docs/referral.md``."""

from .bounds import (
    METHODS,
    binomial_upper_bound,
    hoeffding_bentkus_bound,
    hoeffding_bentkus_pvalue,
    minimum_calibration_size,
    require_calibration_size,
)
from .risk import DEFAULT_MAX_CANDIDATES, candidate_thresholds, risk_matrix
from .sgr import selective_guaranteed_risk
from .thresholds import (
    IMAGE_METHODS,
    ReferralThreshold,
    certify_image_risk,
    certify_mean_risk,
    dice_risk_threshold,
    threshold_for_coverage,
)

__all__ = [
    "DEFAULT_MAX_CANDIDATES",
    "IMAGE_METHODS",
    "METHODS",
    "ReferralThreshold",
    "binomial_upper_bound",
    "candidate_thresholds",
    "certify_image_risk",
    "certify_mean_risk",
    "dice_risk_threshold",
    "hoeffding_bentkus_bound",
    "hoeffding_bentkus_pvalue",
    "minimum_calibration_size",
    "require_calibration_size",
    "risk_matrix",
    "selective_guaranteed_risk",
    "threshold_for_coverage",
]
