from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import selectseg.data.formats.mmwhs  # noqa: F401  (registers "mmwhs")
from selectseg.data import load_dataset, save_like
from selectseg.data.formats.mmwhs import CLASS_NAMES, load_mmwhs
from selectseg.data.tolerant import DatasetWarning
from tests.data._files import AFFINE, save_nifti, snapshot

VALUES = (500, 600, 420, 550, 205, 820, 850)


def heart_label(shape=(12, 12, 12), low=(3, 4, 2), high=(9, 8, 10)) -> np.ndarray:
    """Seven slabs with the seven MM-WHS values inside the box [low, high), 0 outside."""
    label = np.zeros(shape, np.int16)
    box = label[low[0] : high[0], low[1] : high[1], low[2] : high[2]]
    for i, value in enumerate(VALUES):
        box[:, :, i % box.shape[2]] = value
    return label


def write_mmwhs_case(folder: Path, name: str, label: np.ndarray | None = None, seed=0) -> None:
    rng = np.random.default_rng(seed)
    shape = (12, 12, 12) if label is None else label.shape
    save_nifti(folder / f"{name}_image.nii.gz", rng.normal(100, 20, size=shape).astype(np.float32))
    if label is not None:
        save_nifti(folder / f"{name}_label.nii.gz", label)


def make_mmwhs_folder(root: Path) -> Path:
    write_mmwhs_case(root / "ct_train", "ct_train_1001", heart_label(), seed=1)
    write_mmwhs_case(root / "ct_train", "ct_train_1002", heart_label(), seed=2)
    write_mmwhs_case(root / "ct_test", "ct_test_2001", seed=3)
    write_mmwhs_case(root, "mr_train_1001", heart_label(), seed=4)
    return root


def test_load_mmwhs_maps_the_seven_values_in_order(tmp_path):
    root = make_mmwhs_folder(tmp_path / "mmwhs")
    ds = load_dataset(root)
    assert ds.info.format == "mmwhs" and ds.info.class_names == CLASS_NAMES and ds.info.channel_names == ("CT",)
    assert [c.case_id for c in ds] == ["ct_train_1001", "ct_train_1002"]
    case = ds[0]
    label = heart_label()
    for index, value in enumerate(VALUES, start=1):
        assert np.array_equal(case.labels[0] == index, label == value)
    assert case.image.shape == (1, 12, 12, 12) and case.subject == "ct_1001"
    assert np.array_equal(case.affine, AFFINE) and case.header.get_data_shape() == (12, 12, 12)


def test_load_mmwhs_421_is_the_left_atrium(tmp_path):
    write_mmwhs_case(tmp_path, "ct_train_1001", np.where(heart_label() == 420, 421, heart_label()).astype(np.int16))
    assert np.array_equal(load_mmwhs(tmp_path)[0].labels[0] == 3, heart_label() == 420)


def test_load_mmwhs_splits_and_modalities(tmp_path):
    root = make_mmwhs_folder(tmp_path)
    test = load_mmwhs(root, "test")
    assert [c.case_id for c in test] == ["ct_test_2001"] and test[0].labels is None
    assert [c.case_id for c in load_mmwhs(root, "train", modality="mr")] == ["mr_train_1001"]
    everything = load_mmwhs(root, "all", modality="all")
    assert [c.case_id for c in everything] == ["ct_train_1001", "ct_train_1002", "ct_test_2001", "mr_train_1001"]
    assert everything.info.channel_names == ("image",)


def test_load_mmwhs_preprocess_crops_resamples_and_keeps_world_space(tmp_path):
    label = heart_label()
    write_mmwhs_case(tmp_path, "ct_train_1001", label)
    raw = load_mmwhs(tmp_path)[0]
    ds = load_mmwhs(tmp_path, preprocess=True, size=(12, 8, 16), margin=1)
    case = ds[0]
    assert case.image.shape == (1, 12, 8, 16) and case.labels.shape == (1, 12, 8, 16)
    assert abs(float(case.image.mean())) < 1e-5 and float(case.image.std()) == pytest.approx(1.0, abs=1e-4)
    # crop [2, 10) x [3, 9) x [1, 10) (foreground box + margin 1): voxel sizes scale by 8/12, 6/8, 9/16
    spacing = np.linalg.norm(AFFINE[:3, :3], axis=0)
    assert np.allclose(case.spacing, spacing * np.array([8 / 12, 6 / 8, 9 / 16]))
    # the crop's first corner stays where it was: world position of output corner == input corner (2, 3, 1) - 0.5
    corner_out = case.affine @ np.array([-0.5, -0.5, -0.5, 1.0])
    corner_in = raw.affine @ np.array([1.5, 2.5, 0.5, 1.0])
    assert np.allclose(corner_out, corner_in)
    # nearest-neighbour labels land on the same world points: sample the raw label at each output voxel centre
    idx = np.stack(np.meshgrid(*(np.arange(s) for s in (12, 8, 16)), indexing="ij"), -1).reshape(-1, 3)
    world = case.affine @ np.c_[idx, np.ones(len(idx))].T
    source = np.linalg.inv(raw.affine) @ world
    nearest = np.clip(np.floor(source[:3] + 0.5).astype(int).T, 0, 11)
    agree = raw.labels[0][tuple(nearest.T)] == case.labels[0].reshape(-1)
    assert agree.mean() > 0.95 and set(np.unique(case.labels)) == set(range(8))
    out = save_like(case.labels[0], case, tmp_path / "out" / "seg.nii.gz")
    written = nib.load(out)
    assert written.shape == (12, 8, 16) and np.allclose(written.affine, case.affine, atol=1e-4)


def test_load_mmwhs_preprocess_unlabelled_case_resamples_whole_volume(tmp_path):
    write_mmwhs_case(tmp_path, "ct_test_2001")
    case = load_mmwhs(tmp_path, "test", preprocess=True, size=(6, 6, 6))[0]
    assert case.image.shape == (1, 6, 6, 6) and case.labels is None
    assert np.allclose(case.spacing, np.linalg.norm(AFFINE[:3, :3], axis=0) * 2)


def test_load_mmwhs_writes_nothing(tmp_path):
    root = make_mmwhs_folder(tmp_path)
    before = snapshot(root)
    load_mmwhs(root, "all", modality="all", preprocess=True, size=(4, 4, 4))
    assert snapshot(root) == before


def test_load_mmwhs_raises_for_bad_options(tmp_path):
    root = make_mmwhs_folder(tmp_path)
    with pytest.raises(ValueError, match=r"`modality` to be one of .* Did you mean 'mr'"):
        load_mmwhs(root, modality="mri")
    with pytest.raises(TypeError, match=r"`modality` to be one of"):
        load_mmwhs(root, modality=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"`size` to be a sequence of three ints"):
        load_mmwhs(root, size=(4.0, 4, 4))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`size` to hold three positive ints, but got \(4, 4\)"):
        load_mmwhs(root, size=(4, 4))
    with pytest.raises(TypeError, match=r"`margin` to be an int"):
        load_mmwhs(root, margin=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`margin` to be a non-negative int"):
        load_mmwhs(root, margin=-1)


def test_load_mmwhs_raises_for_wrong_folder_and_duplicates(tmp_path):
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(ValueError, match=r"ct image files of split 'train' \(ct_train_NNNN_image.nii.gz\)"):
        load_mmwhs(tmp_path)
    write_mmwhs_case(tmp_path, "ct_train_1001", heart_label())
    write_mmwhs_case(tmp_path / "ct_train", "ct_train_1001", heart_label())
    with pytest.raises(ValueError, match=r"Expected one image file per case"):
        load_mmwhs(tmp_path)


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (
            lambda r: (r / "ct_train_1002_label.nii.gz").unlink(),
            r"label file .*ct_train_1002_label.nii.gz \(a training",
        ),
        (lambda r: (r / "ct_train_1002_image.nii.gz").unlink(), "image file .*ct_train_1002_image.nii.gz for label"),
        (lambda r: (r / "ct_train_1002_image.nii.gz").write_bytes(b"x"), "Could not read image file"),
        (
            lambda r: save_nifti(r / "ct_train_1002_label.nii.gz", np.zeros((12, 12, 11), np.int16)),
            r"label file .*ct_train_1002_label.nii.gz to have the shape \(12, 12, 12\) of .*_image.nii.gz",
        ),
        (
            lambda r: save_nifti(r / "ct_train_1002_label.nii.gz", np.where(heart_label() == 600, 601, heart_label())),
            r"hold values in \[0, 205, 420, 421, 500, 550, 600, 820, 850\], but found \[601\]",
        ),
        (
            lambda r: save_nifti(r / "ct_train_1002_image.nii.gz", np.zeros((12, 12), np.float32)),
            "to have the shape",
        ),
    ],
)
def test_load_mmwhs_one_bad_case_warns_and_a_lone_bad_case_raises(tmp_path, damage, match):
    write_mmwhs_case(tmp_path, "ct_train_1001", heart_label())
    write_mmwhs_case(tmp_path, "ct_train_1002", heart_label())
    damage(tmp_path)
    with pytest.warns(DatasetWarning, match=r"Skipped ct_train_1002: .*" + match):
        ds = load_mmwhs(tmp_path)
    assert [c.case_id for c in ds] == ["ct_train_1001"]
    for f in tmp_path.glob("ct_train_1001_*"):
        f.unlink()
    if any(tmp_path.glob("ct_train_1002_image*")):
        with pytest.raises(ValueError, match=r"None of the 1 cases could be read; the first: .*" + match):
            load_mmwhs(tmp_path)


def test_load_mmwhs_raises_for_a_2d_image(tmp_path):
    save_nifti(tmp_path / "ct_test_2001_image.nii.gz", np.zeros((12, 12), np.float32))
    with pytest.raises(ValueError, match=r"to be a 3-D volume"):
        load_mmwhs(tmp_path, "test")


def test_load_mmwhs_other_modalities_dont_count(tmp_path):
    write_mmwhs_case(tmp_path, "mr_train_1001", heart_label())
    with pytest.raises(ValueError, match=r"Expected ct image files"):
        load_mmwhs(tmp_path)
