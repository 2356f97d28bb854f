from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from selectseg.metrics import UndefinedMetricWarning, selective_pixel_metrics


@pytest.mark.parametrize("seed", range(20))
def test_theorem_1_holds_on_random_data(seed):
    g = torch.Generator().manual_seed(seed)
    shape = (2, 9, 11)
    target = torch.randint(0, 3, shape, generator=g)
    pred = torch.where(torch.rand(shape, generator=g) < 0.7, target, torch.randint(0, 3, shape, generator=g))
    u = torch.rand(shape, generator=g)
    t = float(torch.rand(1, generator=g)) * 0.8 + 0.1
    m = selective_pixel_metrics(pred, target, u, threshold=t)
    assert 0 < m.coverage < 1
    assert m.psi_c == pytest.approx((m.psi_1 - (1 - m.gamma) * (1 - m.coverage)) / m.coverage, rel=1e-12)
    kept = u <= t
    assert m.psi_c == pytest.approx(float((pred == target)[kept].float().mean()), rel=1e-6)


def test_selective_pixel_metrics_accepts_numpy_and_warns_at_the_ends():
    pred, target, u = np.array([1, 0, 1]), np.array([1, 1, 1]), np.array([0.2, 0.5, 0.1], dtype=np.float32)
    with pytest.warns(UndefinedMetricWarning, match="gamma"):
        m = selective_pixel_metrics(pred, target, u, threshold=math.inf)
    assert (m.coverage, m.psi_c) == (1.0, pytest.approx(2 / 3)) and math.isnan(m.gamma)
    with pytest.warns(UndefinedMetricWarning, match="psi_c"):
        m = selective_pixel_metrics(pred, target, u, threshold=-math.inf)
    assert m.coverage == 0.0 and math.isnan(m.psi_c) and m.gamma == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("args", "threshold", "error", "match"),
    [
        (
            (torch.zeros(3), torch.zeros(3, dtype=torch.long), torch.zeros(3)),
            0.5,
            TypeError,
            "`prediction` to hold integer",
        ),
        (
            (torch.zeros(3, dtype=torch.long), torch.zeros(3, dtype=torch.long), torch.zeros(3, dtype=torch.long)),
            0.5,
            TypeError,
            "`uncertainty` to be floating",
        ),
        (
            (torch.zeros(3, dtype=torch.long), torch.zeros(4, dtype=torch.long), torch.zeros(3)),
            0.5,
            ValueError,
            "same shape",
        ),
        (
            (torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), torch.zeros(0)),
            0.5,
            ValueError,
            "at least one pixel",
        ),
        (
            (torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long), torch.tensor([0.1, float("nan")])),
            0.5,
            ValueError,
            "finite",
        ),
        (
            (torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long), torch.zeros(2)),
            "0.5",
            TypeError,
            "`threshold`",
        ),
        (
            (torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long), torch.zeros(2)),
            math.nan,
            ValueError,
            "NaN",
        ),
        (([0, 1], torch.zeros(2, dtype=torch.long), torch.zeros(2)), 0.5, TypeError, "torch.Tensor or numpy array"),
    ],
)
def test_selective_pixel_metrics_rejects_bad_input(args, threshold, error, match):
    with pytest.raises(error, match=match):
        selective_pixel_metrics(*args, threshold=threshold)
