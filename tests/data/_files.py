"""Small helpers that write data folders by hand, for the data tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from selectseg.data import Case, SegmentationDataset, make_synthetic_dataset

AFFINE = np.array([[0.0, -1.5, 0.0, 10.0], [2.0, 0.0, 0.0, -5.0], [0.0, 0.0, 3.0, 7.0], [0.0, 0.0, 0.0, 1.0]])
"""A non-identity affine (axes swapped, anisotropic spacing 2, 1.5, 3) exactly representable in float32."""


def save_nifti(path: Path, array: np.ndarray, affine: np.ndarray = AFFINE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = nib.Nifti1Image(array, affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=4)
    nib.save(image, str(path))
    return path


def save_json(root: Path, meta: Any) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "dataset.json"
    path.write_text(json.dumps(meta))
    return path


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its modification time and size."""
    return {p.relative_to(root).as_posix(): (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*")}


def msd_style_folder(root: Path, *, annotators: int = 1, test_labels: bool = True) -> Path:
    """An MSD-style folder: 2 training cases with 4-D (X, Y, Z, 2) images, 1 test case, non-identity affines."""
    rng = np.random.default_rng(0)
    training = []
    for i in range(2):
        image = rng.normal(size=(6, 5, 4, 2)).astype(np.float32)
        save_nifti(root / "imagesTr" / f"case_{i}.nii.gz", image)
        labels = []
        for a in range(annotators):
            name = f"case_{i}.nii.gz" if annotators == 1 else f"case_{i}_rater{a}.nii.gz"
            save_nifti(root / "labelsTr" / name, rng.integers(0, 3, size=(6, 5, 4)).astype(np.uint8))
            labels.append(f"./labelsTr/{name}")
        training.append({"image": f"./imagesTr/case_{i}.nii.gz", "label": labels[0] if annotators == 1 else labels})
    save_nifti(root / "imagesTs" / "case_9.nii.gz", rng.normal(size=(6, 5, 4, 2)).astype(np.float32))
    if test_labels:
        save_nifti(root / "labelsTs" / "case_9.nii.gz", rng.integers(0, 3, size=(6, 5, 4)).astype(np.uint8))
    save_json(
        root,
        {
            "name": "Task01_Toy",
            "modality": {"0": "FLAIR", "1": "T1w"},
            "labels": {"0": "background", "1": "edema", "2": "tumour"},
            "numTraining": 2,
            "training": training,
            "test": ["./imagesTs/case_9.nii.gz"],
        },
    )
    return root


def small_synthetic(**kwargs: Any) -> SegmentationDataset:
    options: dict[str, Any] = {"num_cases": 2, "size": 16}
    options.update(kwargs)
    return make_synthetic_dataset(**options)


def integer_images(dataset: SegmentationDataset, high: int = 255) -> SegmentationDataset:
    """The same cases with integer intensities in [0, high] (PNG-storable)."""
    cases = []
    for case in dataset:
        image = np.round(np.clip((case.image + 0.5) * high / 2, 0, high)).astype(np.float32)
        cases.append(Case(case.case_id, image, case.labels, case.affine, None, None, "synthetic"))
    return SegmentationDataset(dataset.info, tuple(cases))
