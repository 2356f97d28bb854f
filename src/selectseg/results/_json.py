"""The one JSON convention of every result file: NaN is ``null``, infinities are the strings ``"inf"``/``"-inf"``
(JSON has neither), and a reader takes both back as floats."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write_text

__all__ = ["dump", "encode", "load_object", "read_float", "read_floats", "read_int", "read_interval"]


def encode(value: Any) -> Any:
    """``value`` with NaN written as None (JSON null) and infinities as ``"inf"``/``"-inf"``, recursing into dicts,
    lists and tuples (tuples become lists; numpy scalars and arrays become Python numbers and lists).

    Example:
        >>> encode({"a": [float("nan"), float("-inf"), 1.5]})
        {'a': [None, '-inf', 1.5]}
    """
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, Mapping):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    return value


def dump(path: str | Path, content: Mapping[str, Any]) -> Path:
    """Write ``content`` as indented JSON under the convention, atomically."""
    return atomic_write_text(path, json.dumps(encode(content), indent=2))


def load_object(path: str | Path) -> dict[str, Any]:
    """A result file's JSON object.

    Raises:
        ValueError: if the file is missing, not valid JSON, or not an object (naming the file).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{str(path)!r} not found.")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{str(path)!r} is not valid JSON: {err}.") from None
    if not isinstance(value, dict):
        raise ValueError(f"Expected {str(path)!r} to hold a JSON object, but got {type(value).__name__}.")
    return value


def read_float(value: Any) -> float:
    """A JSON number as a float: null (or anything unreadable) is NaN, ``"inf"``/``"-inf"`` are infinities.

    Example:
        >>> read_float(None), read_float("-inf"), read_float(2)
        (nan, -inf, 2.0)
    """
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def read_floats(values: Any) -> np.ndarray:
    """A JSON list of numbers as a float64 array (``(n,)``; empty for null)."""
    return np.array([read_float(v) for v in (values or [])], dtype=np.float64)


def read_int(value: Any, default: int) -> int:
    """A JSON integer, ``default`` where it is null or not a finite number."""
    return int(value) if isinstance(value, (int, float)) and math.isfinite(value) else default


def read_interval(value: Any) -> tuple[float, float] | None:
    """A JSON ``[low, high]`` as floats; None when absent or malformed."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return (read_float(value[0]), read_float(value[1]))
    return None
