"""One image's Dice: the mean over the foreground classes, 1 for a class absent from both (numpy).

The per-image Dice of :func:`selectseg.metrics.selective_dice_curve` at coverage 1, shared by the inter-annotator
Dice (:mod:`selectseg.metrics.annotators`) and the layer agreement (:mod:`selectseg.metrics.layers`).
"""

from __future__ import annotations

import numpy as np

from .._types import ImageArray
from .._validation import check_integer_dtype, check_label_range, check_num_classes, check_same_shape, to_numpy

__all__ = ["mean_dice"]


def mean_dice(prediction: ImageArray, target: ImageArray, *, num_classes: int) -> float:
    """Mean Dice over the foreground classes 1..K-1 of one image, 1 for a class absent from both (higher is better).

    The same per-image Dice as :func:`selective_dice_curve` at coverage 1.

    Shape:
        prediction, target: one shape ``(*S)``, integers in [0, K). Returns a float.

    Raises:
        TypeError: if an input is not an integer array.
        ValueError: on a shape mismatch, ``num_classes < 2`` or labels outside [0, K).

    Example:
        >>> mean_dice(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), num_classes=3)  # (2/3 + 2/3) / 2
        0.6666666666666666
    """
    p = to_numpy("prediction", prediction)
    t = to_numpy("target", target)
    check_integer_dtype("prediction", p)
    check_integer_dtype("target", t)
    check_same_shape("prediction", p, "target", t)
    k = check_num_classes(num_classes)
    check_label_range("prediction", p, k)
    check_label_range("target", t, k)
    return float(_class_dice(p.reshape(-1).astype(np.int64), t.reshape(-1).astype(np.int64), k).mean())


def _class_dice(
    a: np.ndarray, b: np.ndarray, k: int, size_a: np.ndarray | None = None, size_b: np.ndarray | None = None
) -> np.ndarray:
    """Dice of classes 1..K-1 between two flat label maps, 1 where a class is absent from both: ``(K - 1,)``."""
    size_a = np.bincount(a, minlength=k)[1:] if size_a is None else size_a
    size_b = np.bincount(b, minlength=k)[1:] if size_b is None else size_b
    both = np.bincount(a[a == b], minlength=k)[1:]
    denom = size_a + size_b
    return np.where(denom > 0, 2.0 * both / np.maximum(denom, 1), 1.0)
