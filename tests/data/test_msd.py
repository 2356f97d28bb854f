from __future__ import annotations

import json
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from selectseg.data import (
    Case,
    DatasetInfo,
    SegmentationDataset,
    load_dataset,
    make_synthetic_dataset,
    write_msd_dataset,
)
from tests.data._files import AFFINE, integer_images, msd_style_folder, save_json, save_nifti, small_synthetic, snapshot


def assert_same_cases(written: SegmentationDataset, read: SegmentationDataset) -> None:
    assert [c.case_id for c in read] == [c.case_id for c in written]
    for a, b in zip(written, read):
        assert b.image.dtype == np.float32 and np.array_equal(a.image, b.image)
        if a.labels is None:
            assert b.labels is None
        else:
            assert b.labels is not None and b.labels.dtype == np.int64 and np.array_equal(a.labels, b.labels)
        assert np.array_equal(a.affine, b.affine)


# ------------------------------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize("ending", [".nii.gz", ".nii"])
def test_write_msd_dataset_round_trip_nifti_2d_with_unlabelled_test(tmp_path, ending):
    train = small_synthetic(num_annotators=3, num_classes=3)
    test = small_synthetic(split="test", num_annotators=3, num_classes=3)
    unlabelled = SegmentationDataset(
        test.info, tuple(Case(c.case_id, c.image, None, c.affine, None, None, "synthetic") for c in test)
    )
    root = write_msd_dataset(tmp_path / "Dataset001_Toy", train, test=unlabelled, file_ending=ending)
    assert not (root / "labelsTs").exists()
    read = load_dataset(root)
    assert_same_cases(train, read)
    assert read.info == DatasetInfo("synthetic", ("background", "outer", "inner"), ("intensity",), 2, "msd")
    assert read.num_annotators == 3 and all(c.file_kind == "nifti" for c in read)
    assert read[0].header.get_data_shape() == (16, 16, 1)  # 2-D stored as (X, Y, 1), read back as 2-D
    assert_same_cases(unlabelled, load_dataset(root, split="test"))
    everything = load_dataset(root, split="all")
    assert [c.case_id for c in everything] == [c.case_id for c in (*train, *test)]


def test_write_msd_dataset_round_trip_nifti_3d_multichannel_with_labelled_test(tmp_path):
    train = small_synthetic(spatial_dims=3, in_channels=2, num_annotators=1)
    test = small_synthetic(split="test", spatial_dims=3, in_channels=2, num_annotators=1)
    root = write_msd_dataset(tmp_path / "d", train, test=test)
    assert sorted(p.name for p in (root / "imagesTr").iterdir())[:2] == [
        "synth_train_000_0000.nii.gz",
        "synth_train_000_0001.nii.gz",
    ]
    assert sorted(p.name for p in (root / "labelsTs").iterdir()) == ["synth_test_000.nii.gz", "synth_test_001.nii.gz"]
    assert_same_cases(train, load_dataset(root, split="train"))
    read_test = load_dataset(root, split="test")
    assert_same_cases(test, read_test)
    assert read_test.info.channel_names == ("channel_0", "channel_1") and read_test.info.spatial_dims == 3


@pytest.mark.parametrize("channels", [1, 3])
def test_write_msd_dataset_round_trip_png(tmp_path, channels):
    train = integer_images(small_synthetic(in_channels=channels, num_annotators=2))
    root = write_msd_dataset(tmp_path / "d", train, file_ending=".png")
    assert len(list((root / "imagesTr").iterdir())) == 2  # one file per case, RGB for 3 channels
    read = load_dataset(root)
    assert_same_cases(train, read)
    assert all(c.file_kind == "png" and c.header is None for c in read)
    with Image.open(root / "imagesTr" / "synth_train_000_0000.png") as image:
        assert image.mode == ("L" if channels == 1 else "RGB")


def test_write_msd_dataset_round_trip_16_bit_png(tmp_path):
    train = integer_images(small_synthetic(), high=4000)
    root = write_msd_dataset(tmp_path / "d", train, file_ending=".png")
    assert_same_cases(train, load_dataset(root))


def test_write_msd_dataset_round_trip_keeps_a_non_identity_affine_and_rewrites(tmp_path):
    source = load_dataset(msd_style_folder(tmp_path / "src"), split="all")
    assert np.array_equal(source[0].affine, AFFINE)
    train = SegmentationDataset(source.info, tuple(c for c in source if c.labels is not None))
    root = write_msd_dataset(tmp_path / "out", train)
    before = snapshot(root)
    assert write_msd_dataset(root, train) == root  # re-writing the same dataset is allowed
    assert set(snapshot(root)) == set(before)
    read = load_dataset(root)
    assert_same_cases(train, read)
    header = read[0].header
    assert header.get_qform(coded=True)[1] == 1 and header.get_sform(coded=True)[1] == 4
    assert read[0].spacing == pytest.approx((2.0, 1.5, 3.0))


def test_write_msd_dataset_leaves_no_temporary_files(tmp_path):
    root = write_msd_dataset(tmp_path / "d", small_synthetic())
    assert not [p for p in root.rglob("*") if p.name.startswith(".")]


# --------------------------------------------------------------------------------------------- MSD style (by hand)


def test_load_dataset_reads_msd_style_4d_images(tmp_path):
    root = msd_style_folder(tmp_path / "Task01")
    ds = load_dataset(root)
    assert ds.info == DatasetInfo("Task01_Toy", ("background", "edema", "tumour"), ("FLAIR", "T1w"), 3, "msd")
    assert [c.case_id for c in ds] == ["case_0", "case_1"]
    raw = np.asanyarray(nib.load(root / "imagesTr" / "case_0.nii.gz").dataobj)
    assert ds[0].image.shape == (2, 6, 5, 4) and np.array_equal(ds[0].image, np.moveaxis(raw, -1, 0))
    assert ds[0].image.flags.c_contiguous
    assert ds[0].labels.shape == (1, 6, 5, 4) and np.array_equal(ds[0].affine, AFFINE)
    test = load_dataset(root, split="test")
    assert [c.case_id for c in test] == ["case_9"] and test[0].labels is not None
    assert len(load_dataset(root, split="all")) == 3


def test_load_dataset_msd_style_multi_annotator_and_unlabelled_test(tmp_path):
    root = msd_style_folder(tmp_path / "Task01", annotators=3, test_labels=False)
    ds = load_dataset(root)
    assert ds.num_annotators == 3 and ds[1].labels.shape == (3, 6, 5, 4)
    expected = np.asanyarray(nib.load(root / "labelsTr" / "case_1_rater2.nii.gz").dataobj)
    assert np.array_equal(ds[1].labels[2], expected)
    assert load_dataset(root, split="test")[0].labels is None


def test_load_dataset_msd_style_reads_nnunet_v1_channel_files(tmp_path):
    root = tmp_path / "Task"
    for c in range(2):
        save_nifti(root / "imagesTr" / f"la_003_{c:04d}.nii.gz", np.full((4, 4, 3), c, np.int16))
    save_nifti(root / "labelsTr" / "la_003.nii.gz", np.ones((4, 4, 3), np.uint8))
    save_json(
        root,
        {
            "modality": {"0": "MRI", "1": "CT"},
            "labels": {"0": "background", "1": "atrium"},
            "training": [{"image": "./imagesTr/la_003.nii.gz", "label": "./labelsTr/la_003.nii.gz"}],
        },
    )
    ds = load_dataset(root)
    assert ds[0].case_id == "la_003" and ds[0].image.shape == (2, 4, 4, 3)
    assert ds[0].image[1].min() == 1.0 and ds[0].image.dtype == np.float32
    assert ds.info.name == "Task"


def test_load_dataset_treats_x_y_1_and_x_y_nifti_as_2d_and_accepts_float_labels(tmp_path):
    root = tmp_path / "d"
    save_nifti(root / "imagesTr" / "a_0000.nii.gz", np.zeros((5, 7, 1), np.float32))
    save_nifti(root / "imagesTr" / "b_0000.nii.gz", np.zeros((5, 7), np.float32))
    save_nifti(root / "labelsTr" / "a.nii.gz", np.ones((5, 7, 1), np.float32))  # 1.0 is a fine label
    save_nifti(root / "labelsTr" / "b.nii.gz", np.zeros((5, 7), np.uint8))
    save_json(root, {"channel_names": {"0": "x"}, "labels": {"background": 0, "fg": 1}, "file_ending": ".nii.gz"})
    ds = load_dataset(root)
    assert ds.info.spatial_dims == 2 and [c.spatial_shape for c in ds] == [(5, 7), (5, 7)]
    assert ds[0].labels.dtype == np.int64 and ds[0].labels.sum() == 35


def test_load_dataset_nnunet_annotator_files_take_precedence_over_the_plain_label(tmp_path):
    root = write_msd_dataset(tmp_path / "d", small_synthetic(num_annotators=2))
    consensus = np.zeros((16, 16, 1), np.uint8)
    save_nifti(root / "labelsTr" / "synth_train_000.nii.gz", consensus, np.eye(4))
    ds = load_dataset(root)
    assert ds[0].num_annotators == 2 and ds[0].labels.any()


def test_load_dataset_auto_detects_msd_and_accepts_explicit_format(tmp_path):
    root = write_msd_dataset(tmp_path / "d", small_synthetic())
    assert load_dataset(root).info.format == "msd"
    assert load_dataset(str(root), format="msd").info.format == "msd"


def test_load_dataset_writes_nothing_into_the_folder(tmp_path):
    root = write_msd_dataset(
        tmp_path / "d", small_synthetic(), test=small_synthetic(split="test"), file_ending=".nii.gz"
    )
    msd_style_folder(tmp_path / "m", annotators=2)
    for folder in (root, tmp_path / "m"):
        before = snapshot(folder)
        for split in ("train", "test", "all"):
            load_dataset(folder, split=split)
        assert snapshot(folder) == before


# ----------------------------------------------------------------------------------------------------------- errors


def test_load_dataset_rejects_missing_file_and_empty_folders(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_dataset(tmp_path / "nowhere")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        load_dataset(tmp_path / "file.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="is empty"):
        load_dataset(tmp_path / "empty")


def test_load_dataset_without_dataset_json(tmp_path):
    (tmp_path / "d" / "imagesTr").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"registered formats \['msd'.*'msd' needs a dataset.json"):
        load_dataset(tmp_path / "d")
    with pytest.raises(ValueError, match=r"d/dataset.json to exist"):
        load_dataset(tmp_path / "d", format="msd")


def test_load_dataset_rejects_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="`path`"):
        load_dataset(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Did you mean 'msd'"):
        load_dataset(tmp_path, format="mds")
    with pytest.raises(ValueError, match="Did you mean 'test'"):
        load_dataset(tmp_path, split="tset")
    with pytest.raises(TypeError, match="`split`"):
        load_dataset(tmp_path, split=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`format`"):
        load_dataset(tmp_path, format=None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("meta", "match"),
    [
        ("{not json", r"dataset.json to hold valid JSON"),
        ("[1, 2]", r"dataset.json to hold a JSON object"),
        ({"name": "x"}, r"dataset.json to hold 'training' \(MSD style\) or 'channel_names'"),
        ({"training": [], "labels": {"0": "bg", "1": "x"}}, r"dataset.json \(MSD style\) to hold the key 'modality'"),
        ({"training": [], "modality": {"0": "CT"}}, r"dataset.json \(MSD style\) .* \['labels'\] are missing"),
        ({"channel_names": {"0": "CT"}, "labels": {"bg": 0, "x": 1}}, r"\['file_ending'\] are missing"),
        (
            {"channel_names": {"0": "CT"}, "labels": {"bg": 0, "x": 1}, "file_ending": ".mha"},
            r"'file_ending' in .*dataset.json to be one of",
        ),
        (
            {"channel_names": {"0": "CT"}, "labels": {"bg": 0, "x": [1, 2]}, "file_ending": ".nii.gz"},
            r"region-based labels are not supported",
        ),
        (
            {"channel_names": {"0": "CT"}, "labels": {"bg": 0, "x": 2}, "file_ending": ".nii.gz"},
            r"label values in .*dataset.json to be 0..1, but got \[0, 2\]",
        ),
        (
            {"channel_names": {"0": "CT"}, "labels": {"bg": 0}, "file_ending": ".nii.gz"},
            r"'labels' in .*dataset.json to map at least 2",
        ),
        (
            {"channel_names": {"0": "CT"}, "labels": {"0": "bg", "1": "bg"}, "file_ending": ".nii.gz"},
            r"distinct label names",
        ),
        (
            {"channel_names": {"0": "CT"}, "labels": {"bg": 0, "x": 0}, "file_ending": ".nii.gz"},
            r"each value one non-empty name",
        ),
        (
            {"channel_names": {"1": "CT"}, "labels": {"bg": 0, "x": 1}, "file_ending": ".nii.gz"},
            r"channel names in .*dataset.json to map '0', '1'",
        ),
        (
            {"training": {"a": 1}, "modality": {"0": "CT"}, "labels": {"0": "bg", "1": "x"}},
            r"'training' in .*dataset.json to be a list",
        ),
        (
            {"training": [3], "modality": {"0": "CT"}, "labels": {"0": "bg", "1": "x"}},
            r"entry 0 of 'training' in .*dataset.json to be an image path",
        ),
        (
            {"training": ["./imagesTr/a.nii.gz"], "modality": {"0": "CT"}, "labels": {"0": "bg", "1": "x"}},
            r"entry 0 of 'training' in .*dataset.json to have a 'label'",
        ),
        (
            {"training": [{"image": "a.nii", "label": []}], "modality": {"0": "CT"}, "labels": {"0": "b", "1": "x"}},
            r"'label' of entry 0 of 'training' .* non-empty list",
        ),
        (
            {"training": [], "modality": {"0": "CT"}, "labels": {"0": "bg", "1": "x"}},
            r"dataset.json to list train cases under 'training', but it lists none",
        ),
    ],
)
def test_load_dataset_rejects_invalid_dataset_json(tmp_path, meta, match):
    root = tmp_path / "d"
    root.mkdir()
    (root / "dataset.json").write_text(meta if isinstance(meta, str) else json.dumps(meta))
    with pytest.raises(ValueError, match=match):
        load_dataset(root)


def test_load_dataset_msd_style_duplicate_and_missing_files(tmp_path):
    root = msd_style_folder(tmp_path / "m")
    meta = json.loads((root / "dataset.json").read_text())
    meta["training"].append(meta["training"][0])
    save_json(root, meta)
    with pytest.raises(ValueError, match=r"'./imagesTr/case_0.nii.gz' appears twice"):
        load_dataset(root)
    meta["training"] = meta["training"][:2]
    save_json(root, meta)
    (root / "labelsTr" / "case_1.nii.gz").unlink()
    with pytest.raises(ValueError, match=r"image file .*labelsTr/case_1.nii.gz to exist"):
        load_dataset(root)
    (root / "imagesTr" / "case_1.nii.gz").unlink()
    with pytest.raises(ValueError, match=r"image file .*imagesTr/case_1.nii.gz to exist"):
        load_dataset(root)
    (root / "labelsTs" / "case_9.nii.gz").unlink()  # labelsTs/ exists: every test case needs its label
    with pytest.raises(ValueError, match=r"labelsTs/case_9.nii.gz to exist"):
        load_dataset(root, split="test")
    meta["test"] = []
    save_json(root, meta)
    with pytest.raises(ValueError, match=r"to list test cases under 'test', but it lists none"):
        load_dataset(root, split="test")


def test_load_dataset_nnunet_style_missing_files(tmp_path):
    def fresh(name: str) -> Path:
        return write_msd_dataset(tmp_path / name, small_synthetic(num_cases=3, in_channels=2, num_annotators=3))

    root = fresh("gap")
    (root / "labelsTr" / "synth_train_001_a2.nii.gz").unlink()
    with pytest.raises(ValueError, match=r"label file .*labelsTr/synth_train_001_a2.nii.gz \(annotator 2 of case"):
        load_dataset(root)
    for k in (1, 3):
        (root / "labelsTr" / f"synth_train_001_a{k}.nii.gz").unlink()
    assert load_dataset(root)[1].num_annotators == 1  # the consensus label is still there: read as one annotator
    (root / "labelsTr" / "synth_train_001.nii.gz").unlink()
    with pytest.raises(ValueError, match=r"label file .*labelsTr/synth_train_001.nii.gz \(or synth_train_001_a1"):
        load_dataset(root)
    root = fresh("channel")
    (root / "imagesTr" / "synth_train_002_0000.nii.gz").unlink()
    with pytest.raises(ValueError, match=r"image file .*imagesTr/synth_train_002_0000.nii.gz \(channel 0 of case"):
        load_dataset(root)
    for f in (root / "imagesTr").glob("synth_train_002_*"):
        f.unlink()
    with pytest.raises(ValueError, match=r"image file .*synth_train_002_0000.nii.gz for label file .*synth_train_002"):
        load_dataset(root)


def test_load_dataset_split_all_needs_training_cases(tmp_path):
    root = msd_style_folder(tmp_path / "m")
    meta = json.loads((root / "dataset.json").read_text())
    meta["training"] = []
    save_json(root, meta)
    with pytest.raises(ValueError, match=r"to list train cases under 'training', but it lists none"):
        load_dataset(root, split="all")
    assert len(load_dataset(root, split="test")) == 1


def test_load_dataset_nnunet_style_folder_problems(tmp_path):
    root = write_msd_dataset(tmp_path / "d", small_synthetic())
    assert len(load_dataset(root, split="all")) == 2  # no test cases: "all" gives the training cases
    with pytest.raises(ValueError, match=r"image files <case>_0000.nii.gz in .*imagesTs, but found none"):
        load_dataset(root, split="test")
    (root / "imagesTr" / "README.nii.gz").write_bytes(b"")
    with pytest.raises(ValueError, match=r"named <case>_XXXX.nii.gz .* but found 'README.nii.gz'"):
        load_dataset(root)
    (root / "imagesTr" / "README.nii.gz").unlink()
    (root / "labelsTr" / "synth_train_000_a0.nii.gz").write_bytes(b"")
    with pytest.raises(ValueError, match=r"annotator numbers 1, 2, ... .* 'synth_train_000_a0.nii.gz'"):
        load_dataset(root)
    for f in (root / "labelsTr").iterdir():
        f.unlink()
    (root / "labelsTr").rmdir()
    with pytest.raises(ValueError, match=r"folder .*labelsTr with the labels of .*imagesTr"):
        load_dataset(root)


@pytest.mark.parametrize("content", [b"", b"not an image at all" * 20])
@pytest.mark.parametrize("which", ["image", "label"])
def test_load_dataset_rejects_corrupt_files(tmp_path, content, which):
    root = write_msd_dataset(tmp_path / "d", small_synthetic(num_annotators=1))
    target = root / ("imagesTr/synth_train_001_0000.nii.gz" if which == "image" else "labelsTr/synth_train_001.nii.gz")
    target.write_bytes(content)
    with pytest.raises(ValueError, match=rf"Could not read image file .*{target.name}"):
        load_dataset(root)


def test_load_dataset_rejects_truncated_nifti(tmp_path):
    root = write_msd_dataset(tmp_path / "d", small_synthetic(size=32))
    target = root / "imagesTr" / "synth_train_000_0000.nii.gz"
    target.write_bytes(target.read_bytes()[:400])
    with pytest.raises(ValueError, match=r"Could not read image file .*synth_train_000_0000.nii.gz"):
        load_dataset(root)


def test_load_dataset_rejects_corrupt_png(tmp_path):
    root = write_msd_dataset(tmp_path / "d", integer_images(small_synthetic()), file_ending=".png")
    (root / "labelsTr" / "synth_train_000_a1.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ValueError, match=r"Could not read image file .*synth_train_000_a1.png"):
        load_dataset(root)


def _replace_label(root: Path, name: str, array: np.ndarray) -> None:
    save_nifti(root / "labelsTr" / name, array, np.eye(4))


@pytest.mark.parametrize(
    ("name", "array", "match"),
    [
        (
            "synth_train_001_a1.nii.gz",
            np.zeros((16, 15, 1), np.uint8),
            r"annotators' label maps of case 'synth_train_001' to share one shape, but .*_a2.nii.gz has shape "
            r"\(16, 16\) and .*_a1.nii.gz has shape \(16, 15\)",
        ),
        (
            "synth_train_001_a1.nii.gz",
            np.full((16, 16, 1), 3, np.uint8),
            r"label file .*synth_train_001_a1.nii.gz to hold values in \[0, 3\) \(3 labels in dataset.json\), but "
            r"found values in \[3, 3\]",
        ),
        (
            "synth_train_001_a2.nii.gz",
            np.full((16, 16, 1), -1, np.int16),
            r"synth_train_001_a2.nii.gz to hold values in \[0, 3\).* \[-1, -1\]",
        ),
        (
            "synth_train_001_a2.nii.gz",
            np.full((16, 16, 1), 0.5, np.float32),
            r"synth_train_001_a2.nii.gz to hold integer values, but found non-integer values such as 0.5",
        ),
        (
            "synth_train_001_a2.nii.gz",
            np.full((16, 16, 1), np.nan, np.float32),
            r"synth_train_001_a2.nii.gz to hold integer values, but it holds NaN",
        ),
    ],
)
def test_load_dataset_rejects_bad_label_maps(tmp_path, name, array, match):
    root = write_msd_dataset(tmp_path / "d", small_synthetic(num_annotators=2, num_classes=3))
    _replace_label(root, name, array)
    with pytest.raises(ValueError, match=match):
        load_dataset(root)


def test_load_dataset_rejects_image_and_labels_of_different_shapes(tmp_path):
    root = write_msd_dataset(tmp_path / "d", small_synthetic(num_annotators=1))
    _replace_label(root, "synth_train_000.nii.gz", np.zeros((16, 12, 1), np.uint8))
    with pytest.raises(
        ValueError,
        match=r"label file .*synth_train_000.nii.gz to have the spatial shape \(16, 16\) of image "
        r".*synth_train_000_0000.nii.gz, but got \(16, 12\)",
    ):
        load_dataset(root)
    _replace_label(root, "synth_train_000.nii.gz", np.zeros((16, 16, 2), np.uint8))
    with pytest.raises(ValueError, match=r"must hold one channel"):
        load_dataset(root)


def test_load_dataset_rejects_channels_of_different_shapes(tmp_path):
    root = write_msd_dataset(tmp_path / "d", small_synthetic(in_channels=2))
    save_nifti(root / "imagesTr" / "synth_train_000_0001.nii.gz", np.zeros((16, 8, 1), np.float32))
    with pytest.raises(ValueError, match=r"image file .*synth_train_000_0001.nii.gz to have the spatial shape"):
        load_dataset(root)


def test_load_dataset_rejects_channel_counts_that_differ_between_cases(tmp_path):
    root = write_msd_dataset(tmp_path / "d", small_synthetic(num_cases=3, in_channels=2))
    (root / "imagesTr" / "synth_train_002_0001.nii.gz").unlink()
    with pytest.raises(
        ValueError,
        match=r"image of case 'synth_train_002' \(.*synth_train_002_0000.nii.gz\) to have 2 channel\(s\) as listed "
        r"in .*dataset.json, but it has 1",
    ):
        load_dataset(root)
    root = msd_style_folder(tmp_path / "m")
    save_nifti(root / "imagesTr" / "case_1.nii.gz", np.zeros((6, 5, 4, 3), np.float32))
    with pytest.raises(ValueError, match=r"case 'case_1' \(.*case_1.nii.gz\) to have 2 channel\(s\).* it has 3"):
        load_dataset(root)


def test_load_dataset_rejects_mixed_2d_and_3d_cases_and_odd_dimensions(tmp_path):
    root = write_msd_dataset(tmp_path / "d", small_synthetic(num_annotators=1))
    save_nifti(root / "imagesTr" / "synth_train_001_0000.nii.gz", np.zeros((16, 16, 4), np.float32))
    save_nifti(root / "labelsTr" / "synth_train_001.nii.gz", np.zeros((16, 16, 4), np.uint8))
    with pytest.raises(ValueError, match=r"every image to be 2-D like .*synth_train_000_0000.nii.gz, but .*_001_0000"):
        load_dataset(root)
    save_nifti(root / "imagesTr" / "synth_train_001_0000.nii.gz", np.zeros((16, 16, 1, 2, 2), np.float32))
    with pytest.raises(ValueError, match=r"synth_train_001_0000.nii.gz to have shape \(X, Y\), \(X, Y, Z\) or"):
        load_dataset(root)


# ---------------------------------------------------------------------------------------------------------- writer


def test_write_msd_dataset_refuses_a_folder_holding_other_files(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "notes.txt").write_text("mine")
    with pytest.raises(
        ValueError, match=r"empty or to hold this same dataset, but .* holds other files: \['notes.txt'\]"
    ):
        write_msd_dataset(tmp_path / "d", small_synthetic())
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["notes.txt"]
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match=r"`path` to be a folder, but .* is a file"):
        write_msd_dataset(tmp_path / "f", small_synthetic())
    root = write_msd_dataset(tmp_path / "e", small_synthetic(num_cases=3))
    (root / "labelsTr" / "imagesTr").mkdir()
    with pytest.raises(ValueError, match=r"holds other files: \['labelsTr/imagesTr'\]"):
        write_msd_dataset(root, small_synthetic(num_cases=3))
    (root / "labelsTr" / "imagesTr").rmdir()
    with pytest.raises(ValueError, match=r"holds other files: \['imagesTr/synth_train_002_0000.nii.gz'"):
        write_msd_dataset(root, small_synthetic(num_cases=2))


def _with_case(dataset: SegmentationDataset, **changes: object) -> SegmentationDataset:
    case = dataset[0]
    fields = {
        "case_id": case.case_id,
        "image": case.image,
        "labels": case.labels,
        "affine": case.affine,
        "source": None,
        "header": None,
        "file_kind": "synthetic",
    }
    fields.update(changes)
    return SegmentationDataset(dataset.info, (Case(**fields), *dataset.cases[1:]))  # type: ignore[arg-type]


def test_write_msd_dataset_rejects_bad_arguments(tmp_path):
    train = small_synthetic()
    cases = [
        ({"train": "x"}, TypeError, "`train` to be a SegmentationDataset"),
        ({"train": train, "test": 3}, TypeError, "`test` to be a SegmentationDataset"),
        ({"train": train, "file_ending": ".mha"}, ValueError, "`file_ending`"),
        ({"train": SegmentationDataset(train.info, ())}, ValueError, "at least one case"),
        ({"train": _with_case(train, labels=None)}, ValueError, "every case of `train` to be labelled"),
        ({"train": _with_case(train, case_id="a b")}, ValueError, "case ids made of letters.*'a b'"),
        ({"train": _with_case(train, case_id="x_a2")}, ValueError, "not ending in '_a<k>'.*'x_a2'"),
        ({"train": train, "test": train}, ValueError, "distinct case ids across `train` and `test`"),
        ({"train": train, "test": small_synthetic(num_classes=3)}, ValueError, "`test` to have the class_names"),
        ({"train": train, "test": _with_case(small_synthetic(split="test"), labels=None)}, ValueError, "mixed"),
        ({"train": small_synthetic(spatial_dims=3), "file_ending": ".png"}, ValueError, "2-D data .* for PNG"),
        ({"train": integer_images(small_synthetic(in_channels=2)), "file_ending": ".png"}, ValueError, "1 or 3"),
        ({"train": train, "file_ending": ".png"}, ValueError, "integers in \\[0, 65535\\] for PNG, but got non-int"),
        (
            {"train": integer_images(small_synthetic(in_channels=3), high=600), "file_ending": ".png"},
            ValueError,
            "integers in \\[0, 255\\]",
        ),
    ]
    for kwargs, error, match in cases:
        with pytest.raises(error, match=match):
            write_msd_dataset(tmp_path / "out", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`path`"):
        write_msd_dataset(1, train)  # type: ignore[arg-type]
    big = DatasetInfo("big", tuple(f"c{i}" for i in range(300)), ("x",), 2, "synthetic")
    with pytest.raises(ValueError, match="at most 256 classes"):
        write_msd_dataset(tmp_path / "out", SegmentationDataset(big, train.cases), file_ending=".png")
    assert not (tmp_path / "out").exists()


def test_write_msd_dataset_many_classes_use_int16_labels(tmp_path):
    train = small_synthetic(num_annotators=1)
    info = DatasetInfo("big", tuple(f"c{i}" for i in range(300)), ("x",), 2, "synthetic")
    labels = train[0].labels.copy()
    labels[0, 0, 0] = 299
    case = Case("c", train[0].image, labels, np.eye(4), None, file_kind="synthetic")
    root = write_msd_dataset(tmp_path / "d", SegmentationDataset(info, (case,)))
    assert nib.load(root / "labelsTr" / "c.nii.gz").get_data_dtype() == np.int16
    assert load_dataset(root)[0].labels.max() == 299


def test_make_synthetic_then_load_matches_docs_example(tmp_path):
    root = write_msd_dataset(tmp_path / "Dataset001_Synth", make_synthetic_dataset(num_cases=1, size=16))
    meta = json.loads((root / "dataset.json").read_text())
    assert meta["file_ending"] == ".nii.gz" and meta["labels"] == {"background": 0, "structure": 1}
    assert re.search("annotator", meta["description"])


# ------------------------------------------------------------------------------------ paths outside the dataset folder

_OUTSIDE = (
    r"to be inside the dataset folder .*resolves outside it.*allow_outside_root=True.*SELECTSEG_ALLOW_OUTSIDE_DATA"
)


def _outside_entry_folder(tmp_path: Path, image: str, label: str = "./labelsTr/case_0.nii.gz") -> Path:
    """An MSD-style folder whose first training entry is replaced, and a readable image and label outside it."""
    root = msd_style_folder(tmp_path / "ds")
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in ("secret.nii.gz", "secret_0000.nii.gz"):
        (outside / name).write_bytes((root / "imagesTr" / "case_0.nii.gz").read_bytes())
    (outside / "secret_label.nii.gz").write_bytes((root / "labelsTr" / "case_0.nii.gz").read_bytes())
    meta = json.loads((root / "dataset.json").read_text())
    meta["training"][0] = {"image": image, "label": label}
    save_json(root, meta)
    return root


@pytest.mark.parametrize(
    "image, label, key",
    [
        ("../outside/secret.nii.gz", "./labelsTr/case_0.nii.gz", "'image': '../outside/secret.nii.gz'"),
        ("./imagesTr/../../outside/secret.nii.gz", "./labelsTr/case_0.nii.gz", "'image': './imagesTr/../../outside"),
        ("{outside}/secret.nii.gz", "./labelsTr/case_0.nii.gz", "'image': '/"),
        ("./imagesTr/case_0.nii.gz", "../outside/secret_label.nii.gz", "'label': '../outside/secret_label.nii.gz'"),
        ("./imagesTr/case_0.nii.gz", ["./labelsTr/case_0.nii.gz", "../outside/secret_label.nii.gz"], "'label': '../"),
    ],
)
def test_load_dataset_msd_style_refuses_entries_outside_the_folder(tmp_path, image, label, key):
    image = image.format(outside=tmp_path / "outside")
    root = _outside_entry_folder(tmp_path, image, label)
    with pytest.raises(
        ValueError, match=rf"Expected entry 0 of 'training' in .*dataset\.json \({re.escape(key)}.*{_OUTSIDE}"
    ):
        load_dataset(root)
    ds = load_dataset(root, allow_outside_root=True)  # the opt-in reads it
    assert len(ds) == 2


def test_load_dataset_refuses_outside_entries_before_looking_for_the_file(tmp_path):
    root = _outside_entry_folder(tmp_path, "../outside/secret.nii.gz")
    with pytest.raises(ValueError) as exists:
        load_dataset(root)
    meta = json.loads((root / "dataset.json").read_text())
    meta["training"][0]["image"] = "../outside/nothere.nii.gz"
    save_json(root, meta)
    with pytest.raises(ValueError) as missing:
        load_dataset(root)
    assert str(missing.value) == str(exists.value).replace("secret", "nothere")  # no existence oracle
    meta["training"][0]["image"] = "../outside/secret"  # a v1 channel file secret_0000.nii.gz would be found
    save_json(root, meta)
    with pytest.raises(ValueError, match=_OUTSIDE):
        load_dataset(root)


def test_load_dataset_refuses_test_entries_and_symlinks_leading_outside(tmp_path):
    root = _outside_entry_folder(tmp_path, "./imagesTr/case_0.nii.gz")
    meta = json.loads((root / "dataset.json").read_text())
    meta["test"] = ["../outside/secret.nii.gz"]
    save_json(root, meta)
    with pytest.raises(ValueError, match=rf"entry 0 of 'test' .*'image': '\.\./outside/secret\.nii\.gz'.*{_OUTSIDE}"):
        load_dataset(root, split="test")
    (root / "imagesTs" / "link.nii.gz").symlink_to(tmp_path / "outside" / "secret.nii.gz")
    meta["test"] = ["./imagesTs/link.nii.gz"]
    save_json(root, meta)
    with pytest.raises(ValueError, match=rf"entry 0 of 'test' .*'image': '\./imagesTs/link\.nii\.gz'.*{_OUTSIDE}"):
        load_dataset(root, split="test")
    (root / "labelsTs" / "case_9.nii.gz").unlink()  # the test label is found beside, as labelsTs/<image name>
    (root / "labelsTs" / "case_9.nii.gz").symlink_to(tmp_path / "outside" / "secret_label.nii.gz")
    meta["test"] = ["./imagesTs/case_9.nii.gz"]
    save_json(root, meta)
    with pytest.raises(ValueError, match=rf"entry 0 of 'test' .*its test label labelsTs/case_9\.nii\.gz.*{_OUTSIDE}"):
        load_dataset(root, split="test")
    assert load_dataset(root, split="test", allow_outside_root=True)[0].labels is not None


def test_load_dataset_refuses_nnunet_v1_channel_files_linked_outside(tmp_path):
    root = _outside_entry_folder(tmp_path, "./imagesTr/la_003.nii.gz")
    (root / "imagesTr" / "la_003_0000.nii.gz").symlink_to(tmp_path / "outside" / "secret.nii.gz")
    with pytest.raises(ValueError, match=rf"entry 0 of 'training' .*its channel file la_003_0000\.nii\.gz.*{_OUTSIDE}"):
        load_dataset(root)


def test_load_dataset_nnunet_style_refuses_files_linked_outside(tmp_path):
    root = write_msd_dataset(tmp_path / "d", small_synthetic(num_annotators=1))
    image = sorted((root / "imagesTr").iterdir())[0]
    label = sorted((root / "labelsTr").iterdir())[0]
    (tmp_path / "outside").mkdir()
    for which, path in (("image", image), ("label", label)):
        moved = path.rename(tmp_path / "outside" / path.name)
        path.symlink_to(moved)
        with pytest.raises(ValueError, match=rf"Expected {which} file .*{re.escape(path.name)} {_OUTSIDE}"):
            load_dataset(root)
        assert len(load_dataset(root, allow_outside_root=True)) == 2
        path.unlink()
        moved.rename(path)


def test_load_dataset_allow_outside_root_from_the_environment(tmp_path, monkeypatch):
    root = _outside_entry_folder(tmp_path, "../outside/secret.nii.gz")
    monkeypatch.setenv("SELECTSEG_ALLOW_OUTSIDE_DATA", "1")
    assert len(load_dataset(root)) == 2
    with pytest.raises(ValueError, match=_OUTSIDE):  # the keyword wins over the environment
        load_dataset(root, allow_outside_root=False)
    with pytest.raises(TypeError, match="allow_outside_root"):
        load_dataset(root, allow_outside_root="yes")


def test_load_dataset_accepts_a_dataset_folder_reached_through_a_symlink(tmp_path):
    root = msd_style_folder(tmp_path / "real")
    (tmp_path / "alias").symlink_to(root)
    assert len(load_dataset(tmp_path / "alias")) == 2


@pytest.mark.parametrize("name", ["a\\..\\..\\evil", "a..b"])
def test_load_dataset_nnunet_style_rejects_unsafe_case_ids(tmp_path, name):
    root = write_msd_dataset(tmp_path / "d", small_synthetic(num_annotators=1))
    image = sorted((root / "imagesTr").iterdir())[0]
    stem = image.name.split("_0000")[0]
    image.rename(image.with_name(image.name.replace(stem, name)))
    label = root / "labelsTr" / image.name.replace("_0000", "")
    label.rename(label.with_name(label.name.replace(stem, name)))
    with pytest.raises(
        ValueError, match=rf"case id from .*imagesTr.* to be usable as a file name.*{re.escape(repr(name))}"
    ):
        load_dataset(root)


def test_load_dataset_msd_style_rejects_an_unsafe_case_id(tmp_path):
    root = msd_style_folder(tmp_path / "ds")
    (root / "imagesTr" / "case_0.nii.gz").rename(root / "imagesTr" / "a..b.nii.gz")
    meta = json.loads((root / "dataset.json").read_text())
    meta["training"][0]["image"] = "./imagesTr/a..b.nii.gz"
    save_json(root, meta)
    with pytest.raises(ValueError, match=r"case id from entry 0 of 'training' .*usable as a file name.*'a\.\.b'"):
        load_dataset(root)


def test_load_dataset_refuses_a_training_image_with_nan_naming_the_case_and_its_file(tmp_path):
    root = msd_style_folder(tmp_path / "Task01_Toy")
    image = np.zeros((6, 5, 4, 2), np.float32)
    image[:3, :3, :2] = np.nan  # a NaN block: training on it gives all-NaN weights with exit 0
    save_nifti(root / "imagesTr" / "case_1.nii.gz", image)
    with pytest.raises(ValueError, match=r"case 'case_1' \(file '.*imagesTr/case_1\.nii\.gz'\) to be finite"):
        load_dataset(root, split="train")


def test_several_annotators_are_written_with_their_majority_as_the_plain_label(tmp_path):
    """nnU-Net trains on labelsTr/<case>; selectseg reads the annotators' own files back."""
    from selectseg.data.annotators import target_labels

    data = small_synthetic(num_cases=2, num_annotators=3)
    root = write_msd_dataset(tmp_path / "ds", data)
    for case in data:
        plain = nib.load(root / "labelsTr" / f"{case.case_id}.nii.gz").get_fdata().reshape(case.labels.shape[1:])
        assert np.array_equal(plain, target_labels(case.labels, "majority", 2))
    back = load_dataset(root)
    assert all(b.num_annotators == 3 and np.array_equal(b.labels, c.labels) for b, c in zip(back, data))
