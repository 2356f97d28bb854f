from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import dice as scipy_dice_dissimilarity


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
