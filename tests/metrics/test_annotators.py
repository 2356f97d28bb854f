from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import dice as scipy_dice_dissimilarity
from scipy.stats import pearsonr, spearmanr

from selectseg.metrics import UndefinedMetricWarning
from selectseg.metrics.annotators import (
    Interval,
    annotator_roi,
    annotator_variance,
    image_level_correlation,
    image_level_correlation_ci,
    pairwise_dice,
    per_image_pixel_correlation,
    pixel_level_correlation,
    pixel_level_correlation_ci,
    prediction_variance,
    sum_of_variances,
)

from ..reference import annotators as ref
from ..reference.annotators import pairwise_dice as slow_pairwise_dice

# ------------------------------------------------------------------------------------- agreement between annotators


@pytest.mark.parametrize("shape", [(2, 7), (3, 5, 6), (4, 3, 4, 5)])
@pytest.mark.parametrize("k", [2, 4])
def test_pairwise_dice_matches_slow_reference(rng: np.random.Generator, shape: tuple[int, ...], k: int) -> None:
    labels = rng.integers(0, k, size=shape)
    assert pairwise_dice(labels, num_classes=k) == pytest.approx(slow_pairwise_dice(labels, k), abs=1e-12)


def test_pairwise_dice_matches_scipy_for_two_annotators(rng: np.random.Generator) -> None:
    labels = rng.integers(0, 2, size=(2, 40))
    expected = 1 - scipy_dice_dissimilarity(labels[0].astype(bool), labels[1].astype(bool))
    assert pairwise_dice(labels, num_classes=2)[0] == pytest.approx(expected)


def test_pairwise_dice_hand_cases() -> None:
    assert pairwise_dice(np.zeros((3, 4), np.int64), num_classes=2).tolist() == [1.0]  # empty vs empty = 1
    assert pairwise_dice(np.array([[1, 1], [0, 0]]), num_classes=2).tolist() == [0.0]
    # class 2 present for one of three annotators: pairs (1,2) 0, (1,3) 0, (2,3) empty-empty 1
    assert pairwise_dice(np.array([[2, 0], [0, 0], [0, 0]]), num_classes=3)[1] == pytest.approx(1 / 3)
    assert pairwise_dice(torch.tensor([[0, 1], [0, 1]]), num_classes=2).tolist() == [1.0]


def test_pairwise_dice_single_annotator_is_undefined() -> None:
    with pytest.warns(UndefinedMetricWarning, match="single annotator"):
        assert np.isnan(pairwise_dice(np.zeros((1, 3), np.int64), num_classes=2)).all()


def test_pairwise_dice_errors() -> None:
    with pytest.raises(TypeError, match="integer"):
        pairwise_dice(np.zeros((2, 3)), num_classes=2)
    with pytest.raises(ValueError, match=r"\(A, \*S\)"):
        pairwise_dice(np.zeros(3, np.int64), num_classes=2)
    with pytest.raises(ValueError, match="num_classes"):
        pairwise_dice(np.zeros((2, 3), np.int64), num_classes=1)
    with pytest.raises(ValueError, match="labels"):
        pairwise_dice(np.full((2, 3), 5), num_classes=2)


# ---------------------------------------------------------------------------------------------------- variance maps


@pytest.mark.parametrize("shape", [(2, 5), (3, 4, 5), (5, 2, 3, 4)])
def test_annotator_variance_matches_slow_reference(rng: np.random.Generator, shape: tuple[int, ...]) -> None:
    masks = rng.random(shape) < 0.4
    np.testing.assert_allclose(annotator_variance(masks), ref.annotator_variance(masks), rtol=0, atol=1e-15)


def test_annotator_variance_equals_numpy_population_variance_and_label_maps(rng: np.random.Generator) -> None:
    labels = rng.integers(0, 3, size=(4, 6, 7))
    got = annotator_variance(labels, foreground=2)
    np.testing.assert_allclose(got, (labels == 2).astype(float).var(axis=0, ddof=0), atol=1e-15)
    np.testing.assert_array_equal(annotator_variance(torch.from_numpy(labels == 2)), got)
    assert annotator_variance(np.array([[1, 0], [0, 0]])).tolist() == [0.25, 0.0]  # even split = 1/4


def test_annotator_variance_single_annotator_is_undefined() -> None:
    with pytest.warns(UndefinedMetricWarning, match="single annotator"):
        assert np.isnan(annotator_variance(np.ones((1, 3, 3), bool))).all()


def test_annotator_variance_errors() -> None:
    with pytest.raises(ValueError, match=r"\(A, \*S\)"):
        annotator_variance(np.zeros(3, bool))
    with pytest.raises(ValueError, match="binary"):
        annotator_variance(np.full((2, 3), 2))
    with pytest.raises(TypeError, match="integer"):
        annotator_variance(np.zeros((2, 3)), foreground=1)
    with pytest.raises(TypeError, match="foreground"):
        annotator_variance(np.zeros((2, 3), np.int64), foreground=1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="numbers"):
        annotator_variance("masks")  # type: ignore[arg-type]


@pytest.mark.parametrize("shape", [(2, 6), (4, 3, 5), (3, 2, 3, 4)])
def test_prediction_variance_matches_slow_reference_and_numpy(rng: np.random.Generator, shape: tuple[int, ...]) -> None:
    probs = rng.random(shape)
    got = prediction_variance(probs)
    np.testing.assert_allclose(got, ref.population_variance(probs), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got, np.var(probs, axis=0, ddof=0), rtol=1e-12)
    np.testing.assert_allclose(prediction_variance(torch.from_numpy(probs).float()), got, atol=1e-7)


def test_prediction_variance_single_member_and_errors() -> None:
    with pytest.warns(UndefinedMetricWarning, match="single member"):
        assert np.isnan(prediction_variance(np.zeros((1, 4)))).all()
    with pytest.raises(ValueError, match=r"\(M, \*S\)"):
        prediction_variance(np.zeros(4))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        prediction_variance(np.array([[0.5, 1.5], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="finite"):
        prediction_variance(np.array([[0.5, np.nan], [0.0, 0.0]]))
    with pytest.raises(TypeError, match="numbers"):
        prediction_variance(np.array([["a"], ["b"]]))


def test_sum_of_variances_hand_cases_and_errors() -> None:
    assert sum_of_variances(np.zeros((3, 3))) == 0.0
    assert sum_of_variances(torch.tensor([0.25, 0.25, 0.5])) == 1.0
    with pytest.warns(UndefinedMetricWarning, match="NaN"):
        assert math.isnan(sum_of_variances(np.array([0.1, np.nan])))
    with pytest.raises(ValueError, match="non-negative"):
        sum_of_variances(np.array([0.1, -0.2]))
    with pytest.raises(ValueError, match="finite"):
        sum_of_variances(np.array([0.1, np.inf]))
    with pytest.raises(TypeError, match="numpy array"):
        sum_of_variances({"a": 1})  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------------- correlation


@pytest.mark.parametrize("n", [2, 3, 10, 50])
@pytest.mark.parametrize("levels", [None, 4])
def test_image_level_correlation_matches_scipy_and_slow_reference(
    rng: np.random.Generator, n: int, levels: int | None
) -> None:
    x = rng.random(n) if levels is None else rng.integers(0, levels, n).astype(float)
    y = x + rng.random(n)
    if np.ptp(x) == 0:
        x[0] += 1
    got = image_level_correlation(x, y)
    assert got.pearson == pytest.approx(pearsonr(x, y).statistic, abs=1e-12)
    assert got.spearman == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
    assert got.pearson == pytest.approx(ref.pearson(x.tolist(), y.tolist()), abs=1e-12)
    assert got.spearman == pytest.approx(ref.spearman(x.tolist(), y.tolist()), abs=1e-12)


def test_image_level_correlation_hand_cases() -> None:
    assert image_level_correlation([1, 2, 3], [2, 4, 6]) == (1.0, 1.0)
    assert image_level_correlation([1, 2, 3], [9, 1, 0]).spearman == -1.0
    assert image_level_correlation(torch.tensor([1.0, 2.0]), [5.0, 3.0]) == (-1.0, -1.0)


@pytest.mark.parametrize(("x", "y"), [([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]), ([1.0, 2.0], [0.0, 0.0]), ([1.0], [2.0])])
def test_image_level_correlation_constant_or_single_is_undefined(x: list[float], y: list[float]) -> None:
    with pytest.warns(UndefinedMetricWarning, match="constant"):
        got = image_level_correlation(x, y)
    assert math.isnan(got.pearson) and math.isnan(got.spearman)


def test_image_level_correlation_errors() -> None:
    with pytest.raises(ValueError, match="1-D of one length"):
        image_level_correlation([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="at least one image"):
        image_level_correlation([], [])
    with pytest.raises(ValueError, match="finite"):
        image_level_correlation([1.0, np.nan], [1.0, 2.0])
    with pytest.raises(TypeError, match="numbers"):
        image_level_correlation("ab", [1.0, 2.0])  # type: ignore[arg-type]


def _maps(rng: np.random.Generator, n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    shapes = [(4, 5), (3, 3, 2), (6,)]
    preds = [rng.random(shapes[i % 3]) for i in range(n)]
    anns = [p + rng.random(p.shape) for p in preds]
    return preds, anns


@pytest.mark.parametrize("constant", ["skip", "zero", "one_if_both_constant"])
def test_pixel_level_correlation_matches_slow_reference_with_constant_maps(
    rng: np.random.Generator, constant: str
) -> None:
    preds, anns = _maps(rng, 7)
    preds[1] = np.full_like(preds[1], 0.3)  # model constant
    anns[2] = np.zeros_like(anns[2])  # annotators constant
    preds[4], anns[4] = np.zeros_like(preds[4]), np.zeros_like(anns[4])  # both constant
    got = pixel_level_correlation(preds, anns, constant=constant)
    assert got == pytest.approx(ref.pixel_level_correlation(preds, anns, constant), abs=1e-12)


def test_pixel_level_correlation_equals_mean_of_scipy_pearson(rng: np.random.Generator) -> None:
    preds, anns = _maps(rng, 5)
    want = np.mean([pearsonr(p.ravel(), a.ravel()).statistic for p, a in zip(preds, anns)])
    assert pixel_level_correlation(preds, anns) == pytest.approx(want, abs=1e-12)
    stacked_p, stacked_a = np.stack([rng.random((3, 4)) for _ in range(3)]), np.stack([rng.random((3, 4))] * 3)
    assert pixel_level_correlation(stacked_p, torch.from_numpy(stacked_a)) == pytest.approx(
        pixel_level_correlation(list(stacked_p), list(stacked_a)), abs=1e-12
    )


def test_pixel_level_correlation_hand_cases() -> None:
    pred = [np.array([0.0, 0.1, 0.2]), np.array([0.3, 0.3, 0.3]), np.zeros(3)]
    ann = [np.array([0.4, 0.2, 0.0]), np.array([0.0, 0.1, 0.0]), np.zeros(3)]
    assert pixel_level_correlation(pred, ann) == pytest.approx(-1.0)
    assert pixel_level_correlation(pred, ann, constant="zero") == pytest.approx(-1 / 3)
    assert pixel_level_correlation(pred, ann, constant="one_if_both_constant") == pytest.approx(0.0)
    assert pixel_level_correlation([np.array([5.0])], [np.array([1.0])], constant="zero") == 0.0  # one pixel


def test_pixel_level_correlation_all_constant_is_undefined_when_skipped() -> None:
    with pytest.warns(UndefinedMetricWarning, match="constant"):
        assert math.isnan(pixel_level_correlation([np.zeros(4)], [np.arange(4.0)]))


def test_pixel_level_correlation_errors() -> None:
    good = [np.arange(3.0)]
    with pytest.raises(ValueError, match="one map per image"):
        pixel_level_correlation(good, good * 2)
    with pytest.raises(ValueError, match="same shape"):
        pixel_level_correlation(good, [np.arange(4.0)])
    with pytest.raises(ValueError, match="at least one image"):
        pixel_level_correlation([], [])
    with pytest.raises(ValueError, match="finite"):
        pixel_level_correlation([np.array([0.0, np.inf])], [np.arange(2.0)])
    with pytest.raises(ValueError, match="Did you mean 'zero'"):
        pixel_level_correlation(good, good, constant="zeros")
    with pytest.raises(TypeError, match="constant"):
        pixel_level_correlation(good, good, constant=0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="list of per-image arrays"):
        pixel_level_correlation(3.0, good)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="numbers"):
        pixel_level_correlation(["ab"], good)  # type: ignore[list-item]


# ------------------------------------------------------------------------------------- SV over a region of interest


@pytest.mark.parametrize("shape", [(9, 11), (5, 6, 7)])
@pytest.mark.parametrize("radius", [0, 1, 2, 3])
def test_sum_of_variances_over_annotator_roi_matches_loop_reference(
    rng: np.random.Generator, shape: tuple[int, ...], radius: int
) -> None:
    masks = np.zeros((3, *shape), dtype=bool)
    for a in range(3):  # a small blob per annotator, a few pixels apart
        corner = tuple(int(v) for v in rng.integers(1, np.array(shape) - 3))
        masks[(a, *(slice(c, c + 2) for c in corner))] = True
    variance = rng.random(shape) * 0.25
    roi = annotator_roi(masks, radius=radius)
    assert roi.dtype == np.bool_ and roi.shape == shape
    assert sum_of_variances(variance, roi=roi) == pytest.approx(ref.roi_sum(variance, masks, radius), rel=1e-12)


def test_annotator_roi_hand_cases_and_label_maps() -> None:
    masks = np.zeros((2, 7, 7), dtype=np.int64)
    masks[0, 3, 3] = 1
    assert annotator_roi(masks, radius=0).sum() == 1
    assert annotator_roi(masks, radius=1).sum() == 5  # the 4-neighbourhood: diagonals are sqrt(2) away
    assert annotator_roi(masks, radius=2).sum() == 13  # distance <= 2: 1 + 4 + 4 + 4
    labels = np.array([[[0, 2, 1]], [[0, 0, 2]]])
    assert annotator_roi(labels, radius=0, foreground=2).tolist() == [[False, True, True]]
    assert not annotator_roi(np.zeros((2, 4, 4), bool), radius=3).any()  # nothing marked: an empty region
    assert sum_of_variances(np.full((4, 4), 0.1), roi=np.zeros((4, 4), bool)) == 0.0


def test_annotator_roi_and_sv_roi_errors() -> None:
    masks = np.ones((2, 3, 3), dtype=bool)
    with pytest.raises(ValueError, match="`radius` to be >= 0"):
        annotator_roi(masks, radius=-1)
    with pytest.raises(TypeError, match="`radius` to be an int"):
        annotator_roi(masks, radius=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="binary"):
        annotator_roi(np.full((2, 3, 3), 2), radius=1)
    with pytest.raises(ValueError, match="shape of `variance_map`"):
        sum_of_variances(np.zeros((3, 3)), roi=np.ones((3, 4), bool))
    with pytest.raises(ValueError, match="`roi` to be binary"):
        sum_of_variances(np.zeros((3, 3)), roi=np.full((3, 3), 2))
    with pytest.raises(TypeError, match="`roi`"):
        sum_of_variances(np.zeros((3, 3)), roi={"a": 1})  # type: ignore[arg-type]


# -------------------------------------------------------------------------------------------- confidence intervals


def test_per_image_pixel_correlation_is_what_pixel_level_correlation_averages(rng: np.random.Generator) -> None:
    preds = [rng.random((5, 6)) for _ in range(4)] + [np.full((5, 6), 0.2)]
    anns = [rng.random((5, 6)) for _ in range(5)]
    r = per_image_pixel_correlation(preds, anns)
    expected = [pearsonr(p.ravel(), a.ravel())[0] for p, a in zip(preds[:4], anns[:4])]
    assert np.isnan(r[-1]) and r[:4] == pytest.approx(expected)
    assert pixel_level_correlation(preds, anns) == pytest.approx(np.nanmean(r))
    assert per_image_pixel_correlation(preds, anns, constant="zero")[-1] == 0.0


@pytest.mark.parametrize("n", [2, 3, 12, 25])
def test_image_level_correlation_ci_matches_loop_reference(rng: np.random.Generator, n: int) -> None:
    x = rng.normal(size=n)
    y = x + rng.normal(size=n)
    if n > 2:
        y[0] = y[1]  # a tie, for the ranks
    ci = image_level_correlation_ci(x, y, n_resamples=300, confidence=0.9, seed=7)
    index = np.random.default_rng(7).integers(0, n, size=(300, n))
    assert ci.pearson == pytest.approx(ref.bootstrap_interval(ref.pearson_or_none, [x, y], index, 0.9), abs=1e-12)
    assert ci.spearman == pytest.approx(ref.bootstrap_interval(ref.spearman_or_none, [x, y], index, 0.9), abs=1e-12)


@pytest.mark.parametrize("n", [2, 5, 25])
def test_pixel_level_correlation_ci_matches_loop_reference(rng: np.random.Generator, n: int) -> None:
    r = rng.uniform(-1, 1, size=n)
    ci = pixel_level_correlation_ci(np.append(r, np.nan), n_resamples=300, confidence=0.8, seed=3)
    index = np.random.default_rng(3).integers(0, n, size=(300, n))  # the NaN image is dropped before resampling
    assert ci == pytest.approx(ref.bootstrap_interval(ref.mean, [r], index, 0.8), abs=1e-12)


def test_correlation_ci_is_seeded_and_contains_the_estimate(rng: np.random.Generator) -> None:
    x = rng.normal(size=25)
    y = 0.6 * x + 0.8 * rng.normal(size=25)
    first, again = image_level_correlation_ci(x, y, seed=1), image_level_correlation_ci(x, y, seed=1)
    assert first == again and image_level_correlation_ci(x, y, seed=2) != first
    estimate = image_level_correlation(x, y)
    assert first.pearson.low < estimate.pearson < first.pearson.high
    assert first.spearman.low < estimate.spearman < first.spearman.high
    r = rng.uniform(0.0, 0.6, size=25)
    interval = pixel_level_correlation_ci(r, seed=1)
    assert interval == pixel_level_correlation_ci(r, seed=1) and interval.low < r.mean() < interval.high
    # a perfect monotone relation: every defined resample gives exactly the estimate
    exact = image_level_correlation_ci([1.0, 2.0, 3.0, 5.0], [2.0, 4.0, 6.0, 10.0])
    assert exact.pearson == Interval(1.0, 1.0) and exact.spearman == Interval(1.0, 1.0)


def test_correlation_ci_undefined_resamples_and_errors() -> None:
    with pytest.warns(UndefinedMetricWarning, match="constant input"):
        ci = image_level_correlation_ci([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])
    assert all(math.isnan(v) for v in (*ci.pearson, *ci.spearman))
    with pytest.raises(ValueError, match="at least 2 images"):
        image_level_correlation_ci([1.0], [2.0])
    with pytest.raises(ValueError, match="at least 2 images"):
        pixel_level_correlation_ci([0.3, np.nan, np.nan])
    with pytest.raises(ValueError, match="`confidence` to be a number in \\(0, 1\\)"):
        image_level_correlation_ci([1.0, 2.0], [2.0, 1.0], confidence=1.0)
    with pytest.raises(ValueError, match="n_resamples"):
        pixel_level_correlation_ci([0.1, 0.2], n_resamples=0)
    with pytest.raises(TypeError, match="`seed` to be an int"):
        pixel_level_correlation_ci([0.1, 0.2], seed=0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="in \\[-1, 1\\]"):
        pixel_level_correlation_ci([0.1, 1.2])
    with pytest.raises(ValueError, match="1-D"):
        pixel_level_correlation_ci(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        image_level_correlation_ci([1.0, np.nan], [2.0, 1.0])


def test_an_empty_annotator_set_is_refused() -> None:
    empty = np.zeros((0, 4, 5), np.int64)  # issue 16: was NaN "with a single annotator", or an empty map
    with pytest.raises(ValueError, match=r"`labels` of shape \(A, \*S\) with A >= 1, but got shape \(0, 4, 5\)"):
        pairwise_dice(empty, num_classes=2)
    with pytest.raises(ValueError, match=r"`masks` of shape \(A, \*S\) with at least one map, but got shape \(0, 4"):
        annotator_variance(empty)
    with pytest.raises(ValueError, match="at least one map"):
        annotator_roi(empty.astype(bool), radius=1)
