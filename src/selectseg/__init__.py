"""selectseg: uncertainty-aware selective medical image segmentation.

Subpackages: :mod:`selectseg.losses` (ranking and selective losses), :mod:`selectseg.metrics` (risk-coverage,
Dice-coverage, pixel-level selection), :mod:`selectseg.uncertainty` (uncertainty scores); and, imported on demand
because they load MONAI: :mod:`selectseg.data` (datasets), :mod:`selectseg.models` (networks),
:mod:`selectseg.training` (config, loop, checkpoints), :mod:`selectseg.evaluation` (predict, evaluate).
"""

from . import losses, metrics, uncertainty
from .losses import SelectiveSegmentationLoss, UncertaintyRankingLoss, uncertainty_ranking_loss
from .metrics import aurc, eaurc, risk_coverage_curve, selective_dice_curve, selective_pixel_metrics

__version__ = "0.1.0"

__all__ = [
    "SelectiveSegmentationLoss",
    "UncertaintyRankingLoss",
    "__version__",
    "aurc",
    "eaurc",
    "losses",
    "metrics",
    "risk_coverage_curve",
    "selective_dice_curve",
    "selective_pixel_metrics",
    "uncertainty",
    "uncertainty_ranking_loss",
]
