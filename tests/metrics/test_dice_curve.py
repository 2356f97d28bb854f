from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import dice as scipy_dice_dissimilarity

from selectseg.metrics import selective_dice_curve
from tests.metrics._images import random_images
from tests.reference.dice_curve import operating_point, slow_dice_curve
from tests.reference.error_detection import slow_oracle_aurc

LABEL = np.array([1, 1, 1, 0, 0, 0, 0, 0, 1, 0])
PRED = np.array([1, 1, 0, 0, 1, 0, 0, 0, 1, 1])
CONF = np.array([0.99, 0.95, 0.55, 0.9, 0.6, 0.97, 0.98, 0.96, 0.7, 0.52])


_images = random_images


def test_worked_example_from_the_issue():
    curve = selective_dice_curve([PRED], [LABEL], [1 - CONF], num_classes=2)
    dice = [curve.at_coverage(c).dice_mean for c in (1.0, 0.9, 0.8, 0.7)]
    np.testing.assert_allclose(dice, [2 / 3, 0.75, 8 / 9, 1.0], rtol=1e-12)
    assert curve.at_coverage(0.8).gamma == 1.0
    assert curve.aurc == pytest.approx(0.052778, abs=5e-7)
    assert curve.coverage[0] == 0 and curve.dice[0] == 1 and curve.coverage[-1] == 1
    assert curve.thresholds[0] == -math.inf


@pytest.mark.parametrize("levels", [None, 4, 25])
@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("seed", range(3))
def test_dice_curve_equals_slow_reference_over_every_distinct_threshold(levels, k, seed):
    rng = np.random.default_rng(seed)
    preds, targets, uncs = _images(rng, k=k, levels=levels)
    curve = selective_dice_curve(preds, targets, uncs, num_classes=k)
    thresholds, coverage, dice, per_image = slow_dice_curve(preds, targets, uncs, k)
    # The stored points are points of the full curve ...
    index = np.searchsorted(thresholds, curve.thresholds)
    np.testing.assert_array_equal(thresholds[index], curve.thresholds)
    np.testing.assert_allclose(curve.coverage, coverage[index], rtol=1e-12)
    np.testing.assert_allclose(curve.dice, dice[index], rtol=1e-10)
    np.testing.assert_allclose(curve.image_dice(), per_image[index], rtol=1e-12)
    # ... and the dropped ones lie on the piecewise-linear curve through them, so the area is the same.
    np.testing.assert_allclose(np.interp(coverage, curve.coverage, curve.dice), dice, rtol=1e-10)
    assert curve.aurc == pytest.approx(np.trapezoid(1 - dice, coverage), rel=1e-10, abs=1e-14)


@pytest.mark.parametrize("levels", [None, 5])
def test_at_coverage_equals_reference_operating_point(levels, rng):
    preds, targets, uncs = _images(rng, levels=levels)
    curve = selective_dice_curve(preds, targets, uncs, num_classes=3)
    thresholds, coverage, _, _ = slow_dice_curve(preds, targets, uncs, 3)
    for c in [0.0, 0.05, 0.3, 0.7, 0.8, 0.9, 0.95, 0.999, 1.0, *coverage[::7]]:
        point = curve.at_coverage(float(c))
        best = np.flatnonzero(coverage <= c + 0.0)[-1]
        want = operating_point(preds, targets, uncs, 3, thresholds[best])
        assert point.threshold == thresholds[best]
        assert point.coverage == pytest.approx(want[0], rel=1e-12)
        assert point.dice_mean == pytest.approx(want[1], rel=1e-12)
        np.testing.assert_allclose(point.image_dice, want[2], rtol=1e-12)
        np.testing.assert_allclose(point.image_coverage, want[3], rtol=1e-12)
        assert point.dice_std == pytest.approx(np.std(want[2]), abs=1e-12)
        assert point.dice_p5 == pytest.approx(np.percentile(want[2], 5), abs=1e-12)
        if math.isnan(want[4]):
            assert math.isnan(point.gamma)
        else:
            assert point.gamma == pytest.approx(want[4], rel=1e-12)


def test_at_threshold_equals_reference_operating_point(rng):
    preds, targets, uncs = _images(rng, levels=9)
    curve = selective_dice_curve(preds, targets, uncs, num_classes=3)
    for t in [-1.0, 0.0, 1 / 9, 0.5, 0.55, 8 / 9, 2.0]:
        point = curve.at_threshold(t)
        want = operating_point(preds, targets, uncs, 3, t)
        assert point.coverage == pytest.approx(want[0], rel=1e-12)
        assert point.dice_mean == pytest.approx(want[1], rel=1e-12)
        np.testing.assert_allclose(point.image_coverage, want[3], rtol=1e-12)


def test_dice_at_full_coverage_matches_scipy(rng):
    preds, targets, uncs = _images(rng, k=2, n=5)
    point = selective_dice_curve(preds, targets, uncs, num_classes=2).at_coverage(1.0)
    want = [1 - scipy_dice_dissimilarity(p.reshape(-1) == 1, y.reshape(-1) == 1) for p, y in zip(preds, targets)]
    np.testing.assert_allclose(point.image_dice, want, rtol=1e-12)


def test_perfect_prediction_and_empty_classes_give_dice_one():
    y = np.zeros((4, 4), dtype=np.int64)
    curve = selective_dice_curve([y], [y], [np.random.default_rng(0).random((4, 4))], num_classes=3)
    np.testing.assert_array_equal(curve.dice, 1.0)
    assert curve.aurc == 0.0
    assert curve.coverage.tolist() == [0.0, 1.0]


def test_dice_curve_ignores_image_order_and_input_type(rng):
    preds, targets, uncs = _images(rng)
    curve = selective_dice_curve(preds, targets, uncs, num_classes=3)
    order = [2, 0, 3, 1]
    shuffled = selective_dice_curve(
        [preds[i] for i in order], [targets[i] for i in order], [uncs[i] for i in order], num_classes=3
    )
    torch_curve = selective_dice_curve(
        [torch.from_numpy(p) for p in preds],
        [torch.from_numpy(t) for t in targets],
        [torch.from_numpy(u) for u in uncs],
        num_classes=3,
    )
    for other in (shuffled, torch_curve):
        np.testing.assert_allclose(other.coverage, curve.coverage)
        np.testing.assert_allclose(other.dice, curve.dice, rtol=1e-12)
        assert other.aurc == pytest.approx(curve.aurc, rel=1e-12)


def test_float32_uncertainties_keep_their_own_ties(rng):
    preds, targets, uncs = _images(rng, levels=7)
    u32 = [u.astype(np.float32) for u in uncs]
    a = selective_dice_curve(preds, targets, uncs, num_classes=3)
    b = selective_dice_curve(preds, targets, u32, num_classes=3)
    np.testing.assert_allclose(a.dice, b.dice, rtol=1e-12)
    np.testing.assert_allclose(a.coverage, b.coverage)


def _ok():
    return [np.array([0, 1])], [np.array([0, 1])], [np.array([0.1, 0.2])]


@pytest.mark.parametrize(
    ("mutate", "kwargs", "error", "match"),
    [
        (
            lambda a: (np.array([0, 1]), *a[1:]),
            {},
            ValueError,
            r"`predictions` to be a batch \(B, \*S\) with at least 2",
        ),
        (lambda a: ("x", *a[1:]), {}, TypeError, "`predictions` to be a list of per-image arrays or a batch"),
        (lambda a: ([], [], []), {}, ValueError, "`predictions` to hold at least one image"),
        (lambda a: (a[0] * 2, *a[1:]), {}, ValueError, "one array per image each, but got 2, 1 and 1"),
        (lambda a: ([np.array([0.0, 1.0])], *a[1:]), {}, TypeError, r"`predictions\[0\]` to hold integer labels"),
        (lambda a: (a[0], [np.array([0, 1, 1])], a[2]), {}, ValueError, "share one shape"),
        (lambda a: (a[0], [np.array([0, 2])], a[2]), {}, ValueError, r"`targets\[0\]` to hold labels in \[0, 2\)"),
        (lambda a: (a[0], a[1], [np.array([0.1, np.nan])]), {}, ValueError, r"`uncertainties\[0\]` to be finite"),
        (lambda a: ([np.zeros(0, int)], [np.zeros(0, int)], [np.zeros(0)]), {}, ValueError, "at least one pixel"),
        (lambda a: (a[0], a[1], ["x"]), {}, TypeError, "`uncertainties"),
        (lambda a: a, {"num_classes": 1}, ValueError, "`num_classes` to be an int >= 2"),
        (lambda a: a, {"num_classes": 2.0}, TypeError, "`num_classes`"),
    ],
)
def test_selective_dice_curve_rejects_bad_input(mutate, kwargs, error, match):
    args = mutate(_ok())
    with pytest.raises(error, match=match):
        selective_dice_curve(*args, **{"num_classes": 2, **kwargs})


def test_at_coverage_and_image_dice_reject_bad_input():
    curve = selective_dice_curve(*_ok(), num_classes=2)
    with pytest.raises(ValueError, match=r"`coverage` to be a float in \[0, 1\], but got 1.5"):
        curve.at_coverage(1.5)
    with pytest.raises(TypeError, match="`coverage`"):
        curve.at_coverage("0.9")
    with pytest.raises(ValueError, match="`threshold` to be a number, but got NaN"):
        curve.at_threshold(math.nan)
    with pytest.raises(TypeError, match="`threshold`"):
        curve.at_threshold(None)
    with pytest.raises(IndexError, match="point indices"):
        curve.image_dice(99)


def test_at_threshold_never_keeps_float32_values_above_a_float64_threshold():
    # float32(0.1) = 0.10000000149 > 0.1: rounding the threshold to float32 would wrongly keep that pixel.
    u = np.array([0.05, 0.1, 0.2], dtype=np.float32)
    pred, label = np.array([1, 1, 0]), np.array([1, 0, 0])
    point = selective_dice_curve([pred], [label], [u], num_classes=2).at_threshold(0.1)
    assert point.coverage == pytest.approx(1 / 3)
    assert point.dice_mean == 1.0 and point.image_coverage.tolist() == [pytest.approx(1 / 3)]


def test_coverage_threshold_is_at_coverage_rule(rng: np.random.Generator) -> None:
    from selectseg.metrics import coverage_threshold

    unc = rng.integers(0, 12, size=(1, 9, 7)).astype(np.float32) / 11  # many ties
    pred = rng.integers(0, 3, size=unc.shape)
    target = rng.integers(0, 3, size=unc.shape)
    curve = selective_dice_curve(list(pred), list(target), list(unc), num_classes=3)
    for c in np.linspace(0, 1, 17):
        assert coverage_threshold(unc, float(c)) == curve.at_coverage(float(c)).threshold


def test_coverage_threshold_errors() -> None:
    from selectseg.metrics import coverage_threshold

    with pytest.raises(TypeError, match="coverage"):
        coverage_threshold(np.ones(3), "0.5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        coverage_threshold(np.ones(3), 1.5)
    with pytest.raises(ValueError, match="at least one value"):
        coverage_threshold(np.ones(0), 0.5)
    with pytest.raises(ValueError, match="uncertainty"):
        coverage_threshold(np.array([0.1, np.nan]), 0.5)


# Oracle and excess AURC (docs/metrics.md, "AURC = oracle + excess").


def test_oracle_and_excess_on_the_worked_example():
    curve = selective_dice_curve([PRED], [LABEL], [1 - CONF], num_classes=2)
    # 3 of 10 pixels wrong, Dice 2/3 at coverage 1: the chord from (0.7, risk 0) to (1, risk 1/3).
    assert curve.oracle_aurc == pytest.approx(0.3 * (1 / 3) / 2, rel=1e-12)
    assert curve.excess_aurc == pytest.approx(curve.aurc - 0.05, rel=1e-12)
    assert curve.excess_aurc == pytest.approx(0.052778 - 0.05, abs=5e-7)


@pytest.mark.parametrize("levels", [None, 3])
@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("seed", range(3))
def test_oracle_aurc_equals_the_slow_curve_of_the_oracle_uncertainty(levels, k, seed):
    rng = np.random.default_rng(seed)
    preds, targets, uncs = _images(rng, k=k, levels=levels)
    curve = selective_dice_curve(preds, targets, uncs, num_classes=k)
    assert curve.oracle_aurc == pytest.approx(slow_oracle_aurc(preds, targets, k), rel=1e-10, abs=1e-15)
    assert curve.excess_aurc == pytest.approx(curve.aurc - curve.oracle_aurc, abs=0)


@pytest.mark.parametrize("k", [2, 3])
def test_excess_is_zero_when_the_wrong_pixels_are_tied_above_every_correct_one(k, rng):
    preds, targets, _ = _images(rng, k=k)
    wrong = [(p != t).astype(np.float64) for p, t in zip(preds, targets)]
    # The oracle map itself, and any map that puts all wrong pixels at one value above every correct pixel.
    for uncs in (wrong, [np.where(w > 0, 5.0, rng.random(w.shape)) for w in wrong]):
        curve = selective_dice_curve(preds, targets, uncs, num_classes=k)
        assert curve.excess_aurc == pytest.approx(0.0, abs=1e-15)
        assert curve.aurc == pytest.approx(curve.oracle_aurc, abs=1e-15)


def test_excess_can_be_negative_or_positive_when_wrong_pixels_are_ordered():
    # One image, 10 pixels, 4 foreground; wrong pixels at distinct uncertainties above every correct pixel.
    label = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    # Two missed foreground pixels (FN only): Dice 2/3 at coverage 1. Keeping one FN gives Dice 6/7, below the chord
    # from (0.8, 1) to (1, 2/3) at coverage 0.9: AURC 0.05 * (1/7 + 1/7 + 1/3) = 13/420 < oracle 1/30 = 14/420.
    missed = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    u = np.array([0, 0, 0.5, 1, 0, 0, 0, 0, 0, 0], dtype=np.float64)
    curve = selective_dice_curve([missed], [label], [u], num_classes=2)
    assert curve.oracle_aurc == pytest.approx(1 / 30, rel=1e-12)
    assert curve.aurc == pytest.approx(13 / 420, rel=1e-12)
    assert curve.excess_aurc == pytest.approx(-1 / 420, rel=1e-10)
    # Two false positives (FP only): Dice 8/10 at coverage 1; keeping one gives 8/9, above the chord: excess > 0.
    extra = np.array([1, 1, 1, 1, 1, 1, 0, 0, 0, 0])
    u = np.array([0, 0, 0, 0, 0.5, 1, 0, 0, 0, 0], dtype=np.float64)
    curve = selective_dice_curve([extra], [label], [u], num_classes=2)
    assert curve.oracle_aurc == pytest.approx(0.2 * 0.2 / 2, rel=1e-12)
    assert curve.aurc == pytest.approx(0.05 * (1 / 9 + 1 / 9 + 0.2), rel=1e-12)
    assert curve.excess_aurc == pytest.approx(0.05 * (2 / 9 + 0.2) - 0.02, rel=1e-10)
    assert curve.excess_aurc > 0


def test_oracle_and_excess_ignore_image_order_and_are_zero_for_a_perfect_segmentation(rng):
    preds, targets, uncs = _images(rng, levels=6)
    curve = selective_dice_curve(preds, targets, uncs, num_classes=3)
    order = [1, 3, 2, 0]
    other = selective_dice_curve(
        [preds[i] for i in order], [targets[i] for i in order], [uncs[i] for i in order], num_classes=3
    )
    assert other.oracle_aurc == pytest.approx(curve.oracle_aurc, rel=1e-12)
    assert other.excess_aurc == pytest.approx(curve.excess_aurc, rel=1e-10)
    perfect = selective_dice_curve(targets, targets, uncs, num_classes=3)
    assert perfect.oracle_aurc == 0.0 and perfect.excess_aurc == 0.0


# Exactness of the fast construction (issue 18): heavy ties against the slow reference, and large inputs against a
# straightforward full-sort computation of every distinct threshold.


def _tied_images(rng: np.random.Generator, *, n: int, k: int, ndim: int, levels: int, float32: bool):
    """N images (2-D or 3-D, sizes differ) with uncertainties on a grid of ``levels`` values (signs mixed), so wrong
    and correct pixels share thresholds; some classes may be absent from an image."""
    preds, targets, uncs = [], [], []
    for i in range(n):
        shape = (3 + i, 4, 2 + i % 2)[:ndim] if ndim == 3 else (5 + i, 3 + 2 * i)
        y = rng.integers(0, k, shape)
        p = np.where(rng.random(shape) < rng.uniform(0.3, 0.95), y, rng.integers(0, k, shape))
        u = (rng.integers(0, levels, shape) - levels // 3) / levels
        preds.append(p)
        targets.append(y)
        uncs.append(u.astype(np.float32) if float32 else u)
    return preds, targets, uncs


@pytest.mark.parametrize("seed", range(12))
def test_dice_curve_with_heavy_ties_equals_slow_reference(seed):
    rng = np.random.default_rng(100 + seed)
    k, n, ndim = int(rng.integers(2, 5)), int(rng.integers(1, 6)), 2 + seed % 2
    levels = int(rng.choice([1, 2, 3, 7]))
    preds, targets, uncs = _tied_images(rng, n=n, k=k, ndim=ndim, levels=levels, float32=seed % 3 == 0)
    curve = selective_dice_curve(preds, targets, uncs, num_classes=k)
    thresholds, coverage, dice, per_image = slow_dice_curve(preds, targets, uncs, k)
    index = np.searchsorted(thresholds, curve.thresholds)
    np.testing.assert_array_equal(thresholds[index], curve.thresholds)
    np.testing.assert_array_equal(curve.coverage, coverage[index])  # counts / total: the same division
    np.testing.assert_allclose(curve.dice, dice[index], rtol=1e-12)
    np.testing.assert_allclose(curve.image_dice(), per_image[index], rtol=1e-12)
    assert curve.aurc == pytest.approx(np.trapezoid(1 - dice, coverage), rel=1e-12, abs=1e-15)
    for c in np.unique(np.r_[np.linspace(0, 1, 21), coverage]):
        point = curve.at_coverage(float(c))
        best = np.flatnonzero(coverage <= c)[-1]
        assert point.threshold == thresholds[best] and point.coverage == coverage[best]
        assert point.dice_mean == pytest.approx(dice[best], rel=1e-12)


def _full_sort_curve(preds, targets, uncs, k):
    """Every distinct threshold of the pooled pixels by one full sort (np.unique), and each (image, class)'s FP/FN
    counts there by cumulative histograms: thresholds (-inf first), coverage and mean Dice, straightforwardly."""
    dtype = np.result_type(*uncs)
    pooled = np.concatenate([u.reshape(-1) for u in uncs]).astype(dtype)
    values, inverse = np.unique(pooled, return_inverse=True)
    size = values.size
    coverage = np.r_[0, np.cumsum(np.bincount(inverse, minlength=size))] / pooled.size
    dice = np.zeros(size + 1)
    start = 0
    for p, y in zip(preds, targets):
        p, y = p.reshape(-1), y.reshape(-1)
        index = inverse[start : start + p.size]
        start += p.size
        wrong = p != y
        for c in range(1, k):
            reference = np.count_nonzero(y == c)
            fp = np.r_[0, np.cumsum(np.bincount(index[wrong & (p == c)], minlength=size))]
            fn = np.r_[0, np.cumsum(np.bincount(index[wrong & (y == c)], minlength=size))]
            denominator = 2.0 * reference - fn + fp
            safe = np.where(denominator > 0, denominator, 1.0)
            dice += np.where(denominator > 0, 2.0 * (reference - fn) / safe, 1.0) / (k - 1)
    return np.r_[-np.inf, values.astype(np.float64)], coverage, dice / len(preds)


@pytest.mark.parametrize(("seed", "levels"), [(0, None), (1, 50), (2, 3), (3, None)])
def test_dice_curve_on_large_inputs_equals_a_full_sort_of_every_threshold(seed, levels):
    rng = np.random.default_rng(200 + seed)
    k = 2 + seed % 3
    preds, targets, uncs = [], [], []
    for i in range(4):
        shape = (96 + 7 * i, 80) if i % 2 else (12, 20, 24)
        y = rng.integers(0, k, shape)
        p = np.where(rng.random(shape) < 0.9, y, rng.integers(0, k, shape))
        u = rng.random(shape) if levels is None else rng.integers(0, levels, shape) / levels
        preds.append(p)
        targets.append(y)
        uncs.append(u.astype(np.float32) if seed == 3 else u)
    curve = selective_dice_curve(preds, targets, uncs, num_classes=k)
    thresholds, coverage, dice = _full_sort_curve(preds, targets, uncs, k)
    assert curve.coverage.size < coverage.size or levels is not None
    assert curve.aurc == pytest.approx(np.trapezoid(1 - dice, coverage), rel=1e-12)
    index = np.searchsorted(thresholds, curve.thresholds)
    np.testing.assert_array_equal(coverage[index], curve.coverage)
    np.testing.assert_allclose(curve.dice, dice[index], rtol=1e-12)
    for c in np.r_[rng.random(200), coverage[rng.integers(0, coverage.size, 50)], 0.0, 1.0]:
        point = curve.at_coverage(float(c))
        best = np.flatnonzero(coverage <= c)[-1]
        assert point.threshold == thresholds[best] and point.coverage == coverage[best]
        assert point.dice_mean == pytest.approx(dice[best], rel=1e-12)
    for t in thresholds[rng.integers(1, thresholds.size, 30)]:
        point = curve.at_threshold(float(t))
        best = np.searchsorted(thresholds, t, side="right") - 1
        assert point.coverage == coverage[best] and point.dice_mean == pytest.approx(dice[best], rel=1e-12)


def test_stable_argsort_equals_numpy_stable_argsort(rng):
    from selectseg.metrics.dice_curve import _stable_argsort

    for values in (
        rng.integers(0, 5, 1000) / 5,
        rng.random(1000),
        (rng.integers(0, 3, 500) / 3).astype(np.float32),
        np.array([0.0, -0.0, 0.0, 1.0, -0.0, -1.0]),
        np.zeros(0),
        np.ones(1),
    ):
        np.testing.assert_array_equal(_stable_argsort(values), np.argsort(values, kind="stable"))


def test_end_of_runs_equals_searchsorted_right(rng):
    from selectseg.metrics.dice_curve import _end_of_runs

    ordered = np.sort(np.r_[rng.integers(0, 4, 300), rng.integers(0, 40, 300), np.full(20, 50)] / 7)
    values = np.unique(ordered)
    below = np.searchsorted(ordered, values, side="left")
    for start in (below, below + 1, np.searchsorted(ordered, values, side="right")):
        np.testing.assert_array_equal(_end_of_runs(ordered, values, start), np.searchsorted(ordered, values, "right"))


@pytest.mark.parametrize("k", range(2, 8))
def test_class_counts_equal_bincount(k, rng):
    from selectseg.metrics.dice_curve import _class_counts

    for labels in (rng.integers(0, k, 500), np.zeros(7, dtype=np.int64), np.full(3, k - 1, dtype=np.int32)):
        counts = _class_counts(labels, k)
        assert counts.dtype == np.int64
        np.testing.assert_array_equal(counts, np.bincount(labels, minlength=k))
