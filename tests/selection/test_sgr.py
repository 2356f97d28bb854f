from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from selectseg.selection import binomial_upper_bound, minimum_calibration_size, selective_guaranteed_risk
from tests.reference.selection import sgr_paper


def _pixels(rng, m, levels=None, slope=0.4):
    """Uncertainty U(0, 1) (or quantised) and errors with P(wrong | u) = slope u^2."""
    u = rng.random(m)
    if levels is not None:
        u = np.floor(u * levels) / levels
    return u, rng.random(m) < slope * u**2


@pytest.mark.parametrize("levels", [None, 7, 40])
@pytest.mark.parametrize("seed", range(2))
def test_sgr_equals_the_papers_algorithm_step_by_step(levels, seed):
    rng = np.random.default_rng(seed)
    u, wrong = _pixels(rng, int(rng.integers(300, 600)), levels=levels)
    for r_star in (0.05, 0.08, 0.15, 0.3):
        want = sgr_paper(u, wrong, r_star, 0.1)
        if want is None:
            with pytest.raises(ValueError, match="unreachable by SGR"):
                selective_guaranteed_risk(u, wrong, max_risk=r_star, delta=0.1)
            continue
        got = selective_guaranteed_risk(u, wrong, max_risk=r_star, delta=0.1)
        assert got.threshold == want[0] and got.coverage == want[1]
        assert got.risk == pytest.approx(want[2], rel=1e-12)
        assert got.bound == pytest.approx(want[3], rel=1e-8)
        assert got.bound < r_star and got.method == "sgr" and got.target == {"max_risk": r_star, "delta": 0.1}


def test_sgr_result_is_consistent_with_its_threshold(rng):
    u, wrong = _pixels(rng, 5000, levels=50)
    r = selective_guaranteed_risk(u.astype(np.float32), wrong, max_risk=0.1, delta=0.05)
    kept = u.astype(np.float32) <= r.threshold
    assert r.coverage == kept.mean() and r.risk == wrong[kept].mean()
    k = math.ceil(math.log2(u.size))
    assert r.bound == pytest.approx(binomial_upper_bound(int(wrong[kept].sum()), int(kept.sum()), 0.05 / k))
    assert r.threshold in set(u.astype(np.float32).tolist())  # a distinct value: ties kept together


def test_sgr_ties_one_value_keeps_everything_or_nothing():
    m = 400
    u = np.full(m, 0.3)
    wrong = np.arange(m) < 4  # 1% errors
    r = selective_guaranteed_risk(u, wrong, max_risk=0.05, delta=0.1)
    assert (r.threshold, r.coverage, r.risk) == (0.3, 1.0, 0.01)
    with pytest.raises(ValueError, match="over a grid of 1 cuts"):
        selective_guaranteed_risk(u, np.arange(m) < 40, max_risk=0.05, delta=0.1)


def test_sgr_accepts_torch_integer_errors_and_any_shape(rng):
    u, wrong = _pixels(rng, 600)
    a = selective_guaranteed_risk(u, wrong, max_risk=0.1, delta=0.1)
    b = selective_guaranteed_risk(
        torch.from_numpy(u.reshape(20, 30)), wrong.reshape(20, 30).astype(int), max_risk=0.1, delta=0.1
    )
    assert a == b


def test_sgr_unreachable_reports_the_best_bound():
    m = 2000
    u = np.linspace(0, 1, m)
    wrong = np.ones(m, dtype=bool)
    wrong[::2] = False  # 50% errors everywhere
    with pytest.raises(ValueError, match=r"unreachable by SGR with delta=0.1 at any coverage > 0 on 2000 calibration"):
        selective_guaranteed_risk(u, wrong, max_risk=0.1, delta=0.1)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"errors": np.zeros(499, bool)}, ValueError, "same shape"),
        ({"errors": np.full(500, 2)}, ValueError, "`errors` to hold only 0/1"),
        ({"uncertainty": np.r_[np.nan, np.zeros(499)]}, ValueError, "`uncertainty` to be finite"),
        ({"uncertainty": "x"}, TypeError, "`uncertainty`"),
        ({"max_risk": 1.0}, ValueError, r"`max_risk` to be a float in \(0, 1\)"),
        ({"delta": 0}, ValueError, "`delta`"),
        ({"delta": "0.1"}, TypeError, "`delta`"),
        (
            {"max_risk": 0.005},
            ValueError,
            "needs at least .* calibration voxels for max_risk=0.005, delta=0.1; got 500",
        ),
    ],
)
def test_sgr_rejects_bad_input(kwargs, error, match):
    args = {"uncertainty": np.linspace(0, 1, 500), "errors": np.zeros(500, bool), "max_risk": 0.1, "delta": 0.1}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        selective_guaranteed_risk(args.pop("uncertainty"), args.pop("errors"), **args)


def test_sgr_size_check_comes_first_and_matches_minimum():
    need = minimum_calibration_size(0.05, 0.1, "sgr")
    with pytest.raises(ValueError, match=f"needs at least {need} calibration voxels"):
        selective_guaranteed_risk(np.full(need - 1, np.nan), np.zeros(need - 1, bool), max_risk=0.05, delta=0.1)
    # The minimum is exact when one tie group lets the first test keep every voxel ...
    r = selective_guaranteed_risk(np.zeros(need), np.zeros(need, bool), max_risk=0.05, delta=0.1)
    assert (r.risk, r.coverage) == (0.0, 1.0)
    # ... but only necessary otherwise: the binary search tests about m / 2 voxels first.
    with pytest.raises(ValueError, match="none of its 7 binary-search cuts has b\\* < max_risk"):
        selective_guaranteed_risk(np.linspace(0, 1, need), np.zeros(need, bool), max_risk=0.05, delta=0.1)
