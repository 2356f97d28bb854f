"""Selective-segmentation metrics: case-level risk-coverage curves, pixel-level and Dice-based selection (with the
oracle/excess split of the Dice AURC, the pixel error-detection AUROC and the AUGRC), calibration (NLL, Brier, ECE),
annotator metrics (inter-annotator agreement, variance, correlation with annotator disagreement), distribution
metrics between a model's samples and the annotators, layer agreement, quality control and OOD detection, the
bootstrap over images of the Dice curve and the paired comparison over seeds. The selective functions take lists of
images or batches ``(B, *S)``; ``SelectiveDiceMetric`` and ``ErrorDetectionMetric`` accumulate batches (and DDP ranks)
with ``update``/``compute``/``reset``.

Pure library layer: imports neither models, training nor plotting. Temperature scaling, a calibrator rather than a
metric, lives in :mod:`selectseg.uncertainty.calibrators`; ``fit_temperature`` and ``apply_temperature`` stay
importable from here.
"""

from .._validation import UndefinedMetricWarning
from ..uncertainty.calibrators import apply_temperature, fit_temperature
from .annotators import (
    Correlation,
    CorrelationInterval,
    Interval,
    annotator_roi,
    annotator_variance,
    image_level_correlation,
    image_level_correlation_ci,
    pairwise_dice,
    per_image_pixel_correlation,
    pixel_level_correlation,
    pixel_level_correlation_ci,
    prediction_variance,
    sum_of_variances,
)
from .bootstrap import DiceBootstrap, WeightedDiceStatistics, bootstrap_dice_curve, weighted_dice_statistics
from .calibration import CalibrationBins, CalibrationResult, CalibrationStats, brier, expected_calibration_error, nll
from .dice import mean_dice
from .dice_curve import DiceOperatingPoint, SelectiveDiceCurve, coverage_threshold, selective_dice_curve
from .distributions import ThresholdDice, generalized_energy_distance, hungarian_matched_iou, soft_dice_at_thresholds
from .error_detection import ErrorDetectionScores, pixel_augrc, pixel_error_auroc
from .layers import aula, layer_agreement_curve
from .paired import PairedComparison, paired_comparison
from .pixel import PixelSelectiveMetrics, selective_pixel_metrics
from .quality import QCCurve, ood_auroc, quality_control_curve
from .risk_coverage import RiskCoverageCurve, aurc, eaurc, risk_coverage_curve
from .streaming import ErrorDetectionMetric, SelectiveDiceMetric

__all__ = [
    "CalibrationBins",
    "CalibrationResult",
    "CalibrationStats",
    "Correlation",
    "CorrelationInterval",
    "DiceBootstrap",
    "DiceOperatingPoint",
    "ErrorDetectionMetric",
    "ErrorDetectionScores",
    "Interval",
    "PairedComparison",
    "PixelSelectiveMetrics",
    "QCCurve",
    "RiskCoverageCurve",
    "SelectiveDiceCurve",
    "SelectiveDiceMetric",
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
