"""Resampling cases (selectseg.data.resize) against block means and voxel-centre geometry."""

from __future__ import annotations

import numpy as np
import pytest

from selectseg.data import Case, DatasetInfo, SegmentationDataset, make_synthetic_dataset, resize_case, resize_dataset
from tests.reference.resize import block_centre, block_mean, voxel_centre


def _case(shape: tuple[int, ...], annotators: int = 2, seed: int = 0) -> Case:
    rng = np.random.default_rng(seed)
    affine = np.eye(4)
    dims = len(shape)
    affine[:3, :dims] = rng.normal(size=(3, dims)) * 0.3 + np.eye(3)[:, :dims] * np.array([0.8, 1.3, 2.1][:dims])
    affine[:3, 3] = rng.normal(size=3) * 10
    image = rng.normal(size=(2, *shape)).astype(np.float32)
    labels = rng.integers(0, 3, size=(annotators, *shape))
    return Case("c", image, labels, affine, None, file_kind="synthetic")


@pytest.mark.parametrize("shape", [(8, 12), (6, 8, 4)])
def test_integer_factor_equals_block_means_and_block_centres(shape):
    case = _case(shape)
    small = resize_case(case, 0.5)
    assert small.spatial_shape == tuple(s // 2 for s in shape)
    np.testing.assert_allclose(small.image, block_mean(case.image, 2), atol=1e-5)
    for index in [(0,) * len(shape), tuple(s // 2 - 1 for s in shape), (1,) + (0,) * (len(shape) - 1)]:
        np.testing.assert_allclose(voxel_centre(small.affine, index), block_centre(case.affine, index, 2), atol=1e-9)
    np.testing.assert_allclose(small.spacing, 2 * np.array(case.spacing), rtol=1e-12)


def test_labels_are_nearest_values_of_their_block():
    case = _case((8, 8), annotators=3)
    small = resize_case(case, 0.5)
    assert small.labels.shape == (3, 4, 4) and small.labels.dtype == np.int64
    for a in range(3):
        for i in range(4):
            for j in range(4):
                block = case.labels[a, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2]
                assert small.labels[a, i, j] in block


def test_per_axis_scale_and_unchanged_axes():
    case = _case((10, 6, 4))
    small = resize_case(case, (0.5, 1.0, 0.5))
    assert small.spatial_shape == (5, 6, 2)
    np.testing.assert_allclose(small.affine[:3, 1], case.affine[:3, 1])
    assert resize_case(case, 1.0) is case


def test_unlabelled_case_and_dataset_order():
    info = DatasetInfo("d", ("bg", "fg"), ("gray",), 2, "synthetic")
    plain = Case("u", np.ones((1, 6, 6), np.float32), None, np.eye(4), None, file_kind="synthetic")
    assert resize_case(plain, 0.5).labels is None
    data = make_synthetic_dataset(num_cases=3, size=16)
    small = resize_dataset(data, 0.5)
    assert [c.case_id for c in small] == [c.case_id for c in data] and small.info == data.info
    assert all(c.spatial_shape == (8, 8) for c in small)
    assert resize_dataset(SegmentationDataset(info, (plain,)), 0.5)[0].spatial_shape == (3, 3)


@pytest.mark.parametrize(
    ("scale", "error", "match"),
    [
        (0.0, ValueError, "in \\(0, 1\\]"),
        (1.5, ValueError, "in \\(0, 1\\]"),
        ((0.5,), ValueError, "2 numbers"),
        ("half", TypeError, "number"),
        (True, TypeError, "number"),
    ],
)
def test_bad_scale_is_named(scale, error, match):
    with pytest.raises(error, match=match):
        resize_case(_case((4, 4)), scale)


def test_bad_inputs_are_named():
    with pytest.raises(TypeError, match="`case`"):
        resize_case("not a case", 0.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`dataset`"):
        resize_dataset([_case((4, 4))], 0.5)  # type: ignore[arg-type]
