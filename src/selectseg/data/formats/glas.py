"""GlaS 2015 colon histology gland segmentation (Warwick-QU), format ``"glas"``: RGB images, classes background/gland.

Two layouts are read (see ``docs/data.md``):

- **official**: ``train_N.bmp`` with ``train_N_anno.bmp``, ``testA_N.bmp``/``testA_N_anno.bmp``,
  ``testB_N.bmp``/``testB_N_anno.bmp`` side by side in the folder. Annotations are per-gland instance maps
  (0 = background, 1..n = glands) and are binarised (``> 0``).
- **images/masks**: ``images/<name>.png`` (RGB) and ``masks/<name>.png`` (binary, e.g. ``{0, 255}``, binarised
  ``> 0``), the layout of the re-encoded copies found online.

In both, ``Grade.csv`` (``name, patient ID, grade (GlaS), grade (Sirinukunwattana et al. 2015)``, values with leading
spaces) gives each case's patient, stored as :attr:`Case.subject`. GlaS patients appear in both the train and the test
split, so patient IDs are one namespace. One annotator; case ids are the file stems (``"train_1"``).
"""

from __future__ import annotations

import csv
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..case import Case, DatasetInfo, SegmentationDataset
from ..io import PILLOW_SUFFIXES, file_suffix, read_image
from ..names import safe_case_id
from ..tolerant import DatasetWarning, read_all
from .registry import register_format

__all__ = ["load_glas"]

_GRADES = "Grade.csv"
_CLASS_NAMES = ("background", "gland")
_CHANNEL_NAMES = ("red", "green", "blue")
_NAME = re.compile(r"(train|testA|testB)_(\d+)")
_ANNO = re.compile(r"((?:train|testA|testB)_\d+)_anno")
_SPLIT_PREFIXES = {"train": ("train",), "test": ("testA", "testB")}


@dataclass(frozen=True)
class _CaseFiles:
    case_id: str
    image: Path
    mask: Path | None  # None: expected but missing (reported when the case is read)
    expected_mask: str


def _stems(folder: Path) -> dict[str, list[Path]]:
    """Image files directly in ``folder`` by stem (hidden files and other endings ignored)."""
    found: dict[str, list[Path]] = {}
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return found
    for path in entries:
        suffix = file_suffix(path)
        if path.name.startswith(".") or suffix not in PILLOW_SUFFIXES or not path.is_file():
            continue
        found.setdefault(path.name[: -len(suffix)], []).append(path)
    return found


def _detect(root: Path) -> bool:
    try:
        if (root / _GRADES).is_file() or any(root.glob("train_*_anno.bmp")):
            return True
        return (root / "masks").is_dir() and any((root / "images").glob("train_*"))
    except OSError:
        return False


@register_format(
    "glas",
    detect=_detect,
    description="a Grade.csv file, train_*_anno.bmp files, or images/ and masks/ with train_*",
    detect_order=20,
)
def load_glas(root: Path, split: str) -> SegmentationDataset:
    """Read a GlaS folder (official ``*_anno.bmp`` layout or ``images/`` + ``masks/``) into memory.

    ``"train"`` reads ``train_*``, ``"test"`` reads ``testA_*`` and ``testB_*`` (whichever exist), ``"all"`` both
    (train first). Labels are ``(1, H, W)`` in {0: background, 1: gland}: annotations are binarised (``> 0``), so
    touching glands of an instance map merge. ``subject`` is the patient ID from ``Grade.csv``; a case missing from
    it (or a folder without ``Grade.csv``) gets ``subject=None`` and one :class:`DatasetWarning` lists those cases
    (k-fold splits then treat each such case as its own patient). A single unreadable case among several (missing or
    corrupt file, image not RGB, annotation of another size) is skipped with a :class:`DatasetWarning` naming it.

    Args:
        root: an existing folder in one of the two layouts.
        split: ``"train"``, ``"test"`` or ``"all"``.

    Returns:
        The dataset: images ``(3, H, W)`` float32 in [0, 255] (not normalised), ``file_kind="png"``, identity affine.

    Raises:
        ValueError: naming the file or folder, if the folder holds neither layout, the split has no case, the same
            case is stored twice (two endings), ``Grade.csv`` is unreadable, lacks the ``name`` or ``patient ID``
            column or gives one case two patients, or no case of the split can be read.

    Example:
        >>> import tempfile
        >>> from PIL import Image
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(f"{tmp}/train_1.bmp")
        ...     Image.fromarray(np.array([[0, 1, 1, 0, 2]] * 4, np.uint8)).save(f"{tmp}/train_1_anno.bmp")
        ...     _ = open(f"{tmp}/Grade.csv", "w").write("name,patient ID,grade (GlaS)\\ntrain_1, 7, benign\\n")
        ...     case = load_glas(Path(tmp), "train")[0]
        >>> case.case_id, case.image.shape, case.labels.tolist()[0][0], case.subject
        ('train_1', (3, 4, 5), [0, 1, 1, 0, 1], '7')
    """
    files = _list_cases(root, split)
    subjects = _read_grades(root / _GRADES) if (root / _GRADES).is_file() else None
    cases = read_all(files, lambda f: _read_case(f, subjects), name=lambda f: f"case {f.case_id!r}")
    if subjects is None:
        warnings.warn(
            f"No {_GRADES} in {root}: patients are unknown, every GlaS case is its own subject.",
            DatasetWarning,
            stacklevel=2,
        )
    else:
        missing = [c.case_id for c in cases if c.subject is None]
        if missing:
            warnings.warn(
                f"{len(missing)} case(s) are not listed in {root / _GRADES} and have no subject (patient): "
                f"{_shorten(missing)}.",
                DatasetWarning,
                stacklevel=2,
            )
    info = DatasetInfo("GlaS", _CLASS_NAMES, _CHANNEL_NAMES, 2, "glas")
    return SegmentationDataset(info, tuple(cases))


def _list_cases(root: Path, split: str) -> list[_CaseFiles]:
    top = _stems(root)
    official = {s: p for s, p in top.items() if _NAME.fullmatch(s)}
    if official:
        layout, image_stems = "official", official
        annotations = {m.group(1): p for s, p in top.items() if (m := _ANNO.fullmatch(s))}
    elif (root / "images").is_dir() and (root / "masks").is_dir():
        layout = "images/masks"
        image_stems = {s: p for s, p in _stems(root / "images").items() if _NAME.fullmatch(s)}
        annotations = {s: p for s, p in _stems(root / "masks").items() if _NAME.fullmatch(s)}
    else:
        raise ValueError(
            f"Expected {root} to be a GlaS folder (train_N.bmp with train_N_anno.bmp, or images/ and masks/ "
            "holding train_N.png), but it holds neither."
        )
    prefixes = ("train", "testA", "testB") if split == "all" else _SPLIT_PREFIXES[split]
    listed: list[_CaseFiles] = []
    for prefix in prefixes:
        for stem in sorted(s for s in image_stems if s.startswith(f"{prefix}_")):
            image = _single(image_stems[stem], stem, "image")
            masks = annotations.get(stem)
            mask = _single(masks, stem, "annotation") if masks else None
            expected = f"{root / (stem + '_anno.bmp')}" if layout == "official" else f"{root / 'masks' / stem}.png"
            listed.append(_CaseFiles(safe_case_id(stem, image), image, mask, expected))
    if not listed:
        wanted = " or ".join(f"{p}_N" for p in prefixes)
        raise ValueError(
            f"Expected {root} ({layout} GlaS layout) to hold {wanted} images for split {split!r}, but found none."
        )
    return listed


def _single(paths: list[Path], stem: str, what: str) -> Path:
    if len(paths) > 1:
        raise ValueError(f"Expected one {what} file for GlaS case {stem!r}, but found {[str(p) for p in paths]}.")
    return paths[0]


def _read_grades(path: Path) -> dict[str, str]:
    """``Grade.csv``: case name -> patient ID (values may have leading spaces)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle, skipinitialspace=True))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"Could not read {path}: {type(err).__name__}: {err}") from err
    header = [h.strip().lower() for h in rows[0]] if rows else []
    if "name" not in header or "patient id" not in header:
        raise ValueError(f"Expected {path} to have the columns 'name' and 'patient ID', but its header is {header}.")
    name_col, id_col = header.index("name"), header.index("patient id")
    subjects: dict[str, str] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(name_col, id_col) or not row[name_col].strip() or not row[id_col].strip():
            raise ValueError(f"Expected line {line} of {path} to give a name and a patient ID, but got {row}.")
        name, patient = row[name_col].strip(), row[id_col].strip()
        if subjects.setdefault(name, patient) != patient:
            raise ValueError(
                f"Expected one patient ID per case in {path}, but {name!r} has {subjects[name]!r} and {patient!r}."
            )
    return subjects


def _read_case(files: _CaseFiles, subjects: dict[str, str] | None) -> Case:
    if files.mask is None:
        raise ValueError(
            f"Expected annotation file {files.expected_mask} for image {files.image}, but it does not exist."
        )
    raw, _, _ = read_image(files.image)
    if raw.ndim != 3 or raw.shape[-1] != 3:
        raise ValueError(f"Expected image file {files.image} to be RGB (H, W, 3), but it has shape {raw.shape}.")
    anno, _, _ = read_image(files.mask)
    if anno.ndim == 3:  # an RGB re-encoding of a gray map: accept only when the channels agree
        if not (np.array_equal(anno[..., 0], anno[..., 1]) and np.array_equal(anno[..., 0], anno[..., 2])):
            raise ValueError(
                f"Expected annotation file {files.mask} to be a single-channel (gray or palette) label map, "
                f"but it is a colour image of shape {anno.shape}."
            )
        anno = anno[..., 0]
    if anno.shape != raw.shape[:2]:
        raise ValueError(
            f"Expected annotation file {files.mask} to have the shape {raw.shape[:2]} of image {files.image}, "
            f"but got {anno.shape}."
        )
    image = np.moveaxis(raw, -1, 0).astype(np.float32)
    labels = (anno > 0).astype(np.int64)[None]
    subject = None if subjects is None else subjects.get(files.case_id)
    return Case(files.case_id, image, labels, np.eye(4), files.image, None, "png", subject)


def _shorten(names: Iterable[str], limit: int = 10) -> str:
    listed = list(names)
    head = ", ".join(listed[:limit])
    return head + (f", ... ({len(listed) - limit} more)" if len(listed) > limit else "")
