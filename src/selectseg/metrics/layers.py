"""Agreement between the heads of a layer ensemble (Kushibar et al. 2022; higher = heads agree more); numpy.

As an image-level uncertainty use ``1 - aula`` (:mod:`selectseg.evaluation.image_scores`).

References:
    Kushibar et al., Layer Ensembles: A Single-Pass Uncertainty Estimation in Deep Learning for Segmentation,
    MICCAI 2022.
"""

from __future__ import annotations

import numpy as np

from .._types import ImageArray
from .._validation import check_integer_dtype, check_label_range, check_num_classes, to_numpy
from .dice import _class_dice

__all__ = ["aula", "layer_agreement_curve"]


def layer_agreement_curve(head_labels: ImageArray, *, num_classes: int) -> np.ndarray:
    """Dice agreement of consecutive heads (layer ensembles), mean over foreground classes, empty vs empty = 1.

    Args:
        head_labels: each head's binarised (argmax) label map, heads ordered by depth.
        num_classes: K >= 2.

    Shape:
        head_labels ``(M, *S)`` integer, M >= 2 heads -> ``(M - 1,)``: entry i is Dice(head i, head i + 1).

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
        raise ValueError(f"Expected `head_labels` of shape (M, *S) with M >= 2, but got shape {array.shape}.")
    check_label_range("head_labels", array, k)
    flat = array.reshape(array.shape[0], -1).astype(np.int64)
    return np.array([_class_dice(flat[i], flat[i + 1], k).mean() for i in range(flat.shape[0] - 1)])


def aula(head_labels: ImageArray, *, num_classes: int) -> float:
    """Area Under the Layer Agreement curve (Kushibar et al. 2022), normalised to [0, 1] (higher = heads agree).

    The trapezoid area under :func:`layer_agreement_curve` over x = 0 .. H - 2, divided by H - 2 (ours: so that
    networks with different head counts compare; with 2 heads it is the one agreement value). As an image-level
    uncertainty use ``1 - aula``.

    Shape:
        head_labels ``(M, *S)``, M >= 2 heads -> float.

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
