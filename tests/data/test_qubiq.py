from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import selectseg.data.formats.qubiq  # noqa: F401  (registers "qubiq")
from selectseg.data import load_dataset
from selectseg.data.formats.qubiq import check_uniform, load_qubiq, map_labels
from selectseg.data.tolerant import DatasetWarning
from selectseg.metrics.annotators import pairwise_dice
from tests.data._files import AFFINE, save_nifti, snapshot

from .._shared_data import shared

KIDNEY = shared("qubiq_kidney")


def write_qubiq_case(folder: Path, shape=(8, 6), annotators=3, tasks=(1,), seed=0, image_shape=None) -> Path:
    rng = np.random.default_rng(seed)
    save_nifti(folder / "image.nii.gz", rng.normal(size=image_shape or shape).astype(np.float32))
    for t in tasks:
        for k in range(1, annotators + 1):
            save_nifti(folder / f"task{t:02d}_seg{k:02d}.nii.gz", rng.integers(0, 2, size=shape).astype(np.float32))
    return folder


def make_qubiq_folder(root: Path, *, cases=3, shape=(8, 6), tasks=(1,)) -> Path:
    for i in range(1, cases + 1):
        write_qubiq_case(root / "Training" / f"case{i:02d}", shape, tasks=tasks, seed=i)
    write_qubiq_case(root / "Validation" / "case01", shape, tasks=tasks, seed=99)
    return root


# ------------------------------------------------------------------------------------------------------- reading


def test_load_qubiq_2d_reads_every_annotator_with_geometry(tmp_path):
    root = make_qubiq_folder(tmp_path / "qubiq_kidney")
    ds = load_dataset(root)
    assert ds.info.format == "qubiq" and ds.info.class_names == ("background", "kidney")
    assert ds.info.channel_names == ("image",) and ds.info.spatial_dims == 2
    assert [c.case_id for c in ds] == ["case01", "case02", "case03"]
    case = ds[0]
    assert case.image.shape == (1, 8, 6) and case.image.dtype == np.float32
    assert case.labels is not None and case.labels.shape == (3, 8, 6) and case.labels.dtype == np.int64
    assert set(np.unique(case.labels)) <= {0, 1}
    assert np.array_equal(case.affine, AFFINE) and case.header.get_data_shape() == (8, 6)
    assert case.subject == "case01" and case.file_kind == "nifti"
    expected = np.asarray(nib.load(root / "Training/case01/task01_seg02.nii.gz").dataobj)
    assert np.array_equal(case.labels[1], expected.astype(np.int64))


def test_load_qubiq_splits(tmp_path):
    root = make_qubiq_folder(tmp_path / "q")
    assert [c.case_id for c in load_qubiq(root, "test")] == ["validation_case01"]
    assert [c.case_id for c in load_qubiq(root, "all")] == ["case01", "case02", "case03", "validation_case01"]
    assert load_qubiq(root, "train").info.class_names == ("background", "structure")


def test_load_qubiq_test_folder_and_unlabelled_cases(tmp_path):
    write_qubiq_case(tmp_path / "Training" / "case01")
    (tmp_path / "Test" / "case07").mkdir(parents=True)
    save_nifti(tmp_path / "Test" / "case07" / "image.nii.gz", np.zeros((8, 6), np.float32))
    ds = load_qubiq(tmp_path, "test")
    assert ds[0].case_id == "test_case07" and ds[0].labels is None


def test_load_qubiq_root_with_case_folders_is_training(tmp_path):
    write_qubiq_case(tmp_path / "case01")
    assert len(load_qubiq(tmp_path, "all")) == 1
    with pytest.raises(ValueError, match=r"Validation/ or Test/ folder .* holds case folders only"):
        load_qubiq(tmp_path, "test")
    write_qubiq_case(tmp_path / "Validation" / "case02")
    assert load_qubiq(tmp_path / "Validation", "test")[0].case_id == "validation_case02"


def test_load_qubiq_3d_and_xy1_and_channels_last(tmp_path):
    write_qubiq_case(tmp_path / "a" / "case01", shape=(5, 4, 3))
    assert load_qubiq(tmp_path / "a")[0].image.shape == (1, 5, 4, 3)
    write_qubiq_case(tmp_path / "b" / "case01", shape=(5, 4, 1))
    case = load_qubiq(tmp_path / "b")[0]
    assert case.image.shape == (1, 5, 4) and case.labels.shape == (3, 5, 4)
    write_qubiq_case(tmp_path / "c" / "case01", shape=(5, 4), image_shape=(5, 4, 4))
    ds = load_qubiq(tmp_path / "c")
    assert ds[0].image.shape == (4, 5, 4) and ds.info.channel_names == (
        "channel_0",
        "channel_1",
        "channel_2",
        "channel_3",
    )


def test_load_qubiq_task_option(tmp_path):
    root = make_qubiq_folder(tmp_path, tasks=(2, 3))
    default = load_qubiq(root)
    chosen = load_qubiq(root, task=3)
    assert default[0].labels.shape == chosen[0].labels.shape == (3, 8, 6)
    assert not np.array_equal(default[0].labels, chosen[0].labels)
    with pytest.raises(ValueError, match=r"task01_seg01.nii.gz, ... \(task 1\)"):
        load_qubiq(root, task=1)


def test_load_qubiq_writes_nothing(tmp_path):
    root = make_qubiq_folder(tmp_path)
    before = snapshot(root)
    load_qubiq(root, "all")
    assert snapshot(root) == before


# -------------------------------------------------------------------------------------------------------- errors


def test_load_qubiq_raises_for_bad_task(tmp_path):
    root = make_qubiq_folder(tmp_path)
    with pytest.raises(TypeError, match=r"`task` to be a positive int or None"):
        load_qubiq(root, task="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`task` to be a positive int or None, but got 0"):
        load_qubiq(root, task=0)


def test_load_qubiq_raises_for_wrong_folder(tmp_path):
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(ValueError, match=r"to hold Training/ .* or caseNN/ folders"):
        load_qubiq(tmp_path)
    (tmp_path / "Training").mkdir()
    with pytest.raises(ValueError, match=r"Expected a Validation/ or Test/ folder"):
        load_qubiq(tmp_path, "test")
    with pytest.raises(ValueError, match=r"Expected caseNN/ folders in"):
        load_qubiq(tmp_path, "train")
    (tmp_path / "Training" / "case01").mkdir()
    save_nifti(tmp_path / "Training" / "case01" / "image.nii.gz", np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match=r"Expected taskNN_segNN.nii.gz files"):
        load_qubiq(tmp_path)


def test_load_qubiq_raises_for_missing_files_in_a_single_case(tmp_path):
    case = write_qubiq_case(tmp_path / "Training" / "case01")
    (case / "task01_seg02.nii.gz").unlink()
    with pytest.raises(ValueError, match=r"annotator file .*task01_seg02.nii.gz \(annotator 2 of 3\)"):
        load_qubiq(tmp_path)
    write_qubiq_case(case)
    (case / "image.nii.gz").unlink()
    with pytest.raises(ValueError, match=r"Expected image file .*image.nii.gz, but it does not exist"):
        load_qubiq(tmp_path)


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda c: (c / "image.nii.gz").write_bytes(b"not a nifti"), "Could not read image file .*image.nii.gz"),
        (
            lambda c: save_nifti(c / "task01_seg03.nii.gz", np.zeros((8, 5), np.float32)),
            r"annotator file .*task01_seg03.nii.gz to have the shape \(8, 6\)",
        ),
        (
            lambda c: save_nifti(c / "task01_seg01.nii.gz", np.full((8, 6), 2, np.float32)),
            r"task01_seg01.nii.gz to hold values in \[0, 1\], but found \[2\]",
        ),
        (
            lambda c: save_nifti(c / "image.nii.gz", np.zeros((7, 6), np.float32)),
            r"annotator file .*task01_seg01.nii.gz to have the shape \(7, 6\) of .*image.nii.gz",
        ),
    ],
)
def test_load_qubiq_one_bad_case_warns_and_a_lone_bad_case_raises(tmp_path, damage, match):
    root = make_qubiq_folder(tmp_path)
    damage(root / "Training" / "case02")
    with pytest.warns(DatasetWarning, match=r"Skipped .*case02: .*" + match):
        ds = load_qubiq(root)
    assert [c.case_id for c in ds] == ["case01", "case03"]
    for other in ("case01", "case03"):
        shutil.rmtree(root / "Training" / other)
    with pytest.raises(ValueError, match=r"None of the 1 cases could be read; the first: .*" + match):
        load_qubiq(root)


def test_load_qubiq_raises_for_mixed_dimensions(tmp_path):
    write_qubiq_case(tmp_path / "case01", shape=(5, 4))
    write_qubiq_case(tmp_path / "case02", shape=(5, 4, 3))
    with pytest.raises(ValueError, match=r"Expected every image to be 2-D like .*case01.* is 3-D"):
        load_qubiq(tmp_path)


def test_load_qubiq_raises_for_mixed_channel_counts(tmp_path):
    write_qubiq_case(tmp_path / "case01", shape=(5, 4))
    write_qubiq_case(tmp_path / "case02", shape=(5, 4), image_shape=(5, 4, 2))
    with pytest.raises(ValueError, match=r"1 channel\(s\) like .*case01.* has 2"):
        load_qubiq(tmp_path)
    shutil.rmtree(tmp_path / "case02")
    assert check_uniform(load_qubiq(tmp_path).cases) == (2, 1)


def test_map_labels_raises_for_non_integers_and_nan(tmp_path):
    path = tmp_path / "x.nii.gz"
    with pytest.raises(ValueError, match=r"non-integer values such as 0.5"):
        map_labels(np.array([0.0, 0.5]), path, {0: 0, 1: 1})
    with pytest.raises(ValueError, match=r"NaN or infinity"):
        map_labels(np.array([0.0, np.nan]), path, {0: 0, 1: 1})
    with pytest.raises(ValueError, match=r"dtype complex128"):
        map_labels(np.array([1j]), path, {0: 0, 1: 1})
    with pytest.raises(ValueError, match=r"values in \[0, 1\], but found \[-3\]"):
        map_labels(np.array([0, -3]), path, {0: 0, 1: 1})
    assert map_labels(np.array([True, False]), path, {0: 0, 1: 1}).tolist() == [1, 0]


# ------------------------------------------------------------------------------------------------- shared data


MEASURED_DICE = {"case01": 0.956417, "case05": 0.921348, "case11": 0.912061, "case14": 0.969762}
"""Mean pairwise inter-annotator Dice of the kidney, measured once on the shared copy."""


@pytest.mark.skipif(not KIDNEY.is_dir(), reason=f"shared QUBIQ kidney data not found at {KIDNEY} (set SELECTSEG_DATA)")
def test_qubiq_kidney_shared_data_inter_annotator_dice():
    before = snapshot(KIDNEY)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = load_dataset(KIDNEY)
    assert snapshot(KIDNEY) == before
    assert len(ds) == 20 and ds.info.class_names == ("background", "kidney") and ds.info.spatial_dims == 2
    assert all(c.image.shape == (1, 497, 497) and c.labels.shape == (3, 497, 497) for c in ds)
    dice = {c.case_id: float(pairwise_dice(c.labels, num_classes=2)[0]) for c in ds}
    for case_id, value in MEASURED_DICE.items():
        assert dice[case_id] == pytest.approx(value, abs=1e-3)
    assert min(dice.values()) >= 0.91 and max(dice.values()) <= 0.97
    assert float(np.mean(list(dice.values()))) == pytest.approx(0.94957, abs=1e-3)
