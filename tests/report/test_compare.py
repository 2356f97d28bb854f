from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from selectseg.metrics import UndefinedMetricWarning, paired_comparison
from selectseg.report import compare_runs, load_comparison, write_comparison, write_report
from selectseg.report.compare import RunComparison

from ._fixtures import BASE_COVERAGE, BASE_DICE, CASES, COVERAGES, make_run, table_rows, write_config

SEEDS = (0, 1, 2)
CANDIDATE_AURC = (0.10, 0.12, 0.08)  # differences -0.02, -0.03, -0.01: the hand example of tests/metrics/test_paired
REFERENCE_AURC = (0.12, 0.15, 0.09)


def _shifted(dice: dict, shift: float, cases: tuple[str, ...]) -> dict:
    """``dice`` + ``shift`` for ``cases`` (0.7 + shift for a case it lacks)."""
    return {c: {k: values.get(k, 0.7) + shift for k in cases} for c, values in dice.items()}


def seeded_run(folder: Path, seed: int, *, aurc: float, shift: float = 0.0, **options) -> Path:
    """An evaluated run (evaluation files only) with ``config.yaml`` recording ``seed``; Dice raised by ``shift``."""
    extra = {"reference_sha256": "ab" * 32, **options.pop("extra", {})}
    cases = options.get("cases") or CASES
    options["cases"] = cases
    coverage = _shifted(BASE_COVERAGE, 0.0, cases)
    make_run(folder, _shifted(BASE_DICE, shift, cases), coverage, everything=False, aurc=aurc, extra=extra, **options)
    write_config(folder, seed=seed)
    return folder


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[list[Path], list[Path]]:
    """Candidate and reference runs of seeds 0, 1, 2: the candidate has the lower AURC and Dice up 0.01 + 0.01 s."""
    cand = [
        seeded_run(tmp_path / f"rank_s{s}", s, aurc=a, shift=0.01 * (s + 1), extra={"oracle_aurc": 0.05 - 0.01 * s})
        for s, a in zip(SEEDS, CANDIDATE_AURC)
    ]
    ref = [
        seeded_run(tmp_path / f"base_s{s}", s, aurc=a, extra={"oracle_aurc": 0.06, "error_auroc": 0.7})
        for s, a in zip(SEEDS, REFERENCE_AURC)
    ]
    return cand, ref


def test_compare_runs_pairs_by_seed_hand_computed(seeded: tuple[list[Path], list[Path]]) -> None:
    cand, ref = seeded
    comp = compare_runs(cand[::-1], [ref[1], ref[0], ref[2]], candidate_label="rank", reference_label="base")
    assert comp.seeds == SEEDS and comp.candidate_runs == tuple(str(c) for c in cand)
    assert comp.num_cases == 4 and comp.reference_sha256 == "ab" * 32 and comp.coverages == COVERAGES
    names = [m.metric for m in comp.metrics]
    assert names == ["aurc", *[f"dice@{c}" for c in COVERAGES], "oracle_aurc"]
    aurc = comp.metric("aurc")
    assert aurc is not None and not aurc.higher_is_better
    assert aurc.candidate == CANDIDATE_AURC and aurc.reference == REFERENCE_AURC
    assert aurc.result.mean == pytest.approx(-0.02) and aurc.result.sd == pytest.approx(0.01)
    assert (aurc.result.better, aurc.result.worse, aurc.result.equal) == (3, 0, 0)
    assert aurc.result.sign_p_value == 0.25 and aurc.result.p_value == pytest.approx(1 - (12 / 14) ** 0.5)
    # Dice at coverage 1: the candidate's per-image Dice is the reference's + 0.01 (s + 1): differences .01, .02, .03.
    dice = comp.metric("dice@1.0")
    assert dice is not None and dice.higher_is_better
    np.testing.assert_allclose(dice.result.differences, [0.01, 0.02, 0.03], atol=1e-12)
    assert dice.reference == pytest.approx((0.75,) * 3) and dice.result.better == 3
    ref_t = stats.ttest_rel(dice.candidate, dice.reference)
    assert dice.result.p_value == pytest.approx(ref_t.pvalue) and dice.result.t_statistic == pytest.approx(
        ref_t.statistic
    )
    oracle = comp.metric("oracle_aurc")
    assert oracle is not None and oracle.result.mean == pytest.approx(-0.02)  # 0.05 - 0.01 s against 0.06
    assert comp.metric("error_auroc") is None
    assert any("error_auroc: not in every run's evaluation.json (3 of 6)" in n for n in comp.notes)


def test_compare_runs_skips_a_metric_undefined_for_some_seed(tmp_path: Path) -> None:
    cand = [seeded_run(tmp_path / f"c{s}", s, aurc=0.1, extra={"augrc": 0.02 if s else None}) for s in SEEDS[:2]]
    ref = [seeded_run(tmp_path / f"r{s}", s, aurc=0.1 + 0.01 * s, extra={"augrc": 0.03}) for s in SEEDS[:2]]
    comp = compare_runs(cand, ref)
    assert comp.metric("augrc") is None and any("augrc: undefined (NaN)" in n for n in comp.notes)
    # Equal Dice on every seed: the t statistic is undefined and the notes say why instead of a warning.
    assert math.isnan(comp.metric("dice@1.0").result.p_value)  # type: ignore[union-attr]
    assert any(n.startswith("dice@1.0: Every paired difference is equal") for n in comp.notes)


def test_compare_runs_with_one_seed_warns(tmp_path: Path) -> None:
    cand = seeded_run(tmp_path / "c", 4, aurc=0.1)
    ref = seeded_run(tmp_path / "r", 4, aurc=0.2)
    with pytest.warns(UndefinedMetricWarning, match="One seed"):
        comp = compare_runs([cand], [ref])
    assert comp.seeds == (4,) and math.isnan(comp.metrics[0].result.p_value)
    assert comp.metrics[0].result.better == 1 and any(n.startswith("One seed") for n in comp.notes)


def test_compare_runs_notes_evaluations_without_a_fingerprint(tmp_path: Path) -> None:
    cand = [seeded_run(tmp_path / f"c{s}", s, aurc=0.1 + s / 100) for s in SEEDS[:2]]
    old = []
    for s in SEEDS[:2]:
        old.append(make_run(tmp_path / f"old{s}", everything=False, aurc=0.2))  # written before reference_sha256
        write_config(old[-1], seed=s)
    comp = compare_runs(cand, old)
    assert any("Data checked by case ids only for 2 run(s)" in n for n in comp.notes)


def test_write_and_load_comparison_round_trip(seeded: tuple[list[Path], list[Path]], tmp_path: Path) -> None:
    comp = compare_runs(*seeded, candidate_label="rank", reference_label="base")
    folder = write_comparison(comp, tmp_path / "cmp")
    assert sorted(p.name for p in folder.iterdir()) == ["compare.csv", "compare.json"]
    back = load_comparison(folder)
    assert back.to_json() == comp.to_json() == load_comparison(folder / "compare.json").to_json()
    assert isinstance(back, RunComparison) and back.metric("aurc").result.sign_p_value == 0.25  # type: ignore[union-attr]
    rows = list(csv.DictReader((folder / "compare.csv").open()))
    assert [r["metric"] for r in rows] == [m.metric for m in comp.metrics]
    assert rows[0]["higher_is_better"] == "False" and float(rows[0]["mean_difference"]) == pytest.approx(-0.02)
    assert float(rows[0]["difference_seed_1"]) == pytest.approx(-0.03) and rows[0]["better"] == "3"
    saved = json.loads((folder / "compare.json").read_text())
    assert saved["unit"] == "training run (paired by seed)" and saved["seeds"] == [0, 1, 2]
    with pytest.raises(ValueError, match="does not exist; run `selectseg compare`"):
        load_comparison(tmp_path / "nowhere")
    (tmp_path / "bad.json").write_text(json.dumps({"seeds": [0]}))
    with pytest.raises(ValueError, match="comparison JSON object with key 'metrics'"):
        load_comparison(tmp_path / "bad.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_comparison(tmp_path / "broken.json")


def _expect_refusal(cand: list[Path], ref: list[Path], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        compare_runs(cand, ref)


def test_compare_runs_refuses_unpaired_seeds(seeded: tuple[list[Path], list[Path]], tmp_path: Path) -> None:
    cand, ref = seeded
    _expect_refusal(cand, ref[:2], r"seeds \[2\] have no reference run and seeds none have no candidate run")
    extra = seeded_run(tmp_path / "again_s1", 1, aurc=0.1)
    _expect_refusal([*cand, extra], ref, "one candidate run per seed, but seed 1 is in both")
    (cand[0] / "config.yaml").unlink()
    _expect_refusal(cand, ref, "has no config.yaml")
    (cand[0] / "config.yaml").write_text("data:\n  format: synthetic\n")
    _expect_refusal(cand, ref, "integer `seed`")
    with pytest.raises(ValueError, match="`references` to be a non-empty list"):
        compare_runs(cand, [])
    with pytest.raises(ValueError, match=r"`confidence_level` to be a float in \(0, 1\)"):
        compare_runs(cand, ref, confidence_level=1.5)
    with pytest.raises(TypeError, match="`confidence_level`"):
        compare_runs(cand, ref, confidence_level="0.9")  # type: ignore[arg-type]


def test_compare_runs_refuses_different_evaluations(tmp_path: Path) -> None:
    ref = [seeded_run(tmp_path / f"r{s}", s, aurc=0.1) for s in SEEDS[:2]]

    def candidate(name: str, **options) -> list[Path]:
        return [
            seeded_run(tmp_path / f"{name}0", 0, aurc=0.1),
            seeded_run(tmp_path / f"{name}1", 1, aurc=0.1, **options),
        ]

    _expect_refusal(
        candidate("cases", cases=("a", "b", "c", "e")),
        ref,
        r"same cases.*only in the first 1 \('d'\), only in the second 1 \('e'\)",
    )
    _expect_refusal(candidate("sha", extra={"reference_sha256": "cd" * 32}), ref, "reference labels .* differ")
    _expect_refusal(candidate("cov", coverages=(1.0, 0.9)), ref, "same target coverages")
    classes = candidate("k")
    content = json.loads((classes[1] / "evaluation" / "evaluation.json").read_text())
    (classes[1] / "evaluation" / "evaluation.json").write_text(json.dumps({**content, "num_classes": 3}))
    _expect_refusal(classes, ref, "has 2 classes and .* 3")
    unevaluated = candidate("ev")
    shutil.rmtree(unevaluated[1] / "evaluation")
    _expect_refusal(unevaluated, ref, "has no evaluation results")


def test_report_includes_the_paired_comparison(seeded: tuple[list[Path], list[Path]], tmp_path: Path) -> None:
    cand, ref = seeded
    folder = write_comparison(compare_runs(cand, ref, candidate_label="rank", reference_label="base"), tmp_path / "c")
    html = write_report([cand[0], ref[0]], tmp_path / "r.html", figure_formats=(), comparisons=[folder]).read_text()
    assert 'id="paired-comparison"' in html and "rank vs base: 3 seeds (0, 1, 2), 4 cases" in html
    rows = table_rows(html, "paired-0")
    assert rows[0][:5] == ["metric", "better is", "rank (mean)", "base (mean)", "difference [95 % CI]"]
    half = 100 * stats.t.ppf(0.975, 2) * 0.01 / 3**0.5
    assert rows[1] == [
        "aurc",
        "lower",
        "10.00",
        "12.00",
        f"-2.00 [{-2 - half:+.2f}, {-2 + half:+.2f}]",
        "1.00",
        f"{1 - (12 / 14) ** 0.5:.3g}",
        "0.25",
        "3 / 0 / 0",
    ]
    assert rows[2][:3] == ["dice@1.0", "higher", "77.00"]  # 75 + 1, 2, 3
    assert "error_auroc: not in every run" in html
    with pytest.raises(ValueError, match="does not exist"):
        write_report([cand[0]], tmp_path / "x.html", figure_formats=(), comparisons=[tmp_path / "none.json"])


def test_paired_comparison_is_what_compare_uses(seeded: tuple[list[Path], list[Path]]) -> None:
    comp = compare_runs(*seeded)
    for m in comp.metrics:
        direct = paired_comparison(m.candidate, m.reference, higher_is_better=m.higher_is_better)
        assert direct.to_json() == m.result.to_json()
