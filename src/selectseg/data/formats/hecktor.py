"""HECKTOR 2021/2022 head and neck PET/CT (format ``"hecktor"``): CT and PET as two channels, GTVp and GTVn labels.

Files ``<Center>-<ID>__CT.nii.gz`` and ``<Center>-<ID>__PT.nii.gz`` (images) and ``<Center>-<ID>.nii.gz`` (label:
0 background, 1 primary tumour GTVp, 2 lymph nodes GTVn), either in ``imagesTr/``, ``labelsTr/`` and ``imagesTs/``
(``labelsTs/``) as in the 2022 release, or all in one folder (a training split).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..case import Case, DatasetInfo, SegmentationDataset
from ..io import file_suffix
from ..names import safe_case_id
from ..tolerant import read_all
from ._nifti import check_same_shape, check_uniform, has_dataset_json, map_labels, nifti_files, read_volume
from .registry import register_format

__all__ = ["CLASS_NAMES", "load_hecktor"]

CLASS_NAMES: tuple[str, ...] = ("background", "GTVp", "GTVn")
"""Class names, index = label value."""

_IMAGE = re.compile(r"(.+)__(CT|PT)\.nii(?:\.gz)?", re.IGNORECASE)
_FOLDERS = {"train": ("imagesTr", "labelsTr"), "test": ("imagesTs", "labelsTs")}
_GRID_ATOL = 1e-3  # mm: affines closer than this are one grid (they are stored in float32)


@dataclass(frozen=True)
class _Item:
    case_id: str
    split: str
    ct: Path | None
    pt: Path | None
    label: Path | None
    label_expected: Path | None  # where a required label would be


def _images(folder: Path) -> dict[str, dict[str, Path]]:
    out: dict[str, dict[str, Path]] = {}
    for f in nifti_files(folder):
        match = _IMAGE.fullmatch(f.name)
        if match is not None:
            out.setdefault(match[1], {})[match[2].upper()] = f
    return out


def _detect(root: Path) -> bool:
    try:
        if has_dataset_json(root):
            return False
        return any(bool(_images(root / folder)) for folder in ("", "imagesTr", "imagesTs") if (root / folder).is_dir())
    except OSError:
        return False


@register_format(
    "hecktor", detect=_detect, description="<Center>-<ID>__CT.nii.gz and __PT.nii.gz files (HECKTOR)", detect_order=70
)
def _load(root: Path, split: str) -> SegmentationDataset:
    return load_hecktor(root, split)


def load_hecktor(root: str | Path, split: str = "train", *, resample_pet: bool = False) -> SegmentationDataset:
    """Read a HECKTOR 2021/2022 folder: channels (CT, PT), labels GTVp and GTVn; nothing is written.

    CT and PET of the raw release are on different grids. By default they must already share one (same shape, and
    affines equal within 1e-3): otherwise a ValueError says so. With ``resample_pet=True`` the PET is resampled onto
    the CT grid (trilinear, through both affines; 0 outside the PET's field of view); the label must be on the CT
    grid either way.

    Args:
        root: the dataset folder: ``imagesTr/`` + ``labelsTr/`` (+ ``imagesTs/``, ``labelsTs/``), or all files in
            ``root`` (read as the training split).
        split: ``"train"``, ``"test"`` (``imagesTs/``; unlabelled unless ``labelsTs/`` holds the label) or ``"all"``.
        resample_pet: resample the PET onto the CT grid where the grids differ.

    Returns:
        The dataset; case id and ``subject`` = ``<Center>-<ID>``; the case's affine and header are the CT's.

    Raises:
        ValueError: if the folder holds no ``__CT`` image of the split, or no case could be read (the first error
            names the file: a missing CT, PET or training label file, an unreadable file, CT and PET on different
            grids without ``resample_pet``, a label of another shape than the CT, label values other than 0, 1,
            2). A single bad case among readable ones is skipped with a
            :class:`~selectseg.data.tolerant.DatasetWarning`.

    Example:
        >>> import tempfile, nibabel as nib
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     for name in ("CHUM-001__CT", "CHUM-001__PT", "CHUM-001"):
        ...         nib.save(nib.Nifti1Image(np.zeros((4, 5, 3), np.float32), np.eye(4)), f"{tmp}/{name}.nii.gz")
        ...     ds = load_hecktor(tmp)
        >>> ds[0].case_id, ds[0].image.shape, ds.info.channel_names, ds.info.class_names
        ('CHUM-001', (2, 4, 5, 3), ('CT', 'PT'), ('background', 'GTVp', 'GTVn'))
    """
    root = Path(root)
    items: list[_Item] = []
    structured = any((root / images).is_dir() for images, _ in _FOLDERS.values())
    for which in ("train", "test") if split == "all" else (split,):
        if structured:
            images_dir, labels_dir = (root / name for name in _FOLDERS[which])
        elif which == "train":
            images_dir = labels_dir = root
        else:
            if split == "test":
                raise ValueError(
                    f"Expected an imagesTs/ folder in {root} for split 'test', but its files are read as the "
                    "training split (no imagesTr/ or imagesTs/ folders)."
                )
            continue
        for case_id, found in sorted(_images(images_dir).items()):
            safe_case_id(case_id, next(iter(found.values())))
            label = next(
                (labels_dir / f"{case_id}{e}" for e in (".nii.gz", ".nii") if (labels_dir / f"{case_id}{e}").is_file()),
                None,
            )
            expected = labels_dir / f"{case_id}.nii.gz" if which == "train" else None
            items.append(_Item(case_id, which, found.get("CT"), found.get("PT"), label, expected))
    if not any(item.ct is not None for item in items):
        where = "imagesTr/, imagesTs/" if structured else str(root)
        raise ValueError(
            f"Expected <Center>-<ID>__CT.nii.gz files of split {split!r} in {where} ({root}), but found none."
        )
    cases = read_all(items, lambda item: _read_case(item, resample_pet), name=lambda item: item.case_id)
    spatial_dims, _ = check_uniform(cases)
    return SegmentationDataset(DatasetInfo(root.name, CLASS_NAMES, ("CT", "PT"), spatial_dims, "hecktor"), tuple(cases))


def _read_case(item: _Item, resample_pet: bool) -> Case:
    ct_path, pt_path = item.ct, item.pt
    if ct_path is None or pt_path is None:
        kind, other = ("CT", pt_path) if ct_path is None else ("PT", ct_path)
        assumed = other.with_name(f"{item.case_id}__{kind}{file_suffix(other)}") if other is not None else kind
        raise ValueError(f"Expected image file {assumed} ({kind} of case {item.case_id!r}), but it does not exist.")
    ct, ct_affine, header = read_volume(ct_path)
    pt, pt_affine, _ = read_volume(pt_path)
    if ct.ndim != 3:
        raise ValueError(f"Expected image file {item.ct} to be a 3-D volume, but got shape {ct.shape}.")
    if pt.shape != ct.shape or not np.allclose(pt_affine, ct_affine, atol=_GRID_ATOL):
        if not resample_pet or pt.ndim != 3:
            raise ValueError(
                f"Expected CT {item.ct} and PET {item.pt} on one grid, but got shapes {ct.shape} and {pt.shape}"
                f"{'' if pt.shape != ct.shape else ' with different affines'}: resample the PET onto the CT grid "
                "first (or pass resample_pet=True to load_hecktor)."
            )
        pt = _resample_onto(np.asarray(pt, dtype=np.float32), pt_affine, ct.shape, ct_affine)
    labels = None
    if item.label is not None:
        raw = read_volume(item.label)[0]
        check_same_shape(raw, item.label, ct.shape, ct_path, "label file")
        labels = map_labels(raw, item.label, {0: 0, 1: 1, 2: 2})[None]
    elif item.label_expected is not None:
        raise ValueError(f"Expected label file {item.label_expected} (a training case), but it does not exist.")
    image = np.stack([np.asarray(ct, dtype=np.float32), np.asarray(pt, dtype=np.float32)])
    return Case(item.case_id, image, labels, ct_affine, item.ct, header, "nifti", subject=item.case_id)


def _resample_onto(array: np.ndarray, affine: np.ndarray, shape: tuple[int, ...], target: np.ndarray) -> np.ndarray:
    """Sample ``array`` (voxel-to-world ``affine``) at the voxel centres of the grid ``(shape, target)``, linearly."""
    target_to_source = np.linalg.inv(affine) @ target
    return ndimage.affine_transform(
        array, target_to_source[:3, :3], offset=target_to_source[:3, 3], output_shape=shape, order=1, cval=0.0
    )
