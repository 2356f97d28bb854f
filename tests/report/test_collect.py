from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from selectseg.report import collect_report, default_labels, load_run_results, quadrant_fractions
from selectseg.report.collect import Quadrants

from ._fixtures import BASE_DICE, BETTER_COVERAGE, BETTER_DICE, CASES, make_run, write_config


def test_load_run_results_reads_every_part(two_runs: tuple[Path, Path]) -> None:
    run = load_run_results(two_runs[0])
    assert run.label == "base"
    assert run.evaluation.aurc == pytest.approx(0.1234)
    assert [p.target_coverage for p in run.evaluation.points] == [1.0, 0.99, 0.98, 0.97, 0.96, 0.95, 0.9, 0.8, 0.7]
    p1 = run.evaluation.point(1.0)
    assert p1 is not None and p1.dice_mean == pytest.approx(0.75) and p1.dice_std == pytest.approx(math.sqrt(0.0125))
    assert math.isnan(p1.gamma)  # JSON null
    assert dict(p1.image_dice) == BASE_DICE[1.0]
    assert run.evaluation.point(0.5) is None
    assert run.evaluation.curve.coverage[0] == 0.0 and run.evaluation.curve.threshold[0] == -math.inf
    np.testing.assert_allclose(run.evaluation.curve.risk, 1.0 - run.evaluation.curve.dice)
    assert run.evaluation.calibration is not None and run.evaluation.calibration.reliability is not None
    assert np.isnan(run.evaluation.calibration.reliability.accuracy[:10]).all()
    assert run.evaluation.quality_control is not None and [s.name for s in run.evaluation.quality_control.scores] == [
        "mean max_softmax",
        "mean entropy",
    ]
    assert all(s.has_curve for s in run.evaluation.quality_control.scores)
    assert run.evaluation.disagreement is not None and run.evaluation.disagreement.ged == pytest.approx(0.42)
    assert math.isnan(run.evaluation.disagreement.pixel_pearson)
    assert run.montage is not None and [c.case_id for c in run.montage.cases] == ["a", "b"]
    assert run.montage.coverage == pytest.approx(0.9)
    case = run.montage.cases[0]
    assert case.referred.dtype == bool and case.annotator_variance is not None and case.model_variance is not None
    assert run.ood is not None and run.ood.auroc[1.0]["mean max_softmax"] == pytest.approx(0.93)
    assert math.isnan(run.ood.auroc[1.0]["mean entropy"])
    assert run.ood.fraction.tolist() == [0.0] * 4 + [0.5] * 4 + [1.0] * 4
    assert run.ood.distorted.tolist() == [False] * 4 + [True, False, True, False] + [True] * 4
    assert set(run.ood.image_scores) == {"mean max_softmax", "mean entropy"}
    assert run.config_text is not None and "ranking: exact" in run.config_text
    assert run.run_info is not None and run.run_info["dataset"] == "synthetic"
    assert run.ensemble is None


def test_load_run_results_reads_the_ensemble_members_config(two_runs: tuple[Path, Path]) -> None:
    run = load_run_results(two_runs[1])
    assert run.ensemble is not None and run.ensemble["members"] == ["member_0", "member_1"]
    assert run.config_path == two_runs[1] / "member_0" / "config.yaml"
    assert run.run_info is not None


def test_table1_and_table4_hand_computed(two_runs: tuple[Path, Path]) -> None:
    data = collect_report(list(two_runs))
    assert data.table1.coverages == (1.0, 0.95, 0.9, 0.8, 0.7)
    base_row = data.table1.rows[0]
    assert base_row.points[0] is not None and base_row.points[0].dice_p5 == pytest.approx(0.615)
    assert data.table4 is not None
    assert data.table4.coverages == (1.0, 0.99, 0.98, 0.97, 0.96, 0.95)
    (row,) = data.table4.rows
    assert (row.label, row.reference_label, row.num_cases) == ("better", "base", 4)
    # Mean of the per-image differences (see _fixtures): +0.025 at 1.0 and +0.03 at 0.95.
    assert row.differences[0] == pytest.approx(0.025)
    assert row.differences[-1] == pytest.approx(0.03)


def test_table4_against_another_reference(two_runs: tuple[Path, Path]) -> None:
    data = collect_report(list(two_runs), reference=1)
    assert data.table4 is not None
    (row,) = data.table4.rows
    assert (row.label, row.reference_label) == ("base", "better")
    assert row.differences[0] == pytest.approx(-0.025)


def test_scatter_quadrants_hand_computed(two_runs: tuple[Path, Path]) -> None:
    (scatter,) = collect_report(list(two_runs)).scatters
    assert scatter.target_coverage == 0.95
    assert scatter.case_ids == CASES
    np.testing.assert_allclose(scatter.coverage_difference, [0.02, -0.03, 0.02, 0.0], atol=1e-12)
    np.testing.assert_allclose(scatter.dice_difference, [0.05, 0.05, -0.02, 0.04], atol=1e-12)
    assert scatter.quadrants == Quadrants(0.25, 0.25, 0.0, 0.25, 0.25, 4)


@pytest.mark.parametrize(
    ("dx", "dy", "expected"),
    [
        ([1, 2, -1, -1, 3], [1, 1, 1, -1, -1], Quadrants(0.4, 0.2, 0.2, 0.2, 0.0, 5)),
        ([0, 1, -1, 1], [1, 0, 0, 2], Quadrants(0.25, 0.0, 0.0, 0.0, 0.75, 4)),
        ([1, math.nan, -1], [1, 1, math.nan], Quadrants(1.0, 0.0, 0.0, 0.0, 0.0, 1)),
    ],
)
def test_quadrant_fractions_hand_cases(dx: list[float], dy: list[float], expected: Quadrants) -> None:
    assert quadrant_fractions(dx, dy) == expected


def test_quadrant_fractions_empty_and_length_mismatch() -> None:
    q = quadrant_fractions([], [])
    assert q.n == 0 and math.isnan(q.upper_right)
    with pytest.raises(ValueError, match="same length"):
        quadrant_fractions([0.1, 0.2], [0.1])


def test_different_case_sets_use_the_common_cases(tmp_path: Path) -> None:
    cases_b = ("a", "b", "c", "e")
    dice_b = {c: {**{k: v for k, v in d.items() if k != "d"}, "e": 0.5} for c, d in BETTER_DICE.items()}
    cov_b = {c: {**{k: v for k, v in d.items() if k != "d"}, "e": 0.9} for c, d in BETTER_COVERAGE.items()}
    base = make_run(tmp_path / "base", everything=False)
    other = make_run(tmp_path / "other", dice_b, cov_b, cases=cases_b, everything=False)
    data = collect_report([base, other])
    (scatter,) = data.scatters
    assert scatter.case_ids == ("a", "b", "c")
    assert scatter.only_in_run == ("e",) and scatter.only_in_reference == ("d",)
    assert data.table4 is not None and data.table4.rows[0].num_cases == 3
    assert data.table4.rows[0].differences[0] == pytest.approx((0.05 + 0.02 - 0.02) / 3)
    assert any("3 common cases" in note and "only in other: e" in note for note in data.notes)


def test_disjoint_case_sets_raise(tmp_path: Path) -> None:
    base = make_run(tmp_path / "base", everything=False)
    other_dice = {c: {k.upper(): v for k, v in d.items()} for c, d in BASE_DICE.items()}
    other = make_run(tmp_path / "other", other_dice, {}, cases=("A", "B", "C", "D"), everything=False)
    with pytest.raises(ValueError, match="disjoint case sets"):
        collect_report([base, other])


def test_single_run_has_no_comparison(two_runs: tuple[Path, Path]) -> None:
    data = collect_report([two_runs[0]])
    assert data.table4 is None and data.scatters == () and data.notes == ()
    assert len(data.table1.rows) == 1


def test_old_shape_quality_control(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "old", qc="old")
    qc = load_run_results(run_dir).evaluation.quality_control
    assert qc is not None and qc.tau == 0.8
    (score,) = qc.scores
    assert (score.name, score.d_auc, score.has_curve) == ("mean max_softmax", 0.0625, False)


def test_missing_optional_parts_are_none(tmp_path: Path) -> None:
    run = load_run_results(make_run(tmp_path / "bare", everything=False))
    assert (
        run.evaluation.calibration is None
        and run.evaluation.quality_control is None
        and run.evaluation.disagreement is None
    )
    assert run.montage is None and run.ood is None and run.config_text is None and run.run_info is None
    assert dict(run.evaluation.image_scores) == {}


def test_per_image_values_fall_back_to_per_image_csv(tmp_path: Path) -> None:
    run = load_run_results(make_run(tmp_path / "csv", everything=False, per_image_in_json=False))
    point = run.evaluation.point(1.0)
    assert point is not None and dict(point.image_dice) == BASE_DICE[1.0]
    assert dict(point.image_coverage) == dict.fromkeys(CASES, 1.0)


def test_missing_evaluation_raises_naming_the_file(tmp_path: Path) -> None:
    write_config(tmp_path / "trained")
    with pytest.raises(ValueError, match=r"evaluation\.json' is missing; run `selectseg evaluate"):
        load_run_results(tmp_path / "trained")
    run_dir = make_run(tmp_path / "nocurve", everything=False)
    (run_dir / "evaluation" / "curve.csv").unlink()
    with pytest.raises(ValueError, match=r"nocurve.*curve\.csv' is missing"):
        collect_report([run_dir])
    with pytest.raises(ValueError, match="not a directory"):
        load_run_results(tmp_path / "nowhere")


def test_malformed_result_files_raise(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "bad", everything=False)
    path = run_dir / "evaluation" / "evaluation.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_run_results(run_dir)
    path.write_text(json.dumps({"aurc": 0.1}))
    with pytest.raises(ValueError, match="Expected key 'table'"):
        load_run_results(run_dir)
    path.write_text(json.dumps({"aurc": 0.1, "table": [{"target_coverage": 1.0}]}))
    with pytest.raises(ValueError, match="Expected key 'dice_mean'"):
        load_run_results(run_dir)


def test_montage_missing_map_raises(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "m", everything=False)
    np.savez(run_dir / "evaluation" / "montage.npz", case_ids=np.array(["a"]), image_0=np.zeros((4, 4)))
    with pytest.raises(ValueError, match="Expected `reference_0`"):
        load_run_results(run_dir)


def test_labels_default_and_validation(tmp_path: Path) -> None:
    assert default_labels([tmp_path / "x" / "run", tmp_path / "y" / "run", tmp_path / "z"]) == ["x/run", "y/run", "z"]
    assert default_labels([tmp_path / "run", tmp_path / "run"]) == ["run", "run #2"]
    base = make_run(tmp_path / "base", everything=False)
    other = make_run(tmp_path / "other", BETTER_DICE, BETTER_COVERAGE, everything=False)
    assert [r.label for r in collect_report([base, other], labels=["A", "B"]).runs] == ["A", "B"]
    with pytest.raises(ValueError, match="one label per run"):
        collect_report([base, other], labels=["A"])
    with pytest.raises(ValueError, match="unique labels"):
        collect_report([base, other], labels=["A", "A"])
    with pytest.raises(ValueError, match="`reference` to be a run index in"):
        collect_report([base, other], reference=2)
    with pytest.raises(ValueError, match="at least one run"):
        collect_report([])


DECOMPOSITION = {"oracle_aurc": 0.1, "excess_aurc": 0.0234, "error_auroc": 0.875, "augrc": 0.0456}


def test_aurc_split_error_auroc_and_augrc_are_read_and_old_files_give_none(tmp_path: Path) -> None:
    new = load_run_results(make_run(tmp_path / "new", everything=False, decomposition=DECOMPOSITION))
    assert (
        new.evaluation.oracle_aurc,
        new.evaluation.excess_aurc,
        new.evaluation.error_auroc,
        new.evaluation.augrc,
    ) == (0.1, 0.0234, 0.875, 0.0456)
    # A file written before these keys existed loads; each is NaN (JSON null too).
    old = load_run_results(make_run(tmp_path / "old", everything=False))
    assert all(  # not written by older versions: absent (None), shown as n/a (NaN) in Table 1
        v is None
        for v in (
            old.evaluation.oracle_aurc,
            old.evaluation.excess_aurc,
            old.evaluation.error_auroc,
            old.evaluation.augrc,
        )
    )
    undefined = load_run_results(
        make_run(tmp_path / "null", everything=False, decomposition={**DECOMPOSITION, "error_auroc": None})
    )
    assert math.isnan(undefined.evaluation.error_auroc) and undefined.evaluation.augrc == 0.0456
    data = collect_report([tmp_path / "old", tmp_path / "new"])
    assert data.table1.has_decomposition
    row = data.table1.rows[1]
    assert (row.oracle_aurc, row.excess_aurc, row.augrc, row.error_auroc) == (0.1, 0.0234, 0.0456, 0.875)
    assert math.isnan(data.table1.rows[0].oracle_aurc)
    assert not collect_report([tmp_path / "old"]).table1.has_decomposition


def test_load_run_results_reads_bootstrap_intervals_and_summary_metrics(tmp_path: Path) -> None:
    extra = {"reference_sha256": "ab" * 32, "oracle_aurc": 0.05, "error_auroc": None}
    new = load_run_results(make_run(tmp_path / "new", everything=False, bootstrap=True, extra=extra))
    assert new.evaluation.aurc_ci == pytest.approx((0.1134, 0.1384))
    assert new.evaluation.bootstrap is not None and new.evaluation.bootstrap["n_resamples"] == 1000
    p1 = new.evaluation.point(1.0)
    assert p1 is not None and p1.dice_ci == pytest.approx((0.73, 0.76))
    assert new.evaluation.reference_sha256 == "ab" * 32
    assert (
        new.evaluation.headline()["aurc"] == pytest.approx(0.1234) and new.evaluation.headline()["oracle_aurc"] == 0.05
    )
    assert math.isnan(new.evaluation.headline()["error_auroc"]) and "augrc" not in new.evaluation.headline()
    old = load_run_results(make_run(tmp_path / "old", everything=False))  # written before the bootstrap
    assert (
        old.evaluation.aurc_ci is None and old.evaluation.bootstrap is None and old.evaluation.reference_sha256 is None
    )
    assert all(p.dice_ci is None for p in old.evaluation.points) and set(old.evaluation.headline()) == {"aurc"}
    data = collect_report([tmp_path / "new", tmp_path / "old"])
    assert data.table1.rows[0].aurc_ci == new.evaluation.aurc_ci and data.table1.rows[1].aurc_ci is None
