"""Pixel-level selective segmentation at one uncertainty threshold (Ding et al. 2020, section 2.1; torch).

A pixel is kept (segmented by the model) when its uncertainty is <= the threshold and referred otherwise.

- coverage ``c`` = kept pixels / all pixels;
- ``psi_c`` = accuracy on the kept pixels; ``psi_1`` = accuracy on all pixels;
- ``gamma`` = fraction of wrong pixels among the referred ones.

Theorem 1 of the paper: ``psi_c = (psi_1 - (1 - gamma)(1 - c)) / c`` for ``c > 0``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

import numpy as np
import torch

from .._validation import (
    UndefinedMetricWarning,
    check_finite,
    check_integer_dtype,
    check_same_shape,
    check_threshold,
)

__all__ = ["PixelSelectiveMetrics", "selective_pixel_metrics"]


class PixelSelectiveMetrics(NamedTuple):
    """Coverage, accuracy on the kept pixels (``psi_c``), overall accuracy (``psi_1``) and ``gamma``."""

    coverage: float
    psi_c: float
    psi_1: float
    gamma: float


def selective_pixel_metrics(
    prediction: torch.Tensor | np.ndarray,
    target: torch.Tensor | np.ndarray,
    uncertainty: torch.Tensor | np.ndarray,
    *,
    threshold: float,
) -> PixelSelectiveMetrics:
    """Coverage, ``psi_c``, ``psi_1`` and ``gamma`` at one global uncertainty threshold (higher psi is better).

    Args:
        prediction: predicted labels.
        target: reference labels.
        uncertainty: per-pixel uncertainty, higher = less sure; kept where ``uncertainty <= threshold``.
        threshold: the uncertainty threshold (``-inf`` refers everything, ``+inf`` keeps everything).

    Shape:
        prediction, target, uncertainty: one shape, e.g. ``(B, *S)``. Returns floats.

    Returns:
        :class:`PixelSelectiveMetrics`. ``psi_c`` is NaN when nothing is kept and ``gamma`` is NaN when nothing
        is referred; each case emits an :class:`UndefinedMetricWarning`.

    Raises:
        TypeError: if an input is not a tensor or numpy array, the labels are not integers, ``uncertainty`` is
            not floating point, or ``threshold`` is not a number.
        ValueError: on a shape mismatch, an empty input, NaN/inf in ``uncertainty`` or a NaN ``threshold``.

    Example:
        >>> m = selective_pixel_metrics(torch.tensor([1, 0, 1, 1]), torch.tensor([1, 0, 0, 1]),
        ...                             torch.tensor([0.1, 0.2, 0.9, 0.3]), threshold=0.5)
        >>> m.coverage, m.psi_c, m.psi_1, m.gamma
        (0.75, 1.0, 0.75, 1.0)

    References:
        Ding et al., MIDL 2020, section 2.1 and Theorem 1.
    """
    pred, tgt, unc = (
        _as_tensor(n, v) for n, v in (("prediction", prediction), ("target", target), ("uncertainty", uncertainty))
    )
    check_integer_dtype("prediction", pred)
    check_integer_dtype("target", tgt)
    if not unc.is_floating_point():
        raise TypeError(f"Expected `uncertainty` to be floating point, but got dtype {unc.dtype}.")
    check_same_shape("prediction", pred, "target", tgt)
    check_same_shape("prediction", pred, "uncertainty", unc)
    if pred.numel() == 0:
        raise ValueError(f"Expected at least one pixel, but got shape {tuple(pred.shape)}.")
    check_finite("uncertainty", unc)
    threshold = check_threshold("threshold", threshold)

    kept = unc <= threshold
    correct = pred == tgt
    n = pred.numel()
    n_kept = int(kept.sum())
    n_correct = int(correct.sum())
    n_correct_kept = int((correct & kept).sum())
    n_referred = n - n_kept
    n_wrong_referred = n_referred - (n_correct - n_correct_kept)
    if n_kept == 0:
        warnings.warn("psi_c is undefined when no pixel is kept; returning NaN.", UndefinedMetricWarning, stacklevel=2)
    if n_referred == 0:
        warnings.warn(
            "gamma is undefined when no pixel is referred; returning NaN.", UndefinedMetricWarning, stacklevel=2
        )
    return PixelSelectiveMetrics(
        coverage=n_kept / n,
        psi_c=n_correct_kept / n_kept if n_kept else math.nan,
        psi_1=n_correct / n,
        gamma=n_wrong_referred / n_referred if n_referred else math.nan,
    )


def _as_tensor(name: str, value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    raise TypeError(f"Expected `{name}` to be a torch.Tensor or numpy array, but got {type(value).__name__}.")
