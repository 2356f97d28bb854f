"""The montage evaluate keeps: worst to best, a volume's slice index, small maps, the score's range."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from selectseg.evaluation import evaluate
from selectseg.evaluation.evaluate import _montage, _montage_slice, _score_range


def _output(shape: tuple[int, ...]) -> SimpleNamespace:
    rng = np.random.default_rng(0)
    return SimpleNamespace(
        case=SimpleNamespace(image=rng.random((1, *shape)).astype(np.float32)),
        segmentation=rng.integers(0, 2, shape),
        uncertainty=rng.random(shape).astype(np.float32),
        members=None,
    )


def test_montage_slice_volume_names_the_slice() -> None:
    reference = np.zeros((5, 6, 9), dtype=np.int64)
    reference[1:3, 2:4, 6] = 1  # the most foreground in slice 6 of the last axis
    view = _montage_slice(_output((5, 6, 9)), reference, None)  # type: ignore[arg-type]
    assert view["slice_index"] == 6 and view["image"].shape == (5, 6)
    assert np.array_equal(view["reference"], reference[..., 6])
    assert _montage_slice(_output((5, 6)), reference[..., 6], None)["slice_index"] is None  # type: ignore[arg-type]


def test_montage_slice_large_view_is_strided(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(evaluate, "MONTAGE_MAX_SIDE", 4)
    output = _output((10, 9))
    reference = np.arange(90).reshape(10, 9) % 2
    view = _montage_slice(output, reference, np.ones((10, 9)))  # type: ignore[arg-type]
    assert {v.shape for k, v in view.items() if k != "slice_index"} == {(3, 3)}  # step 3: 10 // 3, 9 // 3
    assert np.array_equal(view["uncertainty"], output.uncertainty[1::3, 1::3][:3, :3])
    assert np.allclose(view["image"][0, 0], output.case.image[0, :3, :3].mean())


def test_montage_worst_to_best_with_range() -> None:
    dice = np.array([0.5, 0.9, 0.1, 0.7])
    slices = [
        {"image": np.zeros((2, 2)), "reference": np.zeros((2, 2), np.int64), "prediction": np.zeros((2, 2), np.int64),
         "uncertainty": np.full((2, 2), 0.1 * i), "slice_index": None}
        for i in range(4)
    ]  # fmt: skip
    montage = _montage(["a", "b", "c", "d"], dice, slices, 0.15, (0.0, 0.5))
    assert [c.case_id for c in montage.cases] == ["c", "a", "d", "b"]  # every case when there are fewer than 8
    assert montage.uncertainty_range == (0.0, 0.5) and montage.cases[1].referred.sum() == 0  # a: 0.0 <= 0.15


def test_score_range_known_scores_only() -> None:
    assert _score_range("max_softmax", 2) == (0.0, 0.5)
    assert _score_range("entropy", 3) == (0.0, float(np.log(3)))
    assert _score_range("variance", 2) is None  # a member map: no registered range
