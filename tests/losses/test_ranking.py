from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from selectseg.losses import UncertaintyRankingLoss, uncertainty_ranking_loss
from selectseg.losses import ranking as ranking_module
from tests.reference.ranking import naive_ranking_loss


def _value_and_grad(fn, u: torch.Tensor, ok: torch.Tensor) -> tuple[float, torch.Tensor]:
    u = u.detach().clone().requires_grad_(True)
    value = fn(u, ok)
    value.backward()
    return float(value.detach()), u.grad


@pytest.mark.parametrize("n", [2, 17, 500, 3000])
@pytest.mark.parametrize("wrong_fraction", [0.05, 0.5, 0.9])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("margin", [0.0, 0.1, 0.7])
def test_uncertainty_ranking_loss_exact_equals_naive(n, wrong_fraction, reduction, margin):
    g = torch.Generator().manual_seed(n)
    u = torch.rand(n, dtype=torch.float64, generator=g)
    ok = torch.rand(n, generator=g) >= wrong_fraction
    got, got_grad = _value_and_grad(
        lambda x, c: uncertainty_ranking_loss(x, c, margin=margin, reduction=reduction), u, ok
    )
    want, want_grad = _value_and_grad(lambda x, c: naive_ranking_loss(x, c, margin, reduction), u, ok)
    assert got == pytest.approx(want, rel=1e-9, abs=1e-9)
    torch.testing.assert_close(got_grad, want_grad, rtol=1e-9, atol=1e-9)


def test_uncertainty_ranking_loss_exact_handles_ties_and_kinks_like_relu():
    # Dyadic values: u_k - u_j + margin is computed exactly, so many pairs sit exactly on the kink (relu' = 0).
    g = torch.Generator().manual_seed(3)
    u = torch.randint(0, 9, (400,), generator=g).double() / 8
    ok = torch.rand(400, generator=g) > 0.3
    for reduction in ("mean", "sum"):
        got, got_grad = _value_and_grad(
            lambda x, c, r=reduction: uncertainty_ranking_loss(x, c, margin=0.125, reduction=r), u, ok
        )
        want, want_grad = _value_and_grad(lambda x, c, r=reduction: naive_ranking_loss(x, c, 0.125, r), u, ok)
        assert got == pytest.approx(want, rel=1e-12)
        torch.testing.assert_close(got_grad, want_grad, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_exact_kernels_numpy_and_torch_agree_with_naive(dtype):
    u = torch.rand(5, 7, 9, dtype=dtype)
    ok = torch.rand(5, 7, 9) > 0.2
    want, want_grad = _value_and_grad(lambda x, c: naive_ranking_loss(x.double(), c, 0.1, "sum"), u, ok)
    total_np, grad_np = ranking_module._exact_sum_numpy(u.reshape(-1).numpy(), ok.reshape(-1).numpy(), 0.1, True)
    total_t, grad_t = ranking_module._exact_sum_torch(u.reshape(-1), ok.reshape(-1), 0.1, True)
    assert total_np == pytest.approx(want, rel=1e-9)
    assert float(total_t) == pytest.approx(want, rel=1e-9)
    np.testing.assert_allclose(grad_np, want_grad.reshape(-1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(grad_t.double().numpy(), want_grad.reshape(-1).numpy(), rtol=1e-6)


def test_exact_threaded_chunks_equal_single_piece(monkeypatch):
    u = torch.rand(6000)
    ok = torch.rand(6000) > 0.1
    single = ranking_module._exact_sum_numpy(u.numpy(), ok.numpy(), 0.1, True)
    monkeypatch.setattr(ranking_module, "_CHUNK_MIN", 1000)
    monkeypatch.setattr(ranking_module, "_POOL_WORKERS", 3)
    ranking_module._pool()
    monkeypatch.setattr(ranking_module, "_POOL_WORKERS", 3)
    chunked = ranking_module._exact_sum_numpy(u.numpy(), ok.numpy(), 0.1, True)
    assert chunked[0] == pytest.approx(single[0], rel=1e-12)
    np.testing.assert_array_equal(chunked[1], single[1])


def test_sort_with_positions_handles_negative_and_signed_zero():
    values = np.array([0.5, -0.0, -2.5, 0.0, -1e-30, 3.0, -0.5], dtype=np.float32)
    positions = np.arange(values.size)
    got, order = ranking_module._sort_with_positions(values, positions)
    np.testing.assert_array_equal(got, np.sort(values).astype(np.float64))
    np.testing.assert_array_equal(values[order].astype(np.float64), got)


def test_exact_on_negative_uncertainties_equals_naive():
    u = torch.randn(800) * 3
    ok = torch.rand(800) > 0.4
    got, got_grad = _value_and_grad(lambda x, c: uncertainty_ranking_loss(x, c, reduction="sum"), u, ok)
    want, want_grad = _value_and_grad(lambda x, c: naive_ranking_loss(x.double(), c, 0.1, "sum"), u, ok)
    assert got == pytest.approx(want, rel=1e-6)
    torch.testing.assert_close(got_grad.double(), want_grad.double(), rtol=1e-6, atol=1e-6)


def test_exact_gradcheck():
    u = (torch.rand(60, dtype=torch.float64) * 0.5).requires_grad_(True)
    ok = torch.rand(60) > 0.3
    assert torch.autograd.gradcheck(lambda x: uncertainty_ranking_loss(x, ok, reduction="sum"), (u,))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_exact_accepts_half_precision(dtype):
    u = torch.rand(300).to(dtype).requires_grad_(True)
    ok = torch.rand(300) > 0.3
    loss = uncertainty_ranking_loss(u, ok)
    loss.backward()
    assert loss.dtype == dtype and u.grad is not None and u.grad.dtype == dtype
    want = naive_ranking_loss(u.detach().double(), ok, 0.1, "mean")
    assert float(loss.detach()) == pytest.approx(float(want), rel=1e-2)


@pytest.mark.parametrize("mode", ["exact", "sampled"])
@pytest.mark.parametrize("all_correct", [True, False])
def test_uncertainty_ranking_loss_is_zero_and_attached_when_one_side_empty(mode, all_correct):
    u = torch.rand(4, 5, requires_grad=True)
    ok = torch.full((4, 5), all_correct)
    loss = uncertainty_ranking_loss(u, ok, mode=mode)
    assert float(loss.detach()) == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(u.grad, torch.zeros_like(u))


def test_sampled_uses_everything_when_sets_are_small():
    u = torch.rand(50, dtype=torch.float64)
    ok = torch.rand(50) > 0.5
    sampled = uncertainty_ranking_loss(u, ok, mode="sampled", n_wrong=1000, n_correct=1000)
    exact = uncertainty_ranking_loss(u, ok, mode="exact")
    assert float(sampled) == pytest.approx(float(exact), rel=1e-12)


def test_sampled_draws_without_replacement_the_requested_counts(monkeypatch):
    u = torch.rand(5000, dtype=torch.float64)
    ok = torch.rand(5000) > 0.2
    seen = {}
    real = ranking_module._subsample

    def spy(*args):
        out = real(*args)
        seen["u"], seen["ok"] = out
        return out

    monkeypatch.setattr(ranking_module, "_subsample", spy)
    loss = uncertainty_ranking_loss(
        u, ok, mode="sampled", n_wrong=30, n_correct=200, generator=torch.Generator().manual_seed(1)
    )
    assert int((~seen["ok"]).sum()) == 30 and int(seen["ok"].sum()) == 200
    assert torch.unique(seen["u"]).numel() == 230  # distinct pixels (values are a.s. distinct)
    assert float(loss) == pytest.approx(float(naive_ranking_loss(seen["u"], seen["ok"], 0.1, "mean")), rel=1e-12)


def test_sampled_is_reproducible_with_a_generator_and_unbiased():
    u = torch.rand(4000, dtype=torch.float64)
    ok = torch.rand(4000) > 0.3
    a = uncertainty_ranking_loss(
        u, ok, mode="sampled", n_wrong=20, n_correct=50, generator=torch.Generator().manual_seed(7)
    )
    b = uncertainty_ranking_loss(
        u, ok, mode="sampled", n_wrong=20, n_correct=50, generator=torch.Generator().manual_seed(7)
    )
    assert float(a) == float(b)
    g = torch.Generator().manual_seed(0)
    draws = torch.stack(
        [uncertainty_ranking_loss(u, ok, mode="sampled", n_wrong=20, n_correct=50, generator=g) for _ in range(800)]
    )
    exact = float(uncertainty_ranking_loss(u, ok))
    # The mean over pairs of a uniform subsample is unbiased; 6 standard errors leave no room for flakiness.
    assert abs(float(draws.mean()) - exact) < 6 * float(draws.std()) / 800**0.5


def test_module_matches_function_and_states_the_same_defaults():
    function_defaults = {
        k: p.default
        for k, p in inspect.signature(uncertainty_ranking_loss).parameters.items()
        if p.default is not p.empty
    }
    module_defaults = {
        k: p.default
        for k, p in inspect.signature(UncertaintyRankingLoss.__init__).parameters.items()
        if p.default is not p.empty
    }
    assert function_defaults == module_defaults
    u = torch.rand(3, 8, 8)
    ok = torch.rand(3, 8, 8) > 0.3
    assert float(UncertaintyRankingLoss(margin=0.2, reduction="sum")(u, ok)) == float(
        uncertainty_ranking_loss(u, ok, margin=0.2, reduction="sum")
    )
    assert "mode='sampled'" in repr(UncertaintyRankingLoss(mode="sampled"))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"uncertainty": [0.1, 0.2]}, TypeError, "`uncertainty` to be a floating-point torch.Tensor"),
        ({"uncertainty": torch.tensor([1, 2])}, TypeError, "`uncertainty` to be a floating-point"),
        ({"correct": torch.tensor([1, 0])}, TypeError, "`correct` to be a torch.Tensor of dtype torch.bool"),
        ({"correct": torch.tensor([True, False, True])}, ValueError, "same shape"),
        (
            {"uncertainty": torch.tensor([]), "correct": torch.tensor([], dtype=torch.bool)},
            ValueError,
            "at least one pixel",
        ),
        ({"uncertainty": torch.tensor([0.1, float("nan")])}, ValueError, "finite, but got 1 NaN"),
        ({"uncertainty": torch.tensor([0.1, float("inf")])}, ValueError, "finite"),
        ({"margin": -0.1}, ValueError, "`margin` to be a non-negative float, but got -0.1"),
        ({"margin": "0.1"}, TypeError, "`margin`"),
        ({"mode": "exakt"}, ValueError, "did you mean 'exact'"),
        ({"reduction": "summ"}, ValueError, "did you mean 'sum'"),
        ({"reduction": None}, TypeError, "`reduction`"),
        ({"n_wrong": 0}, ValueError, "`n_wrong` to be an int >= 1"),
        ({"n_correct": 2.5}, TypeError, "`n_correct`"),
        ({"generator": 3}, TypeError, "`generator`"),
    ],
)
def test_uncertainty_ranking_loss_rejects_bad_input(kwargs, error, match):
    args = {"uncertainty": torch.tensor([0.1, 0.2]), "correct": torch.tensor([True, False])}
    args.update(kwargs)
    u, ok = args.pop("uncertainty"), args.pop("correct")
    with pytest.raises(error, match=match.replace("did you mean", "Did you mean")):
        uncertainty_ranking_loss(u, ok, **args)


def test_module_rejects_bad_options_at_construction():
    with pytest.raises(ValueError, match="Did you mean 'sampled'"):
        UncertaintyRankingLoss(mode="sample")


def test_module_checks_its_options_once_at_construction(monkeypatch):
    with pytest.raises(TypeError, match=r"`generator` to be a torch\.Generator or None, but got int"):
        UncertaintyRankingLoss(generator=3)
    calls = []
    check = ranking_module._check_options
    monkeypatch.setattr(ranking_module, "_check_options", lambda *a: calls.append(a) or check(*a))
    loss = UncertaintyRankingLoss(mode="sampled", n_wrong=5, n_correct=5)
    u, ok = torch.rand(40), torch.rand(40) > 0.5
    for _ in range(3):
        loss(u, ok)
    assert len(calls) == 1  # not once per call


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_validate_args_false_skips_the_tensor_checks(bad):
    u, ok = torch.tensor([0.1, bad, 0.3]), torch.tensor([True, False, True])
    with pytest.raises(ValueError, match="`uncertainty` to be finite"):
        uncertainty_ranking_loss(u, ok)
    with pytest.raises(ValueError, match="`uncertainty` to be finite"):
        UncertaintyRankingLoss()(u, ok)
    uncertainty_ranking_loss(u, ok, validate_args=False)  # no check: an undefined (non-finite) value, no error
    UncertaintyRankingLoss(validate_args=False)(u, ok)
    with pytest.raises(ValueError, match="`uncertainty` to be finite"):
        UncertaintyRankingLoss(validate_args=False)(u, ok, validate_args=True)  # per-call override
    with pytest.raises(ValueError, match="`margin`"):
        uncertainty_ranking_loss(u, ok, margin=-1.0, validate_args=False)  # options are always checked


def test_validate_args_false_gives_the_same_value():
    g = torch.Generator().manual_seed(3)
    u, ok = torch.rand(300, generator=g), torch.rand(300, generator=g) > 0.3
    assert torch.equal(uncertainty_ranking_loss(u, ok), uncertainty_ranking_loss(u, ok, validate_args=False))
