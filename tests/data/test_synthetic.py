from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import ndimage

from selectseg.data import make_synthetic_dataset


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))


def test_make_synthetic_dataset_is_deterministic():
    a = make_synthetic_dataset(num_cases=3, size=32, seed=5)
    b = make_synthetic_dataset(num_cases=3, size=32, seed=5)
    for x, y in zip(a, b):
        assert np.array_equal(x.image, y.image) and np.array_equal(x.labels, y.labels)


def test_make_synthetic_dataset_cases_do_not_depend_on_num_cases():
    few = make_synthetic_dataset(num_cases=2, size=32)
    many = make_synthetic_dataset(num_cases=5, size=32)
    assert np.array_equal(few[1].image, many[1].image) and np.array_equal(few[1].labels, many[1].labels)


@pytest.mark.parametrize("other", [{"seed": 1}, {"split": "test"}])
def test_make_synthetic_dataset_seed_and_split_change_the_images(other):
    base = make_synthetic_dataset(num_cases=3, size=32)
    changed = make_synthetic_dataset(num_cases=3, size=32, **other)
    for x, y in zip(base, changed):
        assert not np.array_equal(x.image, y.image) and not np.array_equal(x.labels, y.labels)
    if "split" in other:
        assert [c.case_id for c in changed] == ["synth_test_000", "synth_test_001", "synth_test_002"]


@pytest.mark.parametrize(
    ("spatial_dims", "size", "shape"),
    [(2, 32, (32, 32)), (2, (16, 24), (16, 24)), (3, 16, (16, 16, 16)), (3, (16, 20, 24), (16, 20, 24))],
)
def test_make_synthetic_dataset_shapes_and_dtypes(spatial_dims, size, shape):
    ds = make_synthetic_dataset(num_cases=2, spatial_dims=spatial_dims, size=size, num_annotators=2, in_channels=2)
    assert len(ds) == 2 and ds.num_annotators == 2
    assert ds.info.spatial_dims == spatial_dims and ds.info.format == "synthetic"
    assert ds.info.channel_names == ("channel_0", "channel_1")
    for case in ds:
        assert case.image.shape == (2, *shape) and case.image.dtype == np.float32
        assert case.labels.shape == (2, *shape) and case.labels.dtype == np.int64
        assert np.isfinite(case.image).all()
        assert case.file_kind == "synthetic" and case.source is None and case.header is None
        assert np.array_equal(case.affine, np.eye(4)) and case.spacing == (1.0,) * spatial_dims


@pytest.mark.parametrize(("spatial_dims", "size"), [(2, 64), (3, 32)])
@pytest.mark.parametrize("num_classes", [2, 3, 4])
def test_make_synthetic_dataset_every_class_is_present(spatial_dims, size, num_classes):
    ds = make_synthetic_dataset(num_cases=6, spatial_dims=spatial_dims, size=size, num_classes=num_classes)
    assert ds.info.num_classes == num_classes and ds.info.class_names[0] == "background"
    for case in ds:
        assert set(np.unique(case.labels)) == set(range(num_classes))


@pytest.mark.parametrize(("spatial_dims", "size"), [(2, 64), (3, 32)])
def test_make_synthetic_dataset_annotators_differ_but_mostly_agree(spatial_dims, size):
    ds = make_synthetic_dataset(num_cases=8, spatial_dims=spatial_dims, size=size, num_annotators=3)
    scores = []
    for case in ds:
        assert not np.array_equal(case.labels[0], case.labels[1])
        scores += [dice(case.labels[i] > 0, case.labels[j] > 0) for i, j in itertools.combinations(range(3), 2)]
    assert 0.7 < np.mean(scores) < 0.99


def test_make_synthetic_dataset_nested_classes():
    ds = make_synthetic_dataset(num_cases=8, num_classes=3)
    assert ds.info.class_names == ("background", "outer", "inner")
    for case in ds:
        for label in case.labels:
            inner = ndimage.binary_dilation(label == 2)
            assert (label == 2).any() and not (inner & (label == 0)).any()  # class 2 is surrounded by class 1


def test_make_synthetic_dataset_structures_are_brighter():
    for case in make_synthetic_dataset(num_cases=4, in_channels=2):
        foreground = case.labels[0] > 0
        for channel in case.image:
            assert channel[foreground].mean() > channel[~foreground].mean() + 0.1


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"split": "val"}, ValueError, "`split`"),
        ({"split": 0}, TypeError, "`split`"),
        ({"num_cases": 0}, ValueError, "`num_cases`"),
        ({"num_cases": 2.0}, TypeError, "`num_cases`"),
        ({"spatial_dims": 4}, ValueError, "`spatial_dims` to be 2 or 3"),
        ({"spatial_dims": 1}, ValueError, "`spatial_dims`"),
        ({"num_classes": 5}, ValueError, "`num_classes` to be in 2..4"),
        ({"num_classes": 1}, ValueError, "`num_classes`"),
        ({"num_annotators": 0}, ValueError, "`num_annotators`"),
        ({"in_channels": 0}, ValueError, "`in_channels`"),
        ({"seed": -1}, ValueError, "`seed`"),
        ({"size": 8}, ValueError, "`size` to be an int >= 16"),
        ({"size": (32, 32, 32)}, ValueError, "`size` to have 2 entries"),
        ({"size": "64"}, TypeError, "`size`"),
        ({"size": 32.0}, TypeError, "`size`"),
    ],
)
def test_make_synthetic_dataset_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_synthetic_dataset(**kwargs)
