"""Input checks shared by every public function.

Every public function validates its arguments once, at its boundary, with these helpers; private helpers trust
their input. Messages follow one pattern: ``Expected `name` to be <expectation>, but got <what came>.``
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "UndefinedMetricWarning",
    "check_finite",
    "check_label_range",
    "check_non_negative",
    "check_num_classes",
    "check_paired_vectors",
    "check_same_shape",
    "look_up_option",
    "to_numpy",
]


class UndefinedMetricWarning(UserWarning):
    """A metric is undefined for the given input (for example accuracy on an empty selection)."""


def look_up_option(name: str, value: Any, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``; otherwise raise with the choices and a near match.

    Raises:
        TypeError: if ``value`` is not a string.
        ValueError: if ``value`` is not one of ``choices`` (the message suggests the closest one).
    """
    options = list(choices)
    if not isinstance(value, str):
        raise TypeError(f"Expected `{name}` to be one of {options}, but got {value!r} of type {type(value).__name__}.")
    if value in options:
        return value
    close = difflib.get_close_matches(value, options, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"Expected `{name}` to be one of {options}, but got {value!r}.{hint}")


def to_numpy(name: str, value: Any, *, dtype: Any = None) -> np.ndarray:
    """Convert a list, numpy array or torch tensor to a numpy array (detached, on the CPU).

    Raises:
        TypeError: if ``value`` is none of those, or holds non-numeric data.
    """
    if isinstance(value, torch.Tensor):
        array = value.detach().cpu().numpy()
    elif isinstance(value, np.ndarray):
        array = value
    elif isinstance(value, (list, tuple)) or np.isscalar(value):
        array = np.asarray(value)
    else:
        raise TypeError(f"Expected `{name}` to be a list, numpy array or torch tensor, but got {type(value).__name__}.")
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise TypeError(f"Expected `{name}` to hold numbers, but got dtype {array.dtype}.")
    if dtype is not None:
        array = array.astype(dtype, copy=False)
    return array


def check_same_shape(name_a: str, a: Any, name_b: str, b: Any) -> None:
    """Raise ValueError unless ``a`` and ``b`` have the same shape."""
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(
            f"Expected `{name_a}` and `{name_b}` to have the same shape, but got {tuple(a.shape)} and {tuple(b.shape)}."
        )


def check_finite(name: str, value: np.ndarray | torch.Tensor) -> None:
    """Raise ValueError if ``value`` holds NaN or infinity (the message counts them)."""
    # A finite sum proves every element finite (one cheap pass); otherwise count, as the sum may have overflowed.
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point() or bool(torch.isfinite(value.sum())):
            return
        bad = int((~torch.isfinite(value)).sum())
    else:
        if not np.issubdtype(value.dtype, np.floating):
            return
        with np.errstate(over="ignore"):  # a sum of huge finite values may overflow: then count
            if np.isfinite(value.sum()):
                return
        bad = int((~np.isfinite(value)).sum())
    if bad:
        raise ValueError(f"Expected `{name}` to be finite, but got {bad} NaN or infinite value(s).")


def check_non_negative(name: str, value: Any) -> float:
    """Return ``value`` as a float after checking it is a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"Expected `{name}` to be a non-negative float, but got {type(value).__name__}.")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"Expected `{name}` to be a non-negative float, but got {value}.")
    return float(value)


def check_threshold(name: str, value: Any) -> float:
    """Return ``value`` as a float after checking it is a real number (infinities allowed) and not NaN."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise TypeError(f"Expected `{name}` to be a float, but got {type(value).__name__}.")
    if math.isnan(value):
        raise ValueError(f"Expected `{name}` to be a number, but got NaN.")
    return float(value)


def check_positive_int(name: str, value: Any, *, minimum: int = 1) -> int:
    """Return ``value`` after checking it is an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"Expected `{name}` to be an int >= {minimum}, but got {type(value).__name__}.")
    if value < minimum:
        raise ValueError(f"Expected `{name}` to be an int >= {minimum}, but got {value}.")
    return int(value)


def check_num_classes(num_classes: Any) -> int:
    """Return ``num_classes`` after checking it is an int >= 2 (K-class softmax; binary is K = 2)."""
    return check_positive_int("num_classes", num_classes, minimum=2)


def check_label_range(name: str, labels: np.ndarray | torch.Tensor, num_classes: int) -> None:
    """Raise ValueError unless every label lies in [0, num_classes)."""
    count = labels.size if isinstance(labels, np.ndarray) else labels.numel()
    if count == 0:
        return
    low, high = (int(labels.min()), int(labels.max()))
    if low < 0 or high >= num_classes:
        raise ValueError(f"Expected `{name}` to hold labels in [0, {num_classes}), but got values in [{low}, {high}].")


def check_integer_dtype(name: str, value: np.ndarray | torch.Tensor) -> None:
    """Raise TypeError unless ``value`` holds integers (bool is not accepted as a label map)."""
    if isinstance(value, torch.Tensor):
        ok = not value.is_floating_point() and not value.is_complex() and value.dtype != torch.bool
    else:
        ok = np.issubdtype(value.dtype, np.integer)
    if not ok:
        raise TypeError(f"Expected `{name}` to hold integer labels, but got dtype {value.dtype}.")


def check_non_empty_sequence(name: str, value: Any) -> Sequence[Any]:
    """Return ``value`` as a list after checking it is a non-empty list or tuple."""
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"Expected `{name}` to be a list of per-image arrays, but got {type(value).__name__}.")
    if len(value) == 0:
        raise ValueError(f"Expected `{name}` to hold at least one image, but got an empty list.")
    return list(value)


def check_paired_vectors(name_a: str, a: Any, name_b: str, b: Any, *, unit: str) -> tuple[np.ndarray, np.ndarray]:
    """Two finite float64 vectors ``(N,)`` of one length, N >= 1 (one value per ``unit``: case, image, ...).

    Raises:
        TypeError: if either is not a list, numpy array or torch tensor of numbers.
        ValueError: if they are not 1-D of one length, are empty, or hold NaN/inf.
    """
    x = to_numpy(name_a, a, dtype=np.float64)
    y = to_numpy(name_b, b, dtype=np.float64)
    if x.ndim != 1 or y.ndim != 1 or x.shape != y.shape:
        raise ValueError(
            f"Expected `{name_a}` and `{name_b}` to be 1-D of one length (N,), but got {x.shape} and {y.shape}."
        )
    if x.size == 0:
        raise ValueError(f"Expected `{name_a}` and `{name_b}` to hold at least one {unit}, but got 0.")
    check_finite(name_a, x)
    check_finite(name_b, y)
    return x, y
