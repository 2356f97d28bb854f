"""Killed evaluate/predict: the folder holds the old complete output or none (no mark file), never a mix; and the run
folder is locked while they write into it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from selectseg.evaluation import evaluate_cases, load_run, predict_cases
from selectseg.results import EvaluationResult
from selectseg.runs import folder
from selectseg.runs.data import load_cases
from selectseg.training import load_config, train

from ..training.test_loop import TINY

KILLER = """
import os, signal, sys
from selectseg import _io
from selectseg.evaluation import evaluate_cases, load_run, predict_cases
from selectseg.runs.data import load_cases

what, run_dir, out, kill_case, kill_move = sys.argv[1:]
run = load_run(run_dir, device="cpu")
cases = list(load_cases(run.config.data, split="test").cases)
seen = [0]

def on_case(case_id):
    seen[0] += 1
    if seen[0] == int(kill_case):
        os.kill(os.getpid(), signal.SIGKILL)

real, moves = os.replace, [0]

def replace(a, b):
    if ".partial" in str(a) and ".partial" not in str(b):  # a publish move, from the staging folder into place
        if moves[0] == int(kill_move):
            os.kill(os.getpid(), signal.SIGKILL)
        moves[0] += 1
    real(a, b)

_io.os.replace = replace
if what == "evaluate":
    evaluate_cases(run, cases, out, n_resamples=0, on_case=on_case)
else:
    predict_cases(run, cases, out, coverage=0.5, on_case=on_case)
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "run"
    train(load_config(overrides=[*TINY, "optim.epochs=1", "loss.ranking=exact"]), out)
    return out


def snapshot(out: Path) -> dict[str, bytes]:
    """The output's files (not the lock file, temp files or staging folders a kill leaves: those start with '.')."""
    files = (p for p in out.rglob("*") if p.is_file())
    return {str(p.relative_to(out)): p.read_bytes() for p in files if not str(p.relative_to(out)).startswith(".")}


def kill(what: str, run_dir: Path, out: Path, *, case: int = 0, move: int = -1) -> None:
    args = [what, str(run_dir), str(out), str(case), str(move)]
    result = subprocess.run([sys.executable, "-c", KILLER, *args], capture_output=True, text=True, check=False)
    assert result.returncode == -9, result.stderr


@pytest.mark.parametrize(("case", "move"), [(1, -1), (0, 0), (0, 2), (0, 4)])
def test_evaluate_killed_leaves_the_old_evaluation_or_none(run_dir: Path, tmp_path: Path, case: int, move: int) -> None:
    run = load_run(run_dir, device="cpu")
    cases = load_cases(run.config.data, split="test").cases
    out = tmp_path / "evaluation"
    old = evaluate_cases(run, cases, out, coverages=[1.0], n_resamples=0)
    before = snapshot(out)
    kill("evaluate", run_dir, out, case=case, move=move)  # after the 1st case, or at the move-th publish rename
    if EvaluationResult.exists(out):
        assert case == 1 and snapshot(out) == before
        assert EvaluationResult.load(out).points[0].target_coverage == old.points[0].target_coverage
    else:  # publishing had started: no evaluation.json, so the folder counts as not evaluated
        assert move >= 0
        with pytest.raises(ValueError, match=r"evaluation\.json' is missing"):
            EvaluationResult.load(out)
    again = evaluate_cases(run, cases, out, n_resamples=0)  # the next evaluation cleans up and completes
    loaded = EvaluationResult.load(out)
    assert loaded.aurc == again.aurc and [p.target_coverage for p in loaded.points] == [
        p.target_coverage for p in again.points
    ]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["evaluation.json", "summary.csv", "curve.csv", "per_image.csv", "montage.npz"]
    )


@pytest.mark.parametrize(("case", "move"), [(2, -1), (0, 1), (0, 6)])
def test_predict_killed_leaves_the_old_predictions_or_none(run_dir: Path, tmp_path: Path, case: int, move: int) -> None:
    run = load_run(run_dir, device="cpu")
    cases = list(load_cases(run.config.data, split="test").cases)
    out = tmp_path / "predictions"
    predict_cases(run, cases, out, threshold=0.0)
    before = snapshot(out)
    kill("predict", run_dir, out, case=case, move=move)
    files = set(snapshot(out))
    if (out / "predictions.json").exists():  # killed while predicting: the old set, whole and alone
        assert move == -1 and snapshot(out) == before
    else:  # killed while publishing: no predictions.json, and no old file left beside new ones
        assert move >= 0 and files <= set(before) - {"predictions.json"}
    summary = predict_cases(run, cases, out, coverage=0.5)
    listed = {name for record in summary["cases"] for name in record["files"].values()}
    assert {p.name for p in out.iterdir()} == listed | {"predictions.json"}


def test_predict_into_a_folder_of_other_files_leaves_them(run_dir: Path, tmp_path: Path) -> None:
    run = load_run(run_dir, device="cpu")
    cases = list(load_cases(run.config.data, split="test").cases)
    (tmp_path / "notes.txt").write_text("mine")
    predict_cases(run, cases[:1], tmp_path, threshold=0.0)
    predict_cases(run, cases[1:], tmp_path, threshold=0.0)  # the first case's files were the old output's
    names = {p.name for p in tmp_path.iterdir()}
    assert "notes.txt" in names and not any(n.startswith(cases[0].case_id) for n in names)
    assert any(n.startswith(cases[1].case_id) for n in names)


def test_evaluate_into_a_locked_run_is_refused_naming_the_holder(run_dir: Path, tmp_path: Path) -> None:
    run = load_run(run_dir, device="cpu")
    cases = load_cases(run.config.data, split="test").cases
    code = (
        "import sys, time\nfrom selectseg.runs import folder\n"
        "with folder.lock(sys.argv[1], purpose='train'):\n    print('held', flush=True)\n    time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(run_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(ValueError, match=rf"is locked by pid {holder.pid} .*train"):
            evaluate_cases(run, cases, run_dir / folder.EVALUATION_DIR, n_resamples=0)
        with pytest.raises(ValueError, match="is locked by pid"):
            predict_cases(run, cases, run_dir / folder.PREDICTIONS_DIR)
        evaluate_cases(run, cases, tmp_path / "elsewhere", n_resamples=0)  # outside the run: its own folder's lock
    finally:
        holder.kill()
        holder.wait()
    assert not (run_dir / folder.EVALUATION_DIR / "evaluation.json").exists()
    assert os.listdir(tmp_path / "elsewhere")
