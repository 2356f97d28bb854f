"""Selective-segmentation metrics: case-level risk-coverage curves, pixel-level and Dice-based selection, calibration
(NLL, Brier, ECE, temperature scaling), disagreement with annotators, quality control and OOD detection, and
agreement between annotators.

Pure library layer: imports neither models, training nor plotting.
"""

from .._validation import UndefinedMetricWarning
from .agreement import aula, layer_agreement_curve, mean_dice, pairwise_dice
from .calibration import (
    CalibrationBins,
    CalibrationResult,
    CalibrationStats,
    apply_temperature,
    brier,
    expected_calibration_error,
    fit_temperature,
    nll,
)
from .dice_curve import DiceOperatingPoint, SelectiveDiceCurve, coverage_threshold, selective_dice_curve
from .disagreement import (
    Correlation,
    CorrelationInterval,
    Interval,
    ThresholdDice,
    annotator_roi,
    annotator_variance,
    generalized_energy_distance,
    hungarian_matched_iou,
    image_level_correlation,
    image_level_correlation_ci,
    per_image_pixel_correlation,
    pixel_level_correlation,
    pixel_level_correlation_ci,
    prediction_variance,
    soft_dice_at_thresholds,
    sum_of_variances,
)
from .pixel import PixelSelectiveMetrics, selective_pixel_metrics
from .quality import QCCurve, ood_auroc, quality_control_curve
from .risk_coverage import RiskCoverageCurve, aurc, eaurc, risk_coverage_curve

__all__ = [
    "CalibrationBins",
    "CalibrationResult",
    "CalibrationStats",
    "Correlation",
    "CorrelationInterval",
    "DiceOperatingPoint",
    "Interval",
    "PixelSelectiveMetrics",
    "QCCurve",
    "RiskCoverageCurve",
    "SelectiveDiceCurve",
    "ThresholdDice",
    "UndefinedMetricWarning",
    "annotator_roi",
    "annotator_variance",
    "apply_temperature",
    "aula",
    "aurc",
    "brier",
    "coverage_threshold",
    "eaurc",
    "expected_calibration_error",
    "fit_temperature",
    "generalized_energy_distance",
    "hungarian_matched_iou",
    "image_level_correlation",
    "image_level_correlation_ci",
    "layer_agreement_curve",
    "mean_dice",
    "nll",
    "ood_auroc",
    "pairwise_dice",
    "per_image_pixel_correlation",
    "pixel_level_correlation",
    "pixel_level_correlation_ci",
    "prediction_variance",
    "quality_control_curve",
    "risk_coverage_curve",
    "selective_dice_curve",
    "selective_pixel_metrics",
    "soft_dice_at_thresholds",
    "sum_of_variances",
]
