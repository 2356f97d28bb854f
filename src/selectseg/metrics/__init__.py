"""Selective-segmentation metrics: case-level risk-coverage curves, pixel-level and Dice-based selection (with the
oracle/excess split of the Dice AURC, the pixel error-detection AUROC and the AUGRC), calibration
(NLL, Brier, ECE, temperature scaling), disagreement with annotators, quality control and OOD detection,
agreement between annotators, the bootstrap over images of the Dice curve and the paired comparison over seeds.

Pure library layer: imports neither models, training nor plotting.
"""

from .._validation import UndefinedMetricWarning
from .agreement import aula, layer_agreement_curve, mean_dice, pairwise_dice
from .bootstrap import DiceBootstrap, WeightedDiceStatistics, bootstrap_dice_curve, weighted_dice_statistics
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
from .error_detection import pixel_augrc, pixel_error_auroc
from .paired import PairedComparison, paired_comparison
from .pixel import PixelSelectiveMetrics, selective_pixel_metrics
from .quality import QCCurve, ood_auroc, quality_control_curve
from .risk_coverage import RiskCoverageCurve, aurc, eaurc, risk_coverage_curve

__all__ = [
    "CalibrationBins",
    "CalibrationResult",
    "CalibrationStats",
    "Correlation",
    "CorrelationInterval",
    "DiceBootstrap",
    "DiceOperatingPoint",
    "Interval",
    "PairedComparison",
    "PixelSelectiveMetrics",
    "QCCurve",
    "RiskCoverageCurve",
    "SelectiveDiceCurve",
    "ThresholdDice",
    "UndefinedMetricWarning",
    "WeightedDiceStatistics",
    "annotator_roi",
    "annotator_variance",
    "apply_temperature",
    "aula",
    "aurc",
    "bootstrap_dice_curve",
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
    "paired_comparison",
    "pairwise_dice",
    "per_image_pixel_correlation",
    "pixel_augrc",
    "pixel_error_auroc",
    "pixel_level_correlation",
    "pixel_level_correlation_ci",
    "prediction_variance",
    "quality_control_curve",
    "risk_coverage_curve",
    "selective_dice_curve",
    "selective_pixel_metrics",
    "soft_dice_at_thresholds",
    "sum_of_variances",
    "weighted_dice_statistics",
]
