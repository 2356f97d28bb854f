from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from selectseg.metrics import bootstrap_dice_curve, selective_dice_curve, weighted_dice_statistics
from tests.metrics._images import random_images
from tests.reference.bootstrap import concatenated_statistics

COVERAGES = [1.0, 0.99, 0.95, 0.9, 0.8, 0.7, 0.5, 0.1, 0.0]

# Image 0: a correct pixel at 0.1 and a missed foreground pixel at 0.9 (Dice 2/3 at coverage 1); image 1: two
# correct pixels tied at 0.5 (Dice 1).
HAND = (
    [np.array([1, 0]), np.array([1, 0])],
    [np.array([1, 1]), np.array([1, 0])],
    [np.array([0.1, 0.9]), np.array([0.5, 0.5])],
)


def _images(rng, **options):
    return random_images(rng, **{"n": 5, "float32_at": 2, **options})  # mixed dtypes: the curve works in float64


@pytest.mark.parametrize(
    ("weights", "aurc", "dice_at_half", "coverage_at_half"),
    [
        # Pooled: 0.1 (image 0), 0.5 x2 (image 1), 0.9 (image 0, wrong): the only risk is on the last quarter,
        # from 0 to 1 - (2/3 + 1) / 2 = 1/6: area 1/4 * 1/12 = 1/48; at coverage 0.5 the tie at 0.5 would give 3/4.
        ([1, 1], 1 / 48, 1.0, 0.25),
        # Image 0 twice: 0.1 x2, 0.5 x2, 0.9 x2; Dice at 0.9 = (2 * 2/3 + 1) / 3 = 7/9: area 1/3 * (2/9) / 2 = 1/27.
        ([2, 1], 1 / 27, 1.0, 1 / 3),
        ([1, 0], 1 / 12, 1.0, 0.5),  # image 0 alone: risk 0 to 1/3 over the second half
        ([0, 3], 0.0, 1.0, 0.0),  # image 1 alone is perfect; its tie keeps nothing or all
    ],
)
def test_weighted_dice_statistics_hand_computed(weights, aurc, dice_at_half, coverage_at_half):
    curve = selective_dice_curve(*HAND, num_classes=2)
    got = weighted_dice_statistics(curve, np.array([weights]), [1.0, 0.5])
    assert got.aurc[0] == pytest.approx(aurc, abs=1e-15)
    assert got.dice[0, 1] == pytest.approx(dice_at_half) and got.coverage[0, 1] == pytest.approx(coverage_at_half)
    full = (weights[0] * 2 / 3 + weights[1]) / sum(weights)
    assert got.dice[0, 0] == pytest.approx(full) and got.coverage[0, 0] == 1.0


@pytest.mark.parametrize("levels", [None, 4, 30])
@pytest.mark.parametrize("k", [2, 4])
def test_weighted_dice_statistics_equal_concatenating_the_images(levels, k, rng):
    preds, targets, uncs = _images(rng, k=k, levels=levels)
    curve = selective_dice_curve(preds, targets, uncs, num_classes=k)
    weights = rng.integers(0, 3, (12, 5))
    weights[weights.sum(axis=1) == 0, 0] = 1
    weights = np.vstack([np.ones((1, 5), np.int64), weights, np.eye(5, dtype=np.int64)[:2] * 4])
    got = weighted_dice_statistics(curve, weights, COVERAGES)
    aurc, coverage, dice = concatenated_statistics(preds, targets, uncs, k, weights, COVERAGES)
    np.testing.assert_allclose(got.aurc, aurc, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(got.coverage, coverage)  # integer counts: exact
    np.testing.assert_allclose(got.dice, dice, rtol=1e-12)
    assert got.aurc[0] == pytest.approx(curve.aurc, rel=1e-12)


def test_bootstrap_resamples_are_the_documented_draws_of_whole_curves(rng):
    preds, targets, uncs = _images(rng, levels=10)
    curve = selective_dice_curve(preds, targets, uncs, num_classes=3)
    boot = bootstrap_dice_curve(curve, COVERAGES, n_resamples=15, seed=7)
    draws = np.random.default_rng(7).integers(0, 5, size=(15, 5))
    weights = np.stack([np.bincount(row, minlength=5) for row in draws])
    aurc, _, dice = concatenated_statistics(preds, targets, uncs, 3, weights, COVERAGES)
    np.testing.assert_allclose(boot.aurc_samples, aurc, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(boot.dice_samples, dice, rtol=1e-12)
    assert boot.aurc == curve.aurc and boot.dice[0] == curve.at_coverage(1.0).dice_mean


def test_bootstrap_interval_equals_scipy_percentile_bootstrap(rng):
    preds, targets, uncs = _images(rng, n=6)
    curve = selective_dice_curve(preds, targets, uncs, num_classes=3)
    boot = bootstrap_dice_curve(curve, [1.0, 0.9], n_resamples=300, confidence_level=0.9, seed=3)

    def statistic(index, axis=-1):
        index = np.atleast_2d(index)
        weights = np.stack([np.bincount(row, minlength=6) for row in index])
        s = weighted_dice_statistics(curve, weights, [1.0, 0.9])
        return np.vstack([s.aurc, s.dice.T])

    ref = stats.bootstrap(
        (np.arange(6),),
        statistic,
        n_resamples=300,
        confidence_level=0.9,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(3),
    )
    np.testing.assert_allclose(boot.aurc_ci, [ref.confidence_interval.low[0], ref.confidence_interval.high[0]])
    np.testing.assert_allclose(boot.dice_ci[:, 0], ref.confidence_interval.low[1:], rtol=1e-12)
    np.testing.assert_allclose(boot.dice_ci[:, 1], ref.confidence_interval.high[1:], rtol=1e-12)


def test_bootstrap_is_seeded_and_brackets_the_estimate(rng):
    preds, targets, uncs = _images(rng, n=8, k=2)
    curve = selective_dice_curve(preds, targets, uncs, num_classes=2)
    a = bootstrap_dice_curve(curve, COVERAGES, n_resamples=200, seed=1)
    b = bootstrap_dice_curve(curve, COVERAGES, n_resamples=200, seed=1)
    c = bootstrap_dice_curve(curve, COVERAGES, n_resamples=200, seed=2)
    np.testing.assert_array_equal(a.aurc_samples, b.aurc_samples)
    assert a.aurc_ci == b.aurc_ci and not np.array_equal(a.aurc_samples, c.aurc_samples)
    assert a.aurc_ci[0] <= a.aurc <= a.aurc_ci[1]
    assert np.all(a.dice_ci[:, 0] <= a.dice_ci[:, 1]) and a.dice_ci.shape == (len(COVERAGES), 2)
    assert a.dice_ci[-1].tolist() == [1.0, 1.0]  # coverage 0: everything referred, Dice 1 in every resample
    wide = bootstrap_dice_curve(curve, [1.0], n_resamples=200, seed=1, confidence_level=0.99)
    assert wide.aurc_ci[0] <= a.aurc_ci[0] and wide.aurc_ci[1] >= a.aurc_ci[1]
    assert a.settings() == {
        "n_resamples": 200,
        "seed": 1,
        "confidence_level": 0.95,
        "method": "percentile",
        "unit": "image",
    }


def test_bootstrap_errors():
    curve = selective_dice_curve(*HAND, num_classes=2)
    one = selective_dice_curve(HAND[0][:1], HAND[1][:1], HAND[2][:1], num_classes=2)
    with pytest.raises(ValueError, match=r"at least 2 images for a bootstrap over images \(`n_resamples`"):
        bootstrap_dice_curve(one, [1.0])
    with pytest.raises(ValueError, match="`n_resamples` to be an int >= 1"):
        bootstrap_dice_curve(curve, [1.0], n_resamples=0)
    with pytest.raises(TypeError, match="`n_resamples`"):
        bootstrap_dice_curve(curve, [1.0], n_resamples=10.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`confidence_level` to be a float in \(0, 1\)"):
        bootstrap_dice_curve(curve, [1.0], confidence_level=1.0)
    with pytest.raises(TypeError, match="`confidence_level`"):
        bootstrap_dice_curve(curve, [1.0], confidence_level="0.9")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`seed` to be an int >= 0"):
        bootstrap_dice_curve(curve, [1.0], seed=-1)
    with pytest.raises(ValueError, match=r"coverage to be a float in \[0, 1\]"):
        bootstrap_dice_curve(curve, [1.2])
    with pytest.raises(TypeError, match="coverage to be a float"):
        bootstrap_dice_curve(curve, ["0.9"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="SelectiveDiceCurve"):
        bootstrap_dice_curve("curve", [1.0])  # type: ignore[arg-type]


def test_weighted_dice_statistics_errors():
    curve = selective_dice_curve(*HAND, num_classes=2)
    with pytest.raises(TypeError, match="integer multiplicities"):
        weighted_dice_statistics(curve, np.ones((1, 2)), [1.0])
    with pytest.raises(ValueError, match=r"shape \(R, N = 2\)"):
        weighted_dice_statistics(curve, np.ones((1, 3), np.int64), [1.0])
    with pytest.raises(ValueError, match="non-negative with at least one positive"):
        weighted_dice_statistics(curve, np.array([[1, 1], [0, 0]]), [1.0])
    with pytest.raises(ValueError, match="non-negative"):
        weighted_dice_statistics(curve, np.array([[2, -1]]), [1.0])
    with pytest.raises(ValueError, match=r"coverage to be a float in \[0, 1\]"):
        weighted_dice_statistics(curve, np.array([[1, 1]]), [-0.1])
    with pytest.raises(TypeError, match="SelectiveDiceCurve"):
        weighted_dice_statistics(None, np.array([[1, 1]]), [1.0])  # type: ignore[arg-type]
