from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import dice as scipy_dice_dissimilarity

from selectseg.metrics import UndefinedMetricWarning, pairwise_dice

from ..reference.agreement import pairwise_dice as slow_pairwise_dice


@pytest.mark.parametrize("shape", [(2, 7), (3, 5, 6), (4, 3, 4, 5)])
@pytest.mark.parametrize("k", [2, 4])
def test_pairwise_dice_matches_slow_reference(rng: np.random.Generator, shape: tuple[int, ...], k: int) -> None:
    labels = rng.integers(0, k, size=shape)
    assert pairwise_dice(labels, num_classes=k) == pytest.approx(slow_pairwise_dice(labels, k), abs=1e-12)


def test_pairwise_dice_matches_scipy_for_two_annotators(rng: np.random.Generator) -> None:
    labels = rng.integers(0, 2, size=(2, 40))
    expected = 1 - scipy_dice_dissimilarity(labels[0].astype(bool), labels[1].astype(bool))
    assert pairwise_dice(labels, num_classes=2)[0] == pytest.approx(expected)


def test_pairwise_dice_hand_cases() -> None:
    assert pairwise_dice(np.zeros((3, 4), np.int64), num_classes=2).tolist() == [1.0]  # empty vs empty = 1
    assert pairwise_dice(np.array([[1, 1], [0, 0]]), num_classes=2).tolist() == [0.0]
    # class 2 present for one of three annotators: pairs (1,2) 0, (1,3) 0, (2,3) empty-empty 1
    assert pairwise_dice(np.array([[2, 0], [0, 0], [0, 0]]), num_classes=3)[1] == pytest.approx(1 / 3)
    assert pairwise_dice(torch.tensor([[0, 1], [0, 1]]), num_classes=2).tolist() == [1.0]


def test_pairwise_dice_single_annotator_is_undefined() -> None:
    with pytest.warns(UndefinedMetricWarning, match="single annotator"):
        assert np.isnan(pairwise_dice(np.zeros((1, 3), np.int64), num_classes=2)).all()


def test_pairwise_dice_errors() -> None:
    with pytest.raises(TypeError, match="integer"):
        pairwise_dice(np.zeros((2, 3)), num_classes=2)
    with pytest.raises(ValueError, match=r"\(A, \*S\)"):
        pairwise_dice(np.zeros(3, np.int64), num_classes=2)
    with pytest.raises(ValueError, match="num_classes"):
        pairwise_dice(np.zeros((2, 3), np.int64), num_classes=1)
    with pytest.raises(ValueError, match="labels"):
        pairwise_dice(np.full((2, 3), 5), num_classes=2)


@pytest.mark.parametrize("heads", [2, 3, 5])
def test_aula_matches_slow_reference(rng: np.random.Generator, heads: int) -> None:
    from selectseg.metrics import aula

    from ..reference.agreement import aula as slow_aula

    labels = rng.integers(0, 3, size=(heads, 6, 7))
    assert aula(labels, num_classes=3) == pytest.approx(slow_aula(labels, 3), abs=1e-12)


def test_aula_bounds_and_errors() -> None:
    from selectseg.metrics import aula, layer_agreement_curve

    same = np.ones((4, 3, 3), np.int64)
    assert aula(same, num_classes=2) == 1.0
    assert aula(np.zeros((3, 5), np.int64), num_classes=2) == 1.0  # empty vs empty
    assert aula(np.array([[1, 1], [0, 0], [1, 1]]), num_classes=2) == 0.0
    with pytest.raises(ValueError, match="H >= 2"):
        layer_agreement_curve(np.zeros((1, 4), np.int64), num_classes=2)
    with pytest.raises(TypeError, match="integer"):
        aula(np.zeros((2, 4)), num_classes=2)
    with pytest.raises(ValueError, match="head_labels"):
        aula(np.full((2, 4), 3), num_classes=2)


def test_mean_dice_matches_reference_and_scipy(rng: np.random.Generator) -> None:
    from selectseg.metrics import mean_dice

    from ..reference.dice_curve import image_dice

    for k in (2, 4):
        pred = rng.integers(0, k, size=(6, 5))
        target = rng.integers(0, k, size=(6, 5))
        assert mean_dice(pred, target, num_classes=k) == pytest.approx(image_dice(pred, target, k), abs=1e-12)
    a, b = rng.integers(0, 2, size=(2, 30))
    assert mean_dice(a, b, num_classes=2) == pytest.approx(1 - scipy_dice_dissimilarity(a.astype(bool), b.astype(bool)))
    assert mean_dice(np.zeros(4, np.int64), np.zeros(4, np.int64), num_classes=3) == 1.0  # empty vs empty


def test_mean_dice_errors() -> None:
    from selectseg.metrics import mean_dice

    with pytest.raises(TypeError, match="integer"):
        mean_dice(np.zeros(3), np.zeros(3, np.int64), num_classes=2)
    with pytest.raises(ValueError, match="shape"):
        mean_dice(np.zeros(3, np.int64), np.zeros(4, np.int64), num_classes=2)
    with pytest.raises(ValueError, match="num_classes"):
        mean_dice(np.zeros(3, np.int64), np.zeros(3, np.int64), num_classes=1)
    with pytest.raises(ValueError, match="target"):
        mean_dice(np.zeros(3, np.int64), np.full(3, 2), num_classes=2)
