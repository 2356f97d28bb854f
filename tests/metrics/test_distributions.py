from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from selectseg.metrics import UndefinedMetricWarning
from selectseg.metrics.annotators import annotator_variance
from selectseg.metrics.distributions import generalized_energy_distance, hungarian_matched_iou, soft_dice_at_thresholds

from ..reference import distributions as ref

# ------------------------------------------------------------------------------------------ distances between sets


@pytest.mark.parametrize(("p", "q"), [(1, 1), (2, 3), (4, 4), (3, 1)])
@pytest.mark.parametrize("include_self_pairs", [True, False])
def test_generalized_energy_distance_matches_slow_reference(
    rng: np.random.Generator, p: int, q: int, include_self_pairs: bool
) -> None:
    a = rng.random((p, 4, 5)) < 0.3
    b = rng.random((q, 4, 5)) < 0.3
    b[0] = False  # an empty mask: IoU(empty, empty) = 1
    if not include_self_pairs and min(p, q) < 2:
        with pytest.warns(UndefinedMetricWarning, match="at least 2 masks"):
            assert math.isnan(generalized_energy_distance(a, b, include_self_pairs=False))
        return
    got = generalized_energy_distance(a, b, include_self_pairs=include_self_pairs)
    assert got == pytest.approx(ref.generalized_energy_distance(a, b, include_self_pairs), abs=1e-12)


def test_generalized_energy_distance_hand_cases(rng: np.random.Generator) -> None:
    a = rng.random((3, 6, 6)) < 0.5
    assert generalized_energy_distance(a, a) == pytest.approx(0.0, abs=1e-15)  # identical sets
    # Without self pairs the within-set means skip the zero diagonal but the cross mean does not: a set against
    # itself gives 2 mean_all - 2 mean_off-diagonal < 0.
    assert generalized_energy_distance(a, a, include_self_pairs=False) < 0
    one, other = np.array([[1, 1, 0, 0]]), np.array([[0, 0, 1, 1]])
    assert generalized_energy_distance(one, other) == 2.0  # disjoint single masks: 2 * 1 - 0 - 0
    assert generalized_energy_distance(np.zeros((2, 3), bool), np.zeros((1, 3), bool)) == 0.0  # all empty
    labels_a, labels_b = rng.integers(0, 3, (2, 5, 5)), rng.integers(0, 3, (3, 5, 5))
    assert generalized_energy_distance(labels_a, labels_b, foreground=2) == pytest.approx(
        generalized_energy_distance(labels_a == 2, torch.from_numpy(labels_b == 2))
    )


def test_generalized_energy_distance_errors() -> None:
    with pytest.raises(ValueError, match="same spatial shape"):
        generalized_energy_distance(np.zeros((2, 3), bool), np.zeros((2, 4), bool))
    with pytest.raises(ValueError, match=r"\(P, \*S\)"):
        generalized_energy_distance(np.zeros(3, bool), np.zeros((2, 3), bool))
    with pytest.raises(ValueError, match="binary"):
        generalized_energy_distance(np.full((2, 3), 0.5), np.zeros((2, 3), bool))
    with pytest.raises(TypeError, match="include_self_pairs"):
        generalized_energy_distance(np.zeros((2, 3), bool), np.zeros((2, 3), bool), include_self_pairs=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="integer"):
        generalized_energy_distance(np.zeros((2, 3)), np.zeros((2, 3)), foreground=1)


@pytest.mark.parametrize(("p", "q"), [(1, 1), (3, 3), (5, 5), (2, 4), (4, 2), (2, 3)])
@pytest.mark.parametrize("unequal", ["replicate", "min"])
def test_hungarian_matched_iou_matches_brute_force(rng: np.random.Generator, p: int, q: int, unequal: str) -> None:
    a = rng.random((p, 3, 4)) < 0.4
    b = rng.random((q, 3, 4)) < 0.4
    got = hungarian_matched_iou(a, b, unequal=unequal)
    assert got == pytest.approx(ref.hungarian_brute_force(a, b, unequal), abs=1e-12)


def test_hungarian_matched_iou_equals_scipy_on_the_iou_table(rng: np.random.Generator) -> None:
    a, b = rng.random((6, 5, 5)) < 0.5, rng.random((6, 5, 5)) < 0.5
    table = np.array([[ref.iou(x, y) for y in b] for x in a])
    rows, cols = linear_sum_assignment(table, maximize=True)
    assert hungarian_matched_iou(a, b) == pytest.approx(table[rows, cols].mean(), abs=1e-12)
    assert hungarian_matched_iou(b, a) == pytest.approx(hungarian_matched_iou(a, b), abs=1e-12)  # symmetric


def test_hungarian_matched_iou_hand_cases() -> None:
    a = np.array([[1, 1, 0, 0], [0, 0, 1, 1]])
    b = np.array([[0, 0, 1, 1], [1, 1, 0, 0]])
    assert hungarian_matched_iou(a, b) == 1.0  # a permutation of the same set
    # 2 samples vs 1 annotation: "replicate" matches both samples with it, "min" only the better one.
    single = np.array([[1, 1, 0, 0]])
    assert hungarian_matched_iou(a, single) == 0.5
    assert hungarian_matched_iou(a, single, unequal="min") == 1.0
    assert hungarian_matched_iou(np.zeros((2, 3), bool), np.zeros((3, 3), bool)) == 1.0  # empty vs empty = 1
    assert hungarian_matched_iou(np.array([[0, 1, 2]]), np.array([[2, 1, 1]]), foreground=1) == 0.5


def test_hungarian_matched_iou_errors() -> None:
    good = np.zeros((2, 3), bool)
    with pytest.raises(ValueError, match="Did you mean 'min'"):
        hungarian_matched_iou(good, good, unequal="mins")
    with pytest.raises(TypeError, match="unequal"):
        hungarian_matched_iou(good, good, unequal=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="same spatial shape"):
        hungarian_matched_iou(good, np.zeros((2, 2, 3), bool))
    with pytest.raises(ValueError, match="binary"):
        hungarian_matched_iou(np.full((2, 3), 3), good)
    with pytest.raises(TypeError, match="integer"):
        hungarian_matched_iou(np.zeros((2, 3)), good, foreground=1)


@pytest.mark.parametrize("a", [1, 2, 3, 4, 5])
def test_soft_dice_at_thresholds_matches_slow_reference(rng: np.random.Generator, a: int) -> None:
    probs = np.round(rng.random((5, 6)), 1)  # values on the thresholds: ties with >=
    masks = rng.random((a, 5, 6)) < 0.5
    got = soft_dice_at_thresholds(probs, masks)
    want = ref.soft_dice(probs, masks, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    np.testing.assert_allclose(got.dice, want, atol=1e-15)
    assert got.mean == pytest.approx(np.mean(want))
    np.testing.assert_allclose(got.thresholds, np.arange(1, 10) / 10)


def test_soft_dice_at_thresholds_hand_cases() -> None:
    masks = np.array([[1, 1, 0, 0], [1, 0, 0, 0]])  # mean [1, .5, 0, 0]
    probs = np.array([1.0, 0.5, 0.0, 0.0])
    result = soft_dice_at_thresholds(probs, masks)
    assert result.dice.tolist() == [1.0] * 9 and result.mean == 1.0
    # t = 0.5: 2 of 4 annotators count (>=); prediction {0} vs {0, 1}: 2/3.
    got = soft_dice_at_thresholds(np.array([0.9, 0.4, 0.0, 0.0]), masks, thresholds=[0.5, 0.95])
    np.testing.assert_allclose(got.dice, [2 / 3, 0.0])  # t = .95: {} vs {0} (annotator mean 1 >= .95)
    empty = soft_dice_at_thresholds(np.zeros(4), np.zeros((3, 4), bool), thresholds=[0.5])
    assert empty.dice.tolist() == [1.0]  # empty vs empty = 1
    labels = soft_dice_at_thresholds(torch.tensor([0.9, 0.1]), torch.tensor([[2, 0], [2, 2]]), foreground=2)
    assert labels.dice[4] == pytest.approx(2 / 3)  # t = .5: {0} vs {0, 1}


def test_soft_dice_at_thresholds_errors() -> None:
    masks = np.zeros((2, 3), bool)
    with pytest.raises(ValueError, match="shape of `probs`"):
        soft_dice_at_thresholds(np.zeros(4), masks)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        soft_dice_at_thresholds(np.array([0.0, 2.0, 0.0]), masks)
    with pytest.raises(ValueError, match="finite"):
        soft_dice_at_thresholds(np.array([0.0, np.nan, 0.0]), masks)
    with pytest.raises(ValueError, match="non-empty 1-D"):
        soft_dice_at_thresholds(np.zeros(3), masks, thresholds=[])
    with pytest.raises(ValueError, match="finite"):
        soft_dice_at_thresholds(np.zeros(3), masks, thresholds=[np.nan])
    with pytest.raises(ValueError, match="binary"):
        soft_dice_at_thresholds(np.zeros(3), np.full((2, 3), 2))
    with pytest.raises(ValueError, match=r"\(A, \*S\)"):
        soft_dice_at_thresholds(np.zeros(3), np.zeros(3, bool))
    with pytest.raises(TypeError, match="integer"):
        soft_dice_at_thresholds(np.zeros(3), np.zeros((2, 3)), foreground=1)
    with pytest.raises(TypeError, match="numbers"):
        soft_dice_at_thresholds("probs", masks)  # type: ignore[arg-type]


def test_permuting_annotators_or_samples_does_not_change_set_metrics(rng: np.random.Generator) -> None:
    a, b = rng.random((4, 5, 5)) < 0.5, rng.random((3, 5, 5)) < 0.5
    for perm in itertools.islice(itertools.permutations(range(4)), 5):
        pa = a[list(perm)]
        assert generalized_energy_distance(pa, b) == pytest.approx(generalized_energy_distance(a, b), abs=1e-12)
        assert hungarian_matched_iou(pa, b) == pytest.approx(hungarian_matched_iou(a, b), abs=1e-12)
        np.testing.assert_allclose(annotator_variance(pa), annotator_variance(a), atol=1e-15)
