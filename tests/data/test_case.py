from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from selectseg.data import (
    Case,
    DatasetInfo,
    SegmentationDataset,
    get_format,
    list_formats,
    load_dataset,
    register_format,
)
from selectseg.data.formats import registry


def make_case(**changes: object) -> Case:
    fields: dict[str, object] = {
        "case_id": "c",
        "image": np.zeros((1, 4, 5), np.float32),
        "labels": np.zeros((2, 4, 5), np.int64),
        "affine": np.eye(4),
        "source": None,
    }
    fields.update(changes)
    return Case(**fields)  # type: ignore[arg-type]


def test_case_converts_dtypes_and_reports_its_geometry():
    affine = np.diag([0.5, 2.0, 3.0, 1.0])
    case = make_case(
        image=np.zeros((2, 3, 4, 5), np.int16), labels=np.zeros((1, 3, 4, 5), np.uint8), affine=affine, source="x.nii"
    )
    assert case.image.dtype == np.float32 and case.labels.dtype == np.int64 and case.affine.dtype == np.float64
    assert case.spatial_dims == 3 and case.spatial_shape == (3, 4, 5) and case.num_annotators == 1
    assert case.spacing == (0.5, 2.0, 3.0) and case.source == Path("x.nii")
    assert make_case(labels=None).num_annotators == 0
    assert repr(case) == (
        "Case(case_id='c', image=(2, 3, 4, 5) float32, labels=(1, 3, 4, 5) int64, spacing=(0.5, 2.0, 3.0), "
        "file_kind='nifti', source=x.nii)"
    )


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"case_id": ""}, ValueError, "`case_id`"),
        ({"file_kind": "dicom"}, ValueError, "`file_kind`"),
        ({"image": [[1.0]]}, TypeError, "`image` to be a numpy array"),
        ({"image": np.zeros((1, 4, 5), complex)}, TypeError, "`image` to hold real numbers"),
        ({"image": np.zeros((4, 5), np.float32)}, ValueError, r"`image` of case 'c' to have shape \(C, H, W\)"),
        ({"labels": [[0]]}, TypeError, "`labels` to be a numpy array or None"),
        ({"labels": np.zeros((2, 4, 5), np.float32)}, TypeError, "`labels` to hold integer labels"),
        ({"labels": np.zeros((2, 4, 6), np.int64)}, ValueError, r"`labels` of case 'c' to have shape \(A, \*S\)"),
        ({"labels": np.zeros((0, 4, 5), np.int64)}, ValueError, r"case 'c' to hold at least one annotator's map"),
        ({"image": np.zeros((0, 4, 5), np.float32)}, ValueError, "at least one channel and a non-empty spatial"),
        ({"image": np.zeros((1, 0, 5), np.float32), "labels": None}, ValueError, "non-empty spatial shape"),
        ({"affine": np.eye(3)}, ValueError, r"`affine` to have shape \(4, 4\)"),
        ({"affine": "eye"}, TypeError, "`affine` to be a numpy array"),
    ],
)
def test_case_rejects_bad_fields(changes, error, match):
    with pytest.raises(error, match=match):
        make_case(**changes)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_case_rejects_a_non_finite_image_naming_the_case_and_its_file(bad):
    image = np.zeros((1, 4, 5), np.float32)
    image[0, :2, :2] = bad  # a NaN block trains a model whose weights are all NaN
    with pytest.raises(ValueError, match=r"`image` of case 'c' \(file 'x/c\.nii\.gz'\) to be finite, but got 4 NaN"):
        make_case(image=image, source="x/c.nii.gz")


def test_case_accepts_huge_finite_values_whose_sum_overflows():
    image = np.full((1, 4, 5), 3e38, np.float32)  # the float32 sum is inf, every value is finite
    assert np.isfinite(make_case(image=image).image).all()


def test_dataset_rejects_labels_outside_its_classes_naming_the_case():
    info = DatasetInfo("d", ("background", "fg"), ("gray",), 2, "msd")
    case = make_case(labels=np.full((2, 4, 5), 2, np.uint8), source="x/c.nii.gz")
    with pytest.raises(ValueError, match=r"labels of case 'c' \(file 'x/c\.nii\.gz'\) to lie in \[0, 2\)"):
        SegmentationDataset(info, (case,))
    negative = make_case(labels=np.full((1, 4, 5), -1, np.int32))
    with pytest.raises(ValueError, match=r"got values in \[-1, -1\]"):
        SegmentationDataset(info, (negative,))


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("x", ("background",), ("c",), 2, "msd"), "`class_names` to hold at least 2"),
        (("x", ("background", "fg"), (), 2, "msd"), "`channel_names` to hold at least 1"),
        (("x", ("background", ""), ("c",), 2, "msd"), "non-empty strings"),
        (("x", ("fg", "fg"), ("c",), 2, "msd"), "`class_names` to be distinct"),
        (("x", ("background", "fg"), ("c",), 4, "msd"), "`spatial_dims` to be 2 or 3"),
    ],
)
def test_dataset_info_rejects_bad_fields(args, match):
    with pytest.raises(ValueError, match=match):
        DatasetInfo(*args)


def test_dataset_info_allows_repeated_channel_names():
    info = DatasetInfo("x", ("background", "fg"), ("zscore", "zscore"), 3, "msd")
    assert info.num_classes == 2 and info.num_channels == 2


def test_segmentation_dataset_indexing_and_checks():
    info = DatasetInfo("x", ("background", "fg"), ("c",), 2, "synthetic")
    ds = SegmentationDataset(info, (make_case(case_id="a"), make_case(case_id="b", labels=None)))
    assert len(ds) == 2 and ds[-1].case_id == "b" and [c.case_id for c in ds] == ["a", "b"]
    assert ds.num_annotators == 2 and SegmentationDataset(info, ()).num_annotators == 0
    assert repr(ds).endswith("cases=<2 cases>)")
    with pytest.raises(ValueError, match=r"1 channel.*case 'a' has 2"):
        SegmentationDataset(info, (make_case(case_id="a", image=np.zeros((2, 4, 5), np.float32)),))
    with pytest.raises(ValueError, match="every case to be 2-D, but case 'a' is 3-D"):
        SegmentationDataset(info, (make_case(case_id="a", image=np.zeros((1, 2, 4, 5)), labels=None),))
    with pytest.raises(ValueError, match="distinct case ids, but got 'a' twice"):
        SegmentationDataset(info, (make_case(case_id="a"), make_case(case_id="a")))


# --------------------------------------------------------------------------------------------------------- registry


def test_registry_lists_and_gets_formats():
    assert list_formats() == sorted(list_formats()) and "msd" in list_formats()
    assert registry.detection_order()[:2] == ["msd", "glas"]
    fmt = get_format("msd")
    assert fmt.name == "msd" and "dataset.json" in fmt.description
    with pytest.raises(ValueError, match="Did you mean 'msd'"):
        get_format("msdd")
    with pytest.raises(TypeError, match="`format`"):
        get_format(3)  # type: ignore[arg-type]


def test_register_format_adds_a_format_that_auto_detects(tmp_path, monkeypatch):
    monkeypatch.setattr(registry.FORMATS, "_entries", dict(registry.FORMATS._entries))
    before = registry.detection_order()
    seen: list[tuple[Path, str]] = []

    @register_format("toy", detect=lambda root: (root / "toy.txt").is_file(), description="a toy.txt file")
    def load_toy(root: Path, split: str) -> SegmentationDataset:
        seen.append((root, split))
        info = DatasetInfo("toy", ("background", "fg"), ("c",), 2, "toy")
        return SegmentationDataset(info, (make_case(),))

    assert registry.detection_order() == [*before, "toy"] and "toy" in list_formats()
    (tmp_path / "toy.txt").write_text("x")
    assert load_dataset(tmp_path, split="test").info.format == "toy" and seen == [(tmp_path, "test")]
    assert load_dataset(tmp_path, format="toy").info.name == "toy"
    (tmp_path / "toy.txt").unlink()
    (tmp_path / "other").write_text("x")
    with pytest.raises(ValueError, match=r"'toy'\].*'toy' needs a toy.txt file"):
        load_dataset(tmp_path)
    for bad in ("toy", "auto", ""):
        with pytest.raises(ValueError, match="new, non-empty format name, but got"):
            register_format(bad, detect=lambda root: False)


def test_target_labels_refuses_an_empty_annotator_set() -> None:
    from selectseg.data.annotators import target_labels

    # issue 16: a majority of no annotator silently gave class 1 everywhere
    with pytest.raises(ValueError, match=r"A >= 1 annotators, but got shape \(0, 4, 5\)"):
        target_labels(np.zeros((0, 4, 5), np.int64), "majority", 2)
    assert target_labels(np.array([[0, 1, 1], [1, 1, 0]]), "majority", 2).tolist() == [1, 1, 1]


@pytest.mark.parametrize("case_id", ["../x", "a/b", "a\\b", ".", "x..y", "tab\there"])
def test_case_ids_that_cannot_be_file_names_are_refused(case_id: str) -> None:
    """Every Case (read, synthetic or built in Python) has an id predict can write files under."""
    with pytest.raises(ValueError, match="usable as a file name"):
        make_case(case_id=case_id)
