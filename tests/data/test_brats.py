from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import selectseg.data.formats.brats  # noqa: F401  (registers "brats")
from selectseg.data import load_dataset
from selectseg.data.formats.brats import load_brats
from selectseg.data.tolerant import DatasetWarning
from tests.data._files import AFFINE, save_nifti, snapshot

from .._shared_data import shared

BRATS = shared("brats")
SHAPE = (6, 5, 4)


def write_2013_case(folder: Path, modalities=("Flair", "T1c"), label_values=(0, 1, 2, 3, 4), seed=0) -> Path:
    rng = np.random.default_rng(seed)
    for m in modalities:
        save_nifti(folder / f"{m}_subtrMeanDivStd.nii.gz", rng.normal(size=SHAPE).astype(np.float32))
    save_nifti(folder / "OTMultiClass.nii.gz", rng.choice(label_values, size=SHAPE).astype(np.float32))
    save_nifti(folder / "brainmask.nii.gz", np.ones(SHAPE, np.float32))
    return folder


def write_official_case(folder: Path, labelled=True, seed=0) -> Path:
    rng = np.random.default_rng(seed)
    for m in ("flair", "t1", "t1ce", "t2"):
        save_nifti(folder / f"{folder.name}_{m}.nii.gz", rng.normal(size=SHAPE).astype(np.float32))
    if labelled:
        save_nifti(folder / f"{folder.name}_seg.nii.gz", rng.choice([0, 1, 2, 4], size=SHAPE).astype(np.uint8))
    return folder


def make_brats_folder(root: Path) -> Path:
    write_2013_case(root / "train" / "brats_2013_pat0005_1", seed=1)
    write_2013_case(root / "train" / "brats_2013_pat0006_1", seed=2)
    write_2013_case(root / "validation" / "brats_2013_pat0003_1", seed=3)
    return root


def test_load_brats_2013_layout(tmp_path):
    root = make_brats_folder(tmp_path / "brats")
    ds = load_dataset(root)
    assert ds.info.format == "brats" and ds.info.channel_names == ("Flair", "T1c")
    assert ds.info.class_names == ("background", "necrosis", "oedema", "non-enhancing", "enhancing")
    assert [c.case_id for c in ds] == ["brats_2013_pat0005_1", "brats_2013_pat0006_1"]
    case = ds[0]
    assert case.image.shape == (2, *SHAPE) and case.labels.shape == (1, *SHAPE) and case.labels.dtype == np.int64
    assert set(np.unique(case.labels)) == {0, 1, 2, 3, 4}
    assert case.subject == "brats_2013_pat0005" and np.array_equal(case.affine, AFFINE)
    assert case.source.name == "Flair_subtrMeanDivStd.nii.gz" and case.header.get_data_shape() == SHAPE
    assert [c.case_id for c in load_brats(root, "test")] == ["brats_2013_pat0003_1"]
    assert len(load_brats(root, "all")) == 3
    assert len(load_brats(root / "validation", "test")) == 1  # a split folder as root


def test_load_brats_official_layout_maps_4_to_3(tmp_path):
    write_official_case(tmp_path / "MICCAI_BraTS2020_TrainingData" / "BraTS20_Training_001", seed=1)
    write_official_case(tmp_path / "MICCAI_BraTS2020_ValidationData" / "BraTS20_Validation_001", labelled=False)
    ds = load_dataset(tmp_path)
    assert ds.info.channel_names == ("flair", "t1", "t1ce", "t2")
    assert ds.info.class_names == ("background", "necrosis", "oedema", "enhancing")
    folder = tmp_path / "MICCAI_BraTS2020_TrainingData" / "BraTS20_Training_001"
    raw = np.asarray(nib.load(folder / "BraTS20_Training_001_seg.nii.gz").dataobj)
    assert np.array_equal(ds[0].labels[0], np.where(raw == 4, 3, raw))
    assert ds[0].subject == "BraTS20_Training_001"
    test = load_brats(tmp_path, "test")
    assert test[0].case_id == "BraTS20_Validation_001" and test[0].labels is None
    flat = load_brats(tmp_path / "MICCAI_BraTS2020_TrainingData")  # patient folders directly in root
    assert len(flat) == 1


def test_load_brats_channels_are_those_in_every_case(tmp_path):
    write_2013_case(tmp_path / "train" / "brats_2013_pat0001_1", modalities=("Flair", "T1", "T1c", "T2"))
    write_2013_case(tmp_path / "train" / "brats_2013_pat0002_1", modalities=("T2", "Flair"))
    assert load_brats(tmp_path).info.channel_names == ("Flair", "T2")


def test_load_brats_writes_nothing(tmp_path):
    root = make_brats_folder(tmp_path)
    before = snapshot(root)
    load_brats(root, "all")
    assert snapshot(root) == before


def test_load_brats_raises_for_wrong_folder_and_layouts(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(ValueError, match=r"to hold BraTS patient folders"):
        load_brats(tmp_path)
    write_2013_case(tmp_path / "train" / "brats_2013_pat0001_1")
    with pytest.raises(ValueError, match=r"patient folders of split 'test'"):
        load_brats(tmp_path, "test")
    write_official_case(tmp_path / "train" / "BraTS20_Training_001")
    with pytest.raises(ValueError, match=r"Expected one BraTS layout"):
        load_brats(tmp_path)


def test_load_brats_raises_when_no_modality_is_shared(tmp_path):
    write_2013_case(tmp_path / "train" / "brats_2013_pat0001_1", modalities=("Flair",))
    write_2013_case(tmp_path / "train" / "brats_2013_pat0002_1", modalities=("T2",))
    with pytest.raises(ValueError, match=r"at least one modality .* none is shared"):
        load_brats(tmp_path)


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda c: (c / "OTMultiClass.nii.gz").unlink(), r"label file .*OTMultiClass.nii.gz \(a training case\)"),
        (lambda c: (c / "T1c_subtrMeanDivStd.nii.gz").write_bytes(b"x"), "Could not read image file .*T1c_"),
        (
            lambda c: save_nifti(c / "T1c_subtrMeanDivStd.nii.gz", np.zeros((6, 5, 3), np.float32)),
            r"image file .*T1c_subtrMeanDivStd.nii.gz to have the shape \(6, 5, 4\) of .*Flair",
        ),
        (
            lambda c: save_nifti(c / "OTMultiClass.nii.gz", np.zeros((6, 5, 3), np.float32)),
            r"label file .*OTMultiClass.nii.gz to have the shape",
        ),
        (
            lambda c: save_nifti(c / "OTMultiClass.nii.gz", np.full(SHAPE, 5, np.float32)),
            r"OTMultiClass.nii.gz to hold values in \[0, 1, 2, 3, 4\], but found \[5\]",
        ),
    ],
)
def test_load_brats_one_bad_case_warns_and_a_lone_bad_case_raises(tmp_path, damage, match):
    root = make_brats_folder(tmp_path)
    damage(root / "train" / "brats_2013_pat0006_1")
    with pytest.warns(DatasetWarning, match=r"Skipped .*brats_2013_pat0006_1: .*" + match):
        ds = load_brats(root)
    assert [c.case_id for c in ds] == ["brats_2013_pat0005_1"]
    shutil.rmtree(root / "train" / "brats_2013_pat0005_1")
    with pytest.raises(ValueError, match=r"None of the 1 cases could be read; the first: .*" + match):
        load_brats(root)


def test_load_brats_official_label_3_is_refused(tmp_path):
    case = write_official_case(tmp_path / "BraTS20_Training_001")
    save_nifti(case / "BraTS20_Training_001_seg.nii.gz", np.full(SHAPE, 3, np.uint8))
    with pytest.raises(ValueError, match=r"_seg.nii.gz to hold values in \[0, 1, 2, 4\], but found \[3\]"):
        load_brats(tmp_path)


def test_load_brats_raises_for_mixed_dimensions(tmp_path):
    write_2013_case(tmp_path / "train" / "brats_2013_pat0001_1")
    folder = tmp_path / "train" / "brats_2013_pat0002_1"
    for name in ("Flair_subtrMeanDivStd", "T1c_subtrMeanDivStd", "OTMultiClass"):
        save_nifti(folder / f"{name}.nii.gz", np.zeros((6, 5), np.float32))
    with pytest.raises(ValueError, match=r"Expected every image to be 3-D"):
        load_brats(tmp_path)


@pytest.mark.skipif(not BRATS.is_dir(), reason=f"shared BraTS data not found at {BRATS} (set SELECTSEG_DATA)")
def test_brats_shared_data_validation_cases():
    before = snapshot(BRATS)
    ds = load_dataset(BRATS, split="test")
    assert snapshot(BRATS) == before
    assert [c.case_id for c in ds] == ["brats_2013_pat0003_1", "brats_2013_pat0004_1"]
    assert ds.info.channel_names == ("Flair", "T1c") and ds.info.num_classes == 5
    case = ds[0]
    assert case.image.shape == (2, 240, 240, 155) and case.labels.shape == (1, 240, 240, 155)
    assert set(np.unique(case.labels)) == {0, 1, 2, 3, 4} and case.spacing == (1.0, 1.0, 1.0)
    assert case.subject == "brats_2013_pat0003"
    brain = case.labels[0] > 0
    assert 0 < brain.mean() < 0.1  # a tumour, not the whole brain


def test_load_brats_rejects_an_unsafe_case_id(tmp_path):
    write_official_case(tmp_path / "train" / "BraTS..001")
    with pytest.raises(ValueError, match=r"case id from .*BraTS\.\.001 to be usable as a file name"):
        load_dataset(tmp_path)
