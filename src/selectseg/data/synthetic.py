"""A synthetic multi-annotator segmentation dataset with ambiguous boundaries (2-D or 3-D, no download).

The generative model, per case (all fields smooth, drawn on a coarse grid and upsampled with cubic splines):

1. **Latent field.** One blob (two with probability 0.3): an ellipse (ellipsoid in 3-D) with random centre,
   orientation and semi-axes (mean radius ``R`` = 17-26 % of the smallest side in 2-D, 22-32 % in 3-D), giving
   ``f = 1 - d`` where ``d`` is the normalised elliptic distance to the centre (``f = 0`` on the ellipse, ``1`` at
   its centre; several blobs take the maximum), plus a low-frequency perturbation of amplitude 0.12 that makes
   the outline irregular (a random radius perturbation of about 12 %). One unit of ``f`` is about ``R`` pixels.
2. **Reference structures.** Class ``k`` (``1 <= k < K``) is the region ``f > t_k`` with ``t_1 = 0`` and the
   levels ``t_k`` rising to 0.45: the classes are nested (for ``K = 3`` class 2 lies inside class 1, like the
   optic cup inside the disc, with about half its radius).
3. **Image.** Each channel is ``c(x) * sum_k a_k * sigmoid((f - t_k) R / w) + bias(x) + noise``: soft steps of
   width ``w = 0.8`` pixel at every level, weights ``a_k`` (class 1: 1, inner classes: 0.8; random in [0.4, 1.2]
   for channels beyond the first), a contrast field ``c(x)`` in [0.12, 1] that fades parts of the boundary out
   (there the boundary is ambiguous), a smooth bias of standard deviation 0.2 and Gaussian noise of standard
   deviation 0.15.
4. **Annotators.** Annotator ``a`` labels the levels of ``f + o_a(x)``, where the offset ``o_a`` is a smooth
   field of standard deviation ``0.05 + 0.15 (1 - c(x))`` plus a global under/over-segmentation bias of
   standard deviation 0.03 (units of ``f``, i.e. of ``R``): at 64 x 64 (``R`` about 14 pixels) boundaries jitter
   by under a pixel where the contrast is high and by 2-3 pixels where it fades. Annotators share the latent
   field, so they agree mostly (mean pairwise Dice of the outer structure about 0.88 in 2-D and 0.83 at 32^3;
   lower for the smaller inner structures) without being identical.

A small U-Net trained for one minute on one CPU thread (64 training cases, 64 x 64, cross-entropy against a
random annotator) reaches a test Dice of about 0.85 against the annotators for ``K = 2``.

Each case is drawn from ``np.random.default_rng([seed, split_index, case_index])``: cases do not depend on
``num_cases``, and the ``"train"`` and ``"test"`` splits are different images from the same distribution.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from .._validation import check_positive_int, look_up_option
from .case import Case, DatasetInfo, SegmentationDataset

__all__ = ["make_synthetic_dataset"]

_SPLITS = ("train", "test")
_MAX_CLASSES = 4
_RADIUS = {2: (0.17, 0.26), 3: (0.22, 0.32)}  # mean blob radius / smallest side
_CLASS_NAMES = {2: ("structure",), 3: ("outer", "inner"), 4: ("outer", "middle", "inner")}


def make_synthetic_dataset(
    *,
    split: str = "train",
    num_cases: int = 16,
    spatial_dims: int = 2,
    size: int | Sequence[int] = 64,
    num_classes: int = 2,
    num_annotators: int = 3,
    in_channels: int = 1,
    seed: int = 0,
) -> SegmentationDataset:
    """Generate a deterministic synthetic dataset of noisy images with ambiguous boundaries and several annotators.

    See the module docstring for the model. A 64 x 64 case takes about 2 ms, a 32^3 case about 7 ms.

    Args:
        split: ``"train"`` or ``"test"``: different images from the same distribution.
        num_cases: number of cases (``N``); case ``i`` is the same whatever ``num_cases``.
        spatial_dims: 2 or 3.
        size: the spatial shape, one int for a square/cube or one int per axis (each at least 16).
        num_classes: ``K`` in 2..4, nested structures (background, outer, ..., inner).
        num_annotators: ``A``, label maps per case.
        in_channels: ``C``, image channels (the same structures with different contrasts).
        seed: non-negative seed.

    Shape:
        Each case: image ``(C, *S)`` float32, labels ``(A, *S)`` int64 in ``[0, K)``, ``*S = size``.

    Returns:
        A :class:`SegmentationDataset` with case ids ``synth_<split>_000, ...``, identity affines and
        ``file_kind="synthetic"``; ``info.format`` is ``"synthetic"``.

    Raises:
        TypeError: if an integer argument is not an int, or ``split`` is not a string.
        ValueError: if ``split`` is unknown, ``spatial_dims`` is not 2 or 3, ``num_classes`` is outside 2..4, a
            count or ``seed`` is out of range, or ``size`` has the wrong length or an axis below 16.

    Example:
        >>> ds = make_synthetic_dataset(num_cases=2, size=32, num_classes=3)
        >>> len(ds), ds[0].case_id, ds[0].image.shape, ds[0].labels.shape, ds.info.class_names
        (2, 'synth_train_000', (1, 32, 32), (3, 32, 32), ('background', 'outer', 'inner'))
    """
    split = look_up_option("split", split, _SPLITS)
    num_cases = check_positive_int("num_cases", num_cases)
    spatial_dims = check_positive_int("spatial_dims", spatial_dims, minimum=2)
    if spatial_dims > 3:
        raise ValueError(f"Expected `spatial_dims` to be 2 or 3, but got {spatial_dims}.")
    num_classes = check_positive_int("num_classes", num_classes, minimum=2)
    if num_classes > _MAX_CLASSES:
        raise ValueError(f"Expected `num_classes` to be in 2..{_MAX_CLASSES}, but got {num_classes}.")
    num_annotators = check_positive_int("num_annotators", num_annotators)
    in_channels = check_positive_int("in_channels", in_channels)
    seed = check_positive_int("seed", seed, minimum=0)
    shape = _check_size(size, spatial_dims)
    info = DatasetInfo(
        name="synthetic",
        class_names=("background", *_CLASS_NAMES[num_classes]),
        channel_names=("intensity",) if in_channels == 1 else tuple(f"channel_{c}" for c in range(in_channels)),
        spatial_dims=spatial_dims,
        format="synthetic",
    )
    split_index = _SPLITS.index(split)
    cases = tuple(
        _make_case(
            np.random.default_rng([seed, split_index, i]),
            f"synth_{split}_{i:03d}",
            shape,
            num_classes,
            num_annotators,
            in_channels,
        )
        for i in range(num_cases)
    )
    return SegmentationDataset(info, cases)


def _check_size(size: Any, spatial_dims: int) -> tuple[int, ...]:
    values = (size,) * spatial_dims if isinstance(size, (int, np.integer)) and not isinstance(size, bool) else size
    if not isinstance(values, Sequence) or isinstance(values, str):
        raise TypeError(f"Expected `size` to be an int or a sequence of ints, but got {type(size).__name__}.")
    shape = tuple(check_positive_int("size", s, minimum=16) for s in values)
    if len(shape) != spatial_dims:
        raise ValueError(f"Expected `size` to have {spatial_dims} entries (spatial_dims), but got {len(shape)}.")
    return shape


def _smooth_field(rng: np.random.Generator, shape: tuple[int, ...], coarse: int) -> np.ndarray:
    """A smooth random field of zero mean and unit standard deviation: cubic upsampling of coarse white noise.

    Equal to ``ndimage.zoom(grid, order=3)`` but computed axis by axis with cached matrices (spline interpolation
    is separable), which is ten times faster in 3-D.
    """
    field = rng.standard_normal((coarse,) * len(shape))
    for axis, size in enumerate(shape):
        field = np.moveaxis(np.tensordot(_upsampling_matrix(size, coarse), field, axes=([1], [axis])), 0, axis)
    field = field.astype(np.float32)
    field -= field.mean()
    return field / max(float(field.std()), 1e-6)


@functools.lru_cache(maxsize=32)
def _upsampling_matrix(size: int, coarse: int) -> np.ndarray:
    """``(size, coarse)`` matrix of cubic-spline upsampling from ``coarse`` to ``size`` samples (read-only)."""
    matrix = ndimage.zoom(np.eye(coarse), (size / coarse, 1), order=3, mode="mirror", grid_mode=True)[:size]
    matrix.flags.writeable = False
    return matrix


def _random_rotation(rng: np.random.Generator, dims: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((dims, dims)))
    return q * np.sign(np.diag(r))


def _make_case(
    rng: np.random.Generator,
    case_id: str,
    shape: tuple[int, ...],
    num_classes: int,
    num_annotators: int,
    in_channels: int,
) -> Case:
    dims = len(shape)
    extent = np.array(shape, dtype=np.float64)
    coords = np.indices(shape, dtype=np.float64).reshape(dims, -1)

    # 1. latent field f = 1 - normalised elliptic distance (max over blobs) + low-frequency perturbation
    latent: np.ndarray = np.full(coords.shape[1], -np.inf)
    num_blobs = 1 if rng.random() < 0.7 else 2
    radius = 0.0
    for b in range(num_blobs):
        mean_radius = min(shape) * rng.uniform(*_RADIUS[dims]) * (1.0 if b == 0 else 0.7)
        semi_axes = mean_radius * rng.uniform(0.8, 1.25, size=dims)
        margin = np.minimum(1.3 * semi_axes.max(), 0.45 * extent)
        centre = margin + rng.random(dims) * (extent - 2 * margin)
        local = _random_rotation(rng, dims).T @ (coords - centre[:, None])
        distance = np.sqrt(((local / semi_axes[:, None]) ** 2).sum(axis=0))
        latent = np.maximum(latent, 1.0 - distance)
        radius = radius or mean_radius
    latent = latent.reshape(shape).astype(np.float32) + np.float32(0.12) * _smooth_field(rng, shape, 5)

    # 2. nested levels t_1 = 0 < ... <= 0.45
    levels = [0.0] if num_classes == 2 else [0.45 * k / (num_classes - 2) for k in range(num_classes - 1)]

    # 3. image: contrast-modulated soft steps + bias + noise
    contrast = np.clip(0.75 + 0.4 * _smooth_field(rng, shape, 4), 0.12, 1.0)
    steps = [_sigmoid((latent - t) * (radius / 0.8)) for t in levels]
    channels = []
    for c in range(in_channels):
        weights = [1.0] + [0.8] * (len(levels) - 1) if c == 0 else list(rng.uniform(0.4, 1.2, size=len(levels)))
        foreground = np.zeros(shape, dtype=np.float32)
        for weight, step in zip(weights, steps):
            foreground += np.float32(weight) * step
        bias = 0.2 * _smooth_field(rng, shape, 3)
        noise = rng.standard_normal(shape).astype(np.float32) * 0.15
        channels.append(contrast * foreground + bias + noise)
    image = np.stack(channels).astype(np.float32)

    # 4. annotators: levels of f + smooth offset (in units of the radius), larger where the contrast fades
    jitter = 0.05 + 0.15 * (1.0 - contrast)
    labels = np.empty((num_annotators, *shape), dtype=np.int64)
    for a in range(num_annotators):
        offset = _smooth_field(rng, shape, 6) * jitter + np.float32(rng.normal(0.0, 0.03))
        observed = latent + offset
        labels[a] = 0
        for t in levels:
            labels[a] += observed > t
    return Case(case_id, image, labels, np.eye(4), None, None, "synthetic")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (0.5 * (1.0 + np.tanh(0.5 * x))).astype(np.float32)
