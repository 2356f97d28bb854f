from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import mannwhitneyu

from selectseg.metrics import UndefinedMetricWarning, pixel_augrc, pixel_error_auroc
from tests.metrics._images import random_images
from tests.reference.error_detection import pooled, slow_augrc, slow_error_auroc

LABEL = [np.array([1, 1, 0, 0, 0])]
PRED = [np.array([1, 0, 0, 1, 0])]  # pixels 1 and 3 are wrong


def _images(rng, **options):
    return random_images(rng, **{"n": 4, "accuracy": 0.7, "shapes": ((2, 3, 4), (4, 5)), **options})


@pytest.mark.parametrize(
    ("unc", "auroc", "augrc"),
    [
        # wrong 0.4 beats the 3 correct; wrong 0.2 beats 0.1 and 0.0 and ties 0.2: (3 + 2.5) / 6.
        ([0.1, 0.4, 0.2, 0.2, 0.0], 5.5 / 6, 0.1),
        # Perfect detection: both wrong above every correct pixel. e = 0.4: AUGRC e^2 / 2.
        ([0.0, 0.9, 0.1, 0.8, 0.2], 1.0, 0.08),
        # Reversed: every wrong pixel surer than every correct one. AUGRC e - e^2 / 2.
        ([0.7, 0.1, 0.8, 0.2, 0.9], 0.0, 0.32),
        # Constant: one operating point; AUROC 1/2, AUGRC the chord from (0, 0) to (1, e): e / 2.
        ([0.5] * 5, 0.5, 0.2),
        # Both wrong pixels tied with one correct pixel at the top: each wins 2 pairs and ties 1, 5 / 6. Points
        # (0, 0) (.2, 0) (.4, 0) (1, .4): one trapezoid .6 * .4 / 2.
        ([0.0, 0.9, 0.1, 0.9, 0.9], 5 / 6, 0.12),
    ],
)
def test_hand_computed_cases(unc, auroc, augrc):
    u = [np.array(unc)]
    assert pixel_error_auroc(PRED, LABEL, u) == pytest.approx(auroc, abs=1e-15)
    assert pixel_augrc(PRED, LABEL, u) == pytest.approx(augrc, abs=1e-15)


@pytest.mark.parametrize("levels", [None, 2, 3, 7])
@pytest.mark.parametrize("seed", range(4))
def test_equal_slow_references_with_heavy_ties(levels, seed):
    preds, targets, uncs = _images(np.random.default_rng(seed), levels=levels)
    assert pixel_error_auroc(preds, targets, uncs) == pytest.approx(slow_error_auroc(preds, targets, uncs), rel=1e-12)
    assert pixel_augrc(preds, targets, uncs) == pytest.approx(slow_augrc(preds, targets, uncs), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("levels", [None, 4])
def test_auroc_equals_scipy_mann_whitney(levels, rng):
    preds, targets, uncs = _images(rng, n=6, levels=levels)
    u, wrong = pooled(preds, targets, uncs)
    u_arr, w_arr = np.array(u), np.array(wrong)
    outside = mannwhitneyu(u_arr[w_arr], u_arr[~w_arr]).statistic / (w_arr.sum() * (~w_arr).sum())
    assert pixel_error_auroc(preds, targets, uncs) == pytest.approx(outside, rel=1e-12)


def test_auroc_equals_scipy_on_a_large_volume_with_ties():
    # 2 million float32 voxels on 1000 levels. scipy is given the values widened to float64 (exact, same ties): on
    # float32 input (scipy 1.17) it computes in float32 and is off by 6e-8 here, while our integer counts are exact.
    rng = np.random.default_rng(7)
    shape = (20, 100, 1000)
    y = (rng.random(shape) < 0.2).astype(np.int64)
    p = np.where(rng.random(shape) < 0.9, y, 1 - y)
    u = (rng.integers(0, 1000, shape) / 1000).astype(np.float32)
    wrong = (p != y).reshape(-1)
    flat = u.reshape(-1).astype(np.float64)
    outside = mannwhitneyu(flat[wrong], flat[~wrong]).statistic / (wrong.sum() * (~wrong).sum())
    assert pixel_error_auroc([p], [y], [u]) == pytest.approx(outside, rel=1e-12)


@pytest.mark.parametrize("levels", [None, 3, 10])
def test_augrc_is_the_error_rate_term_plus_the_auroc_term(levels, rng):
    # AUGRC = e^2 / 2 + (1 - AUROC) e (1 - e) for the 0/1 pixel error, ties included (docs/metrics.md).
    preds, targets, uncs = _images(rng, levels=levels)
    _, wrong = pooled(preds, targets, uncs)
    e = float(np.mean(wrong))
    auroc = pixel_error_auroc(preds, targets, uncs)
    assert pixel_augrc(preds, targets, uncs) == pytest.approx(e**2 / 2 + (1 - auroc) * e * (1 - e), rel=1e-12)


def test_perfect_constant_and_reversed_uncertainty(rng):
    preds, targets, _ = _images(rng, n=3)
    wrong = [(p != t).astype(np.float64) for p, t in zip(preds, targets)]
    e = float(np.mean(np.concatenate([w.reshape(-1) for w in wrong])))
    constant = [np.full(p.shape, 0.3) for p in preds]
    assert pixel_error_auroc(preds, targets, constant) == 0.5
    assert pixel_augrc(preds, targets, constant) == pytest.approx(e / 2, rel=1e-12)
    # Perfect: any increasing map of 1[wrong] plus noise that keeps every wrong pixel above every correct one.
    perfect = [w + 0.5 * rng.random(w.shape) for w in wrong]
    assert pixel_error_auroc(preds, targets, perfect) == 1.0
    assert pixel_augrc(preds, targets, perfect) == pytest.approx(e**2 / 2, rel=1e-12)
    reversed_ = [-u for u in perfect]
    assert pixel_error_auroc(preds, targets, reversed_) == 0.0
    assert pixel_augrc(preds, targets, reversed_) == pytest.approx(e - e**2 / 2, rel=1e-12)


def test_image_order_input_type_and_shapes_do_not_matter(rng):
    preds, targets, uncs = _images(rng, levels=5)
    want = (pixel_error_auroc(preds, targets, uncs), pixel_augrc(preds, targets, uncs))
    order = [3, 1, 0, 2]
    shuffled = [[x[i] for i in order] for x in (preds, targets, uncs)]
    tensors = [[torch.from_numpy(a) for a in x] for x in (preds, targets, uncs)]
    flat = [[np.concatenate([a.reshape(-1) for a in x])] for x in (preds, targets, uncs)]
    for args in (shuffled, tensors, flat):
        assert pixel_error_auroc(*args) == pytest.approx(want[0], rel=1e-12)
        assert pixel_augrc(*args) == pytest.approx(want[1], rel=1e-12)


def test_float32_uncertainties_keep_their_own_ties():
    # float32(0.1) and float32(0.1 + 1e-9) are equal: one tie, as in the Dice curve.
    pred, label = [np.array([1, 0])], [np.array([0, 0])]
    u32 = [np.array([0.1, 0.1 + 1e-9], dtype=np.float32)]
    u64 = [np.array([0.1, 0.1 + 1e-9], dtype=np.float64)]
    assert pixel_error_auroc(pred, label, u32) == 0.5
    assert pixel_error_auroc(pred, label, u64) == 0.0


@pytest.mark.parametrize("all_wrong", [False, True])
def test_auroc_is_undefined_without_wrong_or_correct_pixels(all_wrong):
    y = np.array([0, 1, 1, 0])
    pred = 1 - y if all_wrong else y
    u = np.array([0.1, 0.2, 0.3, 0.4])
    with pytest.warns(UndefinedMetricWarning, match=f"{4 if all_wrong else 0} wrong and {0 if all_wrong else 4}"):
        assert math.isnan(pixel_error_auroc([pred], [y], [u]))
    # The AUGRC stays defined: 0 when nothing is wrong, 1/2 when everything is (the diagonal g = c).
    assert pixel_augrc([pred], [y], [u]) == (0.5 if all_wrong else 0.0)


def _ok():
    return [np.array([0, 1])], [np.array([0, 0])], [np.array([0.1, 0.2])]


@pytest.mark.parametrize("fn", [pixel_error_auroc, pixel_augrc])
@pytest.mark.parametrize(
    ("mutate", "error", "match"),
    [
        (lambda a: (np.array([0, 1]), *a[1:]), ValueError, r"`predictions` to be a batch \(B, \*S\) with at least 2"),
        (lambda a: ("x", *a[1:]), TypeError, "`predictions` to be a list of per-image arrays or a batch"),
        (lambda a: ([], [], []), ValueError, "`predictions` to hold at least one image"),
        (lambda a: (a[0] * 2, *a[1:]), ValueError, "one array per image each, but got 2, 1 and 1"),
        (lambda a: ([np.array([0.0, 1.0])], *a[1:]), TypeError, r"`predictions\[0\]` to hold integer labels"),
        (lambda a: (a[0], [np.array([0, 1, 1])], a[2]), ValueError, "share one shape"),
        (lambda a: (a[0], a[1], [np.array([0.1, np.inf])]), ValueError, r"`uncertainties\[0\]` to be finite"),
        (lambda a: ([np.zeros(0, int)], [np.zeros(0, int)], [np.zeros(0)]), ValueError, "at least one pixel"),
        (lambda a: (a[0], a[1], ["x"]), TypeError, "`uncertainties"),
    ],
)
def test_reject_bad_input(fn, mutate, error, match):
    with pytest.raises(error, match=match):
        fn(*mutate(_ok()))


def test_labels_are_only_compared_not_range_checked():
    # Error detection needs no class count: labels are only compared for equality.
    assert pixel_error_auroc([np.array([0, 255])], [np.array([0, 7])], [np.array([0.1, 0.2])]) == 1.0
