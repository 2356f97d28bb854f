"""Uncertainty ranking loss of Ding et al. (MIDL 2020, eq. 2-3): wrong pixels should be less sure than correct ones.

For every pixel (voxel) i with uncertainty ``u_i`` and ``correct_i``, with ``U_w`` the uncertainties of the wrong
pixels and ``U_c`` those of the correct ones, pooled over the whole batch and all classes::

    L_unc = reduce_{j in U_w, k in U_c} max(u_k - u_j + margin, 0)

``mode="exact"`` sums over all ``|U_w| * |U_c|`` pairs in O(n log n) without forming the pair matrix:
a pair is active when ``u_k > t_j := u_j - margin``, so for each wrong pixel j the active pairs contribute
``S_j - t_j * N_j`` with ``N_j`` the number and ``S_j`` the sum of correct uncertainties above ``t_j``. Both come
from one sort of the correct uncertainties (suffix sums and a binary search of the sorted thresholds). The
gradient is explicit: ``dL/du_k = #{j : t_j < u_k}`` for a correct pixel and ``dL/du_j = -N_j`` for a wrong one
(subgradient 0 at the kink, as ``torch.relu``). Sums are accumulated in float64.

``mode="sampled"`` is the authors' released version: at most ``n_wrong`` wrong and ``n_correct`` correct pixels
are drawn uniformly without replacement (a smaller set is used whole) and all pairs of the two samples are used.

References:
    Ding, Liu, Xu, Huang, Zhuang, Xiong, Shi. Uncertainty-Aware Training of Neural Networks for Selective
    Medical Image Segmentation. MIDL 2020, PMLR 121:156-173.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch import nn

from .._validation import check_finite, check_non_negative, check_positive_int, check_same_shape, look_up_option

__all__ = ["UncertaintyRankingLoss", "uncertainty_ranking_loss"]

MODES = ("exact", "sampled")
REDUCTIONS = ("mean", "sum")

# Below this many correct pixels the CPU kernel sorts in one piece; above it, in one chunk per thread.
_CHUNK_MIN = 1 << 19
_POOL: ThreadPoolExecutor | None = None
_POOL_WORKERS = 1


def uncertainty_ranking_loss(
    uncertainty: torch.Tensor,
    correct: torch.Tensor,
    *,
    margin: float = 0.1,
    mode: str = "exact",
    n_wrong: int = 300,
    n_correct: int = 6600,
    reduction: str = "mean",
    generator: torch.Generator | None = None,
    validate_args: bool = True,
) -> torch.Tensor:
    """Pairwise margin ranking loss between wrong and correct pixels' uncertainties (lower is better).

    Args:
        uncertainty: uncertainty of every pixel (higher = less sure), differentiable, e.g. ``1 - max softmax``.
        correct: True where the prediction (argmax) equals the label.
        margin: the margin ``m >= 0``; a pair costs nothing once ``u_wrong >= u_correct + m``.
        mode: ``"exact"`` (all pairs, O(n log n)) or ``"sampled"`` (the authors' subsample, see module doc).
        n_wrong: with ``mode="sampled"``, the most wrong pixels drawn (300 in the released code).
        n_correct: with ``mode="sampled"``, the most correct pixels drawn (6600 in the released code).
        reduction: ``"mean"`` over pairs (the released code) or ``"sum"`` over pairs (the paper's eq. 2).
        generator: random generator for ``mode="sampled"`` (for reproducible draws).
        validate_args: check the tensors (types, shapes, devices, finiteness; the finiteness check is a host-device
            sync on a GPU). The options are always checked. False skips the tensor checks for speed; invalid
            tensors then give undefined results.

    Shape:
        uncertainty: any shape, e.g. ``(B, *S)``; correct: the same shape. Returns a scalar.

    Returns:
        The loss, a 0-dim tensor of ``uncertainty``'s dtype. It is 0 (still attached to the graph) when there is
        no wrong or no correct pixel.

    Raises:
        TypeError: if ``uncertainty`` is not a floating tensor, ``correct`` not a bool tensor, ``generator``
            not a ``torch.Generator``, or ``n_wrong``/``n_correct`` not ints.
        ValueError: on a shape mismatch, an empty input, NaN or inf in ``uncertainty``, tensors on different
            devices, ``margin < 0``, ``n_wrong``/``n_correct`` < 1, or an unknown ``mode``/``reduction``.

    Example:
        >>> u = torch.tensor([0.1, 0.5, 0.3])
        >>> ok = torch.tensor([True, False, True])
        >>> float(uncertainty_ranking_loss(u, ok, reduction="sum"))  # pairs (0.5, 0.1): 0, (0.5, 0.3): 0
        0.0
        >>> round(float(uncertainty_ranking_loss(u, ~ok, reduction="sum")), 6)  # 0.5-0.1+0.1 + 0.5-0.3+0.1
        0.8

    References:
        Ding et al., MIDL 2020, eq. 2-3.
    """
    margin, mode, n_wrong, n_correct, reduction, generator = _check_options(
        margin, mode, n_wrong, n_correct, reduction, generator
    )
    return _ranking_loss(uncertainty, correct, margin, mode, n_wrong, n_correct, reduction, generator, validate_args)


def _ranking_loss(
    uncertainty: torch.Tensor,
    correct: torch.Tensor,
    margin: float,
    mode: str,
    n_wrong: int,
    n_correct: int,
    reduction: str,
    generator: torch.Generator | None,
    validate_args: bool,
) -> torch.Tensor:
    """:func:`uncertainty_ranking_loss` with options already checked; the tensors only when ``validate_args``."""
    if validate_args:
        _check_inputs(uncertainty, correct)
    u = uncertainty.reshape(-1)
    ok = correct.reshape(-1)
    if mode == "sampled":
        u, ok = _subsample(u, ok, n_wrong, n_correct, generator)
    n_c = int(ok.sum())
    n_w = ok.numel() - n_c
    if n_w == 0 or n_c == 0:
        return uncertainty.sum() * 0.0
    total = _ExactRankingSum.apply(u, ok, margin)
    return total / float(n_w * n_c) if reduction == "mean" else total


class UncertaintyRankingLoss(nn.Module):
    """Module form of :func:`uncertainty_ranking_loss`; holds the options, validated once, at construction.

    ``validate_args`` (default True) checks the tensors of every call; ``forward(..., validate_args=...)`` overrides
    it for one call (what :class:`~selectseg.losses.SelectiveSegmentationLoss` does with its own setting).

    Shape:
        forward(uncertainty, correct): both any (same) shape; returns a scalar.

    Raises:
        TypeError, ValueError: at construction, on an invalid option (see :func:`uncertainty_ranking_loss`).
    """

    def __init__(
        self,
        *,
        margin: float = 0.1,
        mode: str = "exact",
        n_wrong: int = 300,
        n_correct: int = 6600,
        reduction: str = "mean",
        generator: torch.Generator | None = None,
        validate_args: bool = True,
    ) -> None:
        super().__init__()
        self.margin, self.mode, self.n_wrong, self.n_correct, self.reduction, self.generator = _check_options(
            margin, mode, n_wrong, n_correct, reduction, generator
        )
        self.validate_args = validate_args

    def forward(
        self, uncertainty: torch.Tensor, correct: torch.Tensor, *, validate_args: bool | None = None
    ) -> torch.Tensor:
        return _ranking_loss(
            uncertainty,
            correct,
            self.margin,
            self.mode,
            self.n_wrong,
            self.n_correct,
            self.reduction,
            self.generator,
            self.validate_args if validate_args is None else validate_args,
        )

    def extra_repr(self) -> str:
        extra = f", n_wrong={self.n_wrong}, n_correct={self.n_correct}" if self.mode == "sampled" else ""
        return f"margin={self.margin}, mode={self.mode!r}, reduction={self.reduction!r}{extra}"


def _check_options(
    margin: Any, mode: Any, n_wrong: Any, n_correct: Any, reduction: Any, generator: Any
) -> tuple[Any, ...]:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"Expected `generator` to be a torch.Generator or None, but got {type(generator).__name__}.")
    return (
        check_non_negative("margin", margin),
        look_up_option("mode", mode, MODES),
        check_positive_int("n_wrong", n_wrong),
        check_positive_int("n_correct", n_correct),
        look_up_option("reduction", reduction, REDUCTIONS),
        generator,
    )


def _check_inputs(uncertainty: Any, correct: Any) -> None:
    if not isinstance(uncertainty, torch.Tensor) or not uncertainty.is_floating_point():
        got = uncertainty.dtype if isinstance(uncertainty, torch.Tensor) else type(uncertainty).__name__
        raise TypeError(f"Expected `uncertainty` to be a floating-point torch.Tensor, but got {got}.")
    if not isinstance(correct, torch.Tensor) or correct.dtype != torch.bool:
        got = correct.dtype if isinstance(correct, torch.Tensor) else type(correct).__name__
        raise TypeError(f"Expected `correct` to be a torch.Tensor of dtype torch.bool, but got {got}.")
    check_same_shape("uncertainty", uncertainty, "correct", correct)
    if uncertainty.device != correct.device:
        raise ValueError(
            f"Expected `uncertainty` and `correct` on one device, but got {uncertainty.device} and {correct.device}."
        )
    if uncertainty.numel() == 0:
        raise ValueError(
            f"Expected `uncertainty` to hold at least one pixel, but got shape {tuple(uncertainty.shape)}."
        )
    check_finite("uncertainty", uncertainty.detach())


def _draw(positions: torch.Tensor, k: int, generator: torch.Generator | None) -> torch.Tensor:
    """At most ``k`` of ``positions``, uniformly without replacement (all of them when there are <= k)."""
    n = positions.numel()
    if n <= k:
        return positions
    device = generator.device if generator is not None else torch.device("cpu")
    pick = torch.randperm(n, generator=generator, device=device)[:k]
    return positions[pick.to(positions.device)]


def _subsample(
    u: torch.Tensor, ok: torch.Tensor, n_wrong: int, n_correct: int, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    wrong_pos = _draw(torch.nonzero(~ok).squeeze(1), n_wrong, generator)
    correct_pos = _draw(torch.nonzero(ok).squeeze(1), n_correct, generator)
    labels = torch.cat([ok.new_zeros(wrong_pos.numel()), ok.new_ones(correct_pos.numel())])
    return u[torch.cat([wrong_pos, correct_pos])], labels


class _ExactRankingSum(torch.autograd.Function):
    """Sum over all (wrong, correct) pairs of ``relu(u_c - u_w + margin)``, with its explicit gradient."""

    @staticmethod
    def forward(ctx: Any, u: torch.Tensor, ok: torch.Tensor, margin: float) -> torch.Tensor:
        with_grad = ctx.needs_input_grad[0]
        if u.device.type == "cpu":
            values = u.detach() if u.dtype in (torch.float32, torch.float64) else u.detach().float()
            total, grad = _exact_sum_numpy(values.numpy(), ok.numpy(), margin, with_grad)
            grad_t = torch.from_numpy(grad) if grad is not None else None
            out = torch.tensor(total, dtype=u.dtype)
        else:
            total_t, grad_t = _exact_sum_torch(u.detach(), ok, margin, with_grad)
            out = total_t.to(u.dtype)
        if grad_t is not None:
            ctx.save_for_backward(grad_t.to(u.dtype))
        return out

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, None, None]:
        (grad,) = ctx.saved_tensors
        return grad * grad_output, None, None


def _pool() -> ThreadPoolExecutor:
    global _POOL, _POOL_WORKERS
    if _POOL is None:
        _POOL_WORKERS = max(1, min(torch.get_num_threads(), os.cpu_count() or 1))
        _POOL = ThreadPoolExecutor(max_workers=_POOL_WORKERS, thread_name_prefix="selectseg-ranking")
    return _POOL


def _sort_with_positions(values: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort ``values`` ascending; return them as float64 with their ``positions`` in the same order.

    float32 values with positions below 2**31 are sorted as one int64 key per element (order-preserving bits of
    the value in the high 32-bit word, the position in the low word), which numpy's SIMD sort handles several
    times faster than an argsort. ``positions`` must be ascending.
    """
    if values.dtype == np.float32 and sys.byteorder == "little" and (positions.size == 0 or positions[-1] < 2**31):
        key = np.empty(values.size, dtype=np.int64)
        words = key.view(np.int32)
        bits = values.view(np.int32)
        words[1::2] = bits ^ ((bits >> 31) & 0x7FFFFFFF)  # IEEE order -> two's-complement order
        words[0::2] = positions
        key.sort()
        high = words[1::2] ^ ((words[1::2] >> 31) & 0x7FFFFFFF)
        return high.view(np.float32).astype(np.float64), words[0::2].astype(np.intp)
    order = np.argsort(values, kind="stable")
    return values[order].astype(np.float64), positions[order]


def _correct_chunk(
    u: np.ndarray, ok: np.ndarray, start: int, stop: int, thresholds: np.ndarray, grad: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Count and sum of the chunk's correct uncertainties above each threshold; writes their gradients.

    Only correct pixels between the lowest and the highest threshold are sorted: those at or below the lowest
    are in no active pair (gradient 0), those above the highest are in every pair of every wrong pixel
    (gradient ``n_wrong``) and enter the sums as one count and one total.
    """
    chunk, chunk_ok = u[start:stop], ok[start:stop]
    above_all = chunk_ok & (chunk > thresholds[-1])
    between = chunk_ok & (chunk > thresholds[0])
    between &= ~above_all
    high = np.flatnonzero(above_all)
    high += start
    positions = np.flatnonzero(between)
    positions += start
    values, positions = _sort_with_positions(u[positions], positions)
    below = np.searchsorted(values, thresholds, side="right")  # sorted correct values <= t_j
    suffix = np.zeros(values.size + 1)
    suffix[:-1] = np.cumsum(values[::-1])[::-1]
    if grad is not None:  # d/du_k = #{j : t_j < u_k} = #{j : below_j <= rank(k)}
        grad[positions] = np.cumsum(np.bincount(below, minlength=values.size + 1))[: values.size]
        grad[high] = thresholds.size
    high_sum = float(np.sum(u[high], dtype=np.float64))
    return values.size - below + high.size, suffix[below] + high_sum


def _exact_sum_numpy(u: np.ndarray, ok: np.ndarray, margin: float, with_grad: bool) -> tuple[float, np.ndarray | None]:
    """CPU kernel: numpy sorts (SIMD) and, for large inputs, one chunk of correct pixels per thread."""
    wrong = np.flatnonzero(~ok)
    sorted_wrong, wrong = _sort_with_positions(u[wrong], wrong)
    thresholds = sorted_wrong - margin
    grad = np.zeros(u.size, dtype=np.float64 if u.dtype == np.float64 else np.float32) if with_grad else None
    n_chunks = 1
    if u.size - wrong.size >= 2 * _CHUNK_MIN:
        _pool()
        n_chunks = max(1, min(_POOL_WORKERS, (u.size - wrong.size) // _CHUNK_MIN))
    bounds = np.linspace(0, u.size, n_chunks + 1).astype(np.int64)
    if n_chunks == 1:
        parts = [_correct_chunk(u, ok, 0, u.size, thresholds, grad)]
    else:
        parts = list(
            _pool().map(
                lambda i: _correct_chunk(u, ok, int(bounds[i]), int(bounds[i + 1]), thresholds, grad), range(n_chunks)
            )
        )
    count = np.sum([p[0] for p in parts], axis=0)
    total = np.sum([p[1] for p in parts], axis=0)
    if grad is not None:
        grad[wrong] = -count
    return float(np.sum(total - thresholds * count)), grad


def _exact_sum_torch(
    u: torch.Tensor, ok: torch.Tensor, margin: float, with_grad: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Device kernel (GPU, or CPU for testing): the same algorithm in torch ops, one piece."""
    correct_pos = torch.nonzero(ok).squeeze(1)
    wrong_pos = torch.nonzero(~ok).squeeze(1)
    values, order = torch.sort(u[correct_pos])
    values = values.double()
    sorted_wrong, order_w = torch.sort(u[wrong_pos])
    thresholds = sorted_wrong.double() - margin
    above = torch.searchsorted(values, thresholds, right=True)
    suffix = torch.zeros(values.numel() + 1, dtype=torch.float64, device=u.device)
    suffix[:-1] = values.flip(0).cumsum(0).flip(0)
    count = values.numel() - above
    total = (suffix[above] - thresholds * count).sum()
    grad = None
    if with_grad:
        grad = torch.zeros_like(u)
        ranks = torch.bincount(above, minlength=values.numel() + 1).cumsum(0)[: values.numel()]
        grad[correct_pos[order]] = ranks.to(u.dtype)
        grad[wrong_pos[order_w]] = -count.to(u.dtype)
    return total, grad
