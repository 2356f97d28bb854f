from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("heads", [2, 3, 5])
def test_aula_matches_slow_reference(rng: np.random.Generator, heads: int) -> None:
    from selectseg.metrics import aula

    from ..reference.layers import aula as slow_aula

    labels = rng.integers(0, 3, size=(heads, 6, 7))
    assert aula(labels, num_classes=3) == pytest.approx(slow_aula(labels, 3), abs=1e-12)


def test_aula_bounds_and_errors() -> None:
    from selectseg.metrics import aula, layer_agreement_curve

    same = np.ones((4, 3, 3), np.int64)
    assert aula(same, num_classes=2) == 1.0
    assert aula(np.zeros((3, 5), np.int64), num_classes=2) == 1.0  # empty vs empty
    assert aula(np.array([[1, 1], [0, 0], [1, 1]]), num_classes=2) == 0.0
    with pytest.raises(ValueError, match="M >= 2"):
        layer_agreement_curve(np.zeros((1, 4), np.int64), num_classes=2)
    with pytest.raises(TypeError, match="integer"):
        aula(np.zeros((2, 4)), num_classes=2)
    with pytest.raises(ValueError, match="head_labels"):
        aula(np.full((2, 4), 3), num_classes=2)
