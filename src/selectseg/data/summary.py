"""What is in a dataset: the numbers ``selectseg inspect`` prints (shapes, spacings, class shares, annotators)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .._validation import UndefinedMetricWarning
from ..metrics.annotators import pairwise_dice
from .case import SegmentationDataset

__all__ = ["summarize_dataset"]


def summarize_dataset(dataset: SegmentationDataset) -> dict[str, Any]:
    """Summary of a loaded dataset, as plain JSON-ready data.

    Keys: ``name``, ``format``, ``num_cases``, ``num_labelled``, ``num_subjects``, ``spatial_dims``, ``channels``,
    ``shape`` (per-axis min and max, number of distinct shapes), ``spacing`` (per-axis min and max), ``classes``
    (per class: index, name, share of labelled voxels, pooled over all annotators' maps), ``annotators`` (min and
    max per labelled case) and ``inter_annotator_dice`` (per foreground class: mean over the cases with at least two
    annotators of the mean pairwise Dice, empty vs empty = 1; ``None`` when no case has two annotators), with the
    per-case values under ``inter_annotator_dice_per_case``.

    Raises:
        ValueError: if the dataset has no case.

    Example:
        >>> from selectseg.data import make_synthetic_dataset
        >>> summary = summarize_dataset(make_synthetic_dataset(num_cases=2, size=16, num_annotators=3))
        >>> summary["num_cases"], summary["annotators"], [c["name"] for c in summary["classes"]]
        (2, {'min': 3, 'max': 3}, ['background', 'structure'])
    """
    cases = dataset.cases
    if not cases:
        raise ValueError("Expected a dataset with at least one case, but it has none.")
    info = dataset.info
    k = info.num_classes
    shapes = np.array([c.spatial_shape for c in cases])
    spacings = np.array([c.spacing for c in cases])
    counts = np.zeros(k, dtype=np.int64)
    per_case: dict[str, list[float]] = {}
    annotators = []
    for case in cases:
        if case.labels is None:
            continue
        annotators.append(case.num_annotators)
        counts += np.bincount(case.labels.reshape(-1), minlength=k)[:k]
        if case.num_annotators >= 2:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UndefinedMetricWarning)
                per_case[case.case_id] = pairwise_dice(case.labels, num_classes=k).tolist()
    total = int(counts.sum())
    dice = np.mean(np.array(list(per_case.values())), axis=0).tolist() if per_case else None
    return {
        "name": info.name,
        "format": info.format,
        "num_cases": len(cases),
        "num_labelled": len(annotators),
        "num_subjects": len({c.subject or c.case_id for c in cases}),
        "spatial_dims": info.spatial_dims,
        "channels": list(info.channel_names),
        "shape": {
            "min": shapes.min(axis=0).tolist(),
            "max": shapes.max(axis=0).tolist(),
            "distinct": len({tuple(s) for s in shapes.tolist()}),
        },
        "spacing": {"min": spacings.min(axis=0).tolist(), "max": spacings.max(axis=0).tolist()},
        "classes": [
            {"index": i, "name": name, "share": (int(counts[i]) / total) if total else None}
            for i, name in enumerate(info.class_names)
        ],
        "annotators": {"min": min(annotators), "max": max(annotators)} if annotators else {"min": 0, "max": 0},
        "inter_annotator_dice": dice,
        "inter_annotator_dice_per_case": per_case,
    }
