from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from selectseg.cli import app
from selectseg.demo import COVERAGES, RUNS
from selectseg.runs.config import recommended_overrides


def test_demo_quick_trains_both_runs_and_compares(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), "--quick"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [row["run"] for row in summary["table"]] == [name for name, _ in RUNS]
    for row in summary["table"]:
        assert 0 <= row["aurc"] <= 1
        assert row["aurc"] == pytest.approx(row["oracle_aurc"] + row["excess_aurc"], abs=1e-12)
        assert row["error_auroc"] is None or 0 <= row["error_auroc"] <= 1
        assert all(0 <= row[f"dice@{c}"] <= 1 and row[f"coverage@{c}"] <= c for c in COVERAGES)
    for name, _ in RUNS:
        assert (tmp_path / name / "model.pt").is_file()
        assert (tmp_path / name / "evaluation" / "evaluation.json").is_file()
    assert (tmp_path / "comparison.csv").read_text().startswith("run,ranking,aurc")
    assert "uncertainty_aware" in result.output and "AURC" in result.output and "excess" in result.output
    assert summary["reading"].startswith("The uncertainty-aware run")
    assert " ".join(summary["reading"].split()[:6]) in " ".join(result.output.split())
    configs = {name: yaml.safe_load((tmp_path / name / "config.yaml").read_text()) for name, _ in RUNS}
    for item in recommended_overrides(2):  # the aware run uses the study's recommended settings (quick: 2 epochs)
        key, value = item.split("=")
        section, name = key.split(".")
        assert str(configs["uncertainty_aware"][section][name]) in (
            value,
            str(float(value)) if value[0].isdigit() else value,
        )
    assert configs["baseline"]["loss"]["ranking"] == "none"
    assert {c["optim"]["schedule"] for c in configs.values()} == {"poly"}  # only the loss differs
    # Run again: both runs are finished, so it resumes instantly and gives the same numbers.
    assert "baseline: training a baseline" in result.output and "evaluating on 4 held-out" in result.output
    again = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), "--quick"], catch_exceptions=False)
    assert again.exit_code == 0
    assert json.loads((tmp_path / "summary.json").read_text())["table"] == summary["table"]
    # the rerun says what it reused, and trains nothing
    assert "baseline: reusing the trained run" in again.output and "reusing its evaluation" in again.output
    assert "training a" not in again.output
    # another seed into the same folder is refused, naming the folder
    other = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), "--quick", "--seed", "1"])
    assert other.exit_code == 2 and "other settings" in other.output


def test_version_option() -> None:
    from selectseg import __version__

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"selectseg {__version__}"
