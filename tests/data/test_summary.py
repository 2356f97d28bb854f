from __future__ import annotations

import json

import numpy as np
import pytest

from selectseg.data import DatasetInfo, SegmentationDataset, make_synthetic_dataset
from selectseg.data.case import Case
from selectseg.data.summary import summarize_dataset
from selectseg.metrics import pairwise_dice


def test_summary_numbers_by_hand() -> None:
    labels_a = np.array([[[0, 1], [1, 1]], [[0, 1], [0, 1]]])  # 2 annotators, 2x2
    labels_b = np.array([[[0, 0], [0, 0]]])  # 1 annotator, 2x2
    info = DatasetInfo("t", ("background", "fg"), ("ch",), 2, "msd")
    cases = (
        Case("a", np.zeros((1, 2, 2), np.float32), labels_a, np.diag([0.5, 2.0, 1.0, 1.0]), None, subject="p1"),
        Case("b", np.zeros((1, 2, 2), np.float32), labels_b, np.eye(4), None, subject="p1"),
    )
    summary = summarize_dataset(SegmentationDataset(info, cases))
    assert summary["num_cases"] == 2 and summary["num_subjects"] == 1
    assert summary["classes"][1]["share"] == pytest.approx(5 / 12)  # 5 foreground of 12 labelled voxels
    assert summary["annotators"] == {"min": 1, "max": 2}
    assert summary["inter_annotator_dice"] == pytest.approx([2 * 2 / (3 + 2)])  # only case a has 2 annotators
    assert summary["spacing"] == {"min": [0.5, 1.0], "max": [1.0, 2.0]}
    json.dumps(summary)  # JSON-ready


def test_summary_of_synthetic_set_matches_pairwise_dice() -> None:
    dataset = make_synthetic_dataset(num_cases=3, size=16, num_annotators=4)
    summary = summarize_dataset(dataset)
    expected = np.mean([pairwise_dice(c.labels, num_classes=2) for c in dataset.cases], axis=0)
    assert summary["inter_annotator_dice"] == pytest.approx(expected.tolist())


def test_summary_of_empty_dataset_is_an_error() -> None:
    info = DatasetInfo("t", ("background", "fg"), ("ch",), 2, "msd")
    with pytest.raises(ValueError, match="at least one case"):
        summarize_dataset(SegmentationDataset(info, ()))
