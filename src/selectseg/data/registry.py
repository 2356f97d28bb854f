"""Dataset formats behind one registry, and :func:`load_dataset`, which reads a folder in any of them.

Adding a format is one decorated function that reads a folder into a :class:`SegmentationDataset`::

    @register_format("glas", detect=lambda root: (root / "Grade.csv").is_file(), description="a Grade.csv file")
    def load_glas(root: Path, split: str) -> SegmentationDataset: ...

The loader receives an existing, non-empty folder and a validated split (``"train"``, ``"test"`` or ``"all"``); it
raises a one-line ``ValueError`` naming the file at fault for anything it cannot read, and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .._validation import look_up_option
from .case import SegmentationDataset

__all__ = ["SPLITS", "DatasetFormat", "get_format", "list_formats", "load_dataset", "register_format"]

SPLITS: tuple[str, ...] = ("train", "test", "all")
"""The splits :func:`load_dataset` accepts."""

Loader = Callable[[Path, str], SegmentationDataset]
Detector = Callable[[Path], bool]


@dataclass(frozen=True)
class DatasetFormat:
    """A registered format: its name, its loader ``(root, split) -> dataset`` and its detector ``root -> bool``.

    ``description`` says what the detector looks for (shown when ``format="auto"`` recognises nothing).
    """

    name: str
    load: Loader
    detect: Detector
    description: str = ""

    def __call__(self, root: Path, split: str) -> SegmentationDataset:
        return self.load(root, split)


_FORMATS: dict[str, DatasetFormat] = {}


def register_format(name: str, *, detect: Detector, description: str = "") -> Callable[[Loader], Loader]:
    """Register a loader ``(root: Path, split: str) -> SegmentationDataset`` under ``name``.

    Args:
        name: the format's name (what ``load_dataset(..., format=name)`` and the CLI take).
        detect: returns True when a folder is in this format; used by ``format="auto"`` in registration order.
            It must be cheap, must not raise and must not write.
        description: what ``detect`` looks for, for error messages (e.g. ``"a dataset.json file"``).

    Returns:
        A decorator that registers the loader and returns it unchanged.

    Raises:
        ValueError: if ``name`` is empty, ``"auto"`` or already registered.

    Example:
        >>> "msd" in list_formats()
        True
    """
    if not isinstance(name, str) or not name or name == "auto" or name in _FORMATS:
        raise ValueError(f"Expected a new, non-empty format name other than 'auto', but got {name!r}.")

    def decorator(load: Loader) -> Loader:
        _FORMATS[name] = DatasetFormat(name=name, load=load, detect=detect, description=description)
        return load

    return decorator


def list_formats() -> list[str]:
    """Names of the registered dataset formats, in registration order (the order ``"auto"`` tries them)."""
    return list(_FORMATS)


def get_format(name: str) -> DatasetFormat:
    """Return the registered format called ``name``.

    Raises:
        TypeError: if ``name`` is not a string.
        ValueError: if no format has that name (the message lists them and suggests a near match).

    Example:
        >>> get_format("msd").name
        'msd'
    """
    return _FORMATS[look_up_option("format", name, _FORMATS)]


def load_dataset(path: str | Path, *, split: str = "train", format: str = "auto") -> SegmentationDataset:
    """Read a dataset folder into memory, checking every file before returning (nothing is written).

    Args:
        path: the dataset folder.
        split: ``"train"`` (e.g. ``imagesTr``/``labelsTr``), ``"test"`` (e.g. ``imagesTs``, with labels when the
            format has them for the test cases) or ``"all"`` (train cases, then test cases).
        format: a registered format name (see :func:`list_formats`), or ``"auto"`` to use the first format whose
            detector recognises the folder.

    Returns:
        The dataset; images are float32 and not normalised, labels int64 in ``[0, K)``.

    Raises:
        TypeError: if ``path`` is not a str or Path, or ``split``/``format`` is not a string.
        ValueError: if ``split`` or ``format`` is unknown (with a near match), the folder is missing, not a folder
            or empty, no format recognises it, or the format's loader finds a problem (the message names the
            file: a missing or unreadable file, an invalid dataset.json, shapes that disagree, label values outside
            ``[0, K)``, channel counts that differ between cases).

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
    split = look_up_option("split", split, SPLITS)
    format = look_up_option("format", format, ["auto", *_FORMATS])
    root = Path(path)
    if not root.exists():
        raise ValueError(f"Expected `path` to be a dataset folder, but {root} does not exist.")
    if not root.is_dir():
        raise ValueError(f"Expected `path` to be a dataset folder, but {root} is a file.")
    if not any(root.iterdir()):
        raise ValueError(f"Expected `path` to be a dataset folder, but {root} is empty.")
    if format != "auto":
        return _FORMATS[format](root, split)
    for candidate in _FORMATS.values():
        if candidate.detect(root):
            return candidate(root, split)
    needs = "; ".join(f"{f.name!r} needs {f.description}" for f in _FORMATS.values() if f.description)
    raise ValueError(
        f"Expected {root} to be a dataset folder in one of the registered formats {list_formats()}, "
        f"but none recognises it ({needs})."
    )
