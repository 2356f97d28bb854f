"""MONAI dictionary transforms: random training patches with augmentation, and the matching evaluation transforms.

Both act on dicts ``{"image": (C, *S) float32, "label": (A, *S) int64}`` (numpy arrays or tensors; other keys pass
through) and return plain ``torch.Tensor`` values: image float32, label int64. The input arrays are copied, never
modified. Labels are never interpolated
(padding with 0, cropping, flips and 90-degree rotations only), so they keep their integer values, and all
annotators' maps are cropped and flipped together with the image.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.transforms import (
    Compose,
    EnsureTyped,
    MapTransform,
    NormalizeIntensityd,
    RandFlipd,
    Randomizable,
    RandRotate90d,
    RandScaleIntensityd,
    RandShiftIntensityd,
    SpatialPadd,
)

from .._validation import check_positive_int

__all__ = ["eval_transforms", "train_transforms"]

_KEYS = ("image", "label")


class _CopyToTensord(MapTransform):
    """Convert ``keys`` to new tensors, copying: later MONAI transforms (``NormalizeIntensityd``) work in place and
    must never change the caller's arrays (for example a :class:`~selectseg.data.Case` image reused every epoch)."""

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        out = dict(data)
        for key in self.key_iterator(out):
            value = out[key]
            out[key] = value.detach().clone() if isinstance(value, torch.Tensor) else torch.tensor(np.asarray(value))
        return out


class _RandForegroundCropd(Randomizable, MapTransform):
    """Crop ``keys`` to ``patch_size`` at one random position shared by all keys (inputs at least patch-sized).

    With probability ``foreground_fraction`` the patch is centred, as far as the image allows, on a random voxel that
    some annotator labels as foreground (``label > 0``); otherwise (or when there is no foreground) its position is
    uniform. This is nnU-Net's foreground oversampling; unlike MONAI's ``RandCropByPosNegLabeld`` it returns one
    dict, not a list of samples, and does not warn on all-background labels.
    """

    def __init__(self, keys: Sequence[str], label_key: str, patch_size: tuple[int, ...], foreground_fraction: float):
        MapTransform.__init__(self, keys)
        self.label_key = label_key
        self.patch_size = patch_size
        self.foreground_fraction = foreground_fraction
        self._start: tuple[int, ...] = ()

    def randomize(self, label: torch.Tensor) -> None:
        shape = tuple(int(s) for s in label.shape[1:])
        room = [s - p for s, p in zip(shape, self.patch_size)]
        use_foreground = self.R.rand() < self.foreground_fraction
        uniform = [int(self.R.randint(r + 1)) for r in room]
        self._start = tuple(uniform)
        if use_foreground:
            foreground = torch.nonzero(torch.as_tensor(label).reshape(label.shape[0], -1).any(dim=0)).flatten()
            if len(foreground):
                index = int(foreground[int(self.R.randint(len(foreground)))])
                centre = np.unravel_index(index, shape)
                self._start = tuple(min(max(int(c) - p // 2, 0), r) for c, p, r in zip(centre, self.patch_size, room))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        out = dict(data)
        self.randomize(out[self.label_key])
        window = (slice(None), *(slice(s, s + p) for s, p in zip(self._start, self.patch_size)))
        for key in self.key_iterator(out):
            out[key] = out[key][window].clone()
        return out


def train_transforms(
    *,
    spatial_dims: int,
    patch_size: Sequence[int],
    augment: bool = True,
    foreground_fraction: float = 1 / 3,
    normalize: bool = True,
) -> Compose:
    """Random training patches: normalise, pad, crop (with foreground oversampling) and augment.

    Steps, in order:

    1. (``normalize``) z-score each image channel over the whole image (``NormalizeIntensityd(channel_wise=True)``;
       the loaders do not normalise);
    2. pad image and labels with zeros (``SpatialPadd``, symmetric) to at least ``patch_size``;
    3. crop one ``patch_size`` patch, centred on a foreground voxel with probability ``foreground_fraction``;
    4. (``augment``) flip along each spatial axis (probability 0.5 each), rotate by a random multiple of 90 degrees
       in the plane of the last two axes (probability 0.5; only when those two patch sides are equal, so the
       shape stays ``patch_size``), scale intensities by ``1 + U(-0.1, 0.1)`` and shift them by ``U(-0.1, 0.1)``
       (probability 0.5 each; standard deviations after step 1).

    The result is deterministic after ``compose.set_random_state(seed)``.

    Args:
        spatial_dims: 2 or 3.
        patch_size: patch shape, one entry per spatial axis.
        augment: whether to apply step 4.
        foreground_fraction: probability, in [0, 1], of centring the patch on a foreground voxel.
        normalize: whether to apply step 1.

    Shape:
        Input ``{"image": (C, *S), "label": (A, *S)}``; output ``{"image": (C, *patch_size) float32,
        "label": (A, *patch_size) int64}``.

    Returns:
        A MONAI ``Compose``.

    Raises:
        TypeError: if ``patch_size`` is not a sequence of ints or ``foreground_fraction`` is not a number.
        ValueError: if ``spatial_dims`` is not 2 or 3, ``patch_size`` has the wrong length or a side below 1, or
            ``foreground_fraction`` is outside [0, 1].

    Example:
        >>> t = train_transforms(spatial_dims=2, patch_size=(32, 32)).set_random_state(0)
        >>> out = t({"image": np.zeros((1, 20, 40), np.float32), "label": np.zeros((3, 20, 40), np.int64)})
        >>> tuple(out["image"].shape), out["image"].dtype, tuple(out["label"].shape), out["label"].dtype
        ((1, 32, 32), torch.float32, (3, 32, 32), torch.int64)
    """
    patch = _check_patch_size(spatial_dims, patch_size)
    if isinstance(foreground_fraction, bool) or not isinstance(foreground_fraction, (int, float)):
        raise TypeError(f"Expected `foreground_fraction` to be a float, but got {type(foreground_fraction).__name__}.")
    if not 0.0 <= foreground_fraction <= 1.0:
        raise ValueError(f"Expected `foreground_fraction` to be in [0, 1], but got {foreground_fraction}.")
    keys = list(_KEYS)
    transforms: list[Any] = [_CopyToTensord(keys)]
    if normalize:
        transforms.append(NormalizeIntensityd(keys="image", channel_wise=True))
    transforms += [
        SpatialPadd(keys=keys, spatial_size=patch, mode="constant"),
        _RandForegroundCropd(keys, "label", patch, float(foreground_fraction)),
    ]
    if augment:
        transforms += [RandFlipd(keys=keys, prob=0.5, spatial_axis=axis) for axis in range(spatial_dims)]
        if patch[-1] == patch[-2]:
            transforms.append(
                RandRotate90d(keys=keys, prob=0.5, max_k=3, spatial_axes=(spatial_dims - 2, spatial_dims - 1))
            )
        transforms += [
            RandScaleIntensityd(keys="image", factors=0.1, prob=0.5),
            RandShiftIntensityd(keys="image", offsets=0.1, prob=0.5),
        ]
    transforms += _final_types(allow_missing_keys=False)
    return Compose(transforms)


def eval_transforms(*, normalize: bool = True) -> Compose:
    """The evaluation counterpart of :func:`train_transforms`: the same normalisation, no cropping, no randomness.

    Args:
        normalize: whether to z-score each image channel over the image (as :func:`train_transforms` does).

    Shape:
        Input ``{"image": (C, *S)}``, optionally ``"label": (A, *S)``; output the same shapes, image float32 and
        label int64 tensors.

    Returns:
        A MONAI ``Compose``.

    Example:
        >>> out = eval_transforms()({"image": np.arange(8, dtype=np.float32).reshape(1, 2, 4)})
        >>> tuple(out["image"].shape), abs(round(float(out["image"].mean()), 6)), "label" in out
        ((1, 2, 4), 0.0, False)
    """
    transforms: list[Any] = [_CopyToTensord(list(_KEYS), allow_missing_keys=True)]
    if normalize:
        transforms.append(NormalizeIntensityd(keys="image", channel_wise=True))
    return Compose(transforms + _final_types(allow_missing_keys=True))


def _final_types(*, allow_missing_keys: bool) -> list[Any]:
    return [
        EnsureTyped(keys="image", dtype=torch.float32, track_meta=False),
        EnsureTyped(keys="label", dtype=torch.int64, track_meta=False, allow_missing_keys=allow_missing_keys),
    ]


def _check_patch_size(spatial_dims: Any, patch_size: Any) -> tuple[int, ...]:
    if spatial_dims not in (2, 3) or isinstance(spatial_dims, bool):
        raise ValueError(f"Expected `spatial_dims` to be 2 or 3, but got {spatial_dims!r}.")
    if not isinstance(patch_size, Sequence) or isinstance(patch_size, str):
        raise TypeError(f"Expected `patch_size` to be a sequence of ints, but got {type(patch_size).__name__}.")
    patch = tuple(check_positive_int("patch_size", p) for p in patch_size)
    if len(patch) != spatial_dims:
        raise ValueError(
            f"Expected `patch_size` to have {spatial_dims} entries (spatial_dims), but got {len(patch)}: {patch}."
        )
    return patch
