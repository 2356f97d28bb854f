"""The annotator policy: one reference label map from several annotators' maps (training targets, evaluation
references)."""

from __future__ import annotations

import numpy as np

from .case import Case

__all__ = ["ANNOTATOR_POLICIES", "reference_labels", "target_labels"]

ANNOTATOR_POLICIES = ("majority", "first", "random")
"""``data.annotator`` values: per-voxel majority vote, the first annotator, or a random annotator per training sample
(evaluated against the majority)."""


def target_labels(labels: np.ndarray, policy: str, num_classes: int) -> np.ndarray:
    """One label map from several annotators' maps.

    Args:
        labels: ``(A, *S)`` int64.
        policy: ``"majority"`` (per-voxel vote, ties to the higher class) or ``"first"``.
        num_classes: K.

    Returns:
        ``(*S)`` int64.

    Raises:
        ValueError: if ``labels`` holds no annotator's map (``A = 0``: a majority of nobody is no label).

    Example:
        >>> target_labels(np.array([[0, 1, 1], [1, 1, 0]]), "majority", 2).tolist()
        [1, 1, 1]
    """
    if labels.ndim < 2 or labels.shape[0] == 0:
        raise ValueError(f"Expected `labels` of shape (A, *S) with A >= 1 annotators, but got shape {labels.shape}.")
    if policy == "first" or labels.shape[0] == 1:
        return labels[0].astype(np.int64, copy=False)
    counts = np.stack([(labels == k).sum(axis=0) for k in range(num_classes)])
    return (num_classes - 1 - np.argmax(counts[::-1], axis=0)).astype(np.int64)


def reference_labels(case: Case, policy: str, num_classes: int) -> np.ndarray:
    """The reference a case is evaluated against: ``policy`` as in training, ``"random"`` read as majority.

    Raises:
        ValueError: if the case has no labels.
    """
    if case.labels is None:
        raise ValueError(f"Case {case.case_id!r} has no label map; evaluation needs labelled cases.")
    return target_labels(case.labels, "majority" if policy == "random" else policy, num_classes)
