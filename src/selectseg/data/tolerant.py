"""Reading many cases where one bad case must not stop the rest: it is skipped with a warning that names it."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from typing import TypeVar

__all__ = ["DatasetWarning", "read_all"]

T = TypeVar("T")
R = TypeVar("R")


class DatasetWarning(UserWarning):
    """A case of a dataset could not be read and was skipped (the message names it and says why)."""


def read_all(items: Iterable[T], read: Callable[[T], R], *, name: Callable[[T], str] = str) -> list[R]:
    """``[read(item) for item in items]``, skipping items whose ``read`` raises ValueError, with a warning each.

    Args:
        items: what to read (e.g. one entry per case).
        read: reads one item; raises ``ValueError`` naming the file at fault when it cannot.
        name: how an item is named in the warning (e.g. its case id).

    Returns:
        The results of the items that could be read, in order.

    Raises:
        ValueError: if no item could be read (the first item's error, with the count), or ``items`` is empty.

    Example:
        >>> def parse(text: str) -> int:
        ...     if not text.isdigit():
        ...         raise ValueError(f"{text!r} is not a number")
        ...     return int(text)
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     read_all(["1", "x", "3"], parse)
        [1, 3]
        >>> str(caught[0].message)
        "Skipped x: 'x' is not a number"
    """
    results: list[R] = []
    errors: list[tuple[T, ValueError]] = []
    listed = list(items)
    if not listed:
        raise ValueError("Expected at least one case to read, but found none.")
    for item in listed:
        try:
            results.append(read(item))
        except ValueError as failure:
            errors.append((item, failure))
    if not results:
        raise ValueError(f"None of the {len(listed)} cases could be read; the first: {errors[0][1]}") from None
    for item, reason in errors:
        warnings.warn(f"Skipped {name(item)}: {reason}", DatasetWarning, stacklevel=2)
    return results
