from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from selectseg.data import load_dataset
from selectseg.data.formats.glas import load_glas  # importing it registers "glas"
from selectseg.data.tolerant import DatasetWarning
from tests.data._files import snapshot

from .._shared_data import shared

SHARED = shared("glas")

GRADES = (
    "name,patient ID, grade (GlaS), grade (Sirinukunwattana et al. 2015)\n"
    "train_1, 3, benign, healthy\ntrain_2, 5, malignant, moderately differentiated\n"
    "testA_1, 3, benign, healthy\ntestB_1, 8, malignant, poorly differentiated\n"
)


def _rgb(rng: np.random.Generator, shape: tuple[int, int] = (6, 8)) -> np.ndarray:
    return rng.integers(0, 256, size=(*shape, 3), dtype=np.uint8)


def _instances(shape: tuple[int, int] = (6, 8)) -> np.ndarray:
    anno = np.zeros(shape, np.uint8)
    anno[1:3, 1:4] = 1
    anno[3:5, 4:7] = 2  # a second gland: binarised to 1 as well
    return anno


def official_folder(root: Path, names: tuple[str, ...] = ("train_1", "train_2", "testA_1", "testB_1")) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.fromarray(_rgb(rng)).save(root / f"{name}.bmp")
        Image.fromarray(_instances()).save(root / f"{name}_anno.bmp")
    (root / "Grade.csv").write_text(GRADES)
    return root


def masks_folder(root: Path, names: tuple[str, ...] = ("train_1", "train_2", "testA_1")) -> Path:
    rng = np.random.default_rng(1)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for name in names:
        Image.fromarray(_rgb(rng)).save(root / "images" / f"{name}.png")
        Image.fromarray((_instances() > 0).astype(np.uint8) * 255).save(root / "masks" / f"{name}.png")
    (root / "Grade.csv").write_text(GRADES)
    return root


# ---------------------------------------------------------------------------------------------------- both layouts


def test_load_glas_official_layout_binarises_instances_and_reads_subjects(tmp_path):
    root = official_folder(tmp_path / "glas")
    ds = load_dataset(root)  # format="auto" recognises Grade.csv
    assert ds.info.format == "glas" and ds.info.class_names == ("background", "gland") and ds.info.num_channels == 3
    assert [c.case_id for c in ds] == ["train_1", "train_2"]
    case = ds[0]
    assert case.image.shape == (3, 6, 8) and case.image.dtype == np.float32
    assert np.array_equal(case.image, np.moveaxis(np.asarray(Image.open(root / "train_1.bmp")), -1, 0))
    assert case.labels is not None and case.labels.shape == (1, 6, 8)
    assert np.array_equal(case.labels[0], (_instances() > 0).astype(np.int64))
    assert case.file_kind == "png" and np.array_equal(case.affine, np.eye(4)) and case.source == root / "train_1.bmp"
    assert [c.subject for c in ds] == ["3", "5"]


def test_load_glas_images_masks_layout(tmp_path):
    root = masks_folder(tmp_path / "glas")
    (root / "Grade.csv").unlink()  # detection without Grade.csv: images/ + masks/ with train_* names
    with pytest.warns(DatasetWarning, match="No Grade.csv"):
        ds = load_dataset(root, split="all")
    assert [c.case_id for c in ds] == ["train_1", "train_2", "testA_1"]
    assert all(c.subject is None for c in ds)
    assert ds[2].source == root / "images" / "testA_1.png"
    assert ds[0].labels is not None and set(np.unique(ds[0].labels)) == {0, 1}


@pytest.mark.parametrize(("split", "expected"), [("train", ["train_1", "train_2"]), ("test", ["testA_1", "testB_1"])])
def test_load_glas_splits(tmp_path, split, expected):
    ds = load_glas(official_folder(tmp_path / "g"), split)
    assert [c.case_id for c in ds] == expected
    assert [c.subject for c in load_glas(tmp_path / "g", "all")] == ["3", "5", "3", "8"]


def test_load_glas_case_missing_from_grades_warns(tmp_path):
    root = official_folder(tmp_path / "g", names=("train_1", "train_7"))
    with pytest.warns(DatasetWarning, match=r"1 case\(s\) are not listed in .*Grade.csv.*train_7"):
        ds = load_glas(root, "train")
    assert [c.subject for c in ds] == ["3", None]


def test_load_glas_accepts_rgb_annotation_with_equal_channels(tmp_path):
    root = official_folder(tmp_path / "g", names=("train_1",))
    Image.fromarray(np.repeat(_instances()[..., None], 3, axis=-1)).save(root / "train_1_anno.bmp")
    case = load_glas(root, "train")[0]
    assert case.labels is not None and np.array_equal(case.labels[0], (_instances() > 0).astype(np.int64))


def test_load_glas_writes_nothing(tmp_path):
    root = official_folder(tmp_path / "g")
    before = snapshot(root)
    load_glas(root, "all")
    assert snapshot(root) == before


# ------------------------------------------------------------------------------------------------------- bad input


def test_load_glas_wrong_folder(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="to be a GlaS folder"):
        load_glas(tmp_path / "x", "train")
    with pytest.raises(ValueError, match="none recognises it"):
        load_dataset(tmp_path / "x")


def test_load_glas_split_without_cases(tmp_path):
    root = official_folder(tmp_path / "g", names=("train_1",))
    with pytest.raises(ValueError, match=r"testA_N or testB_N images for split 'test', but found none"):
        load_glas(root, "test")


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda r: (r / "train_2_anno.bmp").unlink(), r"case 'train_2': Expected annotation file .*train_2_anno.bmp"),
        (lambda r: (r / "train_2.bmp").write_bytes(b"not a bitmap"), r"case 'train_2': Could not read .*train_2.bmp"),
        (
            lambda r: Image.fromarray(np.zeros((5, 8), np.uint8)).save(r / "train_2_anno.bmp"),
            r"train_2_anno.bmp to have the shape \(6, 8\) of image .*train_2.bmp, but got \(5, 8\)",
        ),
        (
            lambda r: Image.fromarray(np.zeros((6, 8), np.uint8)).save(r / "train_2.bmp"),
            r"train_2.bmp to be RGB \(H, W, 3\)",
        ),
        (
            lambda r: Image.fromarray(np.random.default_rng(0).integers(0, 3, (6, 8, 3), np.uint8)).save(
                r / "train_2_anno.bmp"
            ),
            r"train_2_anno.bmp to be a single-channel",
        ),
    ],
)
def test_load_glas_one_bad_case_is_skipped_with_warning(tmp_path, damage, match):
    root = official_folder(tmp_path / "g")
    damage(root)
    with pytest.warns(DatasetWarning, match=match):
        ds = load_glas(root, "train")
    assert [c.case_id for c in ds] == ["train_1"]


def test_load_glas_all_cases_bad(tmp_path):
    root = official_folder(tmp_path / "g", names=("train_1",))
    (root / "train_1_anno.bmp").unlink()
    with pytest.raises(ValueError, match=r"None of the 1 cases could be read; .*train_1_anno.bmp"):
        load_glas(root, "train")


def test_load_glas_masks_layout_missing_mask(tmp_path):
    root = masks_folder(tmp_path / "g")
    (root / "masks" / "train_2.png").unlink()
    with pytest.warns(DatasetWarning, match=re.escape(str(root / "masks" / "train_2.png"))):
        assert len(load_glas(root, "train")) == 1


def test_load_glas_duplicate_endings(tmp_path):
    root = official_folder(tmp_path / "g", names=("train_1",))
    Image.fromarray(_rgb(np.random.default_rng(0))).save(root / "train_1.png")
    with pytest.raises(ValueError, match=r"Expected one image file for GlaS case 'train_1'"):
        load_glas(root, "train")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("name,grade\ntrain_1, benign\n", r"columns 'name' and 'patient ID'"),
        ("name,patient ID\ntrain_1, 3\ntrain_1, 4\n", r"one patient ID per case .* 'train_1' has '3' and '4'"),
        ("name,patient ID\ntrain_1\n", r"line 2 of .*Grade.csv to give a name and a patient ID"),
        ("", r"columns 'name' and 'patient ID'"),
    ],
)
def test_load_glas_bad_grades(tmp_path, text, match):
    root = official_folder(tmp_path / "g", names=("train_1",))
    (root / "Grade.csv").write_text(text)
    with pytest.raises(ValueError, match=match):
        load_glas(root, "train")


# ------------------------------------------------------------------------------------------- the shared real data


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared GlaS data not found at {SHARED} (set SELECTSEG_DATA)")
def test_load_glas_shared_copy():
    before = snapshot(SHARED)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DatasetWarning)  # every case readable and listed in Grade.csv
        ds = load_dataset(SHARED, split="test")
    assert ds.info.format == "glas"
    assert [c.case_id for c in ds] == sorted(f"testA_{i}" for i in range(1, 21))
    case = ds[0]  # testA_1
    assert case.image.shape == (3, 522, 775) and case.labels is not None and case.labels.shape == (1, 522, 775)
    assert set(np.unique(case.labels)) == {0, 1}
    assert 0.4 < np.mean([c.labels.mean() for c in ds if c.labels is not None]) < 0.6  # glands: about half
    assert case.subject == "4"
    assert all(c.subject is not None and c.image.shape[0] == 3 for c in ds)
    assert snapshot(SHARED) == before
