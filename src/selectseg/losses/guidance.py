"""EDUE's disagreement guidance loss: the heads' variance should match the annotators' variance (lower is better)."""

from __future__ import annotations

import torch

__all__ = ["annotator_variance_target", "disagreement_guidance_loss"]


def annotator_variance_target(annotator_mean: torch.Tensor) -> torch.Tensor:
    """The annotators' variance map ``m (1 - m)``, m = fraction of annotators marking a voxel as foreground.

    Shape:
        annotator_mean ``(B, *S)`` in [0, 1] -> ``(B, *S)`` in [0, 1/4].
    """
    return annotator_mean * (1.0 - annotator_mean)


def disagreement_guidance_loss(head_logits: torch.Tensor, annotator_mean: torch.Tensor) -> torch.Tensor:
    """Mean squared error between the heads' foreground-probability variance and the annotators' ``m (1 - m)``.

    Foreground probability = ``1 - p(background)`` (all foreground classes together; for K = 2 the class-1
    probability). The heads' variance is the population variance (ddof = 0) across heads, the same statistic as
    ``m (1 - m)`` across annotators (the variance of a Bernoulli mean). Choices marked "ours" in docs/metrics.md:
    the abstract of Abutalip et al. (2024) names the comparison of variance heatmaps but not its exact form.

    Args:
        head_logits: the heads' logits.
        annotator_mean: fraction of annotators marking each voxel as foreground.

    Shape:
        head_logits ``(M, B, K, *S)`` with M >= 2 heads, annotator_mean ``(B, *S)`` -> scalar.

    Raises:
        ValueError: with fewer than 2 heads or mismatched shapes.

    Example:
        >>> logits = torch.zeros(3, 1, 2, 2, 2)  # every head says 0.5: variance 0
        >>> float(disagreement_guidance_loss(logits, torch.tensor([[[0.0, 0.5], [1.0, 0.5]]])))  # targets 0, 1/4
        0.03125

    References:
        Abutalip et al., EDUE: Expert Disagreement-Guided One-Pass Uncertainty Estimation for Medical Image
        Segmentation, 2024.
    """
    if head_logits.ndim < 4 or head_logits.shape[0] < 2:
        raise ValueError(
            f"Expected head logits of shape (M, B, K, *S) with M >= 2 heads, but got {tuple(head_logits.shape)}."
        )
    expected = (head_logits.shape[1], *head_logits.shape[3:])
    if tuple(annotator_mean.shape) != expected:
        raise ValueError(
            f"Expected `annotator_mean` of shape (B, *S) = {expected}, but got {tuple(annotator_mean.shape)}."
        )
    foreground = 1.0 - head_logits.float().softmax(dim=2)[:, :, 0]
    predicted = foreground.var(dim=0, unbiased=False)
    return torch.mean((predicted - annotator_variance_target(annotator_mean.float())) ** 2)
