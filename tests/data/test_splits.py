from __future__ import annotations

import numpy as np
import pytest

from selectseg.data import make_synthetic_dataset
from selectseg.data.splits import kfold_assignments, kfold_split


def test_subjects_stay_together_and_folds_are_balanced(rng: np.random.Generator) -> None:
    subjects = [f"p{int(i)}" for i in rng.integers(0, 17, size=60)]
    folds = kfold_assignments(subjects, 5, seed=3)
    for s in set(subjects):
        assert len({int(f) for f, t in zip(folds, subjects) if t == s}) == 1
    counts = np.bincount(folds, minlength=5)
    assert counts.min() > 0
    largest = max(subjects.count(s) for s in set(subjects))
    assert counts.max() - counts.min() <= largest  # greedy balancing is within one subject's size


def test_deterministic_and_seed_dependent() -> None:
    subjects = [f"p{i}" for i in range(20)]
    assert kfold_assignments(subjects, 4, seed=1).tolist() == kfold_assignments(subjects, 4, seed=1).tolist()
    assert kfold_assignments(subjects, 4, seed=1).tolist() != kfold_assignments(subjects, 4, seed=2).tolist()


def test_kfold_split_partitions_the_cases() -> None:
    cases = make_synthetic_dataset(num_cases=7, size=16).cases
    seen = []
    for fold in range(3):
        train, held = kfold_split(cases, 3, fold)
        assert {c.case_id for c in train}.isdisjoint(c.case_id for c in held)
        assert len(train) + len(held) == 7
        seen += [c.case_id for c in held]
    assert sorted(seen) == sorted(c.case_id for c in cases)


def test_errors() -> None:
    with pytest.raises(ValueError, match=r"between 2 and the number of subjects \(2\), but got 3"):
        kfold_assignments(["a", "b", "a"], 3)
    with pytest.raises(ValueError, match="between 2"):
        kfold_assignments(["a", "b"], 1)
    with pytest.raises(TypeError, match="int"):
        kfold_assignments(["a", "b"], 2.0)  # type: ignore[arg-type]
    cases = make_synthetic_dataset(num_cases=4, size=16).cases
    with pytest.raises(ValueError, match=r"`fold` to be an int in \[0, 2\)"):
        kfold_split(cases, 2, 2)
