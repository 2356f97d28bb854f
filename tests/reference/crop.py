"""Slow, obviously-correct crops: the window from a known centre and diameter by explicit per-axis rules, the cut by
slicing, nearest-exact labels by their index formula."""

from __future__ import annotations

import itertools
import math

import numpy as np


def window(centre: tuple[float, ...], diameter: float, factor: float, shape: tuple[int, ...]) -> tuple[slice, ...]:
    """Side ``round(factor * diameter)`` (halves up), middle voxel nearest ``centre``; shifted inside, or the whole
    axis when it is shorter than the side."""
    side = max(1, math.floor(factor * diameter + 0.5))
    out = []
    for c, size in zip(centre, shape):
        if side >= size:
            out.append(slice(0, size))
            continue
        start = math.floor(c - (side - 1) / 2 + 0.5)
        if start < 0:
            start = 0
        if start + side > size:
            start = size - side
        out.append(slice(start, start + side))
    return tuple(out)


def cut(array: np.ndarray, window: tuple[slice, ...]) -> np.ndarray:
    """``array[:, window]`` voxel by voxel."""
    shape = (array.shape[0], *(s.stop - s.start for s in window))
    out = np.zeros(shape, dtype=array.dtype)
    for index in itertools.product(*(range(n) for n in shape)):
        source = (index[0], *(i + s.start for i, s in zip(index[1:], window)))
        out[index] = array[source]
    return out


def nearest_exact(labels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """New voxel i takes old voxel ``floor((i + 0.5) * old / new)`` on each axis (PyTorch's "nearest-exact")."""
    out = np.zeros((labels.shape[0], *shape), dtype=labels.dtype)
    old = labels.shape[1:]
    for index in itertools.product(*(range(n) for n in out.shape)):
        source = (index[0], *(math.floor((i + 0.5) * o / n) for i, o, n in zip(index[1:], old, shape)))
        out[index] = labels[source]
    return out
