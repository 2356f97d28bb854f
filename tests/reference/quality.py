"""Slow, obviously-correct references for quality control and OOD AUROC: plain loops and every tie order."""

from __future__ import annotations

import itertools


def qc_curve_for_order(order: list[int], dice: list[float], tau: float) -> list[float]:
    """Fraction of all images that are failing and not yet flagged, flagging in ``order``."""
    n = len(order)
    flagged: set[int] = set()
    ys = []
    for k in range(n + 1):
        ys.append(sum(1 for i in range(n) if dice[i] < tau and i not in flagged) / n)
        if k < n:
            flagged.add(order[k])
    return ys


def expected_qc_curve(uncertainty: list[float], dice: list[float], tau: float) -> list[float]:
    """Mean curve over every order that flags higher uncertainties first (tied images in every order)."""
    levels = sorted(set(uncertainty), reverse=True)
    groups = [[i for i, u in enumerate(uncertainty) if u == level] for level in levels]
    curves = [
        qc_curve_for_order([i for g in perm for i in g], dice, tau)
        for perm in itertools.product(*(itertools.permutations(g) for g in groups))
    ]
    return [sum(c[k] for c in curves) / len(curves) for k in range(len(uncertainty) + 1)]


def ideal_qc_curve(dice: list[float], tau: float) -> list[float]:
    order = sorted(range(len(dice)), key=lambda i: dice[i])
    return qc_curve_for_order(order, dice, tau)


def trapezoid(ys: list[float]) -> float:
    n = len(ys) - 1
    return sum((ys[k] + ys[k + 1]) / 2 / n for k in range(n))


def all_pairs_auroc(scores_in: list[float], scores_out: list[float]) -> float:
    total = 0.0
    for s_in in scores_in:
        for s_out in scores_out:
            total += 1.0 if s_out > s_in else 0.5 if s_out == s_in else 0.0
    return total / (len(scores_in) * len(scores_out))
