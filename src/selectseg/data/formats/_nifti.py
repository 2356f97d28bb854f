"""Helpers shared by the NIfTI dataset loaders (msd, qubiq, brats, mmwhs, hecktor): listing, reading, label checks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..case import Case
from ..io import NIFTI_SUFFIXES, file_suffix, read_image

__all__ = [
    "check_same_shape",
    "check_uniform",
    "child_dirs",
    "has_dataset_json",
    "integer_labels",
    "map_labels",
    "nifti_files",
    "read_volume",
]


def integer_labels(raw: np.ndarray, path: Path) -> np.ndarray:
    """A label file's values as int64; float files must hold whole numbers (``1.0`` is fine, ``0.5`` is not).

    Raises:
        ValueError: naming the file, if it holds non-integer values, NaN/inf, or a non-numeric dtype.
    """
    if raw.dtype == np.bool_:
        raw = raw.astype(np.uint8)
    if np.issubdtype(raw.dtype, np.floating):
        if not np.isfinite(raw).all():
            raise ValueError(f"Expected label file {path} to hold integer values, but it holds NaN or infinity.")
        rounded = np.round(raw)
        wrong = raw != rounded
        if wrong.any():
            raise ValueError(
                f"Expected label file {path} to hold integer values, but found non-integer values such as "
                f"{float(raw[wrong].flat[0]):g}."
            )
        raw = rounded
    elif not np.issubdtype(raw.dtype, np.integer):
        raise ValueError(f"Expected label file {path} to hold integer values, but it holds dtype {raw.dtype}.")
    return raw.astype(np.int64)


def has_dataset_json(root: Path) -> bool:
    """True when ``root`` holds a dataset.json (the ``"msd"`` format's folder, which no other detector claims)."""
    return (root / "dataset.json").is_file()


def child_dirs(root: Path) -> list[Path]:
    """The visible sub-folders of ``root``, sorted by name (empty when ``root`` cannot be listed)."""
    try:
        return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


def nifti_files(folder: Path) -> list[Path]:
    """The visible NIfTI files in ``folder``, sorted by name (empty when it cannot be listed)."""
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return []
    return [p for p in entries if not p.name.startswith(".") and file_suffix(p) in NIFTI_SUFFIXES and p.is_file()]


def read_volume(path: Path) -> tuple[np.ndarray, np.ndarray, Any]:
    """Read a NIfTI file as stored, dropping a trailing singleton third axis (a 2-D image saved as ``(X, Y, 1)``)."""
    array, affine, header = read_image(path)
    if array.ndim >= 3 and array.shape[2] == 1 and all(s == 1 for s in array.shape[3:]):
        array = array.reshape(array.shape[:2])
    return array, affine, header


def map_labels(raw: np.ndarray, path: Path, mapping: Mapping[int, int]) -> np.ndarray:
    """Map the label values of one file through ``mapping`` (file value -> class index), as int64.

    Raises:
        ValueError: naming the file, if it holds non-integer values, NaN, or values that are not keys of ``mapping``.
    """
    values = integer_labels(raw, path)
    expected = sorted(mapping)
    low, high = (int(values.min()), int(values.max())) if values.size else (0, 0)
    if low >= 0 and high <= max(expected) and high < 65536:
        present = np.flatnonzero(np.bincount(values.ravel(), minlength=high + 1))
    else:
        present = np.unique(values)
    unknown = [int(v) for v in present if int(v) not in mapping]
    if unknown:
        more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        raise ValueError(f"Expected label file {path} to hold values in {expected}, but found {unknown[:10]}{more}.")
    lookup = np.zeros(max(expected) + 1, dtype=np.int64)
    for value, index in mapping.items():
        lookup[value] = index
    return lookup[values]


def check_same_shape(array: np.ndarray, path: Path, shape: tuple[int, ...], reference: Path, what: str) -> None:
    """Raise a ValueError naming both files when ``array`` does not have ``shape`` (that of ``reference``)."""
    if array.shape != shape:
        raise ValueError(
            f"Expected {what} {path} to have the shape {shape} of {reference}, but got shape {array.shape}."
        )


def check_uniform(cases: Iterable[Case]) -> tuple[int, int]:
    """The spatial dims and channel count shared by ``cases``; a ValueError naming the first file that differs."""
    listed = list(cases)
    first = listed[0]
    for case in listed[1:]:
        if case.spatial_dims != first.spatial_dims:
            raise ValueError(
                f"Expected every image to be {first.spatial_dims}-D like {first.source}, but {case.source} is "
                f"{case.spatial_dims}-D with shape {case.spatial_shape}."
            )
        if case.image.shape[0] != first.image.shape[0]:
            raise ValueError(
                f"Expected every image to have {first.image.shape[0]} channel(s) like {first.source}, but "
                f"{case.source} has {case.image.shape[0]}."
            )
    return first.spatial_dims, int(first.image.shape[0])
