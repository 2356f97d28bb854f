"""Reading image files and writing per-case output maps on a case's grid (NIfTI with nibabel, PNG with Pillow).

Every write is atomic: the file is written under a hidden temporary name in the destination folder and moved into
place with :func:`os.replace`, so a reader never sees a half-written file and a crash leaves no partial output.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from PIL import Image

from .._io import remove_stale, temp_done, temp_path
from .._validation import check_finite, to_numpy
from .case import Case

__all__ = ["NIFTI_SUFFIXES", "PILLOW_SUFFIXES", "read_image", "save_like"]

NIFTI_SUFFIXES: tuple[str, ...] = (".nii.gz", ".nii")
"""File endings read with nibabel."""

PILLOW_SUFFIXES: tuple[str, ...] = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff")
"""File endings read with Pillow (2-D images)."""

_GRAY_MODES = frozenset({"1", "L", "P", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})


def file_suffix(path: Path) -> str:
    """The file ending that decides the reader: ``".nii.gz"`` or the last suffix, lower case."""
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else Path(name).suffix


def read_image(path: str | Path) -> tuple[np.ndarray, np.ndarray, Any]:
    """Read one image file as stored, without reorienting, transposing or normalising it.

    NIfTI files (``.nii``, ``.nii.gz``) are read with nibabel: the array is in nibabel's voxel order, with the
    header's scaling (``scl_slope``/``scl_inter``) applied. Other files (PNG, BMP, JPEG, TIFF) are read with Pillow:
    gray, palette (as indices) and 16-bit images give ``(H, W)``, colour images ``(H, W, 3)`` (an alpha channel is
    dropped; other colour modes are converted to RGB); multi-frame files are refused.

    Args:
        path: the image file.

    Shape:
        Returns the array with the file's own shape, e.g. ``(X, Y, Z)``, ``(X, Y, Z, C)``, ``(H, W)``, ``(H, W, 3)``.

    Returns:
        ``(array, affine, header)``: the array (the file's dtype, or floating point where NIfTI scaling applies), the
        ``(4, 4)`` float64 voxel-to-world affine (the identity for Pillow files) and the nibabel header (``None``
        for Pillow files).

    Raises:
        TypeError: if ``path`` is not a string or a path.
        ValueError: if the file does not exist, has an unsupported ending, or cannot be read (corrupt or truncated;
            the reader's error is attached as the cause).

    Example:
        >>> import tempfile
        >>> from PIL import Image
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     Image.fromarray(np.zeros((4, 6), np.uint8)).save(f"{tmp}/x.png")
        ...     array, affine, header = read_image(f"{tmp}/x.png")
        >>> array.shape, array.dtype, header is None, bool((affine == np.eye(4)).all())
        ((4, 6), dtype('uint8'), True, True)
    """
    if not isinstance(path, (str, Path)):
        raise TypeError(f"Expected `path` to be a str or Path, but got {type(path).__name__}.")
    path = Path(path)
    suffix = file_suffix(path)
    if suffix not in NIFTI_SUFFIXES + PILLOW_SUFFIXES:
        raise ValueError(
            f"Expected image file {path} to end with one of {list(NIFTI_SUFFIXES + PILLOW_SUFFIXES)}, "
            f"but got {suffix!r}."
        )
    if not path.is_file():
        raise ValueError(f"Expected image file {path} to exist, but it does not.")
    try:
        if suffix in NIFTI_SUFFIXES:
            nifti: Any = nib.load(str(path), mmap=False)
            array = np.asarray(np.asanyarray(nifti.dataobj))
            return array, np.array(nifti.affine, dtype=np.float64), nifti.header
        with Image.open(path) as image:
            frames = int(getattr(image, "n_frames", 1))
            if frames == 1:
                array = _pillow_array(image)
    except MemoryError:
        raise
    except Exception as err:  # nibabel and Pillow raise many types for corrupt or truncated files
        raise ValueError(f"Could not read image file {path}: {type(err).__name__}: {err}") from err
    if frames > 1:
        raise ValueError(f"Expected image file {path} to hold one frame, but it holds {frames}.")
    return array, np.eye(4), None


def _pillow_array(image: Image.Image) -> np.ndarray:
    if image.mode == "1":
        return np.asarray(image).astype(np.uint8)
    if image.mode == "LA":
        image = image.convert("L")
    elif image.mode not in _GRAY_MODES and image.mode != "RGB":
        image = image.convert("RGB")
    return np.array(image)


def save_like(array: Any, case: Case, path: str | Path) -> Path:
    """Write a per-case output map (segmentation, uncertainty, referral mask) on the grid of ``case``, atomically.

    The file type follows the case, not the caller's wish: ``"nifti"`` and ``"synthetic"`` cases are written as
    NIfTI (``path`` must end with ``.nii.gz`` or ``.nii``), ``"png"`` cases as PNG (``path`` must end with
    ``.png``). The parent folder is created when missing; an existing file is replaced.

    - NIfTI: the case's affine and a copy of its header (pixdim, qform/sform and their codes, units), with the data
      type set for ``array``, scaling, intent and display range reset. A source stored with a trailing singleton
      axis (a 2-D image saved as ``(X, Y, 1)``) gets it back. Cases without a header (synthetic) get a new header
      with their affine; 2-D maps are then written as ``(X, Y, 1)``, which every NIfTI tool opens.
    - Data types: bool becomes uint8; integers become the smallest of uint8, int16 and int32 that holds their
      range; floating point becomes float32.
    - PNG: integer maps in [0, 255] are 8-bit, in [0, 65535] 16-bit. A floating-point map (for example an
      uncertainty map) is stored as a 16-bit PNG of ``round(65535 * clip(x, 0, 1))``: values outside [0, 1] are
      clipped, and ``x`` is recovered as ``png / 65535`` up to a step of 1/65535.

    Args:
        array: the map, a numpy array or torch tensor of bools, integers or floats.
        case: the case whose grid and geometry the map follows.
        path: destination file.

    Shape:
        array: ``case.spatial_shape``, i.e. ``(*S)``.

    Returns:
        The path written.

    Raises:
        TypeError: if ``array`` is not an array of numbers, ``case`` is not a :class:`Case` or ``path`` is not a str
            or Path.
        ValueError: if ``array`` does not have the case's spatial shape, holds NaN or infinity, holds integers
            beyond int32 (NIfTI) or outside [0, 65535] (PNG), or ``path`` has an ending other than the case's.

    Example:
        >>> import tempfile
        >>> from selectseg.data import make_synthetic_dataset
        >>> case = make_synthetic_dataset(num_cases=1, size=16)[0]
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     out = save_like(case.labels[0], case, f"{tmp}/seg.nii.gz")
        ...     array, affine, _ = read_image(out)
        >>> out.name, array.shape, array.dtype
        ('seg.nii.gz', (16, 16, 1), dtype('uint8'))
    """
    if not isinstance(case, Case):
        raise TypeError(f"Expected `case` to be a Case, but got {type(case).__name__}.")
    if not isinstance(path, (str, Path)):
        raise TypeError(f"Expected `path` to be a str or Path, but got {type(path).__name__}.")
    path = Path(path)
    data = to_numpy("array", array)
    if data.shape != case.spatial_shape:
        raise ValueError(
            f"Expected `array` to have the spatial shape {case.spatial_shape} of case {case.case_id!r}, "
            f"but got shape {data.shape}."
        )
    check_finite("array", data)
    expected = (".png",) if case.file_kind == "png" else (".nii.gz", ".nii")
    suffix = file_suffix(path)
    if suffix not in expected:
        raise ValueError(
            f"Expected `path` to end with {' or '.join(map(repr, expected))} for the {case.file_kind} case "
            f"{case.case_id!r}, but got {path.name!r}."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    if case.file_kind == "png":
        return write_png(_png_data(data), path)
    return write_nifti(_nifti_data(data), case, path)


def _nifti_data(data: np.ndarray) -> np.ndarray:
    if data.dtype == np.bool_:
        return data.astype(np.uint8)
    if np.issubdtype(data.dtype, np.floating):
        return data.astype(np.float32, copy=False)
    if data.size == 0:
        return data.astype(np.uint8)
    low, high = int(data.min()), int(data.max())
    for dtype in (np.uint8, np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return data.astype(dtype, copy=False)
    raise ValueError(f"Expected `array` to hold integers within int32 for NIfTI, but got values in [{low}, {high}].")


def _png_data(data: np.ndarray) -> np.ndarray:
    if np.issubdtype(data.dtype, np.floating):
        return np.round(65535.0 * np.clip(data.astype(np.float64), 0.0, 1.0)).astype(np.uint16)
    data = data.astype(np.int64)
    low, high = (int(data.min()), int(data.max())) if data.size else (0, 0)
    if low < 0 or high > 65535:
        raise ValueError(f"Expected `array` to hold integers in [0, 65535] for PNG, but got values in [{low}, {high}].")
    return data.astype(np.uint8 if high <= 255 else np.uint16)


def nifti_shape(case: Case) -> tuple[int, ...]:
    """The array shape a map on ``case``'s grid is stored with: the source's spatial shape, singletons included."""
    shape = case.spatial_shape
    if case.header is None:
        return (*shape, 1) if len(shape) == 2 else shape
    stored = tuple(int(s) for s in case.header.get_data_shape()[:3])
    if stored[: len(shape)] == shape and all(s == 1 for s in stored[len(shape) :]):
        return stored
    return shape


def write_nifti(data: np.ndarray, case: Case, path: Path) -> Path:
    """Atomically write ``data`` (``case.spatial_shape``, a NIfTI-friendly dtype) with ``case``'s geometry."""
    data = data.reshape(nifti_shape(case))
    header = case.header
    if isinstance(header, nib.Nifti1Header):  # also Nifti2Header
        header = header.copy()
        header.set_data_dtype(data.dtype)
        header.set_slope_inter(None, None)
        header.set_intent("none", (), "")
        header["cal_min"], header["cal_max"] = 0.0, 0.0
        cls: type[nib.Nifti1Image] = nib.Nifti2Image if isinstance(header, nib.Nifti2Header) else nib.Nifti1Image
        image = cls(data, case.affine, header=header)
    else:
        image = nib.Nifti1Image(data, case.affine)
        image.header.set_data_dtype(data.dtype)
        image.set_qform(case.affine, code=1)
        image.set_sform(case.affine, code=1)
    return atomic_write(path, lambda tmp: nib.save(image, str(tmp)))


def write_png(data: np.ndarray, path: Path) -> Path:
    """Atomically write a uint8 ``(H, W)`` / ``(H, W, 3)`` or uint16 ``(H, W)`` array as a PNG file."""
    image = Image.fromarray(np.ascontiguousarray(data))
    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))


def atomic_write(path: Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write`` on a hidden temporary name next to ``path``, then move it onto ``path`` (:func:`os.replace`).

    The temporary name keeps ``path``'s ending, so writers that choose the format from it (nibabel) still do, and is
    one :func:`selectseg._io.remove_stale` recognises: the next write of that name removes those of killed writers.
    On any error the temporary file is removed and the error re-raised.
    """
    suffix = file_suffix(path)
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name
    remove_stale(path.parent, stem)  # temp files of this name left by killed writers
    tmp = temp_path(path.parent, stem, suffix)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        temp_done(tmp)
    return path
