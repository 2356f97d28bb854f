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


# --- the CPU kernel (sort the smaller side, rank the other through a bin table): properties against brute force ---


def _batch(kind: str, shape: tuple[int, ...], wrong_fraction: float, dtype: torch.dtype, seed: int):
    g = torch.Generator().manual_seed(seed)
    if kind == "dyadic":  # k/8: every difference and margin below is exact, many pairs sit exactly on the margin
        u = torch.randint(0, 9, shape, generator=g).to(dtype) / 8
    elif kind == "levels":  # heavy ties on a few float32 levels
        levels = torch.rand(5, generator=g).to(torch.float32).to(dtype)
        u = levels[torch.randint(0, 5, shape, generator=g)]
    else:
        u = torch.rand(shape, generator=g, dtype=torch.float64).to(dtype)
    ok = torch.rand(shape, generator=g) >= wrong_fraction
    return u, ok


@pytest.fixture(params=["default bins", "tiny table"])
def table_size(request, monkeypatch):
    if request.param == "tiny table":  # 8 bins: most bins hold several values (comparisons, then binary search)
        monkeypatch.setattr(ranking_module, "_MAX_LOG2_BINS", 3)
    return request.param


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(2, 9, 11), (2, 5, 6, 7)], ids=["2d", "3d"])
@pytest.mark.parametrize("wrong_fraction", [0.1, 0.5, 0.9], ids=["wrong<correct", "half", "wrong>correct"])
@pytest.mark.parametrize(("kind", "margin"), [("dyadic", 0.125), ("dyadic", 0.25), ("dyadic", 0.0), ("levels", 0.1)])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_exact_kernel_equals_brute_force_on_ties_and_margins(
    dtype, shape, wrong_fraction, kind, margin, reduction, table_size
):
    u, ok = _batch(kind, shape, wrong_fraction, dtype, seed=len(shape) + int(100 * wrong_fraction))
    got, got_grad = _value_and_grad(
        lambda x, c: uncertainty_ranking_loss(x, c, margin=margin, reduction=reduction), u, ok
    )
    want, want_grad = _value_and_grad(lambda x, c: naive_ranking_loss(x.double(), c, margin, reduction), u, ok)
    assert got_grad.dtype == dtype
    rel = 1e-6 if dtype == torch.float32 else 1e-12
    assert got == pytest.approx(want, rel=rel, abs=1e-12)
    if reduction == "sum":  # counts: exact
        torch.testing.assert_close(got_grad.double(), want_grad.double(), rtol=0, atol=0)
    else:
        torch.testing.assert_close(got_grad.double(), want_grad.double(), rtol=rel, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("wrong_fraction", [0.03, 0.97])
def test_exact_kernel_equals_brute_force_on_continuous_values(dtype, wrong_fraction, table_size):
    u, ok = _batch("continuous", (3, 40, 41), wrong_fraction, dtype, seed=5)
    got, got_grad = _value_and_grad(lambda x, c: uncertainty_ranking_loss(x, c, reduction="sum"), u, ok)
    want, want_grad = _value_and_grad(lambda x, c: naive_ranking_loss(x.double(), c, 0.1, "sum"), u, ok)
    assert got == pytest.approx(want, rel=1e-6 if dtype == torch.float32 else 1e-12)
    torch.testing.assert_close(got_grad.double(), want_grad.double(), rtol=0, atol=0)


@pytest.mark.parametrize(("wrong_fraction", "branch"), [(0.2, "_round_down"), (0.8, "_lowest_reaching")])
def test_exact_kernel_sorts_the_smaller_side(monkeypatch, wrong_fraction, branch):
    calls = []
    real = getattr(ranking_module, branch)
    monkeypatch.setattr(ranking_module, branch, lambda *a: calls.append(a[0].size) or real(*a))
    u, ok = _batch("dyadic", (30, 30), wrong_fraction, torch.float32, seed=1)
    got = ranking_module._exact_sum_numpy(u.reshape(-1).numpy(), ok.reshape(-1).numpy(), 0.125, True)
    want, want_grad = _value_and_grad(lambda x, c: naive_ranking_loss(x.double(), c, 0.125, "sum"), u, ok)
    smaller = min(int(ok.sum()), int((~ok).sum()))
    assert calls == [smaller]
    assert got[0] == want
    np.testing.assert_array_equal(got[1], want_grad.reshape(-1).numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("margin", [0.0, 0.1, 0.125, 1e-30, 3.0])
def test_key_transforms_are_the_exact_bounds(dtype, margin):
    rng = np.random.default_rng(0)
    u = np.concatenate([rng.random(2000), [0.0, -0.0, 1e-39, 0.5, 1.0, -2.0]]).astype(dtype)
    t = u.astype(np.float64) - margin
    a = ranking_module._round_down(t, np.dtype(dtype))  # the largest value of dtype <= t
    assert a.dtype == dtype and np.all(a <= t) and np.all(np.nextafter(a, dtype(np.inf)) > t)
    c = np.sort(u).astype(np.float64)
    b = ranking_module._lowest_reaching(c, margin, np.dtype(dtype))  # the smallest x with float64(x) - m >= c
    assert b.dtype == dtype and np.all(b.astype(np.float64) - margin >= c)
    assert np.all(np.nextafter(b, dtype(-np.inf)).astype(np.float64) - margin < c)
    assert np.all(np.diff(b) >= 0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(3, 4, 5), (2, 3, 4, 5)])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("all_correct", [True, False])
def test_exact_is_zero_with_zero_gradient_when_one_side_is_empty(dtype, shape, reduction, all_correct):
    u = torch.rand(shape, dtype=dtype, requires_grad=True)
    loss = uncertainty_ranking_loss(u, torch.full(shape, all_correct), reduction=reduction)
    assert loss.dtype == dtype and float(loss.detach()) == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(u.grad, torch.zeros_like(u))


def test_exact_one_pixel_per_side_and_empty_input():
    u = torch.tensor([0.25, 0.5], requires_grad=True)
    loss = uncertainty_ranking_loss(u, torch.tensor([False, True]), margin=0.25, reduction="sum")
    loss.backward()  # pair (wrong 0.25, correct 0.5): 0.5 - 0.25 + 0.25
    assert float(loss.detach()) == 0.5 and u.grad.tolist() == [-1.0, 1.0]
    with pytest.raises(ValueError, match="at least one pixel"):
        uncertainty_ranking_loss(torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.bool))


def test_exact_backward_scales_by_the_incoming_gradient():
    u, ok = _batch("dyadic", (6, 7), 0.4, torch.float64, seed=2)
    _, grad = _value_and_grad(lambda x, c: uncertainty_ranking_loss(x, c), u, ok)
    _, grad3 = _value_and_grad(lambda x, c: 3.0 * uncertainty_ranking_loss(x, c), u, ok)
    torch.testing.assert_close(grad3, 3.0 * grad, rtol=1e-15, atol=0)


def test_exact_mean_is_bit_identical_to_dividing_the_sum_in_torch() -> None:
    """The CPU kernel applies the mean itself; its loss and gradient equal autograd's ``sum / n_pairs`` bit for bit
    (also when n_pairs > 2**24, where float32(n_pairs) rounds), so training is unchanged by where the mean is taken."""
    torch.manual_seed(3)
    for n, wrong in ((96, 0.3), (64, 0.05), (32, 0.6)):
        logits = torch.randn(8, 2, n, n) * 20.0  # saturated softmax: many exact ties at 0
        u = (1 - logits.softmax(1).max(1).values).float()
        correct = torch.rand(8, n, n) > wrong
        a, b = u.clone().requires_grad_(), u.clone().requires_grad_()
        n_pairs = int(correct.sum()) * int((~correct).sum())
        mean = uncertainty_ranking_loss(a, correct, mode="exact", reduction="mean")
        by_hand = uncertainty_ranking_loss(b, correct, mode="exact", reduction="sum") / float(n_pairs)
        mean.backward()
        by_hand.backward()
        assert float(mean) == float(by_hand) and torch.equal(a.grad, b.grad)
