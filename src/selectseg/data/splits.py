"""Deterministic subject-level k-fold splits: all cases of one patient land in the same fold."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .case import Case

__all__ = ["kfold_assignments", "kfold_split"]


def kfold_assignments(subjects: Sequence[str], k: int, *, seed: int = 0) -> np.ndarray:
    """The fold (0..k-1) of every case, keeping each subject's cases together and balancing case counts.

    Subjects are shuffled with ``seed``, then taken from the largest to the smallest (a stable sort, so equal sizes
    keep the shuffled order) and each is put in the fold holding the fewest cases so far (lowest index on a tie).

    Args:
        subjects: the subject of each case (a case without a subject passes its own case id).
        k: number of folds, 2 <= k <= number of distinct subjects.
        seed: shuffles the subjects.

    Shape:
        subjects ``(N,)`` -> folds ``(N,)`` int64.

    Raises:
        TypeError: if ``k`` is not an int.
        ValueError: if ``k < 2`` or ``k`` exceeds the number of distinct subjects.

    Example:
        >>> kfold_assignments(["p1", "p1", "p2", "p3", "p3", "p3"], 2).tolist()
        [1, 1, 1, 0, 0, 0]
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"Expected `k` (number of folds) to be an int, but got {type(k).__name__}.")
    unique = sorted(set(subjects))
    if k < 2 or k > len(unique):
        raise ValueError(
            f"Expected the number of folds to be between 2 and the number of subjects ({len(unique)}), but got {k}."
        )
    order = [unique[i] for i in np.random.default_rng([seed, 11]).permutation(len(unique))]
    sizes = {s: 0 for s in unique}
    for s in subjects:
        sizes[s] += 1
    order.sort(key=lambda s: -sizes[s])
    load = [0] * k
    fold_of: dict[str, int] = {}
    for s in order:
        target = min(range(k), key=lambda f: (load[f], f))
        fold_of[s] = target
        load[target] += sizes[s]
    return np.array([fold_of[s] for s in subjects], dtype=np.int64)


def kfold_split(cases: Sequence[Case], k: int, fold: int, *, seed: int = 0) -> tuple[list[Case], list[Case]]:
    """(training cases, held-out cases) of fold ``fold`` of a subject-level k-fold split.

    A case's subject is :attr:`Case.subject`, or its case id when the format records no patient.

    Raises:
        ValueError: if ``k`` is invalid (see :func:`kfold_assignments`) or ``fold`` is outside ``[0, k)``.
    """
    folds = kfold_assignments([c.subject or c.case_id for c in cases], k, seed=seed)
    if isinstance(fold, bool) or not isinstance(fold, (int, np.integer)) or not 0 <= fold < k:
        raise ValueError(f"Expected `fold` to be an int in [0, {k}), but got {fold!r}.")
    train = [c for c, f in zip(cases, folds) if f != fold]
    held_out = [c for c, f in zip(cases, folds) if f == fold]
    return train, held_out
