"""Writing the nnU-Net / Medical Segmentation Decathlon layout (the reader is :mod:`selectseg.data.formats.msd`):
``imagesTr/<case>_0000.nii.gz``, ``labelsTr/<case>.nii.gz`` (or one file per annotator), ``dataset.json``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..._validation import look_up_option
from ..annotators import target_labels
from ..case import Case, SegmentationDataset
from ..io import atomic_write, write_nifti, write_png
from .msd import ANNOTATOR_FILE, CASE_ID, DATASET_JSON, FOLDERS

__all__ = ["write_msd_dataset"]

_WRITE_ENDINGS = (".nii.gz", ".nii", ".png")


def write_msd_dataset(
    path: str | Path,
    train: SegmentationDataset,
    *,
    test: SegmentationDataset | None = None,
    file_ending: str = ".nii.gz",
) -> Path:
    """Write datasets in the nnU-Net v2 layout that :func:`~selectseg.data.load_dataset` reads back exactly.

    The folder gets ``imagesTr/<case>_XXXX<ending>`` (one file per channel; one RGB file for a 3-channel PNG
    dataset), ``labelsTr/<case><ending>`` for one annotator or ``labelsTr/<case>_a1<ending>, ...`` for several
    together with their per-voxel majority as ``labelsTr/<case><ending>`` (the plain label nnU-Net trains on; the
    reader takes the annotators' files when both are there),
    ``imagesTs/`` and (when the test cases are labelled) ``labelsTs/`` likewise, and ``dataset.json`` (nnU-Net v2
    style). Reading it back gives the same image arrays, labels and affines (NIfTI stores the affine in float32).
    NIfTI images are float32 and labels uint8 (int16 beyond 256 classes), each with its case's geometry (see
    :func:`~selectseg.data.save_like`). PNG stores no geometry (cases read back get the identity affine) and only
    integer intensities: 8-bit (RGB or gray) or 16-bit (gray).

    Each file is written atomically, and ``dataset.json`` last, so an interrupted write leaves a folder that
    :func:`~selectseg.data.load_dataset` refuses rather than a partial dataset.

    Args:
        path: destination folder; created when missing. It must be empty or hold only the files this call writes
            (re-writing the same dataset).
        train: labelled training cases.
        test: test cases, all labelled or all unlabelled, with the same classes, channels and dimensionality.
        file_ending: ``".nii.gz"``, ``".nii"`` or ``".png"`` (2-D, 1 or 3 channels, integer intensities).

    Returns:
        The dataset folder.

    Raises:
        TypeError: if ``train`` or ``test`` is not a :class:`SegmentationDataset` or ``path`` is not a str or Path.
        ValueError: if ``file_ending`` is unknown, ``train`` is empty or has an unlabelled case, ``test`` mixes
            labelled and unlabelled cases or differs from ``train`` in classes, channels or dimensionality, a case id
            is not a plain file name (letters, digits, ``._-``, not ending in ``_a<k>``) or repeats, PNG is asked
            for 3-D data, for other than 1 or 3 channels, more than 256 classes or non-integer intensities, or
            ``path`` is a file or a folder holding other files.

    Example:
        >>> import tempfile
        >>> from selectseg.data import make_synthetic_dataset
        >>> train = make_synthetic_dataset(num_cases=2, size=16, num_annotators=2)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     root = write_msd_dataset(f"{tmp}/Dataset001_Synth", train)
        ...     names = sorted(p.name for p in (root / "labelsTr").iterdir())
        >>> names[:3]  # the annotators' majority as the plain label, and each annotator's own
        ['synth_train_000.nii.gz', 'synth_train_000_a1.nii.gz', 'synth_train_000_a2.nii.gz']
    """
    if not isinstance(path, (str, Path)):
        raise TypeError(f"Expected `path` to be a str or Path, but got {type(path).__name__}.")
    for name, value in (("train", train), ("test", test)):
        if not isinstance(value, SegmentationDataset) and not (name == "test" and value is None):
            raise TypeError(f"Expected `{name}` to be a SegmentationDataset, but got {type(value).__name__}.")
    ending = look_up_option("file_ending", file_ending, _WRITE_ENDINGS)
    info = train.info
    _check_writable(train, test, ending)
    root = Path(path)
    jobs: dict[str, tuple[np.ndarray, Case]] = {}
    for which, dataset in (("train", train), ("test", test)):
        for case in dataset or ():
            jobs.update((k, (a, case)) for k, a in _case_files(case, which, ending, info.num_classes).items())
    if root.exists() and not root.is_dir():
        raise ValueError(f"Expected `path` to be a folder, but {root} is a file.")
    if root.exists():
        unexpected = sorted(
            p.relative_to(root).as_posix()
            for p in root.rglob("*")
            if (p.is_dir() and p.relative_to(root).as_posix() not in {*FOLDERS["train"], *FOLDERS["test"]})
            or (not p.is_dir() and p.relative_to(root).as_posix() not in {*jobs, DATASET_JSON})
        )
        if unexpected:
            more = f" and {len(unexpected) - 5} more" if len(unexpected) > 5 else ""
            raise ValueError(
                f"Expected `path` to be empty or to hold this same dataset, but {root} holds other files: "
                f"{unexpected[:5]}{more}."
            )
    for relative, (array, case) in jobs.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if ending == ".png":
            write_png(array, target)
        else:
            write_nifti(array, case, target)
    meta = {
        "name": info.name,
        "description": "Written by selectseg.data.write_msd_dataset (nnU-Net v2 layout; labelsTr/<case>_a<k> files "
        "are the maps of annotator k).",
        "channel_names": {str(i): n for i, n in enumerate(info.channel_names)},
        "labels": {n: i for i, n in enumerate(info.class_names)},
        "numTraining": len(train),
        "file_ending": ending,
    }
    text = json.dumps(meta, indent=2) + "\n"
    atomic_write(root / DATASET_JSON, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return root


def _check_writable(train: SegmentationDataset, test: SegmentationDataset | None, ending: str) -> None:
    info = train.info
    if len(train) == 0:
        raise ValueError("Expected `train` to hold at least one case, but it is empty.")
    if test is not None:
        for attr in ("class_names", "channel_names", "spatial_dims"):
            if getattr(test.info, attr) != getattr(info, attr):
                raise ValueError(
                    f"Expected `test` to have the {attr} of `train` {getattr(info, attr)!r}, "
                    f"but got {getattr(test.info, attr)!r}."
                )
        labelled = {case.labels is not None for case in test}
        if len(labelled) > 1:
            raise ValueError("Expected the cases of `test` to be all labelled or all unlabelled, but they are mixed.")
    seen: set[str] = set()
    for which, dataset in (("train", train), ("test", test)):
        for case in dataset or ():
            if not CASE_ID.fullmatch(case.case_id) or ANNOTATOR_FILE.fullmatch(case.case_id):
                raise ValueError(
                    f"Expected case ids made of letters, digits and '._-' and not ending in '_a<k>', but got "
                    f"{case.case_id!r}."
                )
            if case.case_id in seen:
                raise ValueError(
                    f"Expected distinct case ids across `train` and `test`, but got {case.case_id!r} twice."
                )
            seen.add(case.case_id)
            if which == "train" and case.labels is None:
                raise ValueError(f"Expected every case of `train` to be labelled, but {case.case_id!r} is not.")
    if ending != ".png":
        return
    if info.spatial_dims != 2 or info.num_channels not in (1, 3) or info.num_classes > 256:
        raise ValueError(
            "Expected 2-D data with 1 or 3 channels and at most 256 classes for PNG, but got "
            f"{info.spatial_dims}-D data with {info.num_channels} channel(s) and {info.num_classes} classes."
        )
    high = 65535 if info.num_channels == 1 else 255
    for dataset in (train, test):
        for case in dataset or ():
            image = case.image
            integral = bool(np.array_equal(image, np.round(image)))
            if not integral or image.min() < 0 or image.max() > high:
                kind = "" if integral else "non-integer "
                raise ValueError(
                    f"Expected the image of case {case.case_id!r} to hold integers in [0, {high}] for PNG, but got "
                    f"{kind}values in [{image.min():g}, {image.max():g}] (write NIfTI instead)."
                )


def _case_files(case: Case, which: str, ending: str, num_classes: int) -> dict[str, np.ndarray]:
    """The files of one case: relative path -> array on the case's grid, in the dtype to store."""
    images, labels = FOLDERS[which]
    files: dict[str, np.ndarray] = {}
    if ending == ".png":
        pixels = case.image[0] if case.image.shape[0] == 1 else np.moveaxis(case.image, 0, -1)
        files[f"{images}/{case.case_id}_0000{ending}"] = pixels.astype(np.uint8 if pixels.max() <= 255 else np.uint16)
    else:
        for c in range(case.image.shape[0]):
            files[f"{images}/{case.case_id}_{c:04d}{ending}"] = case.image[c]
    if case.labels is not None:
        dtype = np.uint8 if num_classes <= 256 else np.int16
        single = case.num_annotators == 1
        for k, label in enumerate(case.labels.astype(dtype), start=1):
            files[f"{labels}/{case.case_id if single else f'{case.case_id}_a{k}'}{ending}"] = label
        if not single:  # the annotators' majority as the plain label nnU-Net trains on (our reader prefers _a<k>)
            consensus = target_labels(case.labels, "majority", num_classes).astype(dtype)
            files[f"{labels}/{case.case_id}{ending}"] = consensus
    return files
