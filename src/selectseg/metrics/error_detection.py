"""How well an uncertainty map finds the wrong pixels of a segmentation, pooled over all images (numpy float64).

A pixel is wrong when its predicted label differs from the reference. All pixels of all images are pooled, as for
the one global threshold of :func:`selectseg.metrics.selective_dice_curve`; images may differ in shape.

- :func:`pixel_error_auroc`: AUROC of the uncertainty as a score for "wrong" (Mann-Whitney U over
  ``n_wrong * n_correct``, ties counting 1/2). Exact, from one sort: O(n log n) time, O(n) memory.
- :func:`pixel_augrc`: area under the generalized risk-coverage curve (Traub et al. 2024) with the pixel error as
  the loss: generalized risk = (kept and wrong pixels) / (all pixels). Ties are one operating point.

Both are computed from exact integer counts over the sorted uncertainties. With e the fraction of wrong pixels,
``augrc = e^2 / 2 + (1 - auroc) e (1 - e)`` (derived in ``docs/metrics.md``; tested). See ``docs/metrics.md``.

References:
    Mann, Whitney. On a Test of Whether one of Two Random Variables is Stochastically Larger than the Other.
    Ann. Math. Statist. 18(1), 1947.
    Traub, Bungert, Luth, Baumgartner, Maier-Hein, Maier, Jaeger. Overcoming Common Flaws in the Evaluation of
    Selective Classification Systems. NeurIPS 2024 (fd-shifts, ``fd_shifts/analysis/rc_stats.py``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .._validation import UndefinedMetricWarning
from .dice_curve import ImageBatch, check_selective_images, image_lists

__all__ = ["ErrorDetectionScores", "pixel_augrc", "pixel_error_auroc"]


class ErrorDetectionScores(NamedTuple):
    """Both error-detection figures of one set of images, from one sort (what
    :class:`~selectseg.metrics.ErrorDetectionMetric` computes).

    Attributes:
        auroc: :func:`pixel_error_auroc` (higher is better; NaN when no pixel, or every pixel, is wrong).
        augrc: :func:`pixel_augrc` (lower is better).
        error_rate: e, the fraction of wrong pixels (the AUGRC lies in ``[e^2 / 2, e - e^2 / 2]``).
        num_pixels: all pixels of all images.
    """

    auroc: float
    augrc: float
    error_rate: float
    num_pixels: int


class ErrorParts(NamedTuple):
    """One image reduced to what error detection needs (exact).

    Shape:
        uncertainty ``(n,)`` (flattened in C order); wrong_index ``(W,)`` int64, the wrong pixels in pixel order.
    """

    uncertainty: np.ndarray
    wrong_index: np.ndarray


def error_parts(pred: np.ndarray, target: np.ndarray, uncertainty: np.ndarray) -> ErrorParts:
    """One validated flat image ``(n,)`` x 3 -> its :class:`ErrorParts`."""
    return ErrorParts(uncertainty, np.flatnonzero(pred != target).astype(np.int64, copy=False))


def error_scores_from_parts(parts: Sequence[ErrorParts]) -> ErrorDetectionScores:
    """:class:`ErrorDetectionScores` of N >= 1 images given as their :class:`ErrorParts` (a NaN AUROC warns)."""
    all_sorted, wrong_sorted = _sorted_from_parts(parts)
    return ErrorDetectionScores(
        auroc=_error_auroc(all_sorted, wrong_sorted, stacklevel=4),
        augrc=_augrc(all_sorted, wrong_sorted),
        error_rate=wrong_sorted.size / all_sorted.size,
        num_pixels=int(all_sorted.size),
    )


def pixel_error_auroc(predictions: ImageBatch, targets: ImageBatch, uncertainties: ImageBatch) -> float:
    """AUROC of the uncertainty for detecting wrong pixels (higher is better; 0.5 is chance).

    ``AUROC = (1 / (n_w n_c)) sum_{j wrong, k correct} ([u_j > u_k] + 1/2 [u_j = u_k])``: the probability that a
    wrong pixel is less sure than a correct one, ties counting 1/2 (the Mann-Whitney U statistic of the wrong
    pixels' uncertainties over ``n_w n_c``), over all pixels of all images pooled. Exact: computed from integer
    counts after one sort (O(n log n) time, O(n) memory; never the ``n_w x n_c`` pairs).

    Args:
        predictions: integer label maps predicted by the model.
        targets: integer reference label maps (a pixel is wrong where they differ).
        uncertainties: uncertainty maps, higher = less sure. Ties are compared in their own dtype.

    Shape:
        Each argument holds N images: a list of N arrays/tensors ``(*S_i)`` or one batch ``(B, *S)``, each row one
        image, as :func:`~selectseg.metrics.selective_dice_curve` (a singleton channel axis is dropped). Image i's
        three arrays share one shape. Returns a float. To accumulate over batches (and DDP ranks), see
        :class:`~selectseg.metrics.ErrorDetectionMetric`.

    Returns:
        The AUROC in [0, 1]; NaN with an :class:`~selectseg.UndefinedMetricWarning` when no pixel is wrong or no
        pixel is correct.

    Raises:
        TypeError: if an argument is neither a list of arrays/tensors nor an array/tensor, labels are not integers
            or an uncertainty is not numeric.
        ValueError: if the lists are empty or of different lengths, a batch has fewer than 2 dimensions, an image's
            arrays differ in shape or are empty, or uncertainties hold NaN/inf.

    Example:
        >>> label = [np.array([1, 1, 0, 0, 0])]
        >>> pred = [np.array([1, 0, 0, 1, 0])]  # pixels 1 and 3 are wrong
        >>> unc = [np.array([0.1, 0.4, 0.2, 0.2, 0.0])]
        >>> pixel_error_auroc(pred, label, unc)  # wrong 0.4 beats 3 correct; wrong 0.2: 2 wins, 1 tie -> 5.5 / 6
        0.9166666666666666

    References:
        Mann and Whitney, 1947.
    """
    all_sorted, wrong_sorted = _pooled_sorted(predictions, targets, uncertainties)
    return _error_auroc(all_sorted, wrong_sorted)


def pixel_augrc(predictions: ImageBatch, targets: ImageBatch, uncertainties: ImageBatch) -> float:
    """Area under the generalized risk-coverage curve with the pixel error as the loss (lower is better).

    One global threshold t over all pixels of all images; a pixel is kept when ``uncertainty <= t``. Coverage
    ``c(t)`` = kept / all pixels; generalized risk ``g(t)`` = kept *and* wrong pixels / all pixels (not over the
    kept ones, unlike the selective risk). The curve has one point per distinct uncertainty (tied pixels are kept
    together) and starts at (0, 0); the area is the trapezoid rule over c in [0, 1], natural scale (fd-shifts'
    AUGRC / 1000). With e the fraction of wrong pixels it lies in ``[e^2 / 2, e - e^2 / 2]``: ``e^2 / 2`` when every
    wrong pixel is less sure than every correct one, ``e / 2`` for a constant uncertainty.

    Args:
        predictions, targets, uncertainties: as :func:`pixel_error_auroc`.

    Shape:
        As :func:`pixel_error_auroc`: N images as a list ``(*S_i)`` or a batch ``(B, *S)``. Returns a float.

    Raises:
        TypeError, ValueError: as :func:`pixel_error_auroc`.

    Example:
        >>> label = [np.array([1, 1, 0, 0, 0])]
        >>> pred = [np.array([1, 0, 0, 1, 0])]
        >>> unc = [np.array([0.1, 0.4, 0.2, 0.2, 0.0])]
        >>> pixel_augrc(pred, label, unc)  # points (0, 0) (.2, 0) (.4, 0) (.8, .2) (1, .4): .4 * .1 + .2 * .3
        0.1

    References:
        Traub et al., NeurIPS 2024 (AUGRC); fd-shifts ``RiskCoverageStats.augrc``.
    """
    all_sorted, wrong_sorted = _pooled_sorted(predictions, targets, uncertainties)
    return _augrc(all_sorted, wrong_sorted)


def _pooled_sorted(
    predictions: ImageBatch, targets: ImageBatch, uncertainties: ImageBatch
) -> tuple[np.ndarray, np.ndarray]:
    """All uncertainties ``(n,)`` and those of the wrong pixels ``(W,)``, each sorted ascending, in one dtype."""
    preds, tgts, uncs = check_selective_images(*image_lists(predictions, targets, uncertainties), None)
    return _sorted_from_parts([error_parts(p, t, u) for p, t, u in zip(preds, tgts, uncs)])


def _sorted_from_parts(parts: Sequence[ErrorParts]) -> tuple[np.ndarray, np.ndarray]:
    dtype = np.result_type(*(q.uncertainty for q in parts))
    wrong_sorted = np.sort(np.concatenate([q.uncertainty[q.wrong_index] for q in parts]).astype(dtype, copy=False))
    values = np.concatenate([q.uncertainty for q in parts]).astype(dtype, copy=False)
    values.sort()  # a fresh array from concatenate (astype with copy=False keeps it): sorting in place is safe
    return values, wrong_sorted


def _wrong_groups(all_sorted: np.ndarray, wrong_sorted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per distinct wrong uncertainty v: (wrong pixels below v, all pixels below v, all pixels <= v), int64."""
    if wrong_sorted.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    first = np.flatnonzero(np.r_[True, wrong_sorted[1:] != wrong_sorted[:-1]])
    values = wrong_sorted[first]
    below = np.searchsorted(all_sorted, values, side="left")
    at_or_below = np.searchsorted(all_sorted, values, side="right")
    return first.astype(np.int64), below.astype(np.int64), at_or_below.astype(np.int64)


def _error_auroc(all_sorted: np.ndarray, wrong_sorted: np.ndarray, *, stacklevel: int = 3) -> float:
    n, n_wrong = all_sorted.size, wrong_sorted.size
    n_correct = n - n_wrong
    if n_wrong == 0 or n_correct == 0:
        warnings.warn(
            f"The error-detection AUROC is undefined with {n_wrong} wrong and {n_correct} correct pixels; "
            "returning NaN.",
            UndefinedMetricWarning,
            stacklevel=stacklevel,
        )
        return math.nan
    first, below, at_or_below = _wrong_groups(all_sorted, wrong_sorted)
    count = np.diff(np.r_[first, n_wrong])  # wrong pixels at each distinct value
    correct_below = below - first
    correct_tied = at_or_below - below - count
    twice_u = int(np.sum(count * (2 * correct_below + correct_tied)))  # exact: 2 U in integers
    return twice_u / (2 * n_wrong * n_correct)


def _augrc(all_sorted: np.ndarray, wrong_sorted: np.ndarray) -> float:
    # Trapezoids over the tie groups g (size L_g, w_g wrong, W_g wrong pixels before it): sum_g L_g (W_g + w_g / 2)
    # / n^2. Counting each wrong pixel of value v in the later groups and half in its own group gives
    # sum_{wrong} (n - #{u <= v} + #{u = v} / 2) / n^2 = sum_{wrong} (2 n - #{u <= v} - #{u < v}) / (2 n^2).
    n = all_sorted.size
    first, below, at_or_below = _wrong_groups(all_sorted, wrong_sorted)
    count = np.diff(np.r_[first, wrong_sorted.size])
    twice_area = int(np.sum(count * (2 * n - at_or_below - below)))  # exact, times n^2
    return twice_area / (2 * n * n)
