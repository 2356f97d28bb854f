"""Losses: the uncertainty ranking loss (exact and sampled), segmentation losses by name, the selective segmentation
loss built from parts (one output, or summed over a multi-head network's heads with EDUE's guidance), all returning
one :class:`LossParts`."""

from .guidance import annotator_variance_target, disagreement_guidance_loss
from .ranking import UncertaintyRankingLoss, uncertainty_ranking_loss
from .segmentation import SEGMENTATION_LOSSES, segmentation_loss
from .selective import (
    LossParts,
    MultiHeadSelectiveLoss,
    SelectiveSegmentationLoss,
    multi_head_selective_loss,
    selective_segmentation_loss,
)

__all__ = [
    "SEGMENTATION_LOSSES",
    "LossParts",
    "MultiHeadSelectiveLoss",
    "SelectiveSegmentationLoss",
    "UncertaintyRankingLoss",
    "annotator_variance_target",
    "disagreement_guidance_loss",
    "multi_head_selective_loss",
    "segmentation_loss",
    "selective_segmentation_loss",
    "uncertainty_ranking_loss",
]
