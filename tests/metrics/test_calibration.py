from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from selectseg.metrics.calibration import (
    CalibrationStats,
    brier,
    expected_calibration_error,
    nll,
)
from tests.reference.calibration import (
    slow_brier,
    slow_ece_classwise,
    slow_ece_top_label,
    slow_nll,
)


def random_probs(rng: np.random.Generator, shape: tuple[int, ...], scale: float = 2.0) -> np.ndarray:
    """Softmax over axis 1 of Gaussian logits."""
    logits = rng.normal(scale=scale, size=shape)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def random_labels(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """Labels drawn from the (N, K) rows, so the probabilities are calibrated in expectation."""
    return (rng.random((len(probs), 1)) > probs.cumsum(axis=1)).sum(axis=1).clip(max=probs.shape[1] - 1)


def quantized_probs(rng: np.random.Generator, n: int, k: int, steps: int = 20) -> np.ndarray:
    """Rows of multiples of 1/steps summing to 1: many values lie exactly on bin edges."""
    return rng.multinomial(steps, np.ones(k) / k, size=n) / steps


def ece(probs, labels, **kwargs):
    return expected_calibration_error(probs, labels, **kwargs)


# ------------------------------------------------------------------------------------------------------------
# Hand-computed cases.

# 4 samples, 2 classes, n_bins = 2 (edges 0, 0.5, 1). Sample 0 has confidence exactly 0.5: it goes to the upper bin.
HAND_PROBS = np.array([[0.5, 0.5], [0.2, 0.8], [0.7, 0.3], [0.1, 0.9]])
HAND_LABELS = np.array([0, 1, 0, 0])


def test_hand_case_on_a_bin_edge():
    # Top-label: confidences .5 .8 .7 .9, correct 1 1 1 0, all in [0.5, 1]: |0.75 - 0.725| = 0.025.
    # (Had 0.5 gone to the lower bin: 0.25 * 0.5 + 0.75 * |2/3 - 0.8| = 0.225.)
    assert ece(HAND_PROBS, HAND_LABELS, n_bins=2) == pytest.approx(0.025, abs=1e-12)
    # Class 0: p = .5 .2 .7 .1, hit 1 0 1 1: [0, .5) {.2, .1}: .5 * |.5 - .15|; [.5, 1] {.5, .7}: .5 * |1 - .6|.
    # Class 1: p = .5 .8 .3 .9, hit 0 1 0 0: [0, .5) {.3}: .25 * .3; [.5, 1] {.5, .8, .9}: .75 * |1/3 - 2.2/3|.
    assert ece(HAND_PROBS, HAND_LABELS, n_bins=2, variant="classwise") == pytest.approx(0.375, abs=1e-12)
    assert ece(HAND_PROBS, HAND_LABELS, n_bins=2, variant="classwise", include_background=False) == pytest.approx(
        0.375, abs=1e-12
    )
    assert ece(HAND_PROBS, HAND_LABELS, n_bins=2, norm="max") == pytest.approx(0.025, abs=1e-12)
    assert nll(HAND_PROBS, HAND_LABELS) == pytest.approx(-(math.log(0.5 * 0.8 * 0.7 * 0.1)) / 4, rel=1e-12)
    # Brier per sample: .25 + .25, .04 + .04, .09 + .09, .81 + .81.
    assert brier(HAND_PROBS, HAND_LABELS) == pytest.approx(2.38 / 4, rel=1e-12)


def test_confidence_one_goes_to_the_last_bin():
    # Both confidences (0.95 and 1.0) lie in [0.9, 1]: |0.5 - 0.975| = 0.475. torchmetrics puts 1.0 in an extra
    # bin of its own and reports 0.025 + 0.5 = 0.525 (torchmetrics issue #3510); we follow Guo et al./np.histogram.
    probs, labels = np.array([[0.05, 0.95], [0.0, 1.0]]), np.array([1, 0])
    assert ece(probs, labels, n_bins=10) == pytest.approx(0.475, abs=1e-12)


@pytest.mark.parametrize(("norm", "expected"), [("l1", 0.2000), ("l2", 0.2082), ("max", 0.2333)])
def test_top_label_matches_torchmetrics_published_example(norm, expected):
    # torchmetrics is not installed: these are the values printed in the docstring example of
    # torchmetrics.functional.classification.multiclass_calibration_error (n_bins=3), a published outside result.
    probs = np.array([[0.25, 0.20, 0.55], [0.55, 0.05, 0.40], [0.10, 0.30, 0.60], [0.90, 0.05, 0.05]])
    assert ece(probs, np.array([0, 1, 2, 0]), n_bins=3, norm=norm) == pytest.approx(expected, abs=5e-5)


@pytest.mark.parametrize(("norm", "expected"), [("l1", 0.2900), ("l2", 0.2918), ("max", 0.3167)])
def test_classwise_foreground_matches_torchmetrics_binary_example(norm, expected):
    # torchmetrics' binary_calibration_error docstring example (n_bins=2) bins p_1 against 1[y == 1]: that is our
    # class-wise ECE of class 1 alone (K = 2 without background).
    p1 = np.array([0.25, 0.25, 0.55, 0.75, 0.75])
    probs = np.stack([1 - p1, p1], axis=1)
    got = ece(probs, np.array([0, 0, 1, 1, 1]), n_bins=2, variant="classwise", norm=norm, include_background=False)
    assert got == pytest.approx(expected, abs=5e-5)


def test_perfect_predictions_give_zero():
    labels = np.array([0, 2, 1, 1, 0])
    probs = np.eye(3)[labels]
    assert ece(probs, labels) == 0.0
    assert ece(probs, labels, variant="classwise") == 0.0
    assert brier(probs, labels) == 0.0
    assert nll(probs, labels) == pytest.approx(0.0, abs=1e-15)


def test_nll_clips_a_zero_true_class_probability():
    probs, labels = np.array([[1.0, 0.0]]), np.array([1])
    assert nll(probs, labels) == pytest.approx(-math.log(1e-12))
    assert nll(probs, labels, eps=1e-6) == pytest.approx(-math.log(1e-6))


def test_binary_brier_is_twice_the_sklearn_convention(rng):
    # scikit-learn's brier_score_loss (binary) is mean (p_1 - y)^2; summed over both classes ours is twice that.
    p1 = rng.random(50)
    y = (rng.random(50) < p1).astype(np.int64)
    assert brier(np.stack([1 - p1, p1], axis=1), y) == pytest.approx(2 * np.mean((p1 - y) ** 2), rel=1e-12)


# ------------------------------------------------------------------------------------------------------------
# Slow reference.


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n_bins", [1, 4, 15])
def test_matches_slow_reference_on_random_probabilities(seed, n_bins):
    rng = np.random.default_rng(seed)
    probs = random_probs(rng, (60, 4))
    labels = random_labels(rng, probs)
    assert nll(probs, labels) == pytest.approx(slow_nll(probs, labels), rel=1e-12)
    assert brier(probs, labels) == pytest.approx(slow_brier(probs, labels), rel=1e-12)
    for norm in ("l1", "l2", "max"):
        assert ece(probs, labels, n_bins=n_bins, norm=norm) == pytest.approx(
            slow_ece_top_label(probs, labels, n_bins, norm), abs=1e-12
        )
        for background in (True, False):
            got = ece(probs, labels, n_bins=n_bins, norm=norm, variant="classwise", include_background=background)
            assert got == pytest.approx(slow_ece_classwise(probs, labels, n_bins, norm, background), abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("n_bins", [4, 10, 20])
def test_matches_slow_reference_with_values_on_bin_edges(seed, n_bins):
    rng = np.random.default_rng(seed)
    probs = quantized_probs(rng, 80, 3)  # multiples of 0.05, including 0 and 1
    labels = rng.integers(0, 3, 80)
    for variant, slow in (("top_label", slow_ece_top_label), ("classwise", slow_ece_classwise)):
        assert ece(probs, labels, n_bins=n_bins, variant=variant) == pytest.approx(
            slow(probs, labels, n_bins), abs=1e-12
        )


# ------------------------------------------------------------------------------------------------------------
# Outside implementation: MONAI's CalibrationErrorMetric (class-wise ECE).


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("include_background", [True, False])
def test_classwise_matches_monai(seed, include_background):
    monai_metrics = pytest.importorskip("monai.metrics")
    rng = np.random.default_rng(seed)
    probs = random_probs(rng, (1, 3, 16, 16)).astype(np.float32)
    labels = rng.integers(0, 3, (1, 16, 16))
    onehot = torch.from_numpy(np.moveaxis(np.eye(3, dtype=np.float32)[labels], -1, 1))
    for ours, theirs in (("l1", "expected"), ("max", "maximum")):
        metric = monai_metrics.CalibrationErrorMetric(
            num_bins=10, include_background=include_background, calibration_reduction=theirs
        )
        metric(y_pred=torch.from_numpy(probs), y=onehot)
        expected = float(metric.aggregate())
        got = ece(probs, labels, n_bins=10, variant="classwise", norm=ours, include_background=include_background)
        assert got == pytest.approx(expected, abs=1e-5)  # MONAI works in float32
    _, _, monai_counts = monai_metrics.calibration_binning(torch.from_numpy(probs), onehot, num_bins=10)
    stats = CalibrationStats(n_bins=10)
    stats.update(probs, labels)
    np.testing.assert_array_equal(stats.compute().bins.classwise_counts, monai_counts[0].numpy())


def test_classwise_pools_images_where_monai_averages_them(rng):
    # With B > 1 we pool every voxel per class (what streaming can do); MONAI's default averages per-image ECEs.
    # Pooling equals MONAI on the images laid side by side as one image.
    monai_metrics = pytest.importorskip("monai.metrics")
    probs = random_probs(rng, (3, 2, 8, 8)).astype(np.float32)
    labels = rng.integers(0, 2, (3, 8, 8))
    onehot = np.moveaxis(np.eye(2, dtype=np.float32)[labels], -1, 1)
    side_by_side = lambda a: torch.from_numpy(np.moveaxis(a, 1, 0).reshape(1, 2, -1))  # noqa: E731
    metric = monai_metrics.CalibrationErrorMetric(num_bins=15)
    metric(y_pred=side_by_side(probs), y=side_by_side(onehot))
    assert ece(probs, labels, variant="classwise") == pytest.approx(float(metric.aggregate()), abs=1e-5)


# ------------------------------------------------------------------------------------------------------------
# Properties: streaming, input types, order, shapes.


def assert_results_close(a, b):
    for name in ("nll", "brier", "ece_top_label", "ece_classwise"):
        assert getattr(a, name) == pytest.approx(getattr(b, name), rel=1e-12, abs=1e-14), name
    for x, y in zip(a.bins, b.bins):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-14)


def one_shot(probs, labels, **kwargs):
    stats = CalibrationStats(**kwargs)
    stats.update(probs, labels)
    return stats.compute()


def test_one_shot_stats_equal_the_functions(rng):
    probs = random_probs(rng, (2, 3, 5, 7))
    labels = rng.integers(0, 3, (2, 5, 7))
    result = one_shot(probs, labels, n_bins=8, include_background=False, norm="l2")
    assert result.nll == nll(probs, labels)
    assert result.brier == brier(probs, labels)
    assert result.ece_top_label == ece(probs, labels, n_bins=8, norm="l2")
    assert result.ece_classwise == ece(
        probs, labels, n_bins=8, norm="l2", variant="classwise", include_background=False
    )
    bins = result.bins
    assert bins.counts.sum() == 70 and bins.classwise_counts.shape == (3, 8)
    assert (bins.classwise_counts.sum(axis=1) == 70).all()
    assert bins.edges.shape == (9,) and bins.confidence.shape == bins.accuracy.shape == (8,)
    empty = bins.counts == 0
    assert np.isnan(bins.confidence[empty]).all() and not np.isnan(bins.confidence[~empty]).any()


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=5), st.integers(0, 2**31 - 1))
def test_streaming_equals_one_shot_on_the_concatenation(cuts, seed):
    rng = np.random.default_rng(seed)
    probs = quantized_probs(rng, 40, 3) if seed % 2 else random_probs(rng, (40, 3))
    labels = rng.integers(0, 3, 40)
    bounds = [0, *sorted(cuts), 40]
    stats = CalibrationStats(n_bins=10)
    for start, stop in itertools.pairwise(bounds):
        if stop > start:
            stats.update(probs[start:stop], labels[start:stop])
    assert_results_close(stats.compute(), one_shot(probs, labels, n_bins=10))


def test_streaming_over_volumes_of_different_shapes_and_reset(rng):
    volumes = [random_probs(rng, shape) for shape in [(1, 4, 6, 5, 3), (2, 4, 7, 2, 2), (1, 4, 9, 9, 1)]]
    labels = [rng.integers(0, 4, (v.shape[0], *v.shape[2:])) for v in volumes]
    stats = CalibrationStats()
    stats.update(np.zeros((3, 4)) + 0.25, np.zeros(3, dtype=np.int64))
    stats.reset()
    for v, y in zip(volumes, labels):
        stats.update(torch.from_numpy(v), torch.from_numpy(y))
    rows = np.concatenate([np.moveaxis(v, 1, -1).reshape(-1, 4) for v in volumes])
    flat = np.concatenate([y.reshape(-1) for y in labels])
    assert_results_close(stats.compute(), one_shot(rows, flat))


def test_numpy_and_torch_inputs_agree(rng):
    probs = random_probs(rng, (2, 3, 6, 6)).astype(np.float32)
    labels = rng.integers(0, 3, (2, 6, 6))
    t_probs, t_labels = torch.from_numpy(probs), torch.from_numpy(labels)
    assert nll(probs, labels) == nll(t_probs, t_labels)
    assert brier(probs, labels) == brier(t_probs, t_labels)
    for variant in ("top_label", "classwise"):
        assert ece(probs, labels, variant=variant) == ece(t_probs, t_labels, variant=variant)
    exact = torch.tensor([[0.25, 0.75], [0.5, 0.5]])  # exact in half and bfloat16, which numpy lacks
    for dtype in (torch.float16, torch.bfloat16):
        assert nll(exact.to(dtype), torch.tensor([1, 0])) == nll(exact.numpy(), np.array([1, 0]))


def test_order_of_samples_does_not_matter(rng):
    probs = random_probs(rng, (100, 5))
    labels = random_labels(rng, probs)
    order = rng.permutation(100)
    assert_results_close(one_shot(probs[order], labels[order]), one_shot(probs, labels))


def test_spatial_layout_equals_flat_rows(rng):
    probs = random_probs(rng, (2, 3, 4, 5))
    labels = rng.integers(0, 3, (2, 4, 5))
    rows, flat = np.moveaxis(probs, 1, -1).reshape(-1, 3), labels.reshape(-1)
    assert_results_close(one_shot(probs, labels), one_shot(rows, flat))


def test_calibrated_probabilities_have_small_ece(rng):
    probs = random_probs(rng, (20000, 3))
    labels = random_labels(rng, probs)
    assert ece(probs, labels) < 0.02 and ece(probs, labels, variant="classwise") < 0.02


# ------------------------------------------------------------------------------------------------------------
# Errors: one per documented Raises.

P = np.array([[0.3, 0.7], [0.6, 0.4]])
Y = np.array([1, 0])
BAD_PROBABILITY_INPUTS = [
    (P.astype(np.int64), Y, TypeError, "`probs` to be floating point"),
    (P, Y.astype(np.float64), TypeError, "`labels` to hold integer"),
    (P, Y.astype(bool), TypeError, "`labels` to hold integer"),
    (["a"], Y, TypeError, "`probs` to hold numbers"),
    (P, Y[:1], ValueError, r"`labels` to have shape \(2,\)"),
    (np.array([0.3, 0.7]), Y, ValueError, r"shape \(B, K, \*S\) or \(N, K\)"),
    (np.ones((2, 1)), Y, ValueError, "K >= 2 classes"),
    (np.zeros((0, 2)), np.zeros(0, dtype=np.int64), ValueError, "at least one sample"),
    (P, np.array([1, 2]), ValueError, r"labels in \[0, 2\)"),
    (np.array([[np.nan, 1.0], [0.5, 0.5]]), Y, ValueError, "`probs` to hold probabilities, but got 1 NaN"),
    (np.array([[-0.5, 1.5], [0.5, 0.5]]), Y, ValueError, r"`probs` to lie in \[0, 1\]"),
    (np.array([[0.3, 0.3], [0.5, 0.5]]), Y, ValueError, "`probs` to sum to 1"),
    (np.array([[2.0, -1.0], [0.5, 0.5]]), Y, ValueError, r"`probs` to lie in \[0, 1\]"),
]


@pytest.mark.parametrize(
    "function", [nll, brier, expected_calibration_error, lambda p, y: CalibrationStats().update(p, y)]
)
@pytest.mark.parametrize(("probs", "labels", "error", "match"), BAD_PROBABILITY_INPUTS)
def test_probability_functions_reject_bad_input(function, probs, labels, error, match):
    with pytest.raises(error, match=match):
        function(probs, labels)


def test_sum_tolerance_is_1e_4():
    nll(np.array([[0.5, 0.5 + 9e-5]]), np.array([0]))
    with pytest.raises(ValueError, match=r"tolerance 0\.0001"):
        nll(np.array([[0.5, 0.5 + 2e-4]]), np.array([0]))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_bins": 0}, ValueError, "`n_bins` to be an int >= 1"),
        ({"n_bins": 2.0}, TypeError, "`n_bins` to be an int"),
        ({"variant": "class_wise"}, ValueError, "Did you mean 'classwise'"),
        ({"variant": None}, TypeError, "`variant` to be one of"),
        ({"norm": "L1"}, ValueError, "`norm` to be one of"),
        ({"include_background": False}, ValueError, "`include_background` to be True with variant 'top_label'"),
    ],
)
def test_expected_calibration_error_rejects_bad_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        expected_calibration_error(P, Y, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [({"eps": 0.0}, ValueError, r"`eps` to be a float in \(0, 1\)"), ({"eps": "1e-12"}, TypeError, "`eps`")],
)
def test_nll_rejects_bad_eps(kwargs, error, match):
    with pytest.raises(error, match=match):
        nll(P, Y, **kwargs)
    with pytest.raises(error, match=match):
        CalibrationStats(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_bins": 0}, ValueError, "`n_bins`"),
        ({"n_bins": "15"}, TypeError, "`n_bins`"),
        ({"norm": "l3"}, ValueError, "Did you mean 'l2'"),
        ({"norm": 1}, TypeError, "`norm`"),
    ],
)
def test_calibration_stats_rejects_bad_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        CalibrationStats(**kwargs)


def test_calibration_stats_rejects_a_change_of_classes_and_compute_before_update():
    stats = CalibrationStats()
    with pytest.raises(ValueError, match="at least one `update`"):
        stats.compute()
    stats.update(P, Y)
    with pytest.raises(ValueError, match="K = 2 classes as in earlier updates"):
        stats.update(np.full((1, 3), 1 / 3), np.array([0]))
    stats.reset()
    with pytest.raises(ValueError, match="at least one `update`"):
        stats.compute()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, np.float16])
def test_half_precision_softmax_outputs_are_accepted(dtype) -> None:
    # issue 16: rounding to half precision moves the sums by more than 1e-4, which read as "apply a softmax"
    logits, labels = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)), torch.zeros(2, 16, 16)
    probs = logits.softmax(1)
    half = probs.numpy().astype(dtype) if dtype is np.float16 else probs.to(dtype)
    stats = CalibrationStats()
    stats.update(half, labels.long())
    assert nll(half, labels.long()) == pytest.approx(nll(probs, labels.long()), rel=1e-2)
    unnormalised = (probs * 1.1).clamp(max=1.0)  # still refused: far beyond the rounding
    with pytest.raises(ValueError, match="apply a softmax"):
        nll(unnormalised.numpy().astype(dtype) if dtype is np.float16 else unnormalised.to(dtype), labels.long())


def test_float32_keeps_the_1e_4_sum_tolerance() -> None:
    probs = torch.full((1, 2, 4, 4), 0.5)
    probs[0, 0] += 2e-4
    with pytest.raises(ValueError, match=r"tolerance 0\.0001"):
        nll(probs, torch.zeros(1, 4, 4, dtype=torch.long))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int32, np.uint8, np.int32])
def test_labels_of_any_integer_dtype_give_the_same_nll(dtype) -> None:
    probs = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(1)).softmax(1)
    labels = torch.randint(0, 3, (2, 4, 4), generator=torch.Generator().manual_seed(2))
    narrow = labels.numpy().astype(dtype) if isinstance(dtype, type) else labels.to(dtype)
    assert nll(probs, narrow) == nll(probs, labels)
