"""BraTS brain tumour MR (format ``"brats"``): one folder per patient, one file per modality.

Two layouts are read (see ``docs/data.md``); MSD ``Task01_BrainTumour`` (with ``dataset.json``) is the ``"msd"``
format's:

- **BraTS 2013/2015 preprocessed** (as in the DeepMedic examples)::

      <root>/train/brats_2013_pat0005_1/{Flair,T1,T1c,T2}_subtrMeanDivStd.nii.gz, OTMultiClass.nii.gz, brainmask.nii.gz
      <root>/validation/brats_2013_pat0003_1/...

  labels 0 background, 1 necrosis, 2 oedema, 3 non-enhancing tumour, 4 enhancing tumour (stored as floats).
- **BraTS 2018-2021 official**::

      <root>/BraTS20_Training_001/BraTS20_Training_001_{flair,t1,t1ce,t2}.nii.gz, BraTS20_Training_001_seg.nii.gz

  (patient folders directly in ``root`` or in ``Training``/``Validation`` folders); labels 0, 1 (necrotic / non-
  enhancing tumour core), 2 (oedema), 4 (enhancing tumour): 4 is mapped to 3 so that the classes are contiguous.

Channels are the modalities present in every case of the split, in the order FLAIR, T1, T1 contrast, T2.
``brainmask.nii.gz`` is not read (the images are already skull-stripped; threshold it yourself if needed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..case import Case, DatasetInfo, SegmentationDataset
from ..names import safe_case_id
from ..tolerant import read_all
from ._nifti import check_same_shape, check_uniform, child_dirs, has_dataset_json, map_labels, read_volume
from .registry import register_format

__all__ = ["load_brats"]

_SUFFIXES = (".nii.gz", ".nii")
_OLD_MODALITIES = ("Flair", "T1", "T1c", "T2")  # <Mod>_subtrMeanDivStd.nii.gz
_OLD_LABEL = "OTMultiClass"
_OLD_CLASSES = ("background", "necrosis", "oedema", "non-enhancing", "enhancing")
_NEW_MODALITIES = ("flair", "t1", "t1ce", "t2")  # <patient>_<mod>.nii.gz
_NEW_CLASSES = ("background", "necrosis", "oedema", "enhancing")
_OLD_MAPPING = {v: v for v in range(5)}
_NEW_MAPPING = {0: 0, 1: 1, 2: 2, 4: 3}


@dataclass(frozen=True)
class _Patient:
    folder: Path
    split: str  # "train" or "test"
    layout: str  # "2013" or "official"
    channels: dict[str, Path]  # modality -> file
    label: Path | None


def _find(folder: Path, stem: str) -> Path | None:
    return next((folder / f"{stem}{s}" for s in _SUFFIXES if (folder / f"{stem}{s}").is_file()), None)


def _patient(folder: Path, split: str) -> _Patient | None:
    """The files of a patient folder, or None when ``folder`` is not one (cheap: a few stat calls)."""
    old = {m: f for m in _OLD_MODALITIES if (f := _find(folder, f"{m}_subtrMeanDivStd")) is not None}
    old_label = _find(folder, _OLD_LABEL)
    if old or old_label is not None:
        return _Patient(folder, split, "2013", old, old_label)
    new = {m: f for m in _NEW_MODALITIES if (f := _find(folder, f"{folder.name}_{m}")) is not None}
    new_label = _find(folder, f"{folder.name}_seg")
    if new or new_label is not None:
        return _Patient(folder, split, "official", new, new_label)
    return None


def _split_of(name: str) -> str | None:
    lower = name.lower()
    if "train" in lower:
        return "train"
    if "valid" in lower or "test" in lower:
        return "test"
    return None


def _patients(root: Path, limit: int | None = None) -> list[_Patient]:
    """Patient folders directly in ``root`` (split from the folder name) or in split folders (split from theirs)."""
    found: list[_Patient] = []
    lower = root.name.lower()  # root may itself be a split folder: "validation", "MICCAI_BraTS2020_ValidationData"
    is_split = lower in ("train", "training", "valid", "validation", "test", "testing") or lower.endswith("data")
    default = (_split_of(root.name) if is_split else None) or "train"
    for child in child_dirs(root):
        patient = _patient(child, "test" if "_validation_" in child.name.lower() else default)
        if patient is not None:
            found.append(patient)
        elif (split := _split_of(child.name)) is not None:
            for grandchild in child_dirs(child)[: limit if limit is not None else None]:
                if (patient := _patient(grandchild, split)) is not None:
                    found.append(patient)
        if limit is not None and len(found) >= limit:
            break
    return found


def _detect(root: Path) -> bool:
    try:
        return not has_dataset_json(root) and bool(_patients(root, limit=1))
    except OSError:
        return False


@register_format(
    "brats",
    detect=_detect,
    description="BraTS patient folders (OTMultiClass.nii.gz or <case>_flair.nii.gz)",
    detect_order=50,
)
def _load(root: Path, split: str) -> SegmentationDataset:
    return load_brats(root, split)


def load_brats(root: str | Path, split: str = "train") -> SegmentationDataset:
    """Read a BraTS folder (2013/2015 preprocessed or 2018-2021 official layout); nothing is written.

    Args:
        root: the dataset folder.
        split: ``"train"`` (patient folders in sub-folders whose name holds ``train``), ``"test"`` (in sub-folders
            whose name holds ``valid`` or ``test``) or ``"all"``. Patient folders directly in ``root`` are test
            cases when their name holds ``_Validation_`` or ``root`` is itself a test folder (named ``validation``,
            ``test``, ``testing`` or ``*ValidationData``), else training cases.

    Returns:
        The dataset, cases sorted by folder (training first for ``"all"``); case id = the patient folder's name,
        ``subject`` = that name without a trailing scan number (``brats_2013_pat0005_1`` -> ``brats_2013_pat0005``)
        for the 2013 layout, the folder's name for the official one. Channels: the modalities present in every
        case, ordered ``Flair, T1, T1c, T2`` (2013) or ``flair, t1, t1ce, t2`` (official). Classes: ``background,
        necrosis, oedema, non-enhancing, enhancing`` (2013, labels 0-4) or ``background, necrosis, oedema,
        enhancing`` (official, label 4 read as 3). Test cases without a label file are unlabelled.

    Raises:
        ValueError: if no patient folder of the split is found, layouts are mixed, no modality is shared by all
            cases, or no case could be read (the first error names the file: a missing label file of a training
            case, an unreadable file, shapes that differ, label values outside the layout's). A single bad case among
            readable ones is skipped with a :class:`~selectseg.data.tolerant.DatasetWarning`.

    Example:
        >>> import tempfile, nibabel as nib
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     case = Path(tmp, "train", "brats_2013_pat0001_1")
        ...     case.mkdir(parents=True)
        ...     for name in ("Flair_subtrMeanDivStd", "T1c_subtrMeanDivStd", "OTMultiClass"):
        ...         nib.save(nib.Nifti1Image(np.zeros((4, 5, 3), np.float32), np.eye(4)), str(case / f"{name}.nii.gz"))
        ...     ds = load_brats(tmp)
        >>> ds.info.channel_names, ds[0].image.shape, ds[0].subject, ds.info.num_classes
        (('Flair', 'T1c'), (2, 4, 5, 3), 'brats_2013_pat0001', 5)
    """
    root = Path(root)
    found = _patients(root)
    if not found:
        raise ValueError(
            f"Expected {root} to hold BraTS patient folders (with OTMultiClass.nii.gz or <Mod>_subtrMeanDivStd.nii.gz, "
            "or <case>_flair.nii.gz ...), directly or in train/validation folders, but found none."
        )
    layouts = {p.layout for p in found}
    if len(layouts) > 1:
        examples = {p.layout: p.folder for p in found}
        raise ValueError(
            f"Expected one BraTS layout in {root}, but {examples['2013']} is a 2013 folder and "
            f"{examples['official']} an official (2018-2021) one."
        )
    layout = layouts.pop()
    splits = ("train", "test") if split == "all" else (split,)
    listing = [p for s in splits for p in sorted((p for p in found if p.split == s), key=lambda p: p.folder.name)]
    if not listing:
        raise ValueError(f"Expected patient folders of split {split!r} in {root}, but found none.")
    order = _OLD_MODALITIES if layout == "2013" else _NEW_MODALITIES
    channels = tuple(m for m in order if all(m in p.channels for p in listing))
    if not channels:
        raise ValueError(
            f"Expected at least one modality of {list(order)} in every patient folder of {root}, but none is shared "
            f"(e.g. {listing[0].folder} has {sorted(listing[0].channels)})."
        )
    cases = read_all(listing, lambda p: _read_case(p, channels), name=lambda p: str(p.folder))
    spatial_dims, _ = check_uniform(cases)
    classes = _OLD_CLASSES if layout == "2013" else _NEW_CLASSES
    return SegmentationDataset(DatasetInfo(root.name, classes, channels, spatial_dims, "brats"), tuple(cases))


def _read_case(patient: _Patient, channels: tuple[str, ...]) -> Case:
    name = safe_case_id(patient.folder.name, patient.folder)
    parts: list[np.ndarray] = []
    first = patient.channels[channels[0]]
    affine, header = np.eye(4), None
    for modality in channels:
        path = patient.channels[modality]
        array, file_affine, file_header = read_volume(path)
        if parts:
            check_same_shape(array, path, parts[0].shape, first, "image file")
        else:
            affine, header = file_affine, file_header
        parts.append(np.asarray(array, dtype=np.float32))
    labels = None
    if patient.label is not None:
        raw = read_volume(patient.label)[0]
        check_same_shape(raw, patient.label, parts[0].shape, first, "label file")
        labels = map_labels(raw, patient.label, _OLD_MAPPING if patient.layout == "2013" else _NEW_MAPPING)[None]
    elif patient.split == "train":
        name = f"{_OLD_LABEL}.nii.gz" if patient.layout == "2013" else f"{patient.folder.name}_seg.nii.gz"
        raise ValueError(f"Expected label file {patient.folder / name} (a training case), but it does not exist.")
    subject = re.sub(r"_\d+$", "", name) if patient.layout == "2013" else name
    return Case(name, np.stack(parts), labels, affine, first, header, "nifti", subject=subject or name)
