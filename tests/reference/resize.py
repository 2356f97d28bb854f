"""Slow, obviously-correct resampling by an integer factor: block means, block-centre voxels, voxel-centre geometry."""

from __future__ import annotations

import itertools

import numpy as np


def block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """``(C, *S)`` -> ``(C, *S // factor)``: each output voxel the mean of its factor^d block, by explicit loops."""
    c, *shape = image.shape
    out_shape = [s // factor for s in shape]
    out = np.zeros((c, *out_shape), dtype=np.float64)
    for index in itertools.product(*(range(s) for s in out_shape)):
        block = tuple(slice(i * factor, (i + 1) * factor) for i in index)
        for ch in range(c):
            out[(ch, *index)] = float(np.mean(image[(ch, *block)]))
    return out


def voxel_centre(affine: np.ndarray, index: tuple[float, ...]) -> np.ndarray:
    """World position of (possibly fractional) voxel ``index`` under a 4x4 affine (missing axes at 0)."""
    homogeneous = np.zeros(4)
    homogeneous[: len(index)] = index
    homogeneous[3] = 1.0
    return (affine @ homogeneous)[:3]


def block_centre(affine: np.ndarray, index: tuple[int, ...], factor: int) -> np.ndarray:
    """World position of the centre of the old voxels that new voxel ``index`` averages: the mean of their centres."""
    members = itertools.product(*(range(i * factor, (i + 1) * factor) for i in index))
    return np.mean([voxel_centre(affine, m) for m in members], axis=0)
