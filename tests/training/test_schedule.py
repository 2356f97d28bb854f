from __future__ import annotations

import math

import pytest
import torch

from selectseg.training import load_config
from selectseg.training.schedule import balanced_ranking_weight, ema, lr_factor


def _torch_factors(make, total: int) -> list[float]:
    """The factors torch's own scheduler applies at steps 0..total-1 (lr read before each step)."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    scheduler = make(optimizer)
    out = []
    for _ in range(total):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


@pytest.mark.parametrize("total", [1, 5, 37])
def test_lr_factor_matches_torch_schedulers(total: int) -> None:
    """poly = torch's PolynomialLR(power 0.9), cosine = CosineAnnealingLR(eta_min 0), both over the run."""
    poly = _torch_factors(lambda o: torch.optim.lr_scheduler.PolynomialLR(o, total_iters=total, power=0.9), total)
    cosine = _torch_factors(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=total), total)
    assert [lr_factor("poly", t, total) for t in range(total)] == pytest.approx(poly, abs=1e-12)
    assert [lr_factor("cosine", t, total) for t in range(total)] == pytest.approx(cosine, abs=1e-12)
    assert [lr_factor("constant", t, total) for t in range(total)] == [1.0] * total


def test_lr_factor_warmup_then_decay_by_hand() -> None:
    # W = 2 of T = 6: 1/2, 2/2, then poly over the 4 remaining steps: (1 - k/4) ** 0.9, k = 0..3
    expected = [0.5, 1.0] + [(1 - k / 4) ** 0.9 for k in range(4)]
    assert [lr_factor("poly", t, 6, warmup_steps=2) for t in range(6)] == pytest.approx(expected, abs=1e-15)
    assert [lr_factor("constant", t, 4, warmup_steps=4) for t in range(4)] == [0.25, 0.5, 0.75, 1.0]
    cosine = [lr_factor("cosine", t, 5, warmup_steps=1) for t in range(5)]
    assert cosine == pytest.approx([1.0] + [0.5 * (1 + math.cos(math.pi * k / 4)) for k in range(4)], abs=1e-15)
    assert all(f > 0 for f in cosine)  # the last step still learns


def test_lr_factor_errors() -> None:
    with pytest.raises(ValueError, match="Did you mean 'cosine'"):
        lr_factor("cosin", 0, 10)
    with pytest.raises(ValueError, match="`total_steps` >= 1"):
        lr_factor("poly", 0, 0)
    with pytest.raises(ValueError, match=r"`warmup_steps` in \[0, total_steps=10\]"):
        lr_factor("poly", 0, 10, warmup_steps=11)
    with pytest.raises(ValueError, match=r"`step` in \[0, 10\)"):
        lr_factor("poly", 10, 10)


def test_balanced_weight_and_ema() -> None:
    assert balanced_ranking_weight(3.0, 0.5, 0.1) == pytest.approx(0.6)
    w = balanced_ranking_weight(3.0, 0.5, 0.1)
    assert w * 0.5 == pytest.approx(0.1 * 3.0)  # the weighted ranking gradient is the fraction of the other
    assert balanced_ranking_weight(3.0, 0.0, 0.1) == 0.0  # nothing to balance
    assert ema(None, 5.0, 0.9) == 5.0 and ema(5.0, 1.0, 0.75) == pytest.approx(4.0) and ema(5.0, 1.0, 0.0) == 1.0
    with pytest.raises(ValueError, match="`ranking_norm` to be a finite number"):
        balanced_ranking_weight(1.0, float("nan"), 0.1)
    with pytest.raises(ValueError, match="`segmentation_norm` to be a finite number"):
        balanced_ranking_weight(-1.0, 1.0, 0.1)
    with pytest.raises(ValueError, match="`fraction` > 0"):
        balanced_ranking_weight(1.0, 1.0, 0.0)


def test_schedule_config_errors() -> None:
    with pytest.raises(ValueError, match="Did you mean 'poly'"):
        load_config(overrides=["optim.schedule=pol"])
    with pytest.raises(ValueError, match="a warm-up cannot be longer than training"):
        load_config(overrides=["optim.epochs=3", "optim.warmup_epochs=4"])
    with pytest.raises(ValueError, match=r"`loss\.ranking` is 'none'"):
        load_config(overrides=["loss.ranking_balance=0.1"])
    with pytest.raises(ValueError, match=r"set `loss\.grad_norm_every` >= 1"):
        load_config(overrides=["loss.ranking=exact", "loss.ranking_balance=0.1", "loss.grad_norm_every=0"])
    with pytest.raises(ValueError, match=r"`loss.balance_momentum` in \[0, 1\)"):
        load_config(overrides=["loss.balance_momentum=1"])
    with pytest.raises(ValueError, match=r"`loss\.grad_norm_every` >= 0"):
        load_config(overrides=["loss.grad_norm_every=-1"])
    with pytest.raises(ValueError, match=r"`snapshot_epochs` entry in \[1, optim.epochs=5\], but got \[6\]"):
        load_config(overrides=["optim.epochs=5", "snapshot_epochs=[2, 6]"])
