"""Dataset formats behind one registry, and :func:`load_dataset`, which reads a folder in any of them.

Adding a format is one decorated function that reads a folder into a :class:`SegmentationDataset`::

    @register_format("glas", detect=lambda root: (root / "Grade.csv").is_file(), description="a Grade.csv file")
    def load_glas(root: Path, split: str) -> SegmentationDataset: ...

The loader receives an existing, non-empty folder and a validated split (``"train"``, ``"test"`` or ``"all"``); it
raises a one-line ``ValueError`` naming the file at fault for anything it cannot read, and writes nothing. A path its
folder's files name goes through :func:`selectseg.data.names.confine` before it is opened (or checked for), and
every case id through :func:`selectseg.data.names.safe_case_id`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..._registry import Registry
from ..._validation import look_up_option
from ..case import SegmentationDataset
from ..names import allowing_outside_root

__all__ = [
    "FORMATS",
    "SPLITS",
    "DatasetFormat",
    "FormatInfo",
    "detection_order",
    "get_format",
    "list_formats",
    "load_dataset",
    "register_format",
]

SPLITS: tuple[str, ...] = ("train", "test", "all")
"""The splits :func:`load_dataset` accepts."""

Loader = Callable[[Path, str], SegmentationDataset]
Detector = Callable[[Path], bool]

DEFAULT_DETECT_ORDER = 100
"""The ``detect_order`` of a format registered without one: tried after the built-in formats (10 to 70)."""


@dataclass(frozen=True)
class FormatInfo:
    """What the format registry knows of a format besides its loader.

    Attributes:
        detect: returns True when a folder is in this format (cheap, never raises, never writes).
        description: what ``detect`` looks for (shown when ``format="auto"`` recognises nothing).
        detect_order: ``format="auto"`` tries the formats by ascending ``detect_order``, then name.
    """

    detect: Detector
    description: str = ""
    detect_order: int = DEFAULT_DETECT_ORDER


FORMATS: Registry[Loader, FormatInfo] = Registry("format", FormatInfo, reserved=("auto",))
"""The dataset formats by name: ``load(root, split) -> SegmentationDataset``, with :class:`FormatInfo`."""


@dataclass(frozen=True)
class DatasetFormat:
    """A registered format: its name, its loader ``(root, split) -> dataset`` and its detector ``root -> bool``.

    ``description`` says what the detector looks for (shown when ``format="auto"`` recognises nothing);
    ``detect_order`` where ``format="auto"`` tries it (ascending).
    """

    name: str
    load: Loader
    detect: Detector
    description: str = ""
    detect_order: int = DEFAULT_DETECT_ORDER

    def __call__(self, root: Path, split: str) -> SegmentationDataset:
        return self.load(root, split)


def register_format(
    name: str, *, detect: Detector, description: str = "", detect_order: int = DEFAULT_DETECT_ORDER
) -> Callable[[Loader], Loader]:
    """Register a loader ``(root: Path, split: str) -> SegmentationDataset`` under ``name`` in :data:`FORMATS`.

    Args:
        name: the format's name (what ``load_dataset(..., format=name)`` and the CLI take).
        detect: returns True when a folder is in this format; used by ``format="auto"``. It must be cheap, must not
            raise and must not write.
        description: what ``detect`` looks for, for error messages (e.g. ``"a dataset.json file"``).
        detect_order: ``format="auto"`` tries the formats by ascending ``detect_order`` (the built-in ones hold 10
            to 70; the default puts a new format after them), ties by name.

    Returns:
        A decorator that registers the loader and returns it unchanged.

    Raises:
        TypeError: if ``name`` is not a string, ``detect`` is not callable or ``detect_order`` not an int.
        ValueError: if ``name`` is empty, invalid, ``"auto"`` or already registered.

    Example:
        >>> "msd" in list_formats()
        True
    """
    if not callable(detect):
        raise TypeError(f"Expected `detect` to be a callable root -> bool, but got {type(detect).__name__}.")
    if isinstance(detect_order, bool) or not isinstance(detect_order, int):
        raise TypeError(f"Expected `detect_order` to be an int, but got {type(detect_order).__name__}.")
    return FORMATS.register(name, detect=detect, description=str(description), detect_order=detect_order)


def list_formats() -> list[str]:
    """Names of the registered dataset formats, sorted (:func:`detection_order` gives the order ``"auto"`` tries)."""
    return FORMATS.names()


def detection_order() -> list[str]:
    """Names of the registered formats in the order ``format="auto"`` tries them: by ``detect_order``, then name.

    Example:
        >>> detection_order()[0]
        'msd'
    """
    entries = sorted(FORMATS.entries(), key=lambda e: (e.metadata.detect_order, e.name))
    return [e.name for e in entries]


def get_format(name: str) -> DatasetFormat:
    """Return the registered format called ``name``.

    Raises:
        TypeError: if ``name`` is not a string.
        ValueError: if no format has that name (the message lists them and suggests a near match).

    Example:
        >>> get_format("msd").name
        'msd'
    """
    entry = FORMATS.entry(name)
    info = entry.metadata
    return DatasetFormat(entry.name, entry.obj, info.detect, info.description, info.detect_order)


def load_dataset(
    path: str | Path,
    *,
    split: str = "train",
    format: str = "auto",
    allow_outside_root: bool | None = None,
    options: Mapping[str, Any] | None = None,
) -> SegmentationDataset:
    """Read a dataset folder into memory, checking every file before returning (nothing is written).

    Args:
        path: the dataset folder.
        split: ``"train"`` (e.g. ``imagesTr``/``labelsTr``), ``"test"`` (e.g. ``imagesTs``, with labels when the
            format has them for the test cases) or ``"all"`` (train cases, then test cases).
        format: a registered format name (see :func:`list_formats`), or ``"auto"`` to use the first format whose
            detector recognises the folder, in :func:`detection_order`.
        allow_outside_root: let the dataset's description name files outside ``path`` (after resolving ``..`` and
            symbolic links), for data that lives elsewhere on purpose. None (default): refused unless the
            environment variable ``SELECTSEG_ALLOW_OUTSIDE_DATA`` is ``1`` (see :mod:`selectseg.data.names`).
        options: keyword options of the format's reader (e.g. RIGA's ``{"crop_size": 128}``); None or empty: none.

    Returns:
        The dataset; images are float32 and not normalised, labels int64 in ``[0, K)``.

    Raises:
        TypeError: if ``path`` is not a str or Path, ``split``/``format`` is not a string, or ``allow_outside_root``
            is not a bool or None.
        ValueError: if ``split`` or ``format`` is unknown (with a near match), the folder is missing, not a folder
            or empty, no format recognises it, the format's reader takes no option given in ``options``, or the
            format's loader finds a problem (the message names the file: a missing or unreadable file, an invalid
            dataset.json, shapes that disagree, label values outside ``[0, K)``, channel counts that differ between
            cases, a listed file outside the folder, a case id that cannot be a file name).

    Example:
        >>> import tempfile
        >>> from selectseg.data import make_synthetic_dataset, write_msd_dataset
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     root = write_msd_dataset(f"{tmp}/Dataset001_Synth", make_synthetic_dataset(num_cases=2, size=16))
        ...     ds = load_dataset(root)
        >>> len(ds), ds.info.format, ds[0].image.shape, ds[0].labels.shape
        (2, 'msd', (1, 16, 16), (3, 16, 16))
    """
    if not isinstance(path, (str, Path)):
        raise TypeError(f"Expected `path` to be a str or Path, but got {type(path).__name__}.")
    if allow_outside_root is not None and not isinstance(allow_outside_root, bool):
        raise TypeError(
            f"Expected `allow_outside_root` to be a bool or None, but got {type(allow_outside_root).__name__}."
        )
    split = look_up_option("split", split, SPLITS)
    format = look_up_option("format", format, ["auto", *list_formats()])
    root = Path(path)
    if not root.exists():
        raise ValueError(f"Expected `path` to be a dataset folder, but {root} does not exist.")
    if not root.is_dir():
        raise ValueError(f"Expected `path` to be a dataset folder, but {root} is a file.")
    if not any(root.iterdir()):
        raise ValueError(f"Expected `path` to be a dataset folder, but {root} is empty.")
    options = dict(options or {})
    with allowing_outside_root(allow_outside_root):
        if format != "auto":
            return _read(format, FORMATS.get(format), root, split, options)
        candidates = [get_format(name) for name in detection_order()]
        for candidate in candidates:
            if candidate.detect(root):
                return _read(candidate.name, candidate.load, root, split, options)
    needs = "; ".join(f"{f.name!r} needs {f.description}" for f in candidates if f.description)
    raise ValueError(
        f"Expected {root} to be a dataset folder in one of the registered formats {detection_order()}, "
        f"but none recognises it ({needs})."
    )


def _read(
    name: str, reader: Callable[..., SegmentationDataset], root: Path, split: str, options: dict[str, Any]
) -> SegmentationDataset:
    """``reader(root, split, **options)``, refusing an option the reader does not take (naming the ones it does)."""
    if options:
        taken = [
            p.name
            for p in inspect.signature(reader).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "allow_outside_root"  # load_dataset's own
        ]
        unknown = sorted(set(options) - set(taken))
        if unknown:
            raise ValueError(
                f"The {name!r} reader takes no option {unknown}; its options are {taken or 'none'} (data in {root})."
            )
    return reader(root, split, **options)
