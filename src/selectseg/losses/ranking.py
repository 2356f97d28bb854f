"""Uncertainty ranking loss of Ding et al. (MIDL 2020, eq. 2-3): wrong pixels should be less sure than correct ones.

For every pixel (voxel) i with uncertainty ``u_i`` and ``correct_i``, with ``U_w`` the uncertainties of the wrong
pixels and ``U_c`` those of the correct ones, pooled over the whole batch and all classes::

    L_unc = reduce_{j in U_w, k in U_c} max(u_k - u_j + margin, 0)

``mode="exact"`` sums over all ``|U_w| * |U_c|`` pairs without forming the pair matrix: a pair is active when
``u_k > t_j := u_j - margin`` (``t_j`` in float64), so for each wrong pixel j the active pairs contribute
``S_j - t_j * N_j`` with ``N_j`` the number and ``S_j`` the sum of correct uncertainties above ``t_j``. The
gradient is explicit: ``dL/du_k = #{j : t_j < u_k}`` for a correct pixel and ``dL/du_j = -N_j`` for a wrong one
(subgradient 0 at the kink, as ``torch.relu``), and the sum is ``g . u + margin * #active pairs``, accumulated in
float64. On the CPU only the smaller side is sorted and every pixel is ranked against it through a bin table
(see :func:`_exact_sum_numpy`); on other devices the correct uncertainties are sorted and searched in torch.

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
from typing import Any, NamedTuple

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
# Rank lookup tables (CPU): about this many bins per sorted key, at most 2**_MAX_LOG2_BINS bins; a bin holding
# several distinct keys is resolved by comparisons with up to _PAD of them, then a binary search.
_BINS_PER_KEY = 4
_MAX_LOG2_BINS = 21
_PAD = 4


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
    total = _ExactRankingSum.apply(u, ok, margin, False)
    if reduction == "sum":
        return total
    # The mean as a torch division of the sum, so that autograd scales the kernel's count gradient once by
    # (upstream weight / n_pairs): bit-identical training whatever the kernel (a scale inside it rounds differently).
    n_c = int(np.count_nonzero(ok.numpy())) if ok.device.type == "cpu" else int(ok.sum())
    n_pairs = n_c * (ok.numel() - n_c)
    return total / float(n_pairs) if n_pairs else total


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
    values = uncertainty.detach()
    on_cpu = values.device.type == "cpu" and values.dtype in (torch.float32, torch.float64)
    check_finite("uncertainty", values.numpy() if on_cpu else values)  # numpy: a serial pass, no thread team


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
    """Sum (or mean) over all (wrong, correct) pairs of ``relu(u_c - u_w + margin)``, with its explicit gradient.

    0, with a zero gradient, when a side is empty. The CPU kernel counts the sides and applies the mean's scale
    itself (no pass over the batch in torch, whose threaded reductions stall on a loaded machine).
    """

    @staticmethod
    def forward(ctx: Any, u: torch.Tensor, ok: torch.Tensor, margin: float, mean: bool) -> torch.Tensor:
        with_grad = ctx.needs_input_grad[0]
        ctx.on_cpu = u.device.type == "cpu"
        if ctx.on_cpu:
            values = u.detach() if u.dtype in (torch.float32, torch.float64) else u.detach().float()
            total, grad = _exact_sum_numpy(values.numpy(), ok.numpy(), margin, with_grad, mean=mean)
            grad_t = torch.from_numpy(grad) if grad is not None else None
            out = torch.tensor(total, dtype=u.dtype)
        else:
            n_c = int(ok.sum())
            n_w = ok.numel() - n_c
            if n_w == 0 or n_c == 0:
                total_t = torch.zeros((), dtype=torch.float64, device=u.device)
                grad_t = torch.zeros_like(u) if with_grad else None
            else:
                total_t, grad_t = _exact_sum_torch(u.detach(), ok, margin, with_grad)
                if mean:
                    total_t = total_t / float(n_w * n_c)
                    grad_t = grad_t / float(n_w * n_c) if grad_t is not None else None
            out = total_t.to(u.dtype)
        if grad_t is not None:
            ctx.save_for_backward(grad_t.to(u.dtype))
        return out

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, None, None, None]:
        (grad,) = ctx.saved_tensors
        if ctx.on_cpu and float(grad_output) == 1.0:  # loss.backward() on the loss itself: no pass needed
            return grad, None, None, None
        return grad * grad_output, None, None, None


def _pool() -> ThreadPoolExecutor:
    global _POOL, _POOL_WORKERS
    if _POOL is None:
        _POOL_WORKERS = max(1, min(torch.get_num_threads(), os.cpu_count() or 1))
        _POOL = ThreadPoolExecutor(max_workers=_POOL_WORKERS, thread_name_prefix="selectseg-ranking")
    return _POOL


def _sort_with_positions(values: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort ``values`` ascending; return them (in their own dtype) with their ``positions`` in the same order.

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
        return high.view(np.float32), words[0::2].astype(np.intp)
    order = np.argsort(values, kind="stable")
    return values[order], positions[order]


def _round_down(t: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The largest value of ``dtype`` that is <= each float64 ``t`` (``t`` itself for float64)."""
    if dtype == np.float64:
        return t
    with np.errstate(over="ignore"):
        a = t.astype(dtype)
    above = np.flatnonzero(a > t)
    a[above] = np.nextafter(a[above], dtype.type(-np.inf))
    return a


def _lowest_reaching(c: np.ndarray, margin: float, dtype: np.dtype) -> np.ndarray:
    """The smallest value ``x`` of ``dtype`` with ``float64(x) - margin >= c``, for each float64 ``c``.

    ``x -> float64(x) - margin`` is non-decreasing, so ``{x : float64(x) - margin >= c}`` is ``{x >= result}``.
    The start ``c + margin`` is within an ulp or two; the loops step to the exact value and end because the
    condition holds at +inf and fails at -inf.
    """
    with np.errstate(over="ignore"):
        x = (c + margin).astype(dtype)
    while True:
        short = np.flatnonzero(x.astype(np.float64) - margin < c)
        if short.size == 0:
            break
        x[short] = np.nextafter(x[short], dtype.type(np.inf))
    while True:
        lower = np.nextafter(x, dtype.type(-np.inf))
        reach = np.flatnonzero(lower.astype(np.float64) - margin >= c)
        if reach.size == 0:
            return x
        x[reach] = lower[reach]


class _Table(NamedTuple):
    """Rank lookup over sorted keys: for a query q, ``#{keys < q}`` (strict) or ``#{keys <= q}``, without a search.

    A non-decreasing map ``bin(v) = int(clip((v - offset) * scale, 0, n_bins - 1))`` (any rounding keeps it
    non-decreasing) sends a key below q to a bin <= bin(q) and a key above q to a bin >= bin(q), so the keys in
    lower bins are all below q and those in higher bins all above it: ``#{keys < q} = below_bin[b] + #{keys of
    bin b < q}``. A bin whose keys share one value ``value[b]`` answers with one comparison,
    ``below_bin[b + (q > value[b])]`` (ties count whole); a bin holding several distinct values has value NaN and
    is resolved by comparisons with its first distinct values (a binary search past ``pad`` of them).
    """

    keys: np.ndarray  # sorted keys
    offset: Any  # numpy scalars of the keys' dtype
    scale: Any
    n_bins: int
    value: np.ndarray  # (n_bins,): the single distinct key value of the bin; NaN where several
    below_bin: np.ndarray  # (n_bins + 1,) int32: keys in the bins before b
    first: np.ndarray | None  # (n_bins,) int32: index in `distinct` of a multi-value bin's first value
    distinct: np.ndarray  # distinct key values, padded with `pad` +inf
    below_distinct: np.ndarray  # (n_distinct + 1,) int64: keys below each distinct value; n_keys at the end
    pad: int


def _bins(table: _Table, v: np.ndarray, scratch: np.ndarray, out: np.ndarray) -> None:
    """``out[:] = bin(v)``; fmin/fmax send a NaN (possible only with ``validate_args=False``) to bin 0."""
    with np.errstate(over="ignore", invalid="ignore"):
        np.subtract(v, table.offset, out=scratch)
        np.multiply(scratch, table.scale, out=scratch)
    np.fmin(scratch, table.n_bins - 1, out=scratch)
    np.fmax(scratch, 0, out=out, casting="unsafe")


def _build_table(keys: np.ndarray) -> _Table:
    """:class:`_Table` over ``keys`` (sorted, non-empty), about ``_BINS_PER_KEY`` bins per key over their range."""
    ft = keys.dtype.type
    n_bins = 1 << min(_MAX_LOG2_BINS, max(8, int(np.ceil(np.log2(keys.size * _BINS_PER_KEY)))))
    lo, hi = float(keys[0]), float(keys[-1])
    with np.errstate(over="ignore", invalid="ignore"):
        scale = (n_bins - 2) / (hi - lo) if hi > lo else 1.0
        offset, scale = ft(lo - 1.0 / scale), ft(scale)  # bin 0 is left to queries below every key
    if not (np.isfinite(scale) and scale > 0 and np.isfinite(offset)):  # e.g. an infinite key: exact, just slow
        offset, scale = ft(0), ft(1)
    table = _Table(keys, offset, scale, n_bins, np.empty(0, keys.dtype), np.empty(0, np.int32), None, keys, keys, 0)
    key_bins = np.empty(keys.size, np.int32)
    _bins(table, keys, np.empty_like(keys), key_bins)
    starts = np.empty(keys.size, bool)
    starts[0] = True
    np.not_equal(keys[1:], keys[:-1], out=starts[1:])
    starts = np.flatnonzero(starts)  # first key of each distinct value
    distinct, distinct_bins = keys[starts], key_bins[starts]
    new_bin = np.empty(distinct.size, bool)
    new_bin[0] = True
    np.not_equal(distinct_bins[1:], distinct_bins[:-1], out=new_bin[1:])
    bin_first = np.flatnonzero(new_bin)  # index in `distinct` of each occupied bin's first value
    occupied = distinct_bins[bin_first]
    # Runs of bins (previous occupied bin, this occupied bin]: one np.repeat fills each table. An empty bin b has
    # below_bin[b] == below_bin[b + 1], so its value (the next occupied bin's first one, never NaN) is harmless.
    run = np.diff(occupied, prepend=-1, append=n_bins)
    ends = np.empty(occupied.size + 1, np.int32)
    ends[0] = 0
    ends[1:-1] = starts[bin_first[1:]]
    ends[-1] = keys.size
    below_bin = np.repeat(ends, run)  # n_bins + 1 entries
    value = np.repeat(np.append(distinct[bin_first], np.inf).astype(keys.dtype), run)[:n_bins]
    n_values = np.diff(bin_first, append=distinct.size)
    several = np.flatnonzero(n_values > 1)
    first = None
    pad = 0
    if several.size:
        multi = occupied[several]
        value[multi] = np.nan
        first = np.empty(n_bins, np.int32)  # read only at multi-value bins
        first[multi] = bin_first[several]
        pad = int(min(_PAD, n_values.max()))
    return table._replace(
        value=value,
        below_bin=below_bin,
        first=first,
        distinct=np.append(distinct, np.full(pad, np.inf, keys.dtype)),
        below_distinct=np.append(starts, keys.size),
        pad=pad,
    )


def _resolve(table: _Table, first: np.ndarray, q: np.ndarray, bins: np.ndarray, strict: bool) -> np.ndarray:
    """Exact ranks of queries that fell in multi-value bins (``bins``): compare with the bin's distinct values.

    Values of later bins (and the +inf padding) lie above every query of the bin, so comparing past a bin's end
    adds nothing; a query above ``pad`` values of its bin goes through a binary search.
    """
    start = first.take(bins).astype(np.intp)
    index = start.copy()
    compare = np.greater if strict else np.greater_equal
    for i in range(table.pad):
        index += compare(q, table.distinct.take(start + i))
    ranks = table.below_distinct.take(index)
    past = np.flatnonzero(index - start == table.pad)
    if past.size:
        ranks[past] = np.searchsorted(table.keys, q[past], side="left" if strict else "right")
    return ranks


def _lookup(table: _Table, q: np.ndarray, strict: bool, out: np.ndarray) -> None:
    """``out[i] = #{keys < q[i]}`` (``strict``) or ``#{keys <= q[i]}``; ``q`` in the keys' dtype, out int32."""
    bins = np.empty(q.size, np.int32)
    _bins(table, q, np.empty_like(q), bins)
    bins_t = torch.from_numpy(bins)
    value = torch.index_select(torch.from_numpy(table.value), 0, bins_t).numpy()
    step = np.greater(q, value) if strict else np.greater_equal(q, value)  # False on a NaN (multi-value) bin
    np.add(bins, step, out=bins)
    torch.index_select(torch.from_numpy(table.below_bin), 0, bins_t, out=torch.from_numpy(out))
    if table.first is not None:
        multi = np.flatnonzero(np.isnan(value))
        if multi.size:
            out[multi] = _resolve(table, table.first, q[multi], bins[multi], strict)


def _exact_sum_numpy(
    u: np.ndarray, ok: np.ndarray, margin: float, with_grad: bool, *, mean: bool = False
) -> tuple[float, np.ndarray | None]:
    """CPU kernel: sort the smaller side only, rank the other through a bin table; one chunk of pixels per thread.

    ``u`` float32 or float64 (1-D), ``ok`` bool. A pair (wrong j, correct k) is active when ``u_k > t_j`` with
    ``t_j = float64(u_j) - margin``. The comparisons run in ``u``'s dtype on transformed keys, exactly:

    - fewer wrong than correct (case A): keys ``a_j`` = the largest value of the dtype <= ``t_j``; for ``u_k`` of
      that dtype, ``u_k > t_j`` iff ``u_k > a_j``. Every pixel gets ``cnt = #{a < u}``, the gradient of a correct
      pixel; the wrong pixel of sorted rank r has ``#{correct : cnt > r}`` active pairs (a histogram of cnt).
    - otherwise (case B): keys ``b_k`` = the smallest value x of the dtype with ``float64(x) - margin >= u_k``;
      ``u_k <= t_j`` iff ``b_k <= u_j``. Every pixel gets ``le = #{b <= u}`` and the wrong pixel j has
      ``n_c - le_j`` active pairs; the correct pixel of sorted rank r is in ``#{wrong : le <= r}`` (a histogram).

    With the gradient g (+count on correct, -count on wrong pixels) the sum is ``g . u + margin * #active pairs``,
    accumulated in float64. With ``mean`` the sum and the gradient are divided by ``n_w * n_c`` exactly as autograd
    would divide the summed loss in ``u``'s dtype (the sum rounded to the dtype, then divided by the dtype's
    ``n_w * n_c``; each count times ``1 / dtype(n_w * n_c)``), so the mean is bit-identical to dividing in torch.
    """
    n = u.size
    wrong_pos = np.flatnonzero(~ok)
    n_w = wrong_pos.size
    n_c = n - n_w
    grad = np.empty(n, dtype=u.dtype)
    if n_w == 0 or n_c == 0:
        grad[:] = 0
        return 0.0, grad if with_grad else None
    swap = n_w > n_c  # case B: the correct pixels are the keys
    key_pos = np.flatnonzero(ok) if swap else wrong_pos  # ascending
    key_u, key_order = _sort_with_positions(u[key_pos], key_pos)
    if swap:
        keys = _lowest_reaching(key_u.astype(np.float64), margin, u.dtype)
    else:
        keys = _round_down(key_u.astype(np.float64) - margin, u.dtype)
    table = _build_table(keys)
    n_keys = keys.size
    n_chunks = 1
    if n >= 2 * _CHUNK_MIN:
        _pool()
        n_chunks = max(1, min(_POOL_WORKERS, n // _CHUNK_MIN))
    bounds = np.linspace(0, n, n_chunks + 1).astype(np.int64)
    cuts = np.searchsorted(key_pos, bounds)
    ones = torch.ones(1, dtype=torch.int32)
    # The mean's scale as autograd forms it for ``total / n_pairs`` in u's dtype: 1 / dtype(n_pairs), rounded once
    # (n_pairs itself rounds in float32 beyond 2**24), so gradients are bit-identical to dividing the sum in torch.
    scale = u.dtype.type(1.0) / u.dtype.type(n_w * n_c) if mean else None

    def chunk(i: int) -> tuple[torch.Tensor, float]:
        lo, hi = int(bounds[i]), int(bounds[i + 1])
        q, g = u[lo:hi], grad[lo:hi]
        rank = np.empty(hi - lo, np.int32)
        _lookup(table, q, not swap, rank)
        # The keys' own pixels get a rank whose gradient is 0 and whose histogram bin is never read.
        rank[key_pos[cuts[i] : cuts[i + 1]] - lo] = n_keys if swap else 0
        hist = torch.zeros(n_keys + 1, dtype=torch.int32)
        hist.index_add_(0, torch.from_numpy(rank), ones.expand(hi - lo))
        if swap:
            rank -= n_keys  # wrong: -(n_c - le)
        dot = float(np.einsum("i,i->", rank, q, dtype=np.float64))
        if scale is None:
            np.copyto(g, rank, casting="unsafe")
        else:
            np.multiply(rank, scale, out=g, casting="unsafe")
        return hist, dot

    parts = [chunk(0)] if n_chunks == 1 else list(_pool().map(chunk, range(n_chunks)))
    hist = parts[0][0].numpy().astype(np.int64)
    for part in parts[1:]:
        hist += part[0].numpy()
    if swap:  # correct pixel of sorted rank r: #{wrong : le <= r}
        key_grad = np.cumsum(hist[:n_keys])
        pairs = int(key_grad.sum())
    else:  # wrong pixel of sorted rank r: -#{correct : cnt > r}
        key_grad = -np.cumsum(hist[::-1])[-2::-1]
        pairs = -int(key_grad.sum())
    grad[key_order] = key_grad if scale is None else key_grad * scale
    key_dot = float(np.einsum("i,i->", key_grad.astype(np.float64), key_u, dtype=np.float64))
    total = sum(p[1] for p in parts) + key_dot + margin * pairs
    if mean:  # as torch divides the sum in u's dtype
        return float(u.dtype.type(total) / u.dtype.type(n_w * n_c)), grad if with_grad else None
    return total, grad if with_grad else None


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
