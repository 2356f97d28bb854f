"""The report's montages compare: the reference run's cases in every run, per-row Dice, one colour scale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from selectseg.report.collect import collect_report
from selectseg.report.figures import montage_layout, plot_montage, report_figures
from selectseg.report.results import load_run_results
from selectseg.results import Montage, MontageCase

from ._fixtures import BETTER_COVERAGE, BETTER_DICE, make_run

# BASE_DICE at coverage 1: a 0.80, b 0.70, c 0.90, d 0.60 -> worst to best d, b, a, c.


def _case(case_id: str, top: float, *, slice_index: int | None = None) -> MontageCase:
    rng = np.random.default_rng(len(case_id))
    return MontageCase(
        case_id=case_id,
        image=rng.random((6, 7)),
        reference=(rng.random((6, 7)) > 0.5).astype(np.int64),
        prediction=(rng.random((6, 7)) > 0.5).astype(np.int64),
        uncertainty=np.linspace(0.0, top, 42).reshape(6, 7),
        referred=np.zeros((6, 7), dtype=bool),
        slice_index=slice_index,
    )


def _runs(tmp_path: Path, base: Montage, better: Montage) -> list[Path]:
    dirs = [make_run(tmp_path / "base", everything=False), make_run(tmp_path / "better", BETTER_DICE, BETTER_COVERAGE)]
    for run_dir, montage in zip(dirs, (base, better)):
        montage.save(run_dir / "evaluation" / "montage.npz")
    return dirs


def _row_titles(fig) -> list[str]:  # type: ignore[no-untyped-def]
    return [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel() and ax.get_subplotspec().colspan.start == 0]


def test_montage_layout_reference_cases_worst_to_best_with_na(tmp_path: Path) -> None:
    base = Montage(0.9, tuple(_case(i, 0.5) for i in ("a", "b", "c", "d")))
    better = Montage(0.9, tuple(_case(i, 0.3) for i in ("a", "c")))
    runs = [load_run_results(d) for d in _runs(tmp_path, base, better)]
    layout = montage_layout(runs, reference=0)
    assert layout is not None and layout.case_ids == ("d", "b", "a", "c") and layout.source == "base"
    # one scale for both runs: 0 to the largest value shown (no theoretical range stored)
    assert layout.uncertainty_scale == {"max_softmax": (0.0, 0.5)}
    fig = plot_montage(
        runs[1].montage,  # type: ignore[arg-type]
        case_ids=layout.case_ids,
        dice={"d": 0.65, "b": 0.72, "a": 0.85, "c": 0.88},
        uncertainty_scale=layout.uncertainty_scale["max_softmax"],
    )
    titles = _row_titles(fig)
    assert titles == ["d\nDice 0.650", "b\nDice 0.720", "a\nDice 0.850", "c\nDice 0.880"]
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert texts.count("n/a") == 2 * 6  # rows d and b: every panel says n/a
    clims = {ax.images[0].get_clim() for ax in fig.axes if ax.images and ax.images[0].get_cmap().name == "magma"}
    assert clims == {(0.0, 0.5)}
    assert any(ax.get_label() == "<colorbar>" for ax in fig.axes)


def test_montage_layout_theoretical_range_and_slice_index(tmp_path: Path) -> None:
    bounds = (0.0, 0.5)  # max_softmax, K = 2
    base = Montage(0.9, (_case("a", 0.1, slice_index=7), _case("d", 0.2, slice_index=3)), uncertainty_range=bounds)
    better = Montage(0.9, (_case("a", 0.4, slice_index=7),), uncertainty_range=bounds)
    runs = [load_run_results(d) for d in _runs(tmp_path, base, better)]
    layout = montage_layout(runs, reference=1)  # the other run as the reference: its one case
    assert layout is not None and layout.case_ids == ("a",) and layout.uncertainty_scale["max_softmax"] == bounds
    fig = plot_montage(runs[0].montage, case_ids=("d", "a"), dice={"d": 0.6})  # type: ignore[arg-type]
    assert _row_titles(fig) == ["d\nDice 0.600\nslice 3", "a\nDice n/a\nslice 7"]
    # without a given scale: the montage's own theoretical range
    assert {ax.images[0].get_clim() for ax in fig.axes if ax.images and ax.images[0].get_cmap().name == "magma"} == {
        bounds
    }


def test_montage_layout_prefers_cases_other_runs_hold(tmp_path: Path) -> None:
    # 8 stored cases in the reference, worst to best c0..c7; the other run holds c1 and c6 only
    dice = {f"c{i}": 0.1 * i for i in range(8)}
    base = Montage(0.9, tuple(_case(f"c{i}", 1.0) for i in (3, 0, 5, 1, 7, 2, 6, 4)))
    better = Montage(0.9, (_case("c1", 1.0), _case("c6", 1.0)))
    cases = tuple(dice)
    dirs = [
        make_run(tmp_path / "base", {1.0: dice}, {}, cases=cases, everything=False),
        make_run(tmp_path / "better", {1.0: dice}, {}, cases=cases, everything=False),
    ]
    base.save(dirs[0] / "evaluation" / "montage.npz")
    better.save(dirs[1] / "evaluation" / "montage.npz")
    runs = [load_run_results(d) for d in dirs]
    layout = montage_layout(runs, rows=4)
    # groups (c0, c1), (c2, c3), (c4, c5), (c6, c7): c1 and c6 are held by both runs
    assert layout is not None and layout.case_ids == ("c1", "c3", "c5", "c6")
    with pytest.raises(ValueError, match="`rows` to be a positive int"):
        montage_layout(runs, rows=0)


def test_report_figures_montages_share_cases(tmp_path: Path) -> None:
    base = Montage(0.9, tuple(_case(i, 0.5) for i in ("a", "b", "c", "d")))
    better = Montage(0.9, tuple(_case(i, 0.3) for i in ("a", "c")))
    data = collect_report(_runs(tmp_path, base, better))
    montages = [f for f in report_figures(data) if f.section == "montage"]
    assert [f.name for f in montages] == ["montage_base", "montage_better"]
    assert _row_titles(montages[0].figure)[0] == "d\nDice 0.600"
    assert _row_titles(montages[1].figure)[0] == "d\nDice 0.650"  # the other run's Dice for the same case
    assert "2 of the cases are not in this run's montage" in montages[1].caption
    assert "n/a" not in montages[0].caption


def test_montage_layout_none_without_montages(tmp_path: Path) -> None:
    runs = [load_run_results(make_run(tmp_path / "base", everything=False))]
    assert montage_layout(runs) is None
