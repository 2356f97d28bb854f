"""Losses: the uncertainty ranking loss (exact and sampled) and the selective segmentation loss built from parts."""

from .ranking import UncertaintyRankingLoss, uncertainty_ranking_loss
from .selective import SelectiveLossParts, SelectiveSegmentationLoss

__all__ = ["SelectiveLossParts", "SelectiveSegmentationLoss", "UncertaintyRankingLoss", "uncertainty_ranking_loss"]
