"""One generic registry for everything the CLI picks by name: models, uncertainty scores, estimators, dataset
formats, segmentation losses.

A registry maps names to objects (usually factories or functions), each with typed metadata: the facts that belong
to the registered object (a model's minimum number of resolution levels, whether an estimator's members are the
heads of one network, a format's detector), so that no caller keeps a side table by name. Every registry refuses a
duplicate or invalid name and an unknown one with the same wording, and lists its names in one order: sorted.

Example:
    >>> from collections.abc import Callable
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Info:
    ...     sides: int = 0
    >>> SHAPES: Registry[Callable[[], str], Info] = Registry("shape", Info)
    >>> @SHAPES.register("square", sides=4)
    ... def square() -> str:
    ...     return "[]"
    >>> SHAPES.names(), SHAPES.entry("square").metadata.sides, SHAPES.get("square")()
    (['square'], 4, '[]')
    >>> SHAPES.get("sqare")
    Traceback (most recent call last):
    ...
    ValueError: Expected `shape` to be one of ['square'], but got 'sqare'. Did you mean 'square'?
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ._validation import look_up_option

__all__ = ["Entry", "NoMetadata", "Registry"]

T = TypeVar("T")
M = TypeVar("M")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class NoMetadata:
    """The metadata of a registry whose entries carry none."""


@dataclass(frozen=True)
class Entry(Generic[T, M]):
    """One registered object.

    Attributes:
        name: the name it is registered under (what a config or the CLI says).
        obj: the registered object (a factory or a function).
        metadata: its typed facts, an instance of the registry's metadata dataclass.
    """

    name: str
    obj: T
    metadata: M


class Registry(Generic[T, M]):
    """Objects by name, each with a frozen metadata dataclass; names listed sorted.

    Args:
        kind: what the entries are, singular (``"model"``, ``"estimator"``): used in messages and as the argument
            name of :meth:`get` unless the caller names another (a config key such as ``"model.name"``).
        metadata: the frozen dataclass :meth:`register` builds from its keyword arguments (fields without a default
            are required); :class:`NoMetadata` for none.
        reserved: names no entry may take (e.g. ``"auto"`` for dataset formats, which means "detect").
    """

    def __init__(self, kind: str, metadata: type[M], *, reserved: Iterable[str] = ()) -> None:
        if not dataclasses.is_dataclass(metadata) or not isinstance(metadata, type):
            raise TypeError(f"Expected `metadata` to be a dataclass type, but got {metadata!r}.")
        self.kind = kind
        self._metadata = metadata
        self._fields = {f.name: f for f in dataclasses.fields(metadata)}
        self._reserved = frozenset(reserved)
        self._entries: dict[str, Entry[T, M]] = {}

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def register(self, name: str, **metadata: Any) -> Callable[[T], T]:
        """Decorator registering an object under ``name`` with ``metadata`` (the metadata dataclass's fields).

        Name and metadata are checked when ``register`` is called, before anything is registered.

        Returns:
            A decorator that registers the object and returns it unchanged.

        Raises:
            TypeError: if ``name`` is not a string, or ``metadata`` lacks a required field or names an unknown one.
            ValueError: if ``name`` is empty, not of letters, digits, ``_ . -`` (starting with a letter or digit),
                reserved, or already registered.
        """
        if not isinstance(name, str):
            raise TypeError(
                f"Expected a new, non-empty {self.kind} name, but got {name!r} of type {type(name).__name__}."
            )
        reason = ""
        if not _NAME.fullmatch(name):
            reason = " (letters, digits and _ . - only, starting with a letter or digit)"
        elif name in self._reserved:
            reason = ", which is reserved"
        elif name in self._entries:
            reason = ", which is already registered"
        if reason:
            raise ValueError(f"Expected a new, non-empty {self.kind} name, but got {name!r}{reason}.")
        unknown = sorted(set(metadata) - set(self._fields))
        missing = [f for f in self._required() if f not in metadata]
        if unknown or missing:
            problem = f"the unknown field(s) {unknown}" if unknown else f"no {missing}"
            raise TypeError(
                f"Expected the metadata of {self.kind} {name!r} to be among the fields {list(self._fields)} "
                f"(required: {self._required()}), but got {problem}."
            )
        info = self._metadata(**metadata)

        def decorator(obj: T) -> T:
            if name in self._entries:
                raise ValueError(
                    f"Expected a new, non-empty {self.kind} name, but got {name!r}, which is already registered."
                )
            self._entries[name] = Entry(name, obj, info)
            return obj

        return decorator

    def _required(self) -> list[str]:
        return [
            f.name
            for f in self._fields.values()
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]

    def names(self) -> list[str]:
        """The registered names, sorted (so a listing never depends on the order modules were imported)."""
        return sorted(self._entries)

    def entries(self) -> list[Entry[T, M]]:
        """The registered entries, in the order of :meth:`names`."""
        return [self._entries[n] for n in self.names()]

    def entry(self, name: str, *, argument: str | None = None) -> Entry[T, M]:
        """The entry registered under ``name``: its object and metadata.

        Args:
            name: a registered name.
            argument: the argument or config key named in the error (default: the registry's ``kind``).

        Raises:
            TypeError: if ``name`` is not a string.
            ValueError: if nothing is registered under ``name`` (the message lists the names, sorted, and suggests
                the closest one).
        """
        return self._entries[look_up_option(argument or self.kind, name, self.names())]

    def get(self, name: str, *, argument: str | None = None) -> T:
        """The object registered under ``name`` (see :meth:`entry` for the arguments and errors)."""
        return self.entry(name, argument=argument).obj
