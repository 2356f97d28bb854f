"""Crops around what the annotators marked, resampled to a fixed size: the region-of-interest protocol of multi-rater
studies (e.g. the optic-disc region of RIGA), so that a small network sees the structure, and its boundary band,
at a useful resolution.

- :func:`annotation_window`: a square (cube) window centred on the centroid of the annotators' mean mask, its side a
  multiple of the mean mask's equivalent diameter, kept inside the image.
- :func:`crop_case`: a case cut to a window and resampled to a fixed shape (image, every annotator's labels and the
  affine follow; see :func:`~selectseg.data.resize.resample_case`).
- :func:`crop_to_annotations`: both, for a case whose labels mark the structure.

The window is placed with the annotators' masks, i.e. with the reference: like the published multi-rater RIGA
protocols it assumes the structure has been located (a detector, or a clinician's click). See ``docs/data.md``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from .case import Case
from .resize import resample_case

__all__ = ["DEFAULT_CROP_FACTOR", "annotation_window", "crop_case", "crop_to_annotations"]

DEFAULT_CROP_FACTOR = 2.0
"""Window side / equivalent diameter of the annotators' mean mask: the structure fills the middle half of each axis,
with half a diameter of context on every side."""


def annotation_window(masks: np.ndarray, *, factor: float = DEFAULT_CROP_FACTOR) -> tuple[slice, ...]:
    """The window centred on the annotators' mean structure, of side ``factor`` x its equivalent diameter.

    ``m`` is the annotators' mean mask (the fraction marking each voxel). The centre is the centroid of ``m``
    (``sum_x x m(x) / sum_x m(x)``, in voxel indices), the diameter that of a disc (ball) with the area (volume) of
    ``m``: ``2 sqrt(sum m / pi)`` in 2D, ``2 (3 sum m / (4 pi))^(1/3)`` in 3D. The window is square (cube) in voxels,
    of side ``L = max(1, floor(factor * diameter + 0.5))``, and starts at ``floor(centre - (L - 1) / 2 + 0.5)`` on
    each axis, so its middle voxel is the one nearest the centroid. **Clamped to the image**: a window crossing a
    border is shifted inside (its size, hence the resampling factor, is kept); an axis shorter than ``L`` is taken
    whole.

    Args:
        masks: one mask per annotator (bool, or 0/1).
        factor: window side / equivalent diameter, > 0.

    Shape:
        masks ``(A, *S)`` -> one slice per spatial axis.

    Returns:
        The window, as slices (``image[(slice(None), *window)]`` cuts a ``(C, *S)`` image).

    Raises:
        TypeError: if ``masks`` is not a numpy array or ``factor`` not a number.
        ValueError: if ``masks`` is not ``(A, H, W)`` or ``(A, D, H, W)`` of 0/1, is empty (no annotator marked a
            voxel), or ``factor`` is not positive and finite.

    Example:
        >>> masks = np.zeros((2, 40, 40), bool)
        >>> masks[0, 10:20, 10:20] = masks[1, 10:20, 12:22] = True
        >>> annotation_window(masks, factor=2.0)  # centroid (14.5, 15.5), diameter 11.28: side 23
        (slice(4, 27, None), slice(5, 28, None))
    """
    if not isinstance(masks, np.ndarray):
        raise TypeError(f"Expected `masks` to be a numpy array, but got {type(masks).__name__}.")
    if isinstance(factor, bool) or not isinstance(factor, (int, float, np.integer, np.floating)):
        raise TypeError(f"Expected `factor` to be a number, but got {type(factor).__name__}.")
    if not (math.isfinite(float(factor)) and factor > 0):
        raise ValueError(f"Expected `factor` to be a positive finite number, but got {factor!r}.")
    if masks.ndim not in (3, 4) or masks.shape[0] < 1:
        raise ValueError(f"Expected `masks` of shape (A, H, W) or (A, D, H, W), but got shape {masks.shape}.")
    if masks.dtype != np.bool_ and not np.isin(masks, (0, 1)).all():
        raise ValueError("Expected `masks` to be binary (bool or 0/1), but got other values.")
    mean = masks.astype(np.float64).mean(axis=0)
    total = float(mean.sum())
    if total == 0.0:
        raise ValueError("Expected the annotators to mark at least one voxel, but every mask is empty.")
    dims = mean.ndim
    centre = [
        float(np.tensordot(mean.sum(axis=tuple(a for a in range(dims) if a != axis)), np.arange(size), 1)) / total
        for axis, size in enumerate(mean.shape)
    ]
    diameter = 2.0 * math.sqrt(total / math.pi) if dims == 2 else 2.0 * (3.0 * total / (4.0 * math.pi)) ** (1 / 3)
    side = max(1, math.floor(float(factor) * diameter + 0.5))
    window = []
    for c, size in zip(centre, mean.shape):
        if side >= size:
            window.append(slice(0, size))
            continue
        start = min(max(math.floor(c - (side - 1) / 2 + 0.5), 0), size - side)
        window.append(slice(start, start + side))
    return tuple(window)


def crop_case(case: Case, window: Sequence[slice], shape: int | Sequence[int]) -> Case:
    """``case`` cut to ``window`` and resampled to ``shape``; the image, every annotator's labels and the affine follow.

    The cut keeps the voxel grid (the affine's origin moves to the window's first voxel); the resampling is
    :func:`~selectseg.data.resize.resample_case` (image area-averaged when shrinking, bilinear/trilinear when growing;
    labels nearest).

    Args:
        case: the case, image ``(C, *S)``, labels ``(A, *S)`` or None.
        window: one slice per spatial axis, each with step 1 and bounds inside the image (e.g. from
            :func:`annotation_window`).
        shape: the output spatial shape: one int for every axis, or one per axis.

    Returns:
        A new :class:`Case`: image ``(C, *shape)`` float32, labels ``(A, *shape)`` int64, the affine of the new grid;
        the source header is dropped.

    Raises:
        TypeError: if ``case`` is not a Case.
        ValueError: if ``window`` does not hold one in-bounds, non-empty slice of step 1 per spatial axis, or ``shape``
            is not positive ints.

    Example:
        >>> from selectseg.data import make_synthetic_dataset
        >>> case = make_synthetic_dataset(num_cases=1, size=32)[0]
        >>> small = crop_case(case, (slice(8, 24), slice(0, 16)), 8)
        >>> small.spatial_shape, small.spacing
        ((8, 8), (2.0, 2.0))
    """
    if not isinstance(case, Case):
        raise TypeError(f"Expected `case` to be a Case, but got {type(case).__name__}.")
    dims = case.spatial_dims
    slices = tuple(window)
    bounds = [_bounds(s, size) for s, size in zip(slices, case.spatial_shape)]
    if len(slices) != dims or any(b is None for b in bounds):
        raise ValueError(
            f"Expected `window` to hold {dims} slices with explicit bounds inside the image {case.spatial_shape} "
            f"(start < stop, step 1), but got {slices!r}."
        )
    starts = [b[0] for b in bounds if b is not None]
    stops = [b[1] for b in bounds if b is not None]
    target: Sequence[int] = (shape,) * dims if isinstance(shape, (int, np.integer)) else shape
    index = (slice(None), *(slice(a, b) for a, b in zip(starts, stops)))
    affine = case.affine.copy()
    affine[:3, 3] = case.affine[:3, :dims] @ np.array(starts, dtype=np.float64) + case.affine[:3, 3]
    cut = dataclasses.replace(
        case,
        image=np.ascontiguousarray(case.image[index]),
        labels=None if case.labels is None else np.ascontiguousarray(case.labels[index]),
        affine=affine,
        header=None,
    )
    return resample_case(cut, target)


def _bounds(window: object, size: int) -> tuple[int, int] | None:
    """``(start, stop)`` of a slice with explicit in-bounds ends and step 1, else None."""
    if not isinstance(window, slice) or window.step not in (None, 1):
        return None
    start, stop = window.start, window.stop
    if not (isinstance(start, (int, np.integer)) and isinstance(stop, (int, np.integer)) and 0 <= start < stop <= size):
        return None
    return int(start), int(stop)


def crop_to_annotations(
    case: Case,
    shape: int | Sequence[int],
    *,
    factor: float = DEFAULT_CROP_FACTOR,
    classes: Sequence[int] | None = None,
) -> Case:
    """``case`` cut to the window around its annotators' structure (:func:`annotation_window`) and resampled to
    ``shape`` (:func:`crop_case`).

    Args:
        case: a case with labels ``(A, *S)``.
        shape: the output spatial shape (one int for every axis, or one per axis).
        factor: window side / equivalent diameter of the annotators' mean structure.
        classes: the label values that form the structure (e.g. RIGA's rim and cup for the disc); None = every
            label above 0.

    Raises:
        TypeError: if ``case`` is not a Case.
        ValueError: if the case has no labels, the structure is empty in every annotator's map, or as
            :func:`annotation_window` and :func:`crop_case`.

    Example:
        >>> from selectseg.data import make_synthetic_dataset
        >>> case = make_synthetic_dataset(num_cases=1, size=64)[0]
        >>> crop_to_annotations(case, 32).spatial_shape
        (32, 32)
    """
    if not isinstance(case, Case):
        raise TypeError(f"Expected `case` to be a Case, but got {type(case).__name__}.")
    if case.labels is None:
        raise ValueError(f"Expected case {case.case_id!r} to have annotators' labels to crop around, but got None.")
    masks = case.labels > 0 if classes is None else np.isin(case.labels, list(classes))
    if not masks.any():
        raise ValueError(
            f"Expected the annotators of case {case.case_id!r} to mark the structure "
            f"({'labels > 0' if classes is None else f'classes {list(classes)}'}), but every map is empty."
        )
    return crop_case(case, annotation_window(masks, factor=factor), shape)
