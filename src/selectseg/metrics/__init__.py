"""Selective-segmentation metrics: case-level risk-coverage curves, pixel-level and Dice-based selection, and
agreement between annotators.

Pure library layer: imports neither models, training nor plotting.
"""

from .._validation import UndefinedMetricWarning
from .agreement import aula, layer_agreement_curve, pairwise_dice
from .dice_curve import DiceOperatingPoint, SelectiveDiceCurve, selective_dice_curve
from .pixel import PixelSelectiveMetrics, selective_pixel_metrics
from .risk_coverage import RiskCoverageCurve, aurc, eaurc, risk_coverage_curve

__all__ = [
    "DiceOperatingPoint",
    "PixelSelectiveMetrics",
    "RiskCoverageCurve",
    "SelectiveDiceCurve",
    "UndefinedMetricWarning",
    "aula",
    "aurc",
    "eaurc",
    "layer_agreement_curve",
    "pairwise_dice",
    "risk_coverage_curve",
    "selective_dice_curve",
    "selective_pixel_metrics",
]
