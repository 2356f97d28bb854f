from __future__ import annotations

import json

from typer.testing import CliRunner

from selectseg.cli import app


def test_demo_quick_writes_summary_and_ranks_scores_sensibly(tmp_path):
    result = CliRunner().invoke(app, ["demo", "--quick", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    aurc = {row["uncertainty"]: row["aurc"] for row in summary["table"]}
    # The oracle ranks every error last, a random score ranks none: the real scores must lie strictly between.
    assert aurc["oracle (errors last)"] < aurc["max_softmax"] < aurc["random (control)"]
    assert summary["ranking_loss"]["exact"] > 0
    header = (tmp_path / "curves.csv").read_text().splitlines()[0]
    assert header == "uncertainty,threshold,coverage,dice"
    assert not list(tmp_path.glob("*.tmp"))
