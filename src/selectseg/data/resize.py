"""Resample cases to a coarser grid: for experiments on a small budget (CPU) and for memory (:func:`resize_case`); to
any grid of the same extent (:func:`resample_case`, used by the crops of :mod:`selectseg.data.crop`).

Images are area-averaged (MONAI ``Resize``, ``mode="area"``), label maps take the nearest voxel (``"nearest-exact"``),
and the affine is updated so that every new voxel centre maps to the world position of the region it averages: the
geometry stays right when predictions are written back as NIfTI.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch
from monai.transforms import Resize

from .case import Case, SegmentationDataset

__all__ = ["resample_case", "resize_case", "resize_dataset"]


def _factors(scale: float | Sequence[float], spatial_dims: int) -> tuple[float, ...]:
    values = (scale,) * spatial_dims if isinstance(scale, (int, float, np.integer, np.floating)) else tuple(scale)
    if any(isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) for v in values):
        raise TypeError(f"Expected `scale` to be a number or a sequence of numbers, but got {scale!r}.")
    if len(values) != spatial_dims or not all(0.0 < float(v) <= 1.0 for v in values):
        raise ValueError(
            f"Expected `scale` to be one number or {spatial_dims} numbers, each in (0, 1], but got {scale!r}."
        )
    return tuple(float(v) for v in values)


def resize_case(case: Case, scale: float | Sequence[float]) -> Case:
    """``case`` resampled by ``scale`` per spatial axis (new size ``max(1, round(size * scale))``).

    Args:
        case: the case; its image ``(C, *S)`` and labels ``(A, *S)``.
        scale: one factor for every axis, or one per spatial axis, each in (0, 1] (1 = unchanged axis).

    Returns:
        A new :class:`Case` with image ``(C, *S')`` float32, labels ``(A, *S')`` int64 and the affine of the new grid
        (voxel size ``size / new size`` times the old one, origin at the centre of the first new voxel). The source
        header is dropped (it describes the old grid).

    Raises:
        TypeError: if ``case`` is not a Case or ``scale`` is not numeric.
        ValueError: if ``scale`` has the wrong length or a factor outside (0, 1].

    Example:
        >>> from selectseg.data import make_synthetic_dataset
        >>> case = make_synthetic_dataset(num_cases=1, size=32)[0]
        >>> small = resize_case(case, 0.5)
        >>> small.spatial_shape, small.spacing
        ((16, 16), (2.0, 2.0))
    """
    if not isinstance(case, Case):
        raise TypeError(f"Expected `case` to be a Case, but got {type(case).__name__}.")
    factors = _factors(scale, case.spatial_dims)
    old = case.spatial_shape
    new = tuple(max(1, round(s * f)) for s, f in zip(old, factors))
    if new == old:
        return case
    return resample_case(case, new)


def resample_case(case: Case, shape: Sequence[int]) -> Case:
    """``case`` resampled onto a grid of ``shape`` covering the same extent (coarser or finer, per axis).

    The image is area-averaged when no axis grows (MONAI ``Resize``, ``mode="area"``, as :func:`resize_case`) and
    interpolated (bilinear in 2D, trilinear in 3D, ``align_corners=False``) when one does; label maps take the
    nearest voxel (``"nearest-exact"``). New voxel ``i`` covers old voxels ``[i * step, (i + 1) * step)``, ``step =
    old size / new size`` per axis, and the affine maps it to the centre of that region.

    Args:
        case: the case; its image ``(C, *S)`` and labels ``(A, *S)``.
        shape: the new spatial shape, one positive int per spatial axis.

    Returns:
        A new :class:`Case` (the same object when ``shape`` is the current one) with image ``(C, *shape)``
        float32, labels ``(A, *shape)`` int64 and the affine of the new grid; the source header is dropped.

    Raises:
        TypeError: if ``case`` is not a Case.
        ValueError: if ``shape`` does not hold one positive int per spatial axis.

    Example:
        >>> from selectseg.data import make_synthetic_dataset
        >>> case = make_synthetic_dataset(num_cases=1, size=32)[0]
        >>> resample_case(case, (64, 16)).spacing
        (0.5, 2.0)
    """
    if not isinstance(case, Case):
        raise TypeError(f"Expected `case` to be a Case, but got {type(case).__name__}.")
    new = tuple(shape) if isinstance(shape, (tuple, list)) else ()
    if len(new) != case.spatial_dims or any(
        isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in new
    ):
        raise ValueError(
            f"Expected `shape` to hold {case.spatial_dims} positive ints (one per spatial axis), but got {shape!r}."
        )
    new = tuple(int(s) for s in new)
    old = case.spatial_shape
    if new == old:
        return case
    shrinking = all(n <= o for n, o in zip(new, old))
    mode = "area" if shrinking else ("bilinear" if case.spatial_dims == 2 else "trilinear")
    image = Resize(new, mode=mode, align_corners=None if shrinking else False)(torch.from_numpy(case.image))
    labels = None
    if case.labels is not None:
        resized = Resize(new, mode="nearest-exact")(torch.from_numpy(case.labels).float())
        labels = np.asarray(resized).round().astype(np.int64)
    step = np.array([o / n for o, n in zip(old, new)])  # old voxels per new voxel, per axis
    affine = case.affine.copy()
    dims = case.spatial_dims
    affine[:3, :dims] = case.affine[:3, :dims] * step
    # new voxel i covers old voxels [i*step, (i+1)*step); its centre is at old index (i + 0.5) * step - 0.5
    affine[:3, 3] = case.affine[:3, :dims] @ ((step - 1.0) / 2.0) + case.affine[:3, 3]
    return dataclasses.replace(
        case, image=np.asarray(image, dtype=np.float32), labels=labels, affine=affine, header=None
    )


def resize_dataset(dataset: SegmentationDataset, scale: float | Sequence[float]) -> SegmentationDataset:
    """Every case of ``dataset`` through :func:`resize_case` (same info, same order)."""
    if not isinstance(dataset, SegmentationDataset):
        raise TypeError(f"Expected `dataset` to be a SegmentationDataset, but got {type(dataset).__name__}.")
    return SegmentationDataset(dataset.info, tuple(resize_case(case, scale) for case in dataset))
