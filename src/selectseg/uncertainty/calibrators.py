"""Post-hoc calibrators: fitted on validation voxels, applied to a model's logits before the softmax.

Temperature scaling (Guo et al. 2017, sec. 4.2): one scalar T > 0, fitted by minimising the NLL of
``softmax(logits / T)`` (:func:`fit_temperature`), applied as ``logits / T`` (:func:`apply_temperature`). Scoring the
calibrated probabilities (NLL, Brier, ECE) is the business of :mod:`selectseg.metrics.calibration`; this module
imports no metric.

References:
    C. Guo, G. Pleiss, Y. Sun, K. Q. Weinberger, On Calibration of Modern Neural Networks, ICML 2017, sec. 4.2.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize_scalar

from .._validation import check_finite, check_integer_dtype, check_label_range, check_positive_int, to_numpy

__all__ = ["apply_temperature", "fit_temperature"]

MAX_VOXELS = 1_000_000
"""Default number of voxels :func:`fit_temperature` subsamples to."""


def fit_temperature(
    logits: Any,
    labels: Any,
    *,
    max_voxels: int | None = MAX_VOXELS,
    seed: int = 0,
    bounds: tuple[float, float] = (0.01, 100.0),
) -> float:
    """Temperature T > 0 minimising the NLL of ``softmax(logits / T)`` on validation voxels (temperature scaling).

    One scalar is fitted by bounded Brent search (``scipy.optimize.minimize_scalar``) over ``log T`` in
    ``log(bounds)`` (xatol 1e-8), in float64. The NLL is convex in ``1/T``, so the minimum is unique; T > 1 softens
    over-confident predictions. Where there are more than ``max_voxels`` voxels, a uniform random subset of that
    size (without replacement, ``np.random.default_rng(seed)``) is used.

    Args:
        logits: pre-softmax scores, numpy array or torch tensor.
        labels: integer labels in ``[0, K)``.
        max_voxels: largest number of voxels used (``None``: all).
        seed: seed of the subsample.
        bounds: search interval ``(T_min, T_max)``, ``0 < T_min < T_max``. Where the NLL at a bound is no larger
            than at the interior minimum found (for example perfectly separated data, where the NLL keeps falling as
            T -> 0), that bound is returned with a ``UserWarning``.

    Shape:
        logits: ``(B, K, *S)`` or ``(N, K)``; labels: ``(B, *S)`` or ``(N,)``. Returns a float.

    Returns:
        The fitted temperature.

    Raises:
        TypeError: if ``logits`` is not floating point, ``labels`` not integer, ``max_voxels`` not an int, or
            ``bounds`` not a pair of numbers.
        ValueError: on a shape mismatch, an empty input, labels out of range, NaN/inf logits, ``max_voxels < 1``
            or invalid ``bounds``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> true_logits = rng.normal(size=(20000, 3))
        >>> p = np.exp(true_logits) / np.exp(true_logits).sum(1, keepdims=True)
        >>> labels = (rng.random((20000, 1)) > p.cumsum(1)).sum(1)  # labels drawn from softmax(true_logits)
        >>> round(fit_temperature(3 * true_logits, labels), 2)  # logits 3x over-confident
        2.99

    References:
        C. Guo, G. Pleiss, Y. Sun, K. Q. Weinberger, On Calibration of Modern Neural Networks, ICML 2017, sec. 4.2.
    """
    if max_voxels is not None:
        max_voxels = check_positive_int("max_voxels", max_voxels)
    if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
        raise TypeError(f"Expected `bounds` to be a pair (T_min, T_max), but got {bounds!r}.")
    low, high = (_check_temperature("bounds", b) for b in bounds)
    if not low < high:
        raise ValueError(f"Expected `bounds` to be (T_min, T_max) with T_min < T_max, but got {tuple(bounds)}.")
    z, y = _check_logits_and_labels(logits, labels)
    if max_voxels is not None and len(y) > max_voxels:
        keep = np.random.default_rng(seed).choice(len(y), size=max_voxels, replace=False)
        z, y = z[keep], y[keep]
    # NLL(T) = mean(logsumexp(z / T) - z_y / T); with m = max_k z (so max_k z / T = m / T for T > 0) and
    # z - m <= 0 computed once, each evaluation is one exp, no overflow: mean((m - z_y) / T + log sum exp((z - m) / T)).
    top = z.max(axis=1)
    gap = float(np.mean(top - z[np.arange(len(y)), y]))
    shifted = z - top[:, None]

    def objective(log_t: float) -> float:
        inverse = math.exp(-log_t)
        return gap * inverse + float(np.mean(np.log(np.exp(shifted * inverse).sum(axis=1))))

    result = minimize_scalar(
        objective, bounds=(math.log(low), math.log(high)), method="bounded", options={"xatol": 1e-8}
    )
    best = float(result.fun)
    for bound in (low, high):
        if objective(math.log(bound)) <= best:  # the NLL does not rise towards this bound: the minimum lies beyond
            warnings.warn(
                f"The NLL is smallest at the bound T = {bound:.6g} of `bounds` {tuple(bounds)}; returning it. The NLL "
                "may keep decreasing beyond it (for example on perfectly separated data or constant logits).",
                UserWarning,
                stacklevel=2,
            )
            return bound
    return math.exp(float(result.x))


def apply_temperature(logits: Any, temperature: float) -> Any:
    """Scale logits by ``1 / temperature`` (apply a softmax afterwards for calibrated probabilities).

    Args:
        logits: pre-softmax scores, numpy array or torch tensor (returned in the same type, dtype and device).
        temperature: T > 0, for example from :func:`fit_temperature`.

    Shape:
        logits: any shape, e.g. ``(B, K, *S)``; returns the same shape.

    Returns:
        ``logits / temperature``.

    Raises:
        TypeError: if ``logits`` is neither a numpy array nor a torch tensor, or ``temperature`` is not a number.
        ValueError: if ``temperature`` is not a positive finite number.

    Example:
        >>> apply_temperature(torch.tensor([2.0, -4.0]), 2.0)
        tensor([ 1., -2.])

    References:
        Guo et al., ICML 2017, sec. 4.2.
    """
    temperature = _check_temperature("temperature", temperature)
    if not isinstance(logits, (torch.Tensor, np.ndarray)):
        raise TypeError(f"Expected `logits` to be a torch.Tensor or numpy array, but got {type(logits).__name__}.")
    return logits / temperature


# --------------------------------------------------------------------------------------------------------------
# Validation at the public boundary (the messages of :mod:`selectseg.metrics.calibration`'s checks).


def _check_logits_and_labels(logits: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate; flatten logits ``(B, K, *S)`` or ``(N, K)`` to ``(N, K)`` float64 and labels to ``(N,)`` int64."""
    z = _as_numpy("logits", logits)
    y = _as_numpy("labels", labels)
    if not np.issubdtype(z.dtype, np.floating):
        raise TypeError(f"Expected `logits` to be floating point, but got dtype {z.dtype}.")
    check_integer_dtype("labels", y)
    if z.ndim < 2:
        raise ValueError(
            f"Expected `logits` to have shape (B, K, *S) or (N, K), but got {z.ndim} dimension(s): {tuple(z.shape)}."
        )
    k = z.shape[1]
    if k < 2:
        raise ValueError(
            f"Expected `logits` to hold K >= 2 classes on axis 1 (binary is K = 2), but got shape {tuple(z.shape)}."
        )
    expected = (z.shape[0], *z.shape[2:])
    if tuple(y.shape) != expected:
        raise ValueError(
            f"Expected `labels` to have shape {expected} (that of `logits` without axis 1), but got {tuple(y.shape)}."
        )
    if y.size == 0:
        raise ValueError(f"Expected at least one sample, but got `logits` of shape {tuple(z.shape)}.")
    check_label_range("labels", y, k)
    flat = np.moveaxis(z, 1, -1).reshape(-1, k).astype(np.float64)
    check_finite("logits", flat)
    return flat, y.reshape(-1).astype(np.int64, copy=False)


def _as_numpy(name: str, value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor) and value.dtype in (torch.bfloat16, torch.float16):
        value = value.float()
    return to_numpy(name, value)


def _check_temperature(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise TypeError(f"Expected `{name}` to be a positive float, but got {type(value).__name__}.")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"Expected `{name}` to be a positive finite float, but got {value}.")
    return float(value)
