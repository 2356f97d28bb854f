from __future__ import annotations

import numpy as np
import pytest

from selectseg.evaluation.image_scores import IMAGE_SCORES, image_scores

from ..reference.image_scores import image_scores as reference_scores


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("layered", [False, True])
@pytest.mark.parametrize("shape", [(5, 6), (3, 4, 2)])
def test_image_scores_match_reference(rng: np.random.Generator, layered: bool, shape: tuple[int, ...]) -> None:
    members = _softmax(rng.normal(size=(4, 3, *shape)) * 2, axis=1)
    mean = members.mean(axis=0)
    uncertainty = 1.0 - mean.max(axis=0)
    got = image_scores(mean, uncertainty, members, layered=layered)
    want = reference_scores(mean, uncertainty, members, layered)
    assert set(got) == set(want) <= set(IMAGE_SCORES)
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-9, abs=1e-12), key


def test_single_model_scores_and_members_that_agree(rng: np.random.Generator) -> None:
    probs = _softmax(rng.normal(size=(2, 4, 4)), axis=0)
    assert sorted(image_scores(probs, 1 - probs.max(0))) == ["mean_entropy", "mean_uncertainty"]
    same = np.stack([probs, probs, probs])
    scores = image_scores(probs, 1 - probs.max(0), same, layered=True)
    assert (
        scores["sv"] == pytest.approx(0.0, abs=1e-30)
        and scores["model_disagreement"] == 0.0
        and scores["layer_disagreement"] == 0.0
    )


def test_image_scores_bad_input() -> None:
    probs = np.full((2, 3, 3), 0.5)
    with pytest.raises(ValueError, match="uncertainty"):
        image_scores(probs, np.zeros((3, 4)))
    with pytest.raises(ValueError, match="members"):
        image_scores(probs, np.zeros((3, 3)), np.zeros((2, 3, 3, 3)))
    with pytest.raises(ValueError, match="layered"):
        image_scores(probs, np.zeros((3, 3)), layered=True)
