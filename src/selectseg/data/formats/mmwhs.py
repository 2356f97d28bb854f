"""MM-WHS 2017 whole-heart CT and MR (format ``"mmwhs"``), with the optional crop-resample-normalise preprocessing.

Files ``{ct,mr}_{train,test}_<NNNN>_image.nii.gz`` and ``..._label.nii.gz``, directly in the root or in
sub-folders (``ct_train/``, ``mr_test/``, ...). The label values 500, 600, 420 (or 421), 550, 205, 820, 850 become
classes 1..7 (see :data:`LABEL_VALUES`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from ..._validation import look_up_option
from ..case import Case, DatasetInfo, SegmentationDataset
from ..names import safe_case_id
from ..tolerant import read_all
from ._nifti import check_same_shape, check_uniform, child_dirs, has_dataset_json, map_labels, nifti_files, read_volume
from .registry import register_format

__all__ = ["CLASS_NAMES", "LABEL_VALUES", "load_mmwhs"]

LABEL_VALUES: dict[int, int] = {0: 0, 500: 1, 600: 2, 420: 3, 421: 3, 550: 4, 205: 5, 820: 6, 850: 7}
"""File label value -> class index (421 is the left atrium in some releases, like 420)."""

CLASS_NAMES: tuple[str, ...] = (
    "background",
    "left ventricle",  # 500: LV blood cavity
    "right ventricle",  # 600: RV blood cavity
    "left atrium",  # 420 / 421: LA blood cavity
    "right atrium",  # 550: RA blood cavity
    "myocardium",  # 205: myocardium of the LV
    "ascending aorta",  # 820
    "pulmonary artery",  # 850
)
"""Class names, index = class."""

_FILE = re.compile(r"(ct|mr)_(train|test)_(\d+)_(image|label)\.nii(?:\.gz)?", re.IGNORECASE)
_MODALITIES = ("ct", "mr", "all")


@dataclass(frozen=True)
class _Item:
    case_id: str
    modality: str
    number: str
    image: Path | None
    label: Path | None


def _scan(root: Path) -> list[tuple[Path, re.Match[str]]]:
    hits: list[tuple[Path, re.Match[str]]] = []
    for folder in (root, *child_dirs(root)):
        for f in nifti_files(folder):
            match = _FILE.fullmatch(f.name)
            if match is not None:
                hits.append((f, match))
    return hits


def _detect(root: Path) -> bool:
    try:
        if has_dataset_json(root):
            return False
        for folder in (root, *child_dirs(root)):
            if any(_FILE.fullmatch(f.name) and "image" in f.name.lower() for f in nifti_files(folder)):
                return True
    except OSError:
        return False
    return False


@register_format(
    "mmwhs", detect=_detect, description="{ct,mr}_{train,test}_NNNN_image.nii.gz files (MM-WHS)", detect_order=60
)
def _load(root: Path, split: str) -> SegmentationDataset:
    return load_mmwhs(root, split)


def load_mmwhs(
    root: str | Path,
    split: str = "train",
    *,
    modality: str = "ct",
    preprocess: bool = False,
    size: Sequence[int] = (96, 96, 96),
    margin: int = 8,
) -> SegmentationDataset:
    """Read an MM-WHS 2017 folder; with ``preprocess=True``, crop to the heart, resample and z-score each case.

    Without preprocessing the images are the files' arrays (float32, not normalised) with their affine and header.
    With ``preprocess=True`` each labelled case is cropped to the bounding box of its foreground (all classes)
    grown by ``margin`` voxels on each side (clipped to the image), resampled to ``size`` (linear interpolation for
    the image, nearest neighbour for the labels; voxel extents aligned, so the crop's corners stay where they are)
    and z-scored (mean 0, standard deviation 1 over the whole resampled image; a constant image becomes 0). The
    affine follows: the crop moves the origin, the resampling scales the voxel size, so outputs written with
    :func:`~selectseg.data.save_like` land at the right place in world space (the header's shape and geometry are
    updated likewise). Unlabelled (test) cases have no heart to crop to: the whole volume is resampled to ``size``
    and z-scored.

    Args:
        root: the dataset folder.
        split: ``"train"`` (``*_train_*`` files), ``"test"`` (``*_test_*``, unlabelled unless a label file exists)
            or ``"all"``.
        modality: ``"ct"``, ``"mr"`` or ``"all"`` (CT then MR cases).
        preprocess: crop, resample and z-score as above (Ding et al. 2020).
        size: output grid ``(D, H, W)`` of the preprocessing, three positive ints.
        margin: voxels added around the heart's bounding box before resampling, ``>= 0``.

    Returns:
        The dataset: one channel (``"CT"``, ``"MR"``, or ``"image"`` for ``"all"``), one annotator, the 8 classes of
        :data:`CLASS_NAMES`. Case id ``ct_train_1001``, subject ``ct_1001``.

    Raises:
        TypeError: if ``modality`` is not a string, ``size`` not a sequence of ints or ``margin`` not an int.
        ValueError: if ``modality`` is unknown, ``size`` has not three positive entries, ``margin < 0``, there is
            no image file of the split and modality, or no case could be read (the first error names the file: a
            missing label file of a training case, an image file missing for a label file, an unreadable file,
            shapes that differ, label values other than those of :data:`LABEL_VALUES`, listed in the message). A
            single bad case among readable ones is skipped with a :class:`~selectseg.data.tolerant.DatasetWarning`.

    Example:
        >>> import tempfile, nibabel as nib
        >>> label = np.zeros((12, 12, 12), np.int16)
        >>> label[4:8, 4:8, 4:8] = 500
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     for name, array in (("image", label.astype(np.float32)), ("label", label)):
        ...         nib.save(nib.Nifti1Image(array, np.eye(4)), f"{tmp}/ct_train_1001_{name}.nii.gz")
        ...     raw = load_mmwhs(tmp, "train")
        ...     small = load_mmwhs(tmp, "train", preprocess=True, size=(6, 6, 6), margin=1)
        >>> int(raw[0].labels.max()), small[0].image.shape, small[0].spacing
        (1, (1, 6, 6, 6), (1.0, 1.0, 1.0))
    """
    modality = look_up_option("modality", modality, _MODALITIES)
    grid = _check_size(size)
    if not isinstance(margin, int) or isinstance(margin, bool):
        raise TypeError(f"Expected `margin` to be an int, but got {type(margin).__name__}.")
    if margin < 0:
        raise ValueError(f"Expected `margin` to be a non-negative int, but got {margin}.")
    root = Path(root)
    files: dict[tuple[str, str, str], dict[str, Path]] = {}
    for path, match in _scan(root):
        key = (match[1].lower(), match[2].lower(), match[3])
        role = match[4].lower()
        if role in files.get(key, {}):
            raise ValueError(
                f"Expected one {role} file per case, but {files[key][role]} and {path} are both {'_'.join(key)}."
            )
        files.setdefault(key, {})[role] = path
    modalities = ("ct", "mr") if modality == "all" else (modality,)
    splits = ("train", "test") if split == "all" else (split,)
    items = [
        _Item(safe_case_id(f"{m}_{s}_{n}", root), m, n, found.get("image"), found.get("label"))
        for m in modalities
        for s in splits
        for (fm, fs, n), found in sorted(files.items())
        if fm == m and fs == s
    ]
    if not any(item.image is not None for item in items):
        raise ValueError(
            f"Expected {'/'.join(modalities)} image files of split {split!r} ({modalities[0]}_{splits[0]}_NNNN_image"
            f".nii.gz) in {root} or its sub-folders, but found none."
        )
    cases = read_all(items, lambda item: _read_case(item, preprocess, grid, margin), name=lambda item: item.case_id)
    spatial_dims, _ = check_uniform(cases)
    channel = {"ct": "CT", "mr": "MR", "all": "image"}[modality]
    return SegmentationDataset(DatasetInfo(root.name, CLASS_NAMES, (channel,), spatial_dims, "mmwhs"), tuple(cases))


def _check_size(size: Any) -> tuple[int, int, int]:
    if not isinstance(size, Sequence) or isinstance(size, str) or not all(isinstance(s, int) for s in size):
        raise TypeError(f"Expected `size` to be a sequence of three ints, but got {size!r}.")
    if len(size) != 3 or any(s < 1 for s in size):
        raise ValueError(f"Expected `size` to hold three positive ints, but got {tuple(size)}.")
    return (int(size[0]), int(size[1]), int(size[2]))


def _read_case(item: _Item, preprocess: bool, size: tuple[int, int, int], margin: int) -> Case:
    if item.image is None:  # a label file without its image (an item has at least one of the two)
        label = item.label if item.label is not None else Path(item.case_id)
        image_file = label.with_name(label.name.replace("_label", "_image"))
        raise ValueError(f"Expected image file {image_file} for label file {label}, but it does not exist.")
    image, affine, header = read_volume(item.image)
    labels = None
    if item.label is not None:
        raw = read_volume(item.label)[0]
        check_same_shape(raw, item.label, image.shape, item.image, "label file")
        labels = map_labels(raw, item.label, LABEL_VALUES)
    elif "_train_" in item.case_id:
        name = item.image.name.replace("_image", "_label")
        raise ValueError(f"Expected label file {item.image.with_name(name)} (a training case), but it does not exist.")
    if image.ndim != 3:
        raise ValueError(f"Expected image file {item.image} to be a 3-D volume, but got shape {image.shape}.")
    image = np.asarray(image, dtype=np.float32)
    if preprocess:
        image, labels, affine, header = _preprocess(image, labels, affine, header, size, margin)
    subject = f"{item.modality}_{item.number}"
    return Case(
        item.case_id, image[None], None if labels is None else labels[None], affine, item.image, header, subject=subject
    )


def _preprocess(
    image: np.ndarray,
    labels: np.ndarray | None,
    affine: np.ndarray,
    header: Any,
    size: tuple[int, int, int],
    margin: int,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, Any]:
    """Crop to the foreground box (+ margin), resample to ``size`` with aligned voxel extents, z-score; new affine."""
    shape = np.array(image.shape)
    if labels is not None and labels.any():
        where = np.nonzero(labels)
        low = np.maximum([int(w.min()) - margin for w in where], 0)
        high = np.minimum([int(w.max()) + 1 + margin for w in where], shape)
    else:
        low, high = np.zeros(3, dtype=np.int64), shape
    step = (high - low) / np.array(size, dtype=np.float64)
    offset = low + 0.5 * step - 0.5  # output voxel j has its centre at input index low - 0.5 + (j + 0.5) * step
    resampled = ndimage.affine_transform(image, step, offset=offset, output_shape=size, order=1, mode="nearest")
    if labels is not None:
        labels = ndimage.affine_transform(labels, step, offset=offset, output_shape=size, order=0, mode="nearest")
    std = float(resampled.std())
    resampled = (resampled - resampled.mean()) / (std if std > 0 else 1.0)
    index_to_input = np.eye(4)
    index_to_input[:3, :3] = np.diag(step)
    index_to_input[:3, 3] = offset
    new_affine = affine @ index_to_input
    if header is not None:
        header = header.copy()
        header.set_data_shape(size)
        header.set_data_dtype(np.float32)
        header.set_sform(new_affine, code=int(header["sform_code"]) or 1)
        header.set_qform(new_affine, code=int(header["qform_code"]) or 1)
    return resampled.astype(np.float32), labels, new_affine, header
