"""Image-level uncertainty scores: one number per image, for quality control and out-of-distribution detection.

Which scores exist depends on the estimator (higher = less sure, for every score):

- ``mean_uncertainty``: the mean of the reported voxel uncertainty map (always);
- ``mean_entropy``: the mean entropy of the mean probabilities (always);
- ``sv``: EDUE's sum of variances, the sum over voxels of the members' foreground-probability variance
  (foreground = 1 - p(background)); with members (MC dropout, deep ensemble, TTA, layer ensemble);
- ``model_disagreement``: 1 - the mean Dice (mean over foreground classes, empty vs empty = 1) over all pairs of
  the members' argmax maps; with members ("model agreement" of deep ensembles);
- ``layer_disagreement``: 1 - AULA, the normalised area under the layer agreement curve of consecutive heads
  (Kushibar et al. 2022); layer ensembles only.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from ..metrics import aula, mean_dice, prediction_variance

__all__ = ["IMAGE_SCORES", "image_scores"]

IMAGE_SCORES = ("mean_uncertainty", "mean_entropy", "sv", "model_disagreement", "layer_disagreement")


def image_scores(
    probabilities: np.ndarray,
    uncertainty: np.ndarray,
    members: np.ndarray | None = None,
    *,
    layered: bool = False,
) -> dict[str, float]:
    """The image-level uncertainty scores of one image (see the module docstring for the definitions).

    Args:
        probabilities: mean softmax probabilities.
        uncertainty: the voxel uncertainty map that was reported.
        members: the members' probabilities (MC samples, ensemble members, TTA views or heads), or None.
        layered: the members are the heads of a layer ensemble, ordered by depth (adds ``layer_disagreement``).

    Shape:
        probabilities ``(K, *S)``, uncertainty ``(*S)``, members ``(M, K, *S)`` -> dict of floats.

    Raises:
        ValueError: if the shapes do not match, or ``layered`` is set without at least 2 members.

    Example:
        >>> p = np.array([[[0.5, 1.0]], [[0.5, 0.0]]])
        >>> sorted(image_scores(p, np.array([[0.5, 0.0]])).items())
        [('mean_entropy', 0.34657359027997264), ('mean_uncertainty', 0.25)]
    """
    probs = np.asarray(probabilities, dtype=np.float64)
    if probs.ndim < 2 or np.asarray(uncertainty).shape != probs.shape[1:]:
        raise ValueError(
            f"Expected `probabilities` (K, *S) and `uncertainty` (*S) of matching sizes, but got shapes "
            f"{probs.shape} and {np.asarray(uncertainty).shape}."
        )
    clipped = np.clip(probs, 1e-12, 1.0)
    scores = {
        "mean_uncertainty": float(np.mean(uncertainty, dtype=np.float64)),
        "mean_entropy": float(np.mean(-(probs * np.log(clipped)).sum(axis=0))),
    }
    if members is None:
        if layered:
            raise ValueError("Expected `members` (the heads) when `layered` is set, but got None.")
        return scores
    stack = np.asarray(members)
    if stack.ndim != probs.ndim + 1 or stack.shape[1:] != probs.shape:
        raise ValueError(f"Expected `members` of shape (M, *{probs.shape}), but got {stack.shape}.")
    if stack.shape[0] < 2:
        if layered:
            raise ValueError(f"Expected at least 2 heads for `layered`, but got {stack.shape[0]}.")
        return scores
    num_classes = probs.shape[0]
    foreground = np.clip(1.0 - stack[:, 0].astype(np.float64), 0.0, 1.0)
    scores["sv"] = float(prediction_variance(foreground).sum())
    labels = stack.argmax(axis=1)
    pairs = [
        mean_dice(labels[i], labels[j], num_classes=num_classes)
        for i, j in itertools.combinations(range(len(labels)), 2)
    ]
    scores["model_disagreement"] = 1.0 - float(np.mean(pairs)) if pairs else math.nan
    if layered:
        scores["layer_disagreement"] = 1.0 - aula(labels, num_classes=num_classes)
    return scores
