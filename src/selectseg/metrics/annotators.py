"""Annotator metrics (numpy float64): how much the annotators agree, and how the model's uncertainty follows
where they disagree.

Conventions: the annotators' masks ``(A, *S)`` are binary (bool or 0/1; the foreground of one class), or integer
label maps with a ``foreground`` class argument; a model's member/head foreground probabilities are ``(M, *S)``.

- Agreement between annotators: the mean pairwise inter-annotator Dice per class (:func:`pairwise_dice`).
- Variance maps (:func:`annotator_variance`, :func:`prediction_variance`), their image-level sum
  (:func:`sum_of_variances`, SV; over the whole image or a region of interest such as :func:`annotator_roi`, the
  annotators' dilated union) and the correlation of model and annotator disagreement at image level
  (:func:`image_level_correlation`) and pixel level (:func:`pixel_level_correlation`, from the per-image
  :func:`per_image_pixel_correlation`), as in EDUE; percentile-bootstrap confidence intervals over images for both
  (:func:`image_level_correlation_ci`, :func:`pixel_level_correlation_ci`).

Distances between a model's set of samples and the annotators are in :mod:`selectseg.metrics.distributions`. See
``docs/metrics.md``.

References:
    Abutalip et al. EDUE: Expert Disagreement-Guided One-Pass Uncertainty Estimation for Medical Image
    Segmentation. 2024.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from itertools import combinations
from typing import Any, NamedTuple

import numpy as np
from scipy import ndimage as ndi
from scipy.stats import rankdata

from .._types import ArrayLike, ImageArray
from .._validation import (
    UndefinedMetricWarning,
    check_finite,
    check_integer_dtype,
    check_label_range,
    check_num_classes,
    check_paired_vectors,
    check_positive_int,
    look_up_option,
    to_numpy,
)
from .bootstrap import DEFAULT_CONFIDENCE_LEVEL, DEFAULT_N_RESAMPLES
from .dice import _class_dice

__all__ = [
    "Correlation",
    "CorrelationInterval",
    "Interval",
    "annotator_roi",
    "annotator_variance",
    "image_level_correlation",
    "image_level_correlation_ci",
    "pairwise_dice",
    "per_image_pixel_correlation",
    "pixel_level_correlation",
    "pixel_level_correlation_ci",
    "prediction_variance",
    "sum_of_variances",
]

CONSTANT_POLICIES = ("skip", "zero", "one_if_both_constant")
DEFAULT_RESAMPLES = DEFAULT_N_RESAMPLES
"""Bootstrap resamples of the correlation confidence intervals (the Dice-curve bootstrap's default)."""
DEFAULT_CONFIDENCE = DEFAULT_CONFIDENCE_LEVEL
"""Coverage of the correlation confidence intervals (the Dice-curve bootstrap's default)."""


class Correlation(NamedTuple):
    """Pearson and Spearman correlation coefficients (higher = more alike), each in [-1, 1] or NaN."""

    pearson: float
    spearman: float


class Interval(NamedTuple):
    """A confidence interval ``[low, high]`` (NaN, NaN when undefined)."""

    low: float
    high: float


class CorrelationInterval(NamedTuple):
    """Confidence intervals of the Pearson and Spearman coefficients of :class:`Correlation`."""

    pearson: Interval
    spearman: Interval


# ------------------------------------------------------------------------------------- agreement between annotators


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
    if array.ndim < 2 or array.shape[0] == 0:
        raise ValueError(f"Expected `labels` of shape (A, *S) with A >= 1, but got shape {array.shape}.")
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


# --------------------------------------------------------------------------------------------------- variance maps


def annotator_variance(masks: ImageArray, *, foreground: int | None = None) -> np.ndarray:
    """Per-pixel variance of the annotators' binary masks, ``m (1 - m)`` (higher = annotators disagree more).

    ``m`` is the fraction of annotators marking the pixel foreground; ``m (1 - m)`` is the population variance
    (ddof = 0) of the A Bernoulli labels, between 0 (all agree) and 1/4 (an even split).

    Args:
        masks: one mask per annotator: binary (bool or 0/1), or integer label maps with ``foreground`` given.
        foreground: if given, the class whose mask is taken (``masks == foreground``); ``masks`` must then hold
            integers.

    Shape:
        masks ``(A, *S)`` -> ``(*S)`` float64.

    Returns:
        The variance map; all NaN (with an :class:`UndefinedMetricWarning`) when there is a single annotator.

    Raises:
        TypeError: if ``masks`` is not an array of numbers, or holds non-integers while ``foreground`` is given.
        ValueError: if ``masks`` has fewer than 2 axes, or is not binary while ``foreground`` is None.

    Example:
        >>> annotator_variance(np.array([[1, 1, 0], [1, 0, 0], [1, 0, 0], [1, 0, 1]])).tolist()
        [0.0, 0.1875, 0.1875]
    """
    binary = _binary_stack("masks", masks, foreground, "(A, *S)")
    if binary.shape[0] < 2:
        warnings.warn(
            "Annotator variance is undefined with a single annotator; returning NaN.", UndefinedMetricWarning, 2
        )
        return np.full(binary.shape[1:], np.nan)
    m = binary.mean(axis=0, dtype=np.float64)
    return m * (1.0 - m)


def prediction_variance(member_probs: ImageArray) -> np.ndarray:
    """Per-pixel variance of the members' foreground probabilities (higher = members disagree more).

    Population variance over the member axis (ddof = 0, ``numpy.var``'s default): ``mean_m (p_m - mean p)^2``.

    Args:
        member_probs: foreground probability of each ensemble member, MC sample or head, in [0, 1].

    Shape:
        member_probs ``(M, *S)`` -> ``(*S)`` float64.

    Returns:
        The variance map; all NaN (with an :class:`UndefinedMetricWarning`) when there is a single member.

    Raises:
        TypeError: if ``member_probs`` is not an array of numbers.
        ValueError: if ``member_probs`` has fewer than 2 axes, holds NaN/inf or values outside [0, 1].

    Example:
        >>> prediction_variance(np.array([[0.2, 1.0], [0.6, 1.0]])).round(4).tolist()
        [0.04, 0.0]
    """
    probs = _probabilities("member_probs", member_probs)
    if probs.ndim < 2:
        raise ValueError(f"Expected `member_probs` of shape (M, *S), but got shape {probs.shape}.")
    if probs.shape[0] < 2:
        warnings.warn(
            "Prediction variance is undefined with a single member; returning NaN.", UndefinedMetricWarning, 2
        )
        return np.full(probs.shape[1:], np.nan)
    return probs.var(axis=0)


def sum_of_variances(variance_map: ImageArray, *, roi: ImageArray | None = None) -> float:
    """Sum of a variance map over all pixels, or over a region of interest (SV, the image-level disagreement score;
    higher = more disagreement).

    Restricting the sum to a region (e.g. :func:`annotator_roi`, the same region for the model's and the
    annotators' maps) keeps the score about the structure the annotators disagree on: summed over a whole image, a
    model's variance far from the structure (false-positive blobs) can dominate it.

    Args:
        variance_map: a per-pixel variance map, e.g. from :func:`annotator_variance` or :func:`prediction_variance`.
        roi: the pixels summed (bool, or 0/1), of the map's shape; None = every pixel. An empty region gives 0.

    Shape:
        variance_map ``(*S)``, roi ``(*S)`` -> float.

    Returns:
        The sum (float64). NaN (with an :class:`UndefinedMetricWarning`) if the summed pixels hold NaN, as they do for
        a single annotator or member.

    Raises:
        TypeError: if ``variance_map`` or ``roi`` is not an array of numbers.
        ValueError: if ``variance_map`` holds infinities or negative values, or ``roi`` is not binary or not of the
            map's shape.

    Example:
        >>> sum_of_variances(np.array([[0.0, 0.25], [0.1875, 0.0]]))
        0.4375
        >>> sum_of_variances(np.array([[0.0, 0.25], [0.1875, 0.0]]), roi=np.array([[1, 1], [0, 0]]))
        0.25
    """
    array = to_numpy("variance_map", variance_map, dtype=np.float64)
    if roi is not None:
        region = to_numpy("roi", roi)
        if region.shape != array.shape:
            raise ValueError(
                f"Expected `roi` to have the shape of `variance_map` {array.shape}, but got {region.shape}."
            )
        if region.dtype != np.bool_ and not np.isin(region, (0, 1)).all():
            raise ValueError("Expected `roi` to be binary (bool or 0/1), but got other values.")
        array = array[region.astype(bool)]
    if np.isinf(array).any():
        raise ValueError(
            f"Expected `variance_map` to be finite, but got {int(np.isinf(array).sum())} infinite value(s)."
        )
    if (array < 0).any():
        raise ValueError(f"Expected `variance_map` to be non-negative, but got minimum {float(np.nanmin(array))}.")
    if np.isnan(array).any():
        warnings.warn("The variance map holds NaN; its sum is undefined, returning NaN.", UndefinedMetricWarning, 2)
        return math.nan
    return float(array.sum())


def annotator_roi(masks: ImageArray, *, radius: int, foreground: int | None = None) -> np.ndarray:
    """The region the annotators define: the union of their masks, dilated by ``radius`` pixels.

    A pixel is in the region when its Euclidean distance (in pixels, whatever the spacing) to the nearest pixel
    marked by any annotator is at most ``radius``. The dilation takes in the band around the structure where a
    model's boundary uncertainty lies even when it is a little off the annotators' boundaries. No marked pixel: an
    empty region.

    Args:
        masks: one mask per annotator: binary (bool or 0/1), or integer label maps with ``foreground`` given.
        radius: dilation radius in pixels, >= 0 (0 = the union itself).
        foreground: if given, the class whose masks are united (``masks == foreground``).

    Shape:
        masks ``(A, *S)`` -> ``(*S)`` bool.

    Returns:
        The region of interest.

    Raises:
        TypeError: if ``masks`` is not an array of numbers (integers when ``foreground`` is given) or ``radius`` is
            not an int.
        ValueError: if ``masks`` has fewer than 2 axes or is not binary, or ``radius`` is negative.

    Example:
        >>> annotator_roi(np.array([[0, 1, 0, 0, 0], [0, 0, 1, 0, 0]]), radius=1).astype(int).tolist()
        [1, 1, 1, 1, 0]
    """
    if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)):
        raise TypeError(f"Expected `radius` to be an int, but got {type(radius).__name__}.")
    if radius < 0:
        raise ValueError(f"Expected `radius` to be >= 0 (pixels), but got {radius}.")
    union = _binary_stack("masks", masks, foreground, "(A, *S)").any(axis=0)
    if radius == 0 or not union.any():
        return np.asarray(union)
    return np.asarray(ndi.distance_transform_edt(~union) <= radius)


# ----------------------------------------------------------------------------------------------------- correlation


def image_level_correlation(predicted_sv: ArrayLike, annotator_sv: ArrayLike) -> Correlation:
    """Pearson and Spearman correlation between the model's and the annotators' image-level SV (higher is better).

    Spearman is the Pearson correlation of the ranks, tied values getting their average rank (as
    ``scipy.stats.spearmanr``).

    Args:
        predicted_sv: per-image sum of the model's variance map.
        annotator_sv: per-image sum of the annotators' variance map.

    Shape:
        predicted_sv, annotator_sv: ``(N,)``. Returns two floats.

    Returns:
        :class:`Correlation` ``(pearson, spearman)``. A coefficient is NaN (with an :class:`UndefinedMetricWarning`)
        when there are fewer than 2 images or either input is constant.

    Raises:
        TypeError: if an input is not a list, numpy array or torch tensor of numbers.
        ValueError: if the inputs are not 1-D of one length, are empty, or hold NaN/inf.

    Example:
        >>> r = image_level_correlation([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 8.0])
        >>> round(r.pearson, 4), r.spearman
        (0.8305, 0.8)
    """
    x, y = check_paired_vectors("predicted_sv", predicted_sv, "annotator_sv", annotator_sv, unit="image")
    if x.size < 2 or _is_constant(x) or _is_constant(y):
        warnings.warn(
            "Correlation is undefined for fewer than 2 images or a constant input; returning NaN.",
            UndefinedMetricWarning,
            2,
        )
        return Correlation(math.nan, math.nan)
    return Correlation(_pearson(x, y), _pearson(rankdata(x), rankdata(y)))


def pixel_level_correlation(
    predicted_maps: Sequence[ImageArray] | ImageArray,
    annotator_maps: Sequence[ImageArray] | ImageArray,
    *,
    constant: str = "skip",
) -> float:
    """Per-image Pearson correlation between two uncertainty maps, averaged over images (higher is better).

    For image i, ``r_i`` is the Pearson correlation over pixels between the model's map and the annotators' map
    (e.g. :func:`prediction_variance` and :func:`annotator_variance`). A map is constant when all its values are
    exactly equal (a one-pixel map is constant); ``r_i`` is then undefined and ``constant`` decides.

    Args:
        predicted_maps: the model's map for each image (a list, or an array with the images on axis 0).
        annotator_maps: the annotators' map for each image, of the same shape as the model's.
        constant: policy for an image where either map is constant:
            ``"skip"`` (default): left out of the mean (NaN, with an :class:`UndefinedMetricWarning`, when every
            image is left out). ``"zero"``: counts as ``r_i = 0``. ``"one_if_both_constant"``: ``r_i = 1`` when both
            maps are constant (the model is as certain, or as uncertain, everywhere as the annotators), 0 when only
            one is.

    Shape:
        N maps ``(*S_i)``, shapes may differ between images. Returns a float.

    Returns:
        The mean of ``r_i`` over the counted images.

    Raises:
        TypeError: if a list is not given (or an array), a map is not an array of numbers, or ``constant`` is not a
            string.
        ValueError: if the lists are empty or of different lengths, a pair of maps differ in shape, a map holds
            NaN/inf, or ``constant`` is unknown.

    Example:
        >>> pred = [np.array([0.0, 0.1, 0.2]), np.array([0.3, 0.3, 0.3])]
        >>> ann = [np.array([0.0, 0.2, 0.4]), np.array([0.0, 0.1, 0.0])]
        >>> pixel_level_correlation(pred, ann), pixel_level_correlation(pred, ann, constant="zero")
        (1.0, 0.5)
    """
    values = per_image_pixel_correlation(predicted_maps, annotator_maps, constant=constant)
    counted = values[~np.isnan(values)]
    if counted.size == 0:
        warnings.warn(
            'Pixel-level correlation is undefined: every image has a constant map (constant="skip"); returning NaN.',
            UndefinedMetricWarning,
            2,
        )
        return math.nan
    return float(np.mean(counted))


def per_image_pixel_correlation(
    predicted_maps: Sequence[ImageArray] | ImageArray,
    annotator_maps: Sequence[ImageArray] | ImageArray,
    *,
    constant: str = "skip",
) -> np.ndarray:
    """The per-image Pearson correlations ``r_i`` whose mean is :func:`pixel_level_correlation` (higher is better).

    Args:
        predicted_maps, annotator_maps, constant: as :func:`pixel_level_correlation`; an image the ``"skip"`` policy
            leaves out gets NaN (no warning).

    Shape:
        N maps ``(*S_i)`` each -> ``(N,)`` float64.

    Raises:
        TypeError, ValueError: as :func:`pixel_level_correlation`.

    Example:
        >>> pred = [np.array([0.0, 0.1, 0.2]), np.array([0.3, 0.3, 0.3])]
        >>> ann = [np.array([0.0, 0.2, 0.4]), np.array([0.0, 0.1, 0.0])]
        >>> per_image_pixel_correlation(pred, ann).tolist()
        [1.0, nan]
    """
    policy = look_up_option("constant", constant, CONSTANT_POLICIES)
    preds = _image_list("predicted_maps", predicted_maps)
    anns = _image_list("annotator_maps", annotator_maps)
    if len(preds) != len(anns):
        raise ValueError(
            f"Expected `predicted_maps` and `annotator_maps` to hold one map per image, but got {len(preds)} and "
            f"{len(anns)} maps."
        )
    values = np.full(len(preds), np.nan)
    for i, (p_raw, a_raw) in enumerate(zip(preds, anns)):
        p = to_numpy(f"predicted_maps[{i}]", p_raw, dtype=np.float64).reshape(-1)
        a = to_numpy(f"annotator_maps[{i}]", a_raw, dtype=np.float64).reshape(-1)
        if np.shape(p_raw) != np.shape(a_raw):
            raise ValueError(
                f"Expected `predicted_maps[{i}]` and `annotator_maps[{i}]` to have the same shape, but got "
                f"{tuple(np.shape(p_raw))} and {tuple(np.shape(a_raw))}."
            )
        check_finite(f"predicted_maps[{i}]", p)
        check_finite(f"annotator_maps[{i}]", a)
        p_const, a_const = _is_constant(p), _is_constant(a)
        if not (p_const or a_const):
            values[i] = _pearson(p, a)
        elif policy == "zero":
            values[i] = 0.0
        elif policy == "one_if_both_constant":
            values[i] = 1.0 if p_const and a_const else 0.0
    return values


# ------------------------------------------------------------------------------------------ confidence intervals


def image_level_correlation_ci(
    predicted_sv: ArrayLike,
    annotator_sv: ArrayLike,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> CorrelationInterval:
    """Percentile-bootstrap confidence intervals of :func:`image_level_correlation` (Pearson and Spearman), over
    images.

    Each resample draws N images with replacement (the pairs stay together; ``numpy.random.default_rng(seed)
    .integers(0, N, (n_resamples, N))``) and computes both coefficients; the interval is the ``(1 - confidence) / 2``
    and ``(1 + confidence) / 2`` percentiles (``numpy.percentile``, linear) of the resampled values. A resample in
    which either input is constant (e.g. one image drawn N times) has no correlation and is left out; the interval
    is NaN when every resample is.

    With few images the interval is wide, and a percentile interval of a correlation is only roughly right below
    N ~ 20: read it as the resolution of the experiment, not as a test.

    Args:
        predicted_sv: per-image SV of the model.
        annotator_sv: per-image SV of the annotators.
        n_resamples: bootstrap resamples, >= 1.
        confidence: interval coverage, in (0, 1).
        seed: seeds the resampling (same seed, same inputs: the same interval).

    Shape:
        predicted_sv, annotator_sv: ``(N,)``. Returns two intervals.

    Returns:
        :class:`CorrelationInterval` ``(pearson=(low, high), spearman=(low, high))``.

    Raises:
        TypeError: if an input is not a list, numpy array or torch tensor of numbers, or ``seed`` is not an int.
        ValueError: if the inputs are not 1-D of one length, hold NaN/inf or fewer than 2 images, ``n_resamples``
            is not a positive int, or ``confidence`` is outside (0, 1).

    Example:
        >>> ci = image_level_correlation_ci([1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 4.0, 6.0, 8.0, 10.0])
        >>> ci.pearson, ci.spearman  # a perfect linear relation: every defined resample gives 1
        (Interval(low=1.0, high=1.0), Interval(low=1.0, high=1.0))
    """
    x, y = check_paired_vectors("predicted_sv", predicted_sv, "annotator_sv", annotator_sv, unit="image")
    index = _resamples(x.size, n_resamples, confidence, seed)
    xs, ys = x[index], y[index]
    pearson = _row_pearson(xs, ys)
    spearman = _row_pearson(rankdata(xs, axis=1), rankdata(ys, axis=1))
    return CorrelationInterval(_percentiles(pearson, confidence), _percentiles(spearman, confidence))


def pixel_level_correlation_ci(
    image_correlations: ArrayLike,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> Interval:
    """Percentile-bootstrap confidence interval of :func:`pixel_level_correlation`, over images.

    The pixel-level correlation is the mean of the per-image ``r_i`` (:func:`per_image_pixel_correlation`); the
    images are resampled with replacement and the mean taken again, as :func:`image_level_correlation_ci` does
    (same draws for the same N and seed). NaN values (images the ``"skip"`` policy left out) are dropped first.

    Args:
        image_correlations: the per-image ``r_i``, NaN for a skipped image.
        n_resamples, confidence, seed: as :func:`image_level_correlation_ci`.

    Shape:
        image_correlations ``(N,)`` -> an interval.

    Returns:
        :class:`Interval` ``(low, high)``.

    Raises:
        TypeError: if ``image_correlations`` is not an array of numbers, or ``seed`` is not an int.
        ValueError: if it is not 1-D, holds infinities or values outside [-1, 1], has fewer than 2 non-NaN values,
            ``n_resamples`` is not a positive int, or ``confidence`` is outside (0, 1).

    Example:
        >>> low, high = pixel_level_correlation_ci([0.2, 0.6, float("nan"), 0.3, 0.5])  # mean 0.4, 4 images
        >>> round(low, 3), round(high, 3)
        (0.25, 0.55)
    """
    r = to_numpy("image_correlations", image_correlations, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"Expected `image_correlations` to be 1-D (N,), but got shape {r.shape}.")
    r = r[~np.isnan(r)]
    check_finite("image_correlations", r)
    if r.size and (r.min() < -1 or r.max() > 1):
        raise ValueError(f"Expected `image_correlations` in [-1, 1], but got values in [{r.min()}, {r.max()}].")
    index = _resamples(r.size, n_resamples, confidence, seed)
    return _percentiles(r[index].mean(axis=1), confidence)


def _resamples(n: int, n_resamples: int, confidence: float, seed: int) -> np.ndarray:
    """``(n_resamples, n)`` image indices drawn with replacement, after checking the options."""
    if n < 2:
        raise ValueError(f"Expected at least 2 images for a bootstrap confidence interval, but got {n}.")
    check_positive_int("n_resamples", n_resamples)
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ValueError(f"Expected `confidence` to be a number in (0, 1), but got {confidence!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"Expected `seed` to be an int, but got {type(seed).__name__}.")
    return np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))


def _row_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row pair, clipped to [-1, 1]; NaN where a row is constant."""
    dx = x - x.mean(axis=1, keepdims=True)
    dy = y - y.mean(axis=1, keepdims=True)
    sxx, syy = (dx * dx).sum(axis=1), (dy * dy).sum(axis=1)
    constant = (x.min(axis=1) == x.max(axis=1)) | (y.min(axis=1) == y.max(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (dx * dy).sum(axis=1) / np.sqrt(sxx * syy)
    return np.where(constant, np.nan, np.clip(r, -1.0, 1.0))


def _percentiles(values: np.ndarray, confidence: float) -> Interval:
    defined = values[~np.isnan(values)]
    if defined.size == 0:
        warnings.warn(
            "Every bootstrap resample has a constant input, so no correlation; the interval is NaN.",
            UndefinedMetricWarning,
            3,
        )
        return Interval(math.nan, math.nan)
    low, high = np.percentile(defined, [50 * (1 - confidence), 50 * (1 + confidence)])
    return Interval(float(low), float(high))


# --------------------------------------------------------------------------------------------------------- helpers


def _binary_stack(name: str, value: Any, foreground: int | None, layout: str) -> np.ndarray:
    """Validate ``value`` as a stack of masks ``(A, *S)`` and return it as bool."""
    array = to_numpy(name, value)
    if array.ndim < 2 or array.shape[0] == 0:
        raise ValueError(f"Expected `{name}` of shape {layout} with at least one map, but got shape {array.shape}.")
    if foreground is not None:
        if isinstance(foreground, bool) or not isinstance(foreground, (int, np.integer)):
            raise TypeError(f"Expected `foreground` to be an int class index, but got {type(foreground).__name__}.")
        check_integer_dtype(name, array)
        return np.asarray(array == foreground)
    if array.dtype == np.bool_:
        return array
    if not np.isin(array, (0, 1)).all():
        raise ValueError(
            f"Expected `{name}` to be binary (bool or 0/1), but got values outside {{0, 1}}; for label maps pass "
            "`foreground`."
        )
    return array.astype(bool)


def _probabilities(name: str, value: Any) -> np.ndarray:
    array = to_numpy(name, value, dtype=np.float64)
    check_finite(name, array)
    if array.size and (array.min() < 0 or array.max() > 1):
        raise ValueError(
            f"Expected `{name}` to hold probabilities in [0, 1], but got values in [{array.min()}, {array.max()}]."
        )
    return array


def _image_list(name: str, value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        items = list(value)
    elif isinstance(value, np.ndarray) or hasattr(value, "detach"):
        if value.ndim < 1:
            raise ValueError(f"Expected `{name}` to hold one map per image on axis 0, but got a scalar.")
        items = list(value)
    else:
        raise TypeError(f"Expected `{name}` to be a list of per-image arrays, but got {type(value).__name__}.")
    if not items:
        raise ValueError(f"Expected `{name}` to hold at least one image, but got none.")
    return items


def _is_constant(x: np.ndarray) -> bool:
    return bool(x.size < 2 or x.min() == x.max())


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two non-constant 1-D arrays, clipped to [-1, 1]."""
    dx, dy = x - x.mean(), y - y.mean()
    value = float(np.dot(dx, dy) / math.sqrt(float(np.dot(dx, dx)) * float(np.dot(dy, dy))))
    return min(1.0, max(-1.0, value))
