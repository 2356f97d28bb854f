"""Crops around the annotators' structure (selectseg.data.crop) against explicit windows, slices and block means."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from selectseg.data import Case, make_synthetic_dataset
from selectseg.data.crop import DEFAULT_CROP_FACTOR, annotation_window, crop_case, crop_to_annotations
from selectseg.data.resize import resample_case
from tests.reference import crop as ref
from tests.reference.resize import block_mean, voxel_centre


def _squares(shape: tuple[int, int], corners: list[tuple[int, int]], side: int) -> np.ndarray:
    """One square mask of ``side`` per annotator, top-left corner given: area side^2, centroid corner + (side-1)/2."""
    masks = np.zeros((len(corners), *shape), dtype=np.int64)
    for a, (r, c) in enumerate(corners):
        masks[a, r : r + side, c : c + side] = 1
    return masks


def _case(masks: np.ndarray, seed: int = 0) -> Case:
    rng = np.random.default_rng(seed)
    affine = np.eye(4)
    affine[:2, :2] = [[0.7, 0.1], [-0.2, 1.3]]
    affine[:3, 3] = [5.0, -3.0, 2.0]
    image = rng.normal(size=(2, *masks.shape[1:])).astype(np.float32)
    labels = masks * rng.integers(1, 3, size=masks.shape)  # labels 1 and 2 both belong to the structure
    return Case("c", image, labels, affine, None, file_kind="synthetic")


def _factor_for(side: int, square: int) -> float:
    """The factor whose window side is ``side`` for annotators' squares of ``square`` (diameter 2 square / sqrt(pi))."""
    return side / (2 * square / math.sqrt(math.pi))


@pytest.mark.parametrize(
    ("corners", "centre"),
    [
        ([(20, 20), (22, 24)], (25.5, 26.5)),  # inside
        ([(2, 40), (2, 42), (4, 41)], (7 + 1 / 6, 45.5)),  # crosses the top and right borders: shifted inside
    ],
)
def test_window_and_crop_equal_explicit_slicing_and_block_means(corners, centre):
    masks = _squares((60, 56), corners, 10)
    case = _case(masks)
    factor = _factor_for(24, 10)
    window = annotation_window(masks > 0, factor=factor)
    assert window == ref.window(centre, 2 * 10 / math.sqrt(math.pi), factor, (60, 56))
    assert all(s.stop - s.start == 24 for s in window)
    small = crop_to_annotations(case, 12, factor=factor)
    np.testing.assert_allclose(small.image, block_mean(ref.cut(case.image, window), 2), atol=1e-5)
    np.testing.assert_array_equal(small.labels, ref.nearest_exact(ref.cut(case.labels, window), (12, 12)))
    start = tuple(s.start for s in window)
    for index in [(0, 0), (11, 11), (3, 7)]:  # new voxel (i, j): the mean of the centres of the 2x2 block it averages
        old = tuple(2 * i + o for i, o in zip(index, start))
        centres = [voxel_centre(case.affine, (old[0] + a, old[1] + b)) for a in (0, 1) for b in (0, 1)]
        np.testing.assert_allclose(voxel_centre(small.affine, index), np.mean(centres, axis=0), atol=1e-9)


def test_window_longer_than_an_axis_takes_the_whole_axis():
    masks = _squares((20, 80), [(5, 30)], 10)
    window = annotation_window(masks > 0, factor=_factor_for(30, 10))
    assert window == (slice(0, 20), slice(20, 50))
    assert window == ref.window((9.5, 34.5), 2 * 10 / math.sqrt(math.pi), _factor_for(30, 10), (20, 80))


def test_centroid_is_that_of_the_mean_mask():
    masks = np.zeros((2, 50, 50), dtype=bool)
    masks[0, 10:20, 10:20] = True  # area 100, centroid (14.5, 14.5)
    masks[1, 10:30, 10:20] = True  # area 200, centroid (19.5, 14.5): the mean mask's centroid is area-weighted
    factor = 1.0
    diameter = 2 * math.sqrt(150 / math.pi)
    expected = ref.window(((14.5 * 100 + 19.5 * 200) / 300, 14.5), diameter, factor, (50, 50))
    assert annotation_window(masks, factor=factor) == expected


def test_upsampling_is_bilinear_and_labels_nearest():
    masks = _squares((40, 40), [(15, 15)], 6)
    case = _case(masks)
    window = (slice(10, 26), slice(12, 28))
    big = crop_case(case, window, (32, 24))
    cut = torch.from_numpy(ref.cut(case.image, window))[None]
    expected = torch.nn.functional.interpolate(cut, size=(32, 24), mode="bilinear", align_corners=False)[0]
    np.testing.assert_allclose(big.image, expected.numpy(), atol=1e-5)
    np.testing.assert_array_equal(big.labels, ref.nearest_exact(ref.cut(case.labels, window), (32, 24)))
    assert big.spacing == pytest.approx((case.spacing[0] * 16 / 32, case.spacing[1] * 16 / 24))


def test_3d_crop_cube():
    masks = np.zeros((2, 30, 30, 30), dtype=np.int64)
    masks[:, 10:18, 12:20, 8:16] = 1
    case = Case("v", np.random.default_rng(1).normal(size=(1, 30, 30, 30)).astype(np.float32), masks, np.eye(4), None)
    window = annotation_window(masks > 0, factor=2.0)
    diameter = 2 * (3 * 512 / (4 * math.pi)) ** (1 / 3)
    assert window == ref.window((13.5, 15.5, 11.5), diameter, 2.0, (30, 30, 30))
    small = crop_to_annotations(case, (8, 8, 8), factor=2.0)
    assert small.image.shape == (1, 8, 8, 8) and small.labels.shape == (2, 8, 8, 8)


def test_classes_choose_the_structure_and_default_factor():
    data = make_synthetic_dataset(num_cases=1, size=48, num_classes=3)
    case = data[0]
    only_two = crop_to_annotations(case, 16, classes=[2])
    assert only_two.spatial_shape == (16, 16)
    assert DEFAULT_CROP_FACTOR == 2.0
    window = annotation_window(np.isin(case.labels, [2]), factor=DEFAULT_CROP_FACTOR)
    side = window[0].stop - window[0].start
    assert only_two.spacing[0] == pytest.approx(case.spacing[0] * side / 16)


def test_resample_case_same_shape_is_identity_and_checks_shape():
    case = make_synthetic_dataset(num_cases=1, size=16)[0]
    assert resample_case(case, (16, 16)) is case
    with pytest.raises(ValueError, match="`shape` to hold 2 positive ints"):
        resample_case(case, (16,))
    with pytest.raises(ValueError, match="`shape` to hold 2 positive ints"):
        resample_case(case, (16, 0))
    with pytest.raises(TypeError, match="Case"):
        resample_case(case.image, (8, 8))  # type: ignore[arg-type]


def test_errors():
    masks = _squares((20, 20), [(5, 5)], 4)
    case = _case(masks)
    with pytest.raises(ValueError, match="every mask is empty"):
        annotation_window(np.zeros((2, 8, 8), bool))
    with pytest.raises(ValueError, match="positive finite"):
        annotation_window(masks > 0, factor=0)
    with pytest.raises(TypeError, match="`factor` to be a number"):
        annotation_window(masks > 0, factor="2")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="numpy array"):
        annotation_window([[[1]]])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shape \\(A, H, W\\)"):
        annotation_window(np.ones((4, 4), bool))
    with pytest.raises(ValueError, match="binary"):
        annotation_window(np.full((1, 4, 4), 2))
    with pytest.raises(ValueError, match="`window` to hold 2 slices"):
        crop_case(case, (slice(0, 30), slice(0, 10)), 8)
    with pytest.raises(ValueError, match="`window` to hold 2 slices"):
        crop_case(case, (slice(0, 10),), 8)
    with pytest.raises(ValueError, match="`window` to hold 2 slices"):
        crop_case(case, (slice(0, 10, 2), slice(0, 10)), 8)
    with pytest.raises(TypeError, match="Case"):
        crop_case(case.image, (slice(0, 10), slice(0, 10)), 8)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`shape` to hold 2 positive ints"):
        crop_case(case, (slice(0, 10), slice(0, 10)), (8, 0))
    with pytest.raises(TypeError, match="Case"):
        crop_to_annotations(case.image, 8)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="every map is empty"):
        crop_to_annotations(case, 8, classes=[7])
    unlabelled = Case("u", case.image, None, np.eye(4), None, file_kind="synthetic")
    with pytest.raises(ValueError, match="labels to crop around"):
        crop_to_annotations(unlabelled, 8)
