"""Agreement between annotators (higher is more agreement); numpy."""

from __future__ import annotations

import warnings
from itertools import combinations

import numpy as np

from .._types import ImageArray
from .._validation import (
    UndefinedMetricWarning,
    check_integer_dtype,
    check_label_range,
    check_num_classes,
    check_same_shape,
    to_numpy,
)

__all__ = ["aula", "layer_agreement_curve", "mean_dice", "pairwise_dice"]


def pairwise_dice(labels: ImageArray, *, num_classes: int) -> np.ndarray:
    """Mean pairwise inter-annotator Dice per foreground class (higher = annotators agree more).

    For every pair of annotators ``(a, b)`` and class ``c >= 1``: ``2 |A_c ∩ B_c| / (|A_c| + |B_c|)``, with 1 when
    both are empty (empty vs empty = 1); averaged over the ``A (A - 1) / 2`` pairs.

    Args:
        labels: one label map per annotator.
        num_classes: K >= 2; class 0 is background and not reported.

    Shape:
        labels ``(A, *S)`` integer in [0, K) -> ``(K - 1,)`` float64.

    Returns:
        Per foreground class, the mean Dice over annotator pairs; NaN (with an :class:`UndefinedMetricWarning`) when
        there is a single annotator.

    Raises:
        TypeError: if ``labels`` is not an integer array.
        ValueError: if ``labels`` has fewer than 2 axes, ``num_classes < 2`` or labels lie outside [0, K).

    Example:
        >>> pairwise_dice(np.array([[0, 1, 1, 0], [0, 1, 0, 0], [0, 1, 1, 0]]), num_classes=2).round(4)
        array([0.7778])
    """
    array = to_numpy("labels", labels)
    check_integer_dtype("labels", array)
    k = check_num_classes(num_classes)
    if array.ndim < 2:
        raise ValueError(f"Expected `labels` of shape (A, *S), but got shape {array.shape}.")
    check_label_range("labels", array, k)
    a = array.shape[0]
    if a < 2:
        warnings.warn(
            "Inter-annotator Dice is undefined with a single annotator; returning NaN.",
            UndefinedMetricWarning,
            stacklevel=2,
        )
        return np.full(k - 1, np.nan)
    flat = array.reshape(a, -1)
    sizes = np.stack([np.bincount(f, minlength=k)[1:] for f in flat])  # (A, K-1), counted once per annotator
    total = np.zeros(k - 1)
    for i, j in combinations(range(a), 2):
        total += _class_dice(flat[i], flat[j], k, sizes[i], sizes[j])
    return total / (a * (a - 1) / 2)


def _class_dice(
    a: np.ndarray, b: np.ndarray, k: int, size_a: np.ndarray | None = None, size_b: np.ndarray | None = None
) -> np.ndarray:
    """Dice of classes 1..K-1 between two flat label maps, 1 where a class is absent from both: ``(K - 1,)``."""
    size_a = np.bincount(a, minlength=k)[1:] if size_a is None else size_a
    size_b = np.bincount(b, minlength=k)[1:] if size_b is None else size_b
    both = np.bincount(a[a == b], minlength=k)[1:]
    denom = size_a + size_b
    return np.where(denom > 0, 2.0 * both / np.maximum(denom, 1), 1.0)


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


def layer_agreement_curve(head_labels: ImageArray, *, num_classes: int) -> np.ndarray:
    """Dice agreement of consecutive heads (layer ensembles), mean over foreground classes, empty vs empty = 1.

    Args:
        head_labels: each head's binarised (argmax) label map, heads ordered by depth.
        num_classes: K >= 2.

    Shape:
        head_labels ``(H, *S)`` integer, H >= 2 -> ``(H - 1,)``: entry i is Dice(head i, head i + 1).

    Raises:
        TypeError: if ``head_labels`` is not an integer array.
        ValueError: with fewer than 2 heads or labels outside [0, K).

    Example:
        >>> layer_agreement_curve(np.array([[0, 1, 1], [0, 1, 0], [0, 1, 0]]), num_classes=2).round(4)
        array([0.6667, 1.    ])
    """
    array = to_numpy("head_labels", head_labels)
    check_integer_dtype("head_labels", array)
    k = check_num_classes(num_classes)
    if array.ndim < 2 or array.shape[0] < 2:
        raise ValueError(f"Expected `head_labels` of shape (H, *S) with H >= 2, but got shape {array.shape}.")
    check_label_range("head_labels", array, k)
    flat = array.reshape(array.shape[0], -1).astype(np.int64)
    return np.array([_class_dice(flat[i], flat[i + 1], k).mean() for i in range(flat.shape[0] - 1)])


def aula(head_labels: ImageArray, *, num_classes: int) -> float:
    """Area Under the Layer Agreement curve (Kushibar et al. 2022), normalised to [0, 1] (higher = heads agree).

    The trapezoid area under :func:`layer_agreement_curve` over x = 0 .. H - 2, divided by H - 2 (ours: so that
    networks with different head counts compare; with 2 heads it is the one agreement value). As an image-level
    uncertainty use ``1 - aula``.

    Shape:
        head_labels ``(H, *S)``, H >= 2 -> float.

    Raises:
        TypeError: if ``head_labels`` is not an integer array.
        ValueError: with fewer than 2 heads or labels outside [0, K).

    Example:
        >>> round(aula(np.array([[0, 1, 1], [0, 1, 0], [0, 1, 0]]), num_classes=2), 4)  # (2/3 + 1) / 2
        0.8333

    References:
        Kushibar et al., Layer Ensembles: A Single-Pass Uncertainty Estimation in Deep Learning for Segmentation,
        MICCAI 2022.
    """
    curve = layer_agreement_curve(head_labels, num_classes=num_classes)
    if curve.size == 1:
        return float(curve[0])
    return float(np.trapezoid(curve) / (curve.size - 1))
