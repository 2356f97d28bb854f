"""Losses: the uncertainty ranking loss (exact and sampled), segmentation losses by name, and the selective
segmentation loss built from parts."""

from .ranking import UncertaintyRankingLoss, uncertainty_ranking_loss
from .segmentation import SEGMENTATION_LOSSES, segmentation_loss
from .selective import SelectiveLossParts, SelectiveSegmentationLoss

__all__ = [
    "SEGMENTATION_LOSSES",
    "SelectiveLossParts",
    "SelectiveSegmentationLoss",
    "UncertaintyRankingLoss",
    "segmentation_loss",
    "uncertainty_ranking_loss",
]
