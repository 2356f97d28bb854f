"""Calibration of voxel-wise class probabilities: NLL, Brier score and binned expected calibration error (ECE).

Every voxel is one sample: ``probs`` ``(B, K, *S)`` is read as ``N = B * prod(S)`` rows of ``K`` class
probabilities (or pass ``(N, K)`` directly). All sums are accumulated in numpy float64.

Definitions (lower is better for all three):

- ``nll = mean_i -log(max(p_i[y_i], eps))``;
- ``brier = mean_i sum_k (p_i[k] - 1[y_i == k])^2`` (summed over classes, not divided by K; in [0, 2]);
- ``ece = sum_b |B_b| / N * |acc_b - conf_b|`` over ``n_bins`` equal-width bins on [0, 1] (``norm="l1"``).

Bin convention: edges ``np.linspace(0, 1, n_bins + 1)`` (float64); bin ``b`` holds ``edges[b] <= v < edges[b+1]``
(a value on an inner edge goes to the bin on its right, as torchmetrics' ``torch.bucketize(..., right=True)``) and
the last bin is closed, ``[edges[-2], 1]``, as in Guo et al. and ``np.histogram``. Empty bins contribute 0.

Streaming: :class:`CalibrationStats` keeps only per-bin counts and sums plus the running NLL/Brier sums, never the
predictions; the one-shot functions go through the same accumulation code, so streaming over several volumes
equals one call on their concatenation up to float64 rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch

from .._validation import (
    check_finite,
    check_integer_dtype,
    check_label_range,
    check_positive_int,
    look_up_option,
    to_numpy,
)

__all__ = [
    "CalibrationBins",
    "CalibrationResult",
    "CalibrationStats",
    "brier",
    "expected_calibration_error",
    "nll",
]

N_BINS = 15
"""Default number of equal-width confidence bins (torchmetrics' default)."""
EPS = 1e-12
"""Default lower clip of the true-class probability in the NLL (``-log(1e-12)`` is about 27.6 nats)."""
SUM_TOLERANCE = 1e-4
"""Largest accepted ``|sum_k p_k - 1|`` per voxel (``K * eps`` of the dtype where larger: float16, bfloat16)."""

_VARIANTS = ("top_label", "classwise")
_NORMS = ("l1", "l2", "max")


class CalibrationBins(NamedTuple):
    """Per-bin statistics for reliability diagrams (mean confidence and accuracy are NaN in empty bins).

    ``counts``, ``confidence``, ``accuracy`` have shape ``(n_bins,)`` (top-label: confidence = max probability,
    accuracy = fraction of argmax == label); ``classwise_*`` have shape ``(K, n_bins)`` (confidence = ``p_c``,
    accuracy = fraction with label == c). ``edges`` has shape ``(n_bins + 1,)``.
    """

    edges: np.ndarray
    counts: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    classwise_counts: np.ndarray
    classwise_confidence: np.ndarray
    classwise_accuracy: np.ndarray


class CalibrationResult(NamedTuple):
    """NLL, Brier score, top-label and class-wise ECE, and the bins behind the ECEs."""

    nll: float
    brier: float
    ece_top_label: float
    ece_classwise: float
    bins: CalibrationBins


# --------------------------------------------------------------------------------------------------------------
# Functional core: sufficient statistics of one batch, and the metrics computed from them.


@dataclass
class _Sums:
    """Sufficient statistics: every field is a sum over samples, so two ``_Sums`` merge by addition."""

    n: int
    nll: float
    brier: float
    top_count: np.ndarray  # (n_bins,) int64
    top_conf: np.ndarray  # (n_bins,) float64
    top_correct: np.ndarray  # (n_bins,) float64
    cls_count: np.ndarray  # (K, n_bins) int64
    cls_conf: np.ndarray  # (K, n_bins) float64
    cls_hit: np.ndarray  # (K, n_bins) float64

    def __add__(self, other: _Sums) -> _Sums:
        return _Sums(
            self.n + other.n,
            self.nll + other.nll,
            self.brier + other.brier,
            self.top_count + other.top_count,
            self.top_conf + other.top_conf,
            self.top_correct + other.top_correct,
            self.cls_count + other.cls_count,
            self.cls_conf + other.cls_conf,
            self.cls_hit + other.cls_hit,
        )


def _edges(n_bins: int) -> np.ndarray:
    return np.linspace(0.0, 1.0, n_bins + 1)


def _bin_index(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin of each value in [0, 1]: ``edges[b] <= v < edges[b+1]``, with 1.0 in the last bin."""
    index = np.searchsorted(_edges(n_bins), values, side="right") - 1
    return np.minimum(index, n_bins - 1)


def _nll_sum(p: np.ndarray, y: np.ndarray, eps: float) -> float:
    p_true = p[np.arange(len(y)), y]
    return float(-np.log(np.maximum(p_true, eps)).sum())


def _brier_sum(p: np.ndarray, y: np.ndarray) -> float:
    diff = p.copy()
    diff[np.arange(len(y)), y] -= 1.0
    return float(np.einsum("nk,nk->", diff, diff))


def _top_label_bins(p: np.ndarray, y: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-bin count, sum of confidence and sum of correct for the top label (argmax: lowest index on ties)."""
    prediction = p.argmax(axis=1)
    confidence = p[np.arange(len(y)), prediction]
    correct = (prediction == y).astype(np.float64)
    index = _bin_index(confidence, n_bins)
    return (
        np.bincount(index, minlength=n_bins).astype(np.int64),
        np.bincount(index, weights=confidence, minlength=n_bins),
        np.bincount(index, weights=correct, minlength=n_bins),
    )


def _classwise_bins(p: np.ndarray, y: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-(class, bin) count, sum of ``p_c`` and sum of ``1[y == c]``, each ``(K, n_bins)``."""
    n, k = p.shape
    flat = (_bin_index(p, n_bins) + n_bins * np.arange(k)).ravel()  # row-major (N, K): class c uses c*n_bins + b
    hit = np.zeros((n, k))
    hit[np.arange(n), y] = 1.0
    size = k * n_bins
    return (
        np.bincount(flat, minlength=size).astype(np.int64).reshape(k, n_bins),
        np.bincount(flat, weights=p.ravel(), minlength=size).reshape(k, n_bins),
        np.bincount(flat, weights=hit.ravel(), minlength=size).reshape(k, n_bins),
    )


def _sums(p: np.ndarray, y: np.ndarray, n_bins: int, eps: float) -> _Sums:
    """All sufficient statistics of validated ``p`` ``(N, K)`` float64 and ``y`` ``(N,)`` int64."""
    return _Sums(
        len(y), _nll_sum(p, y, eps), _brier_sum(p, y), *_top_label_bins(p, y, n_bins), *_classwise_bins(p, y, n_bins)
    )


def _calibration_error(count: np.ndarray, conf_sum: np.ndarray, acc_sum: np.ndarray, norm: str) -> np.ndarray:
    """Calibration error over the last axis (bins) from per-bin sums; empty bins contribute 0."""
    total = count.sum(axis=-1)
    safe = np.maximum(count, 1)
    gap = np.abs(acc_sum / safe - conf_sum / safe)  # 0 in empty bins
    weight = count / total[..., None]
    if norm == "l1":
        return np.asarray((weight * gap).sum(axis=-1))
    if norm == "l2":
        return np.asarray(np.sqrt((weight * gap**2).sum(axis=-1)))
    return np.asarray(gap.max(axis=-1))


def _classwise_ece(
    count: np.ndarray, conf_sum: np.ndarray, hit_sum: np.ndarray, norm: str, include_background: bool
) -> float:
    """Mean over classes (from class 1 without background) of the per-class calibration errors."""
    per_class = _calibration_error(count, conf_sum, hit_sum, norm)
    return float(per_class[0 if include_background else 1 :].mean())


def _bins(s: _Sums, n_bins: int) -> CalibrationBins:
    with np.errstate(invalid="ignore", divide="ignore"):
        return CalibrationBins(
            edges=_edges(n_bins),
            counts=s.top_count.copy(),
            confidence=s.top_conf / s.top_count,
            accuracy=s.top_correct / s.top_count,
            classwise_counts=s.cls_count.copy(),
            classwise_confidence=s.cls_conf / s.cls_count,
            classwise_accuracy=s.cls_hit / s.cls_count,
        )


# --------------------------------------------------------------------------------------------------------------
# Validation at the public boundary.


def _as_numpy(name: str, value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor) and value.dtype in (torch.bfloat16, torch.float16):
        value = value.float()
    return to_numpy(name, value)


def _check_scores_and_labels(
    scores: Any, labels: Any, *, scores_name: str, probabilities: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Validate; flatten scores ``(B, K, *S)`` or ``(N, K)`` to ``(N, K)`` float64 and labels to ``(N,)`` int64."""
    eps = _dtype_eps(scores)  # of the input's own dtype, before the float64 copy
    s = _as_numpy(scores_name, scores)
    y = _as_numpy("labels", labels)
    if not np.issubdtype(s.dtype, np.floating):
        raise TypeError(f"Expected `{scores_name}` to be floating point, but got dtype {s.dtype}.")
    check_integer_dtype("labels", y)
    if s.ndim < 2:
        raise ValueError(
            f"Expected `{scores_name}` to have shape (B, K, *S) or (N, K), but got {s.ndim} dimension(s): "
            f"{tuple(s.shape)}."
        )
    k = s.shape[1]
    if k < 2:
        raise ValueError(
            f"Expected `{scores_name}` to hold K >= 2 classes on axis 1 (binary is K = 2), but got shape "
            f"{tuple(s.shape)}."
        )
    expected = (s.shape[0], *s.shape[2:])
    if tuple(y.shape) != expected:
        raise ValueError(
            f"Expected `labels` to have shape {expected} (that of `{scores_name}` without axis 1), "
            f"but got {tuple(y.shape)}."
        )
    if y.size == 0:
        raise ValueError(f"Expected at least one sample, but got `{scores_name}` of shape {tuple(s.shape)}.")
    check_label_range("labels", y, k)
    p = np.moveaxis(s, 1, -1).reshape(-1, k).astype(np.float64)
    y = y.reshape(-1).astype(np.int64, copy=False)
    if probabilities:
        # each of the K stored probabilities is rounded by up to half an epsilon of its dtype: half precision
        # (eps ~1e-3, bfloat16 ~8e-3) needs more than SUM_TOLERANCE; float32 and float64 keep SUM_TOLERANCE
        _check_probabilities(scores_name, p, max(SUM_TOLERANCE, k * eps))
    else:
        check_finite(scores_name, p)
    return p, y


def _dtype_eps(value: Any) -> float:
    """The machine epsilon of a floating-point input's own dtype (0 for anything else)."""
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return float(torch.finfo(value.dtype).eps)
    if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
        return float(np.finfo(value.dtype).eps)
    return 0.0


def _check_probabilities(name: str, p: np.ndarray, tolerance: float = SUM_TOLERANCE) -> None:
    if np.isnan(p).any():
        raise ValueError(f"Expected `{name}` to hold probabilities, but got {int(np.isnan(p).sum())} NaN value(s).")
    low, high = float(p.min()), float(p.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(f"Expected `{name}` to lie in [0, 1], but got values in [{low}, {high}].")
    sums = p.sum(axis=1)
    error = np.abs(sums - 1.0)
    if float(error.max()) > tolerance:
        raise ValueError(
            f"Expected `{name}` to sum to 1 over the class axis (tolerance {tolerance:.3g}), but got sums in "
            f"[{float(sums.min())}, {float(sums.max())}] ({int((error > tolerance).sum())} sample(s) off); "
            "apply a softmax to logits first."
        )


def _check_eps(eps: Any) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)):
        raise TypeError(f"Expected `eps` to be a float in (0, 1), but got {type(eps).__name__}.")
    if not 0.0 < eps < 1.0:
        raise ValueError(f"Expected `eps` to be a float in (0, 1), but got {eps}.")
    return float(eps)


# --------------------------------------------------------------------------------------------------------------
# Public one-shot functions.


def nll(probs: Any, labels: Any, *, eps: float = EPS) -> float:
    """Mean negative log-likelihood of the true class, in nats (lower is better).

    ``nll = mean_i -log(max(p_i[y_i], eps))``. The clip keeps a zero probability on the true class finite
    (``-log(1e-12)`` is about 27.6) instead of ``inf``.

    Args:
        probs: class probabilities (softmax output), numpy array or torch tensor.
        labels: integer labels in ``[0, K)``.
        eps: lower clip of the true-class probability, in (0, 1).

    Shape:
        probs: ``(B, K, *S)`` or ``(N, K)``; labels: ``(B, *S)`` or ``(N,)``. Returns a float.

    Returns:
        The mean over all voxels (float64 accumulation).

    Raises:
        TypeError: if ``probs`` is not floating point, ``labels`` not integer, or ``eps`` not a number.
        ValueError: on a shape mismatch, an empty input, labels out of range, NaN probabilities, probabilities
            outside [0, 1] or not summing to 1 (tolerance 1e-4, K x eps for half precision), or ``eps`` outside (0, 1).

    Example:
        >>> round(nll(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 1])), 6)
        0.164252

    References:
        Guo et al., On Calibration of Modern Neural Networks, ICML 2017 (NLL as a calibration measure).
    """
    eps = _check_eps(eps)
    p, y = _check_scores_and_labels(probs, labels, scores_name="probs", probabilities=True)
    return _nll_sum(p, y, eps) / len(y)


def brier(probs: Any, labels: Any) -> float:
    """Multi-class Brier score: mean over voxels of ``sum_k (p_k - 1[y == k])^2`` (lower is better, in [0, 2]).

    Convention: summed over classes and **not** divided by K (Brier 1950's original multi-class form). Other
    conventions: scikit-learn's binary ``brier_score_loss`` is ``mean (p_1 - y)^2``, exactly half of this value
    for K = 2; some libraries divide by K.

    Args:
        probs: class probabilities, numpy array or torch tensor.
        labels: integer labels in ``[0, K)``.

    Shape:
        probs: ``(B, K, *S)`` or ``(N, K)``; labels: ``(B, *S)`` or ``(N,)``. Returns a float.

    Returns:
        The mean over all voxels (float64 accumulation).

    Raises:
        TypeError: if ``probs`` is not floating point or ``labels`` not integer.
        ValueError: on a shape mismatch, an empty input, labels out of range, NaN probabilities, probabilities
            outside [0, 1] or not summing to 1 (tolerance 1e-4, K x eps for half precision).

    Example:
        >>> round(brier(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 1])), 6)
        0.05

    References:
        G. W. Brier, Verification of Forecasts Expressed in Terms of Probability, Monthly Weather Review 1950.
    """
    p, y = _check_scores_and_labels(probs, labels, scores_name="probs", probabilities=True)
    return _brier_sum(p, y) / len(y)


def expected_calibration_error(
    probs: Any,
    labels: Any,
    *,
    n_bins: int = N_BINS,
    variant: str = "top_label",
    norm: str = "l1",
    include_background: bool = True,
) -> float:
    """Binned expected calibration error (lower is better, 0 for perfect calibration).

    ``variant="top_label"`` (torchmetrics' ``MulticlassCalibrationError``): confidence = ``max_k p_k``, correct =
    ``argmax_k p_k == label`` (lowest class index on ties); ``ECE = sum_b |B_b| / N * |acc_b - conf_b|``.

    ``variant="classwise"`` (MONAI's ``CalibrationErrorMetric``): for each class c, confidence = ``p_c`` and
    "accuracy" = ``1[label == c]`` over all N voxels, binned the same way; the per-class ECEs are averaged over
    the classes (over classes ``1..K-1`` when ``include_background=False``). All voxels of all images are pooled
    per class; MONAI's default averages per-image ECEs instead, so the two agree for one image (``B = 1``).

    Bins: edges ``np.linspace(0, 1, n_bins + 1)``; bin b holds ``edges[b] <= v < edges[b+1]`` and the last bin is
    closed at 1. Empty bins contribute 0. Deviations: torchmetrics counts a confidence of exactly 1.0 in an
    extra (n_bins + 1)-th bin of its own (torchmetrics issue #3510); MONAI stretches its float32 edges by
    float32 eps, so a value exactly on an inner edge goes to the bin on its left. Away from exact edges and 1.0
    all three bin identically.

    ``norm``: ``"l1"`` is the ECE above; ``"l2"`` is ``sqrt(sum_b |B_b| / N (acc_b - conf_b)^2)`` (RMSCE, no
    debiasing); ``"max"`` is ``max_b |acc_b - conf_b|`` over non-empty bins (MCE), as in torchmetrics.

    Args:
        probs: class probabilities, numpy array or torch tensor.
        labels: integer labels in ``[0, K)``.
        n_bins: number of equal-width bins on [0, 1].
        variant: ``"top_label"`` or ``"classwise"``.
        norm: ``"l1"``, ``"l2"`` or ``"max"``.
        include_background: class-wise only: whether class 0 enters the average over classes.

    Shape:
        probs: ``(B, K, *S)`` or ``(N, K)``; labels: ``(B, *S)`` or ``(N,)``. Returns a float.

    Returns:
        The calibration error, a float in [0, 1].

    Raises:
        TypeError: if ``probs`` is not floating point, ``labels`` not integer, ``n_bins`` not an int, or
            ``variant``/``norm`` not a string.
        ValueError: on a shape mismatch, an empty input, labels out of range, NaN probabilities, probabilities
            outside [0, 1] or not summing to 1 (tolerance 1e-4, K x eps for half precision), ``n_bins < 1``, an
            unknown ``variant`` or ``norm``, or ``include_background=False`` with ``variant="top_label"``.

    Example:
        >>> probs = np.array([[0.25, 0.20, 0.55], [0.55, 0.05, 0.40], [0.10, 0.30, 0.60], [0.90, 0.05, 0.05]])
        >>> round(expected_calibration_error(probs, np.array([0, 1, 2, 0]), n_bins=3), 6)
        0.2

    References:
        M. P. Naeini, G. F. Cooper, M. Hauskrecht, Obtaining Well Calibrated Probabilities Using Bayesian
        Binning, AAAI 2015. C. Guo, G. Pleiss, Y. Sun, K. Q. Weinberger, On Calibration of Modern Neural
        Networks, ICML 2017. torchmetrics ``MulticlassCalibrationError``; MONAI ``CalibrationErrorMetric``.
    """
    n_bins = check_positive_int("n_bins", n_bins)
    variant = look_up_option("variant", variant, _VARIANTS)
    norm = look_up_option("norm", norm, _NORMS)
    if not include_background and variant == "top_label":
        raise ValueError(
            "Expected `include_background` to be True with variant 'top_label' (it only applies to 'classwise'), "
            "but got False."
        )
    p, y = _check_scores_and_labels(probs, labels, scores_name="probs", probabilities=True)
    if variant == "top_label":
        return float(_calibration_error(*_top_label_bins(p, y, n_bins), norm))
    return _classwise_ece(*_classwise_bins(p, y, n_bins), norm, include_background)


# --------------------------------------------------------------------------------------------------------------
# Streaming.


class CalibrationStats:
    """Streaming NLL, Brier and ECE (both variants) from binned sufficient statistics (lower is better).

    Keeps per-bin counts and sums (top-label: count, sum of confidence, sum of correct per bin; class-wise: the
    same per class and bin) plus the running NLL and Brier sums and the voxel count: memory
    ``O(K * n_bins)``, whatever the number of voxels. ``compute()`` equals the one-shot functions on the
    concatenation of every ``update`` (up to float64 rounding).

    Args:
        n_bins: number of equal-width bins on [0, 1].
        norm: ``"l1"``, ``"l2"`` or ``"max"`` for both ECEs.
        include_background: whether class 0 enters the class-wise average.
        eps: lower clip of the true-class probability in the NLL.

    Shape:
        ``update(probs, labels)``: probs ``(B, K, *S)`` or ``(N, K)``, labels ``(B, *S)`` or ``(N,)``; K must
        stay the same across updates.

    Raises:
        TypeError: if ``n_bins`` is not an int, ``norm`` not a string, or ``eps`` not a number.
        ValueError: if ``n_bins < 1``, ``norm`` is unknown, or ``eps`` is outside (0, 1); ``update`` raises as
            :func:`expected_calibration_error` and on a change of K; ``compute`` before any ``update``.

    Example:
        >>> stats = CalibrationStats(n_bins=3)
        >>> stats.update(np.array([[0.25, 0.20, 0.55], [0.55, 0.05, 0.40]]), np.array([0, 1]))
        >>> stats.update(np.array([[0.10, 0.30, 0.60], [0.90, 0.05, 0.05]]), np.array([2, 0]))
        >>> round(stats.compute().ece_top_label, 6)
        0.2

    References:
        Guo et al. 2017; Naeini et al. 2015 (see :func:`expected_calibration_error`).
    """

    def __init__(
        self, *, n_bins: int = N_BINS, norm: str = "l1", include_background: bool = True, eps: float = EPS
    ) -> None:
        self.n_bins = check_positive_int("n_bins", n_bins)
        self.norm = look_up_option("norm", norm, _NORMS)
        self.include_background = bool(include_background)
        self.eps = _check_eps(eps)
        self._sums: _Sums | None = None

    def update(self, probs: Any, labels: Any) -> None:
        """Add a batch of voxels (see the class docstring for shapes and errors)."""
        p, y = _check_scores_and_labels(probs, labels, scores_name="probs", probabilities=True)
        if self._sums is not None and p.shape[1] != self._sums.cls_count.shape[0]:
            raise ValueError(
                f"Expected `probs` to have K = {self._sums.cls_count.shape[0]} classes as in earlier updates, "
                f"but got {p.shape[1]}."
            )
        batch = _sums(p, y, self.n_bins, self.eps)
        self._sums = batch if self._sums is None else self._sums + batch

    def compute(self) -> CalibrationResult:
        """NLL, Brier, both ECEs and the reliability-diagram bins of everything seen since the last reset."""
        if self._sums is None:
            raise ValueError("Expected at least one `update` before `compute`, but got none.")
        s = self._sums
        return CalibrationResult(
            nll=s.nll / s.n,
            brier=s.brier / s.n,
            ece_top_label=float(_calibration_error(s.top_count, s.top_conf, s.top_correct, self.norm)),
            ece_classwise=_classwise_ece(s.cls_count, s.cls_conf, s.cls_hit, self.norm, self.include_background),
            bins=_bins(s, self.n_bins),
        )

    def reset(self) -> None:
        """Forget every update."""
        self._sums = None
