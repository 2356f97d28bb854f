"""JSON output helpers shared by the evaluation writers."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["finite_json"]


def finite_json(value: Any) -> Any:
    """``value`` with NaN written as None (JSON null) and infinities as the strings ``"inf"``/``"-inf"`` (JSON has
    neither), recursing into dicts and lists.

    Example:
        >>> finite_json({"a": [float("nan"), float("-inf"), 1.5]})
        {'a': [None, '-inf', 1.5]}
    """
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite_json(v) for v in value]
    return value
