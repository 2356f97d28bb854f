"""QUBIQ 2020/2021 (format ``"qubiq"``): several annotators per image, one folder per case.

Layout (see ``docs/data.md``)::

    <root>/Training/case01/image.nii.gz             the image: 2-D (X, Y), (X, Y, 1), 3-D, or channels last
    <root>/Training/case01/task01_seg01.nii.gz      annotator 1 of task 1, {0, 1} (floats such as 1.0 are fine)
    <root>/Training/case01/task01_seg02.nii.gz      annotator 2 ...
    <root>/Validation/case01/...                    the "test" split (``Test/`` where there is no ``Validation/``)

A root that directly holds ``caseNN`` folders is read as a training split. Every annotator of the chosen task is a
label map: ``labels`` is ``(A, *S)`` with values {0, 1}. The module also holds small NIfTI helpers shared by the other
challenge formats (``brats``, ``mmwhs``, ``hecktor``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..case import Case, DatasetInfo, SegmentationDataset
from ..names import safe_case_id
from ..tolerant import read_all
from ._nifti import (
    check_same_shape,
    check_uniform,
    child_dirs,
    has_dataset_json,
    map_labels,
    nifti_files,
    read_volume,
)
from .registry import register_format

__all__ = ["load_qubiq"]

_CASE_DIR = re.compile(r"case\d+", re.IGNORECASE)
_SEG_FILE = re.compile(r"task(\d+)_seg(\d+)\.nii(?:\.gz)?", re.IGNORECASE)
_SPLIT_DIRS: dict[str, tuple[str, ...]] = {"train": ("training",), "test": ("validation", "test")}
_CLASS_NAMES = {"kidney": "kidney"}  # a word in the dataset folder's name -> the class name of task 1


# ----------------------------------------------------------------------------------------------------- the format


@dataclass(frozen=True)
class _CaseFolder:
    case_id: str
    folder: Path
    segs: dict[int, dict[int, Path]]  # task -> annotator -> file
    labelled_split: bool  # Training: labels required


def _split_folders(root: Path) -> dict[str, Path]:
    """``{"training": path, "validation": path, "test": path}`` for the split folders present (any case)."""
    return {p.name.lower(): p for p in child_dirs(root) if p.name.lower() in ("training", "validation", "test")}


def _case_dirs(folder: Path) -> list[Path]:
    return [p for p in child_dirs(folder) if _CASE_DIR.fullmatch(p.name)]


def _seg_files(folder: Path) -> dict[int, dict[int, Path]]:
    segs: dict[int, dict[int, Path]] = {}
    for f in nifti_files(folder):
        match = _SEG_FILE.fullmatch(f.name)
        if match is not None:
            segs.setdefault(int(match[1]), {})[int(match[2])] = f
    return segs


def _detect(root: Path) -> bool:
    try:
        if has_dataset_json(root):
            return False
        folders = [root, *_split_folders(root).values()]
        for folder in folders:
            for case_dir in _case_dirs(folder)[:3]:
                if _seg_files(case_dir):
                    return True
    except OSError:
        return False
    return False


@register_format(
    "qubiq", detect=_detect, description="caseNN folders holding taskNN_segNN.nii.gz files (QUBIQ)", detect_order=40
)
def _load(root: Path, split: str) -> SegmentationDataset:
    return load_qubiq(root, split)


def load_qubiq(root: str | Path, split: str = "train", *, task: int | None = None) -> SegmentationDataset:
    """Read a QUBIQ dataset folder: every annotator of one task as a label map (nothing is written).

    Args:
        root: the dataset folder, holding ``Training/``, ``Validation/``, ``Test/``, or ``caseNN/`` folders directly
            (read as the training split, or as the test split when ``root`` is itself named Validation or Test).
        split: ``"train"`` (``Training/``), ``"test"`` (``Validation/``, else ``Test/``) or ``"all"`` (both).
        task: the task number (``1`` reads ``task01_seg*``); ``None`` = the lowest task number found in the split.

    Returns:
        The dataset. Case ids are the folder names (``case01``) for training cases and ``<split folder>_<case>``
        (``validation_case01``) for the others; ``subject`` is the case id. Classes ``("background", name)`` with
        ``name`` ``"kidney"`` when the dataset folder's name says so, else ``"structure"``. Channel names
        ``("image",)`` or ``("channel_0", ...)`` for channels-last images. A case folder without any segmentation in
        ``Validation/`` or ``Test/`` is unlabelled.

    Raises:
        TypeError: if ``task`` is not an int or None.
        ValueError: if ``task`` is not positive, the folder is not in this layout, the split has no case folder, no
            case could be read (the first error names the file: a missing image or annotator file, an unreadable
            file, shapes that differ, label values other than 0 and 1), or cases mix 2-D and 3-D or channel counts.
            A single bad case among readable ones is skipped with a :class:`~selectseg.data.tolerant.DatasetWarning`.

    Example:
        >>> import tempfile, nibabel as nib
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     case = Path(tmp, "Training", "case01")
        ...     case.mkdir(parents=True)
        ...     nib.save(nib.Nifti1Image(np.zeros((8, 6), np.float32), np.eye(4)), str(case / "image.nii.gz"))
        ...     for k in (1, 2):
        ...         seg = nib.Nifti1Image(np.ones((8, 6), np.float32), np.eye(4))
        ...         nib.save(seg, str(case / f"task01_seg0{k}.nii.gz"))
        ...     ds = load_qubiq(tmp, "train")
        >>> ds[0].case_id, ds[0].image.shape, ds[0].labels.shape, ds.info.class_names
        ('case01', (1, 8, 6), (2, 8, 6), ('background', 'structure'))
    """
    if task is not None and (not isinstance(task, int) or isinstance(task, bool)):
        raise TypeError(f"Expected `task` to be a positive int or None, but got {type(task).__name__}.")
    if task is not None and task < 1:
        raise ValueError(f"Expected `task` to be a positive int or None, but got {task}.")
    root = Path(root)
    folders = _split_folders(root)
    listing: list[_CaseFolder] = []
    case_only = False
    if folders:
        wanted: list[tuple[Path, bool, str]] = []
        if split in ("train", "all") and "training" in folders:
            wanted.append((folders["training"], True, ""))
        test = folders.get("validation", folders.get("test"))
        if split in ("test", "all") and test is not None:
            wanted.append((test, False, f"{test.name.lower()}_"))
        if not wanted:
            needs = "Training/" if split == "train" else "Validation/ or Test/"
            raise ValueError(f"Expected a {needs} folder in {root} for split {split!r}, but there is none.")
    elif case_only := bool(_case_dirs(root)):
        is_test = root.name.lower() in _SPLIT_DIRS["test"]  # root is itself a Validation/ or Test/ folder
        if split == ("train" if is_test else "test"):
            raise ValueError(
                f"Expected a {'Training/' if is_test else 'Validation/ or Test/'} folder in {root} for split "
                f"{split!r}, but it holds case folders only (read as the {'test' if is_test else 'training'} split)."
            )
        wanted = [(root, not is_test, f"{root.name.lower()}_" if is_test else "")]
    else:
        raise ValueError(
            f"Expected {root} to hold Training/ (and Validation/ or Test/) folders or caseNN/ folders (QUBIQ), "
            "but it holds neither."
        )
    for folder, labelled, prefix in wanted:
        listing.extend(
            _CaseFolder(safe_case_id(prefix + d.name, d), d, _seg_files(d), labelled) for d in _case_dirs(folder)
        )
    if not listing:
        raise ValueError(f"Expected caseNN/ folders in {', '.join(str(w[0]) for w in wanted)}, but found none.")
    tasks = sorted({t for item in listing for t in item.segs})
    if task is None:
        if not tasks and any(item.labelled_split for item in listing):
            raise ValueError(f"Expected taskNN_segNN.nii.gz files in the case folders of {root}, but found none.")
        task = tasks[0] if tasks else 1  # an unlabelled test split has no task
    chosen: int = task
    cases = read_all(listing, lambda item: _read_case(item, chosen), name=lambda item: str(item.folder))
    spatial_dims, channels = check_uniform(cases)
    words = root.name.lower() + (" " + root.parent.name.lower() if case_only else "")
    structure = next((name for word, name in _CLASS_NAMES.items() if word in words and task == 1), "structure")
    channel_names = ("image",) if channels == 1 else tuple(f"channel_{c}" for c in range(channels))
    info = DatasetInfo(root.name, ("background", structure), channel_names, spatial_dims, "qubiq")
    return SegmentationDataset(info, tuple(cases))


def _read_case(item: _CaseFolder, task: int) -> Case:
    image_path = next((item.folder / n for n in ("image.nii.gz", "image.nii") if (item.folder / n).is_file()), None)
    if image_path is None:
        raise ValueError(f"Expected image file {item.folder / 'image.nii.gz'}, but it does not exist.")
    files = item.segs.get(task)
    if files is None and (item.labelled_split or item.segs):
        raise ValueError(
            f"Expected annotator files {item.folder / f'task{task:02d}_seg01.nii.gz'}, ... (task {task}) in "
            f"{item.folder}, but found none."
        )
    image, affine, header = read_volume(image_path)
    maps: list[np.ndarray] = []
    if files is not None:
        for k in range(1, max(files) + 1):
            if k not in files:
                raise ValueError(
                    f"Expected annotator file {item.folder / f'task{task:02d}_seg{k:02d}.nii.gz'} (annotator {k} of "
                    f"{max(files)}), but it does not exist."
                )
            raw = read_volume(files[k])[0]
            if maps:
                check_same_shape(raw, files[k], maps[0].shape, files[1], "annotator file")
            maps.append(map_labels(raw, files[k], {0: 0, 1: 1}))
    if maps and image.ndim == maps[0].ndim + 1 and image.shape[:-1] == maps[0].shape:
        channels_first = np.moveaxis(image, -1, 0)  # channels last, e.g. (X, Y, C) with (X, Y) labels
    elif not maps and image.ndim == 4:
        channels_first = np.moveaxis(image, -1, 0)
    else:
        if maps:
            check_same_shape(maps[0], files[1] if files else image_path, image.shape, image_path, "annotator file")
        channels_first = image[None]
    if channels_first.ndim not in (3, 4):
        raise ValueError(
            f"Expected image file {image_path} to be 2-D or 3-D (channels last allowed), but got shape {image.shape}."
        )
    labels = np.stack(maps) if maps else None
    array = np.ascontiguousarray(channels_first, dtype=np.float32)
    return Case(item.case_id, array, labels, affine, image_path, header, "nifti", subject=item.case_id)
