"""Bootstrap confidence intervals over images for the Dice curve's headline figures: AURC and mean Dice at coverage.

The unit resampled is the image: a resample draws N of the N images with replacement. The Dice curve is one global
threshold over the pooled pixels of all images (:mod:`selectseg.metrics.dice_curve`), so every resample has its own
curve, its own thresholds and its own operating points. A resample is written as integer multiplicity weights
``w`` ``(N,)`` (image i drawn ``w_i`` times); its curve is exactly that of the concatenated resampled images, computed
from quantities of the original curve without concatenating anything:

- coverage(t) = ``sum_i w_i kept_i(t) / sum_i w_i n_i`` (``n_i`` pixels of image i, ``kept_i(t)`` those with
  uncertainty <= t);
- mean Dice(t) = ``sum_i w_i Dice_i(t) / sum_i w_i`` (image i's Dice after substitution does not depend on the other
  images);
- AURC = ``-w^T H w / (2 sum_i w_i sum_i w_i n_i)``, with the ``(N, N)`` matrix
  ``H_il = sum_e delta_e (#{p in i: u_p > x_e} + #{p in i: u_p >= x_e})`` over the wrong pixels e of image l
  (uncertainty ``x_e``, change ``delta_e`` of image l's Dice as it is kept). Derivation: the trapezoid over every
  distinct threshold of the resample gives each pixel p the width ``w_i / sum w n`` and the height ``1 - (Dice(u_p^-)
  + Dice(u_p)) / 2``; ``Dice_l(t) = 1 + sum_{e in l, x_e <= t} delta_e`` turns the sum over pixels into H. Thresholds
  that only zero-weight images hold add zero-width segments, so one H serves every resample.

So H is built once (one sorted copy of each image, two binary searches per wrong pixel and image) and a resample's
AURC is a quadratic form, O(N^2). Dice at a target coverage follows the rule of
:meth:`~selectseg.metrics.SelectiveDiceCurve.at_coverage` (largest achievable coverage <= the target, ties kept or
referred together): a binary search over the pooled sorted uncertainties, with integer kept counts, then each image's
Dice from its false-positive/false-negative counts at the chosen threshold. Tested equal to literally concatenating
the resampled images and calling :func:`~selectseg.metrics.selective_dice_curve` (``tests/reference/bootstrap.py``).

Interval: the percentile bootstrap (Efron and Tibshirani 1993, ch. 13) at ``confidence_level``: the
``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the resampled statistics (numpy's linear interpolation).
Resamples: ``numpy.random.default_rng(seed).integers(0, N, (n_resamples, N))``, one row per resample, shared by AURC
and every coverage. This is the draw and the interval of ``scipy.stats.bootstrap(..., method="percentile")`` with
the same generator (tested); the draw is ours so that it stays the same across scipy versions.

References:
    B. Efron, R. J. Tibshirani. An Introduction to the Bootstrap. Chapman & Hall, 1993.
    Ding et al., Uncertainty-Aware Training of Neural Networks for Selective Medical Image Segmentation, MIDL 2020.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .._validation import check_positive_int
from .dice_curve import SelectiveDiceCurve, _dice_of, _event_dice_changes

__all__ = [
    "DEFAULT_CONFIDENCE_LEVEL",
    "DEFAULT_N_RESAMPLES",
    "DiceBootstrap",
    "WeightedDiceStatistics",
    "bootstrap_dice_curve",
    "check_bootstrap_options",
    "weighted_dice_statistics",
]

DEFAULT_N_RESAMPLES = 1000
"""Resamples of :func:`bootstrap_dice_curve` (about 0.2 s for 20 images of 200 x 150 pixels; docs/metrics.md)."""
DEFAULT_CONFIDENCE_LEVEL = 0.95
_QUERY_BLOCK = 1 << 21  # images x queries per block of the binary search (bounds its int64 scratch to ~16 MB)


@dataclass(frozen=True, eq=False)
class WeightedDiceStatistics:
    """AURC and operating points of the Dice curve of images repeated by integer weights (one row per weighting).

    Shape:
        aurc: ``(R,)``; coverage (achieved), dice (mean over the weighted images): ``(R, C)``, one column per target
        coverage.
    """

    aurc: np.ndarray
    coverage: np.ndarray
    dice: np.ndarray


@dataclass(frozen=True, eq=False)
class DiceBootstrap:
    """Percentile bootstrap intervals over images for a Dice curve's AURC (lower is better) and mean Dice at each
    target coverage (higher is better).

    Attributes:
        aurc: the curve's AURC; aurc_ci: its ``(low, high)`` interval.
        coverages: the target coverages; dice: ``(C,)`` the curve's mean Dice there; dice_ci: ``(C, 2)`` intervals.
        aurc_samples: ``(R,)``; dice_samples: ``(R, C)``: the statistics of every resample.
        n_resamples, confidence_level, seed: the settings; num_images: N.
    """

    aurc: float
    aurc_ci: tuple[float, float]
    coverages: tuple[float, ...]
    dice: np.ndarray
    dice_ci: np.ndarray
    n_resamples: int
    confidence_level: float
    seed: int
    num_images: int
    aurc_samples: np.ndarray = field(repr=False)
    dice_samples: np.ndarray = field(repr=False)

    def settings(self) -> dict[str, object]:
        """The settings as written into ``evaluation.json`` (``bootstrap``)."""
        return {
            "n_resamples": self.n_resamples,
            "seed": self.seed,
            "confidence_level": self.confidence_level,
            "method": "percentile",
            "unit": "image",
        }


def check_bootstrap_options(num_images: int, n_resamples: int, confidence_level: float, seed: int) -> None:
    """The checks of :func:`bootstrap_dice_curve`, for callers that validate before computing anything.

    Raises:
        TypeError: if ``n_resamples`` or ``seed`` is not an int, or ``confidence_level`` not a number.
        ValueError: if ``n_resamples`` < 1, ``confidence_level`` is outside (0, 1), ``seed`` < 0, or there are fewer
            than 2 images (``num_images``): one image resampled is always itself.
    """
    check_positive_int("n_resamples", n_resamples)
    check_positive_int("seed", seed, minimum=0)
    if isinstance(confidence_level, bool) or not isinstance(confidence_level, (int, float, np.floating)):
        raise TypeError(
            f"Expected `confidence_level` to be a float in (0, 1), but got {type(confidence_level).__name__}."
        )
    if not 0.0 < confidence_level < 1.0:
        raise ValueError(f"Expected `confidence_level` to be a float in (0, 1), but got {confidence_level}.")
    if num_images < 2:
        raise ValueError(
            f"Expected at least 2 images for a bootstrap over images (`n_resamples` = {n_resamples}), but got "
            f"{num_images} (one image resampled is always itself); set `n_resamples` to 0 to skip the bootstrap."
        )


def bootstrap_dice_curve(
    curve: SelectiveDiceCurve,
    coverages: Sequence[float],
    *,
    n_resamples: int = DEFAULT_N_RESAMPLES,
    confidence_level: float = DEFAULT_CONFIDENCE_LEVEL,
    seed: int = 0,
) -> DiceBootstrap:
    """Percentile bootstrap over images of the curve's AURC and of its mean Dice at each target coverage.

    Each resample draws N images with replacement and recomputes the whole one-threshold curve of the resampled set
    (exactly; see the module doc). Same ``seed``, same intervals.

    Args:
        curve: from :func:`~selectseg.metrics.selective_dice_curve`, over N >= 2 images.
        coverages: target coverages in [0, 1] (the rule of :meth:`SelectiveDiceCurve.at_coverage`).
        n_resamples: R >= 1 resamples.
        confidence_level: in (0, 1); the interval runs between the ``(1 -/+ level) / 2`` quantiles.
        seed: of ``numpy.random.default_rng``.

    Shape:
        ``coverages``: C values. Returns ``dice`` ``(C,)``, ``dice_ci`` ``(C, 2)``, ``aurc_samples`` ``(R,)``,
        ``dice_samples`` ``(R, C)``.

    Raises:
        TypeError: if ``curve`` is not a :class:`SelectiveDiceCurve`, a coverage is not a number, or an option has
            the wrong type (see :func:`check_bootstrap_options`).
        ValueError: if the curve holds fewer than 2 images, a coverage is outside [0, 1], ``n_resamples`` < 1,
            ``confidence_level`` is outside (0, 1) or ``seed`` < 0.

    Example:
        >>> from selectseg.metrics import selective_dice_curve
        >>> rng = np.random.default_rng(0)
        >>> labels = [rng.integers(0, 2, (8, 8)) for _ in range(5)]
        >>> preds = [np.where(rng.random((8, 8)) < 0.8, y, 1 - y) for y in labels]
        >>> curve = selective_dice_curve(preds, labels, [rng.random((8, 8)) for _ in range(5)], num_classes=2)
        >>> boot = bootstrap_dice_curve(curve, [1.0, 0.9], n_resamples=200, seed=0)
        >>> bool(boot.aurc_ci[0] <= boot.aurc <= boot.aurc_ci[1]), boot.dice_ci.shape
        (True, (2, 2))
    """
    targets = _check_curve_and_coverages(curve, coverages)
    check_bootstrap_options(curve.num_images, n_resamples, confidence_level, seed)
    n = curve.num_images
    draws = np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))
    weights = _multiplicities(draws, n)
    stats = _statistics(_CurveParts.of(curve), weights, targets)
    quantiles = [100.0 * (1.0 - confidence_level) / 2.0, 100.0 * (1.0 + confidence_level) / 2.0]
    aurc_low, aurc_high = np.percentile(stats.aurc, quantiles)
    dice_ci = np.percentile(stats.dice, quantiles, axis=0).T.reshape(len(targets), 2)
    return DiceBootstrap(
        aurc=curve.aurc,
        aurc_ci=(float(aurc_low), float(aurc_high)),
        coverages=tuple(targets),
        dice=np.array([curve.at_coverage(c).dice_mean for c in targets], dtype=np.float64),
        dice_ci=dice_ci,
        n_resamples=int(n_resamples),
        confidence_level=float(confidence_level),
        seed=int(seed),
        num_images=n,
        aurc_samples=stats.aurc,
        dice_samples=stats.dice,
    )


def weighted_dice_statistics(
    curve: SelectiveDiceCurve, weights: np.ndarray, coverages: Sequence[float]
) -> WeightedDiceStatistics:
    """AURC and the operating points at ``coverages`` of the curve whose image i is repeated ``weights[r, i]`` times.

    Equal (to rounding) to concatenating the repeated images and calling
    :func:`~selectseg.metrics.selective_dice_curve`, then ``.aurc`` and ``.at_coverage(c)``; computed without
    concatenating (module doc). A bootstrap resample is one row; a leave-one-out (jackknife) sample is another.

    Args:
        curve: the curve of the N original images.
        weights: non-negative integer multiplicities, at least one positive per row.
        coverages: target coverages in [0, 1].

    Shape:
        weights: ``(R, N)``. Returns ``aurc`` ``(R,)``, ``coverage`` and ``dice`` ``(R, C)``.

    Raises:
        TypeError: if ``curve`` is not a :class:`SelectiveDiceCurve`, ``weights`` does not hold integers or a
            coverage is not a number.
        ValueError: if ``weights`` is not ``(R, N)``, holds a negative value or a row of zeros, or a coverage is
            outside [0, 1].

    Example:
        >>> from selectseg.metrics import selective_dice_curve
        >>> y, p, u = np.array([1, 1, 0, 0]), np.array([1, 0, 0, 1]), np.array([0.1, 0.8, 0.2, 0.9])
        >>> curve = selective_dice_curve([p, y], [y, y], [u, u], num_classes=2)
        >>> stats = weighted_dice_statistics(curve, np.array([[1, 1], [2, 0]]), [1.0])
        >>> stats.dice.tolist()  # image 0 has Dice 0.5, image 1 Dice 1
        [[0.75], [0.5]]
    """
    targets = _check_curve_and_coverages(curve, coverages)
    w = np.asarray(weights)
    if not np.issubdtype(w.dtype, np.integer):
        raise TypeError(f"Expected `weights` to hold integer multiplicities, but got dtype {w.dtype}.")
    if w.ndim != 2 or w.shape[1] != curve.num_images:
        raise ValueError(f"Expected `weights` of shape (R, N = {curve.num_images}), but got {w.shape}.")
    if w.size and (w.min() < 0 or np.any(w.sum(axis=1) == 0)):
        raise ValueError("Expected `weights` to be non-negative with at least one positive weight per row.")
    return _statistics(_CurveParts.of(curve), w.astype(np.int64), targets)


def _check_curve_and_coverages(curve: SelectiveDiceCurve, coverages: Sequence[float]) -> list[float]:
    if not isinstance(curve, SelectiveDiceCurve):
        raise TypeError(f"Expected `curve` to be a SelectiveDiceCurve, but got {type(curve).__name__}.")
    targets = []
    for c in coverages:
        if isinstance(c, bool) or not isinstance(c, (int, float, np.floating)):
            raise TypeError(f"Expected every coverage to be a float in [0, 1], but got {type(c).__name__}.")
        if not 0.0 <= c <= 1.0:
            raise ValueError(f"Expected every coverage to be a float in [0, 1], but got {c}.")
        targets.append(float(c))
    return targets


def _multiplicities(draws: np.ndarray, n: int) -> np.ndarray:
    """``(R, n)`` counts of each index in each row of ``draws`` ``(R, m)``."""
    rows = draws.shape[0]
    flat = (draws + n * np.arange(rows)[:, None]).reshape(-1)
    return np.bincount(flat, minlength=rows * n).reshape(rows, n).astype(np.int64)


@dataclass(frozen=True, eq=False)
class _CurveParts:
    """What every weighting needs, built once from a curve."""

    sorted_images: list[np.ndarray]  # N sorted uncertainty arrays, in the curve's dtype
    sizes: np.ndarray  # (N,) pixels per image
    pooled: np.ndarray  # (P,) all uncertainties sorted
    h: np.ndarray  # (N, N), see the module doc
    reference_counts: np.ndarray  # (N, K)
    false_pos: list[list[np.ndarray]]  # [image][class] sorted uncertainties of wrong pixels predicted as the class
    false_neg: list[list[np.ndarray]]  # [image][class] ... of wrong pixels whose reference is the class

    @classmethod
    def of(cls, curve: SelectiveDiceCurve) -> _CurveParts:
        pooled = curve._sorted_uncertainty
        sorted_images = [np.sort(u.astype(pooled.dtype, copy=False)) for u in curve._image_uncertainty]
        sizes = np.array([u.size for u in sorted_images], dtype=np.int64)
        events = curve._events
        n, k = events.reference_counts.shape
        delta = _event_dice_changes(events)
        x = events.uncertainty
        h = np.empty((n, n), dtype=np.float64)
        for i, s in enumerate(sorted_images):
            at_or_above_plus_above = 2 * s.size - np.searchsorted(s, x, "left") - np.searchsorted(s, x, "right")
            h[i] = np.bincount(events.image, weights=delta * at_or_above_plus_above, minlength=n)
        return cls(
            sorted_images=sorted_images,
            sizes=sizes,
            pooled=pooled,
            h=h,
            reference_counts=events.reference_counts,
            false_pos=_split_by_image_and_class(x, events.image, events.predicted, n, k),
            false_neg=_split_by_image_and_class(x, events.image, events.label, n, k),
        )

    def kept(self, weights: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
        """``(Q,)`` weighted count of pixels <= ``thresholds[q]`` under ``weights[q]`` ``(Q, N)``."""
        counts = np.stack([np.searchsorted(s, thresholds, "right") for s in self.sorted_images], axis=1)
        return np.einsum("qn,qn->q", weights, counts)

    def image_dice(self, thresholds: np.ndarray) -> np.ndarray:
        """``(Q, N)`` each image's Dice keeping its pixels <= ``thresholds[q]``."""
        n, k = self.reference_counts.shape
        out = np.zeros((thresholds.size, n), dtype=np.float64)
        for i in range(n):
            for c in range(1, k):
                fp = np.searchsorted(self.false_pos[i][c], thresholds, "right")
                fn = np.searchsorted(self.false_neg[i][c], thresholds, "right")
                out[:, i] += _dice_of(self.reference_counts[i, c], fp, fn)
        return out / (k - 1)


def _split_by_image_and_class(
    values: np.ndarray, image: np.ndarray, cls: np.ndarray, n: int, k: int
) -> list[list[np.ndarray]]:
    """``values`` (sorted) grouped by (image, class), each group still sorted."""
    key = image * k + cls
    order = np.argsort(key, kind="stable")
    bounds = np.searchsorted(key[order], np.arange(n * k + 1))
    grouped = values[order]
    return [[grouped[bounds[i * k + c] : bounds[i * k + c + 1]] for c in range(k)] for i in range(n)]


def _allowed(total: np.ndarray, coverage: float) -> np.ndarray:
    """Largest kept count m <= total with m / total <= coverage, elementwise (``_coverage_cut``'s rule)."""
    allowed = np.minimum(total, np.floor(coverage * total).astype(np.int64))
    while True:
        up = (allowed < total) & ((allowed + 1) / total <= coverage)
        if not up.any():
            break
        allowed += up
    while True:
        down = (allowed > 0) & (allowed / total > coverage)
        if not down.any():
            break
        allowed -= down
    return allowed


def _statistics(parts: _CurveParts, weights: np.ndarray, coverages: list[float]) -> WeightedDiceStatistics:
    w = weights.astype(np.float64)
    pixels = weights @ parts.sizes  # (R,) int64
    aurc = -np.einsum("rn,rn->r", w @ parts.h, w) / (2.0 * w.sum(axis=1) * pixels)
    rows, n, c = weights.shape[0], weights.shape[1], len(coverages)
    coverage = np.zeros((rows, c), dtype=np.float64)
    dice = np.zeros((rows, c), dtype=np.float64)
    block = max(1, _QUERY_BLOCK // max(1, n * c))
    for start in range(0, rows, block):
        sl = slice(start, min(rows, start + block))
        wq = np.repeat(weights[sl], c, axis=0)  # (Q, N): query q = (resample, coverage)
        total = np.repeat(pixels[sl], c)
        allowed = np.concatenate([_allowed(pixels[sl], cov)[:, None] for cov in coverages], axis=1).reshape(-1)
        chosen = _largest_within(parts, wq, allowed)
        thresholds = np.where(chosen >= 0, parts.pooled[np.maximum(chosen, 0)], -np.inf).astype(parts.pooled.dtype)
        kept = parts.kept(wq, thresholds)
        mean_dice = np.einsum("qn,qn->q", wq.astype(np.float64), parts.image_dice(thresholds)) / wq.sum(axis=1)
        coverage[sl] = (kept / total).reshape(-1, c)
        dice[sl] = mean_dice.reshape(-1, c)
    return WeightedDiceStatistics(aurc=aurc, coverage=coverage, dice=dice)


def _largest_within(parts: _CurveParts, weights: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """``(Q,)`` the largest position p of the pooled sorted uncertainties whose value keeps at most ``allowed[q]``
    weighted pixels, or -1 (keep nothing): a binary search, all queries at once."""
    low = np.full(allowed.size, -1, dtype=np.int64)
    high = np.full(allowed.size, parts.pooled.size - 1, dtype=np.int64)
    for _ in range(math.ceil(math.log2(parts.pooled.size + 1)) + 1):
        active = np.flatnonzero(low < high)
        if active.size == 0:
            break
        mid = (low[active] + high[active] + 1) // 2
        ok = parts.kept(weights[active], parts.pooled[mid]) <= allowed[active]
        low[active] = np.where(ok, mid, low[active])
        high[active] = np.where(ok, high[active], mid - 1)
    return low
