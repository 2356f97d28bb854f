"""Random per-image (prediction, target, uncertainty) lists shared by the selective-metric tests."""

from __future__ import annotations

import numpy as np


def random_images(
    rng: np.random.Generator,
    *,
    k: int = 3,
    n: int = 4,
    levels: int | None = None,
    accuracy: float = 0.8,
    shapes: tuple[tuple[int, ...], tuple[int, ...]] = ((3, 4, 5), (5, 7)),
    float32_at: int | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """N images of K classes alternating between a 3-D and a 2-D shape (the 2-D one grows by one row per image).

    ``accuracy``: the share of pixels whose prediction copies the target (the rest are drawn at random); ``levels``
    puts the uncertainties on a grid of that many values (heavy ties); ``float32_at``: that image's uncertainties are
    float32 (mixed dtypes).
    """
    preds, targets, uncs = [], [], []
    for i in range(n):
        shape = (shapes[1][0] + i, *shapes[1][1:]) if i % 2 else shapes[0]
        y = rng.integers(0, k, shape)
        p = np.where(rng.random(shape) < accuracy, y, rng.integers(0, k, shape))
        u = rng.random(shape) if levels is None else rng.integers(0, levels, shape) / levels
        preds.append(p)
        targets.append(y)
        uncs.append(u.astype(np.float32) if i == float32_at else u)
    return preds, targets, uncs
