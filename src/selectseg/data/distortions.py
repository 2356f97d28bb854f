"""Deterministic image distortions for the out-of-distribution protocol (noise, blur, contrast reduction).

:func:`distort` corrupts one image ``(C, *S)``; :func:`distort_fraction` corrupts a seeded subset of a list of
images and says which. Every distortion acts per channel and over the spatial axes only, keeps the input's shape,
dtype and type (numpy array or torch tensor, on its device) and never modifies the input. ``severity`` in [0, 1]
scales the strength; severity 0 returns an unchanged copy.

- ``"noise"``: add Gaussian noise of standard deviation ``severity * NOISE_STD * std_c`` (``std_c``: the channel's
  standard deviation; a constant channel gets no noise), drawn from ``numpy.random.default_rng(seed)``.
- ``"blur"``: ``scipy.ndimage.gaussian_filter`` with ``sigma = severity * BLUR_MAX_SIGMA`` pixels on every spatial
  axis and 0 on the channel axis (``mode="reflect"``, truncated at 4 sigma).
- ``"contrast"``: pull each channel towards its mean, ``mean_c + (1 - severity * CONTRAST_MAX_REDUCTION)
  (x - mean_c)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from scipy import ndimage

from .._validation import check_positive_int, look_up_option

__all__ = [
    "BLUR_MAX_SIGMA",
    "CONTRAST_MAX_REDUCTION",
    "DISTORTIONS",
    "NOISE_STD",
    "DistortedImages",
    "distort",
    "distort_fraction",
]

DISTORTIONS = ("noise", "blur", "contrast")
NOISE_STD = 1.0
"""Noise standard deviation at severity 1, in units of the channel's standard deviation."""
BLUR_MAX_SIGMA = 3.0
"""Gaussian blur sigma at severity 1, in pixels."""
CONTRAST_MAX_REDUCTION = 0.9
"""Fraction of the contrast removed at severity 1 (0.9: 10 % of the deviation from the mean is left)."""


class DistortedImages(NamedTuple):
    """Images of which a seeded subset was distorted.

    Attributes:
        images: the N images in their order; undistorted ones are the input objects themselves (not copied).
        distorted: ``(N,)`` bool, True where the image was distorted.
        kinds: the distortion applied to each image, None where none was.
    """

    images: list[Any]
    distorted: np.ndarray
    kinds: list[str | None]


def distort(image: np.ndarray | torch.Tensor, kind: str = "noise", severity: float = 0.5, *, seed: int = 0) -> Any:
    """Distort one image deterministically (Gaussian noise, Gaussian blur or contrast reduction).

    Args:
        image: one image, channels first, floating point.
        kind: ``"noise"``, ``"blur"`` or ``"contrast"`` (see the module docstring for the definitions).
        severity: strength in [0, 1]; 0 is the identity (an unchanged copy).
        seed: seed of the noise (``numpy.random.default_rng(seed)``); the same seed gives the same image.

    Shape:
        image ``(C, *S)`` -> ``(C, *S)``, same dtype and type (numpy array or torch tensor).

    Returns:
        The distorted copy.

    Raises:
        TypeError: if ``image`` is not a floating-point numpy array or torch tensor, ``kind`` is not a string,
            ``severity`` is not a number or ``seed`` not an int.
        ValueError: if ``image`` has fewer than 2 axes, ``kind`` is unknown, ``severity`` lies outside [0, 1] or
            ``seed`` is negative.

    Example:
        >>> image = np.array([[0.0, 1.0, 2.0, 3.0]], dtype=np.float32)
        >>> distort(image, "contrast", 1.0).astype(np.float64).round(2).tolist()  # 10 % left around the mean 1.5
        [[1.35, 1.45, 1.55, 1.65]]
        >>> np.array_equal(distort(image, "noise", 0.3, seed=1), distort(image, "noise", 0.3, seed=1))
        True
    """
    kind = look_up_option("kind", kind, DISTORTIONS)
    level = _check_severity(severity)
    seed = check_positive_int("seed", seed, minimum=0)
    array, restore = _to_array(image)
    return restore(_distort(array, kind, level, seed))


def distort_fraction(
    images: Sequence[np.ndarray | torch.Tensor],
    fraction: float,
    *,
    kinds: Sequence[str] = DISTORTIONS,
    severity: float = 0.5,
    seed: int = 0,
) -> DistortedImages:
    """Distort a seeded subset of ``round(fraction * N)`` images, each by one kind drawn from ``kinds``.

    With ``rng = numpy.random.default_rng(seed)``: the subset is ``rng.choice(N, count, replace=False)`` with
    ``count = floor(fraction * N + 0.5)``; then, for each chosen image in index order, its kind is
    ``kinds[rng.integers(len(kinds))]`` and its noise seed ``rng.integers(2**32)``. The same arguments give the
    same images and flags.

    Args:
        images: the images, each channels first, floating point.
        fraction: fraction of the images to distort, in [0, 1] (the OOD protocol uses 0, 0.5 and 1).
        kinds: the distortions to draw from (each ``"noise"``, ``"blur"`` or ``"contrast"``).
        severity: strength of every distortion, in [0, 1].
        seed: seed of the subset, the kinds and the noise.

    Shape:
        N images ``(C, *S_i)``. Returns N images of the same shapes and a ``(N,)`` bool array.

    Returns:
        :class:`DistortedImages` ``(images, distorted, kinds)``.

    Raises:
        TypeError: if ``images`` is not a list or tuple, an image is not a floating-point array or tensor, a kind is
            not a string, ``fraction``/``severity`` is not a number or ``seed`` is not an int.
        ValueError: if ``images`` or ``kinds`` is empty, a kind is unknown, ``fraction`` or ``severity`` lies outside
            [0, 1], an image has fewer than 2 axes, or ``seed`` is negative.

    Example:
        >>> images = [np.ones((1, 4, 4), np.float32) * i for i in range(4)]
        >>> out = distort_fraction(images, 0.5, kinds=["blur"], seed=3)
        >>> int(out.distorted.sum()), sorted(set(out.kinds) - {None})
        (2, ['blur'])
    """
    if not isinstance(images, (list, tuple)):
        raise TypeError(f"Expected `images` to be a list of per-image arrays, but got {type(images).__name__}.")
    if len(images) == 0:
        raise ValueError("Expected `images` to hold at least one image, but got an empty list.")
    share = _check_unit_float("fraction", fraction)
    level = _check_severity(severity)
    seed = check_positive_int("seed", seed, minimum=0)
    if isinstance(kinds, str) or not isinstance(kinds, Sequence):
        raise TypeError(f"Expected `kinds` to be a list of distortion names, but got {type(kinds).__name__}.")
    if len(kinds) == 0:
        raise ValueError(f"Expected `kinds` to hold at least one of {list(DISTORTIONS)}, but got none.")
    names = [look_up_option("kinds", k, DISTORTIONS) for k in kinds]
    arrays = [_to_array(image) for image in images]  # validates every image before any work

    n = len(images)
    rng = np.random.default_rng(seed)
    count = math.floor(share * n + 0.5)
    chosen = np.zeros(n, dtype=bool)
    chosen[rng.choice(n, size=count, replace=False)] = True
    out: list[Any] = list(images)
    applied: list[str | None] = [None] * n
    for i in np.flatnonzero(chosen):
        kind = names[int(rng.integers(len(names)))]
        child_seed = int(rng.integers(2**32))
        array, restore = arrays[i]
        out[i] = restore(_distort(array, kind, level, child_seed))
        applied[i] = kind
    return DistortedImages(out, chosen, applied)


def _distort(array: np.ndarray, kind: str, severity: float, seed: int) -> np.ndarray:
    """Distorted float64 copy of ``array`` ``(C, *S)``."""
    x = array.astype(np.float64)  # a copy
    if severity == 0:
        return x
    spatial = tuple(range(1, x.ndim))
    if kind == "noise":
        std = x.std(axis=spatial, keepdims=True)
        noise = np.random.default_rng(seed).standard_normal(x.shape)
        return x + severity * NOISE_STD * std * noise
    if kind == "blur":
        sigma = (0.0,) + (severity * BLUR_MAX_SIGMA,) * (x.ndim - 1)
        return np.asarray(ndimage.gaussian_filter(x, sigma=sigma, mode="reflect"))
    mean = x.mean(axis=spatial, keepdims=True)
    return mean + (1.0 - severity * CONTRAST_MAX_REDUCTION) * (x - mean)


def _to_array(image: Any) -> tuple[np.ndarray, Any]:
    """The image as numpy and a function that casts a float64 result back to the input's dtype and type."""
    if isinstance(image, torch.Tensor):
        if not image.is_floating_point():
            raise TypeError(f"Expected `image` to be a floating-point array, but got dtype {image.dtype}.")
        dtype, device = image.dtype, image.device
        array = image.detach().cpu().to(torch.float64).numpy()

        def restore_tensor(result: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(result).to(device=device, dtype=dtype)

        restore: Any = restore_tensor
    elif isinstance(image, np.ndarray):
        if not np.issubdtype(image.dtype, np.floating):
            raise TypeError(f"Expected `image` to be a floating-point array, but got dtype {image.dtype}.")
        array, target = image, image.dtype

        def restore_array(result: np.ndarray) -> np.ndarray:
            return result.astype(target, copy=False)

        restore = restore_array
    else:
        raise TypeError(f"Expected `image` to be a numpy array or torch tensor, but got {type(image).__name__}.")
    if array.ndim < 2:
        raise ValueError(f"Expected `image` of shape (C, *S), but got shape {tuple(array.shape)}.")
    return array, restore


def _check_unit_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"Expected `{name}` to be a float in [0, 1], but got {type(value).__name__}.")
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"Expected `{name}` to be a float in [0, 1], but got {value}.")
    return float(value)


def _check_severity(severity: Any) -> float:
    return _check_unit_float("severity", severity)
