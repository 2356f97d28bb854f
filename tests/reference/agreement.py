"""Slow, obviously-correct inter-annotator Dice: loops over pairs and classes with Python sets."""

from __future__ import annotations

import numpy as np


def pairwise_dice(labels: np.ndarray, num_classes: int) -> list[float]:
    a = labels.shape[0]
    out = []
    for c in range(1, num_classes):
        values = []
        for i in range(a):
            for j in range(i + 1, a):
                si = {idx for idx, v in np.ndenumerate(labels[i]) if v == c}
                sj = {idx for idx, v in np.ndenumerate(labels[j]) if v == c}
                values.append(1.0 if not si and not sj else 2 * len(si & sj) / (len(si) + len(sj)))
        out.append(sum(values) / len(values))
    return out
