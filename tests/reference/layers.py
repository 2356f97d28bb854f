"""Slow, obviously-correct layer agreement (AULA): loops over heads and classes with Python sets."""

from __future__ import annotations

import numpy as np


def aula(head_labels: np.ndarray, num_classes: int) -> float:
    """Loop form: consecutive-head Dice from sets, then the trapezoid rule written out, divided by H - 2."""
    h = head_labels.shape[0]
    curve = []
    for i in range(h - 1):
        per_class = []
        for c in range(1, num_classes):
            a = {idx for idx, v in np.ndenumerate(head_labels[i]) if v == c}
            b = {idx for idx, v in np.ndenumerate(head_labels[i + 1]) if v == c}
            per_class.append(1.0 if not a and not b else 2 * len(a & b) / (len(a) + len(b)))
        curve.append(sum(per_class) / len(per_class))
    if len(curve) == 1:
        return curve[0]
    area = sum((curve[i] + curve[i + 1]) / 2 for i in range(len(curve) - 1))
    return area / (len(curve) - 1)
