"""Learning-rate schedules and the gradient-balanced ranking weight: pure functions of the step count and of measured
gradient norms, so that a run resumed from its checkpoint continues on exactly the same curve.

Schedules (``optim.schedule``), as a factor of the base learning rate at optimizer step ``t`` (0-based) of ``T``:

- ``constant``: 1.
- ``cosine``: ``0.5 (1 + cos(pi p))`` (Loshchilov & Hutter 2017, without restarts), ``p = (t - W) / (T - W)``.
- ``poly``: ``(1 - p) ** 0.9`` (nnU-Net's polynomial decay, Isensee et al. 2021).

An optional linear warm-up of ``W`` steps comes first: step ``t < W`` uses ``(t + 1) / W``; the decay then runs over
the remaining ``T - W`` steps and reaches 0 after the last step.
"""

from __future__ import annotations

import math

from .._validation import look_up_option
from ..runs.config import SCHEDULES

__all__ = ["POLY_POWER", "SCHEDULES", "balanced_ranking_weight", "ema", "lr_factor"]

POLY_POWER = 0.9
"""nnU-Net's exponent of the polynomial decay."""


def lr_factor(schedule: str, step: int, total_steps: int, warmup_steps: int = 0) -> float:
    """The learning-rate factor (multiplying ``optim.lr``) at optimizer step ``step`` (0-based) of ``total_steps``.

    Args:
        schedule: ``"constant"``, ``"cosine"`` or ``"poly"``.
        step: the optimizer step about to be taken, in ``[0, total_steps)``.
        total_steps: T, the steps of the whole run (epochs x batches per epoch).
        warmup_steps: W, linear warm-up steps, ``0 <= W <= T``.

    Returns:
        A factor in ``(0, 1]`` for every step of the run.

    Raises:
        ValueError: on an unknown schedule (with a near match), ``total_steps < 1``, a warm-up outside
            ``[0, total_steps]`` or a step outside ``[0, total_steps)``.

    Example:
        >>> [round(lr_factor("poly", t, 4), 4) for t in range(4)]
        [1.0, 0.7719, 0.5359, 0.2872]
        >>> [lr_factor("cosine", t, 4, warmup_steps=2) for t in range(4)]
        [0.5, 1.0, 1.0, 0.5]
    """
    look_up_option("schedule", schedule, SCHEDULES)
    if total_steps < 1:
        raise ValueError(f"Expected `total_steps` >= 1, but got {total_steps}.")
    if not 0 <= warmup_steps <= total_steps:
        raise ValueError(f"Expected `warmup_steps` in [0, total_steps={total_steps}], but got {warmup_steps}.")
    if not 0 <= step < total_steps:
        raise ValueError(f"Expected `step` in [0, {total_steps}), but got {step}.")
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return float((1.0 - progress) ** POLY_POWER)


def ema(previous: float | None, value: float, momentum: float) -> float:
    """Exponential moving average: ``value`` at the first measurement (``previous`` None), else
    ``momentum * previous + (1 - momentum) * value``.

    Example:
        >>> ema(None, 4.0, 0.9), ema(4.0, 2.0, 0.5)
        (4.0, 3.0)
    """
    return value if previous is None else momentum * previous + (1.0 - momentum) * value


def balanced_ranking_weight(segmentation_norm: float, ranking_norm: float, fraction: float) -> float:
    """The ranking weight that makes the weighted ranking gradient ``fraction`` times the segmentation gradient.

    With ``g_s`` and ``g_r`` the parameter-gradient norms of the segmentation and the (unweighted) ranking loss,
    ``w = fraction * |g_s| / |g_r|`` gives ``|w g_r| = fraction * |g_s|``. A ranking gradient of zero (no active pair:
    every wrong pixel already more uncertain than every correct one by the margin) leaves nothing to balance: 0.

    Args:
        segmentation_norm: ``|g_s| >= 0``.
        ranking_norm: ``|g_r| >= 0``.
        fraction: the target ratio ``|w g_r| / |g_s|``, > 0.

    Raises:
        ValueError: on a negative or non-finite norm, or ``fraction <= 0``.

    Example:
        >>> balanced_ranking_weight(2.0, 0.01, 0.5)
        100.0
    """
    for name, value in (("segmentation_norm", segmentation_norm), ("ranking_norm", ranking_norm)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"Expected `{name}` to be a finite number >= 0, but got {value}.")
    if not (math.isfinite(fraction) and fraction > 0):
        raise ValueError(f"Expected `fraction` > 0, but got {fraction}.")
    if ranking_norm == 0:
        return 0.0
    return fraction * segmentation_norm / ranking_norm
