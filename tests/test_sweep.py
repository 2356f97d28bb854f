from __future__ import annotations

import csv
import json
import math
import subprocess
from pathlib import Path

import pytest

from selectseg.sweep import parse_grid, plan_sweep, run_sweep
from selectseg.training import load_config

from .training.test_loop import TINY

BASE = [*TINY, "optim.epochs=1", "loss.ranking=exact"]
SAMPLED = [*TINY, "optim.epochs=1", "loss.ranking=sampled"]  # where loss.n_correct matters


def test_parse_grid_keys_and_errors() -> None:
    grid = parse_grid(["ranking_weight=0.5,1", "loss.n_correct=2200,4400", "model.channels=[4,8],[8,16]"])
    assert grid == {
        "loss.ranking_weight": ["0.5", "1"],
        "loss.n_correct": ["2200", "4400"],
        "model.channels": ["[4,8]", "[8,16]"],
    }
    with pytest.raises(ValueError, match="Did you mean 'ranking_weight'"):
        parse_grid(["ranking_wieght=1,2"])
    assert parse_grid(["name=unet,dynunet"]) == {"model.name": ["unet", "dynunet"]}
    with pytest.raises(ValueError, match="given twice"):
        parse_grid(["ranking_weight=1", "loss.ranking_weight=2"])
    with pytest.raises(ValueError, match="--seeds"):
        parse_grid(["seed=1,2"])
    with pytest.raises(ValueError, match="key=v1,v2"):
        parse_grid(["ranking_weight"])


def test_plan_checks_every_value_before_running() -> None:
    base = load_config(overrides=SAMPLED)
    runs = plan_sweep(base, parse_grid(["ranking_weight=1,2", "n_correct=10,20,30"]), seeds=[0, 1])
    assert len(runs) == 12 and len({r.name for r in runs}) == 12
    assert runs[0].params == {"loss.ranking_weight": 1.0, "loss.n_correct": 10} and runs[0].config.seed == 0
    with pytest.raises(ValueError, match=r"loss.n_correct.*an integer, but got 'many'"):
        plan_sweep(base, parse_grid(["n_correct=10,many"]), seeds=[0])
    with pytest.raises(ValueError, match=r"loss.ranking_weight` >= 0"):
        plan_sweep(base, parse_grid(["ranking_weight=-1"]), seeds=[0])


def test_sweep_runs_resumes_collects_and_refuses_another_config(tmp_path: Path) -> None:
    base = load_config(overrides=BASE)
    grid = parse_grid(["ranking_weight=1,4"])
    seen: list[tuple[str, str]] = []
    rows = run_sweep(base, grid, tmp_path, seeds=[0], on_run=lambda n, s: seen.append((n, s)))
    assert [s for _, s in seen] == ["done", "done"] and len(rows) == 2
    first = tmp_path / "runs" / rows[0]["name"]
    evaluation = json.loads((first / "evaluation" / "evaluation.json").read_text())
    assert rows[0]["aurc"] == evaluation["aurc"] and rows[0]["loss.ranking_weight"] == 1.0
    table = list(csv.DictReader((tmp_path / "sweep.csv").open()))
    assert [float(r["loss.ranking_weight"]) for r in table] == [1.0, 4.0]
    for key in ("oracle_aurc", "excess_aurc", "error_auroc", "augrc"):  # beside AURC, from evaluation.json
        assert float(table[0][key]) == rows[0][key] == evaluation[key]
    summary = json.loads((tmp_path / "summary.json").read_text())
    point = summary["parameters"]["loss.ranking_weight"][1]
    assert point["value"] == 4.0 and point["runs"] == 1 and point["aurc_mean"] == pytest.approx(rows[1]["aurc"])
    assert (tmp_path / "figures" / "loss.ranking_weight.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "figures" / "loss.ranking_weight.svg").is_file()
    # Again: nothing is repeated. A grown grid adds only the new run.
    stamp = (first / "model.pt").stat().st_mtime_ns
    seen.clear()
    rows = run_sweep(
        base, parse_grid(["ranking_weight=1,4,8"]), tmp_path, seeds=[0], on_run=lambda n, s: seen.append((n, s))
    )
    assert [s for _, s in seen] == ["skipped", "skipped", "done"] and len(rows) == 3
    assert (first / "model.pt").stat().st_mtime_ns == stamp
    # An interrupted run (model and evaluation gone, checkpoint kept) resumes instead of starting over.
    metrics = (first / "metrics.csv").read_text()
    (first / "model.pt").unlink()
    (first / "evaluation" / "evaluation.json").unlink()
    run_sweep(base, grid, tmp_path, seeds=[0])
    assert (first / "model.pt").is_file() and (first / "metrics.csv").read_text() == metrics
    other = load_config(overrides=[*BASE, "optim.lr=0.1"])
    with pytest.raises(ValueError, match=r"different base config \(differs in \['optim.lr'\]\)"):
        run_sweep(other, grid, tmp_path, seeds=[0])


def test_collect_reads_runs_evaluated_before_the_aurc_split_as_nan(tmp_path: Path) -> None:
    from selectseg.sweep import collect_sweep

    runs = plan_sweep(load_config(overrides=BASE), parse_grid(["ranking_weight=1"]), seeds=[0])
    run_dir = tmp_path / "runs" / runs[0].name
    (run_dir / "evaluation").mkdir(parents=True)
    (run_dir / "model.pt").write_bytes(b"")
    (run_dir / "metrics.csv").write_text("epoch,seconds\n0,1.5\n")
    old = {"aurc": 0.1, "error_auroc": None, "table": [{"target_coverage": 1.0, "dice_mean": 0.8}]}
    (run_dir / "evaluation" / "evaluation.json").write_text(json.dumps(old))
    (run_dir / "evaluation" / "curve.csv").write_text("coverage,dice\n0.0,1.0\n1.0,0.8\n")  # evaluate always wrote it
    row = collect_sweep(tmp_path, runs)[0]
    assert row["aurc"] == 0.1 and row["dice"] == 0.8
    assert all(math.isnan(row[k]) for k in ("oracle_aurc", "excess_aurc", "error_auroc", "augrc"))
    line = next(csv.DictReader((tmp_path / "sweep.csv").open()))
    assert line["oracle_aurc"] == "nan" and line["aurc"] == "0.1"


def test_sweep_submit_template_then_collect(tmp_path: Path) -> None:
    base = load_config(overrides=BASE)
    jobs = tmp_path / "jobs.sh"
    out = tmp_path / "sweep"
    rows = run_sweep(base, parse_grid(["ranking_weight=2"]), out, submit=f"printf '%s\\n' {{command}} >> {jobs}")
    assert rows == []  # submitted, not run
    lines = jobs.read_text().splitlines()
    assert len(lines) == 1 and "-m selectseg train" in lines[0] and "-m selectseg evaluate" in lines[0]
    subprocess.run(["bash", str(jobs)], check=True, capture_output=True)  # the "scheduler" runs the job
    rows = run_sweep(base, parse_grid(["ranking_weight=2"]), out, collect_only=True)
    assert len(rows) == 1 and 0 <= rows[0]["aurc"] <= 1
    with pytest.raises(ValueError, match=r"\{command\}"):
        run_sweep(base, parse_grid(["ranking_weight=2"]), out, submit="sbatch job.sh")


_RECORDER = "import json, sys\nopen(sys.argv[1], 'a').write(json.dumps(sys.argv[2:]) + '\\n')\n"


@pytest.mark.parametrize("tail", ["a; touch PWNED #", "with  spaces", "$HOME", 'q"; touch PWNED; echo "`id`'])
def test_sweep_submit_quotes_every_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tail: str) -> None:
    """A --out holding ';', spaces, '$', quotes or backquotes runs nothing and arrives intact in every field."""
    import shlex
    import sys

    monkeypatch.chdir(tmp_path)
    recorder, log = tmp_path / "record.py", tmp_path / "argv.jsonl"
    recorder.write_text(_RECORDER)
    out = tmp_path / tail
    recording = " ".join(shlex.quote(str(p)) for p in (sys.executable, recorder, log))
    template = f"{recording} {{run_dir}} {{name}} {{command}}"
    base = load_config(overrides=BASE)
    assert run_sweep(base, parse_grid(["ranking_weight=2"]), out, submit=template) == []
    (argv,) = [json.loads(line) for line in log.read_text().splitlines()]
    run_dir, name, command = argv
    assert name == "ranking_weight=2__seed=0" and run_dir == str(out / "runs" / name)
    words = shlex.split(command)  # {command} is one word holding a command line whose paths are intact
    assert words[words.index("--out") + 1] == run_dir and words[words.index("evaluate") + 1] == run_dir
    assert str(out / "configs" / f"{name}.yaml") in words
    assert not list(tmp_path.rglob("PWNED"))


@pytest.mark.parametrize(
    "template, match",
    [
        ("sbatch job.sh", r"to contain \{command\}"),
        ('sbatch --wrap "{command}"', r"\{command\} to stand outside quotes"),
        ("sbatch -J '{name}' --wrap {command}", r"\{name\} to stand outside quotes"),
        ("sbatch --wrap {command} -o x\\{run_dir}", r"\{run_dir\} to stand outside quotes"),
        ("sbatch --wrap {command} --job={job}", r"among .*but got \{job\}"),
        ("sbatch --wrap {command!r}", r"no format spec or conversion .*but got \{command!r\}"),
        ("sbatch --wrap {command:>9}", r"but got \{command:>9\}"),
        ("sbatch --wrap {}", r"but got \{\}"),
        ("sbatch --wrap {command", "balanced braces"),
        ("sbatch --wrap {command} 'open", "close its ' quote"),
    ],
)
def test_sweep_submit_template_contract_is_checked_before_anything_runs(
    tmp_path: Path, template: str, match: str
) -> None:
    base = load_config(overrides=BASE)
    with pytest.raises(ValueError, match=match):
        run_sweep(base, parse_grid(["ranking_weight=2"]), tmp_path / "sw", submit=template)
    assert not (tmp_path / "sw").exists()


def test_sweep_submit_template_accepts_quotes_and_braces_around_fields(tmp_path: Path) -> None:
    from selectseg.sweep import _check_submit_template

    for template in (
        "sbatch -J {name} -o {run_dir}/slurm-%j.log --wrap {command}",
        'echo \'a "b"\' "it\'s" {command}',
        "awk '{{print}}' x; bash -c {command}",
        "printf '%s\\n' {command} >> jobs",
    ):
        _check_submit_template(template)


def test_sweep_workers_in_processes(tmp_path: Path) -> None:
    base = load_config(overrides=BASE)
    rows = run_sweep(base, parse_grid(["ranking_weight=1,2"]), tmp_path, workers=2)
    assert len(rows) == 2 and all((tmp_path / "runs" / r["name"] / "model.pt").is_file() for r in rows)


def _fake_finished_run(folder: Path, seed: int, aurc: float) -> None:
    """An evaluated run as collect_sweep sees it: evaluation files, config.yaml with the seed, model.pt, metrics.csv."""
    from .report.test_compare import seeded_run

    seeded_run(folder, seed, aurc=aurc)
    (folder / "model.pt").write_bytes(b"")
    (folder / "metrics.csv").write_text("epoch,seconds\n1,2.5\n")


def test_collect_sweep_compares_each_grid_point_with_the_reference_by_seed(tmp_path: Path) -> None:
    from selectseg.report import load_comparison
    from selectseg.sweep import collect_sweep, parse_reference

    grid = parse_grid(["ranking_weight=0,2,4", "n_correct=2200"])
    runs = plan_sweep(load_config(overrides=SAMPLED), grid, seeds=[0, 1, 2])
    for r in runs:
        weight = r.params["loss.ranking_weight"]
        if weight == 4.0 and r.seed == 2:
            continue  # unfinished: the point is compared over seeds 0 and 1
        _fake_finished_run(tmp_path / "runs" / r.name, r.seed, aurc=0.1 - 0.005 * weight + 0.001 * r.seed**2)
    reference = parse_reference(grid, ["ranking_weight=0"])
    rows = collect_sweep(tmp_path, runs, reference=reference)
    assert len(rows) == 8
    comparisons = json.loads((tmp_path / "summary.json").read_text())["comparisons"]
    assert comparisons["reference"] == "ranking_weight=0__n_correct=2200"
    points = {p["point"]: p for p in comparisons["points"]}
    assert set(points) == {"ranking_weight=2__n_correct=2200", "ranking_weight=4__n_correct=2200"}
    two, four = points["ranking_weight=2__n_correct=2200"], points["ranking_weight=4__n_correct=2200"]
    assert two["seeds"] == [0, 1, 2] and four["seeds"] == [0, 1]
    assert two["aurc_difference"] == pytest.approx(-0.01) and four["aurc_difference"] == pytest.approx(-0.02)
    comparison = load_comparison(tmp_path / two["folder"])
    assert comparison.reference_label == comparisons["reference"] and comparison.seeds == (0, 1, 2)
    aurc = comparison.metric("aurc")
    assert aurc is not None and aurc.result.better == 3
    # A point with no seed finished on both sides is reported, not compared.
    for seed in (0, 1):
        (
            tmp_path
            / "runs"
            / next(r.name for r in runs if r.seed == seed and r.params["loss.ranking_weight"] == 4.0)
            / "model.pt"
        ).unlink()
    collect_sweep(tmp_path, runs, reference=reference)
    points = {p["point"]: p for p in json.loads((tmp_path / "summary.json").read_text())["comparisons"]["points"]}
    assert points["ranking_weight=4__n_correct=2200"]["error"].startswith("no seed finished")
    assert not (tmp_path / "compare" / "ranking_weight=4__n_correct=2200").exists()


def test_parse_reference_names_one_grid_point() -> None:
    from selectseg.sweep import parse_reference

    grid = parse_grid(["ranking_weight=0,2", "n_correct=2200,4400", "lr=0.001"])
    assert parse_reference(grid, ["ranking_weight=0", "loss.n_correct=4400"]) == {
        "loss.ranking_weight": "0",
        "loss.n_correct": "4400",
        "optim.lr": "0.001",
    }
    with pytest.raises(ValueError, match=r"to give 'loss.n_correct' \(one of \['2200', '4400'\]\)"):
        parse_reference(grid, ["ranking_weight=0"])
    with pytest.raises(ValueError, match=r"one of the grid's \['0', '2'\], but got '1'"):
        parse_reference(grid, ["ranking_weight=1", "n_correct=2200"])
    with pytest.raises(ValueError, match="is not swept"):
        parse_reference(grid, ["epochs=3"])
    with pytest.raises(ValueError, match="given twice"):
        parse_reference(grid, ["ranking_weight=0", "loss.ranking_weight=0", "n_correct=2200"])
    with pytest.raises(ValueError, match="`key=value`"):
        parse_reference(grid, ["ranking_weight"])
    with pytest.raises(ValueError, match="Did you mean"):
        parse_reference(grid, ["ranking_wieght=0"])
    with pytest.raises(ValueError, match="to give"):  # refused by run_sweep before anything runs
        run_sweep(load_config(overrides=SAMPLED), grid, Path("/nonexistent/sweep"), reference=[])


def test_a_grid_key_without_effect_is_refused() -> None:
    base = load_config(overrides=TINY)  # loss.ranking: none
    with pytest.raises(ValueError, match=r"'loss\.ranking_weight' has no effect.*loss\.ranking is none"):
        plan_sweep(base, parse_grid(["ranking_weight=500,1000"]), seeds=[0])
    with pytest.raises(ValueError, match=r"'loss\.n_wrong' has no effect.*not sampled"):
        plan_sweep(load_config(overrides=[*BASE, "loss.ranking=exact"]), parse_grid(["n_wrong=100,300"]), seeds=[0])
    # the same key matters once the ranking loss is on, or when the grid switches it on for some points
    assert (
        len(
            plan_sweep(
                load_config(overrides=[*BASE, "loss.ranking=exact"]), parse_grid(["ranking_weight=500,1000"]), seeds=[0]
            )
        )
        == 2
    )
    assert len(plan_sweep(base, parse_grid(["ranking=none,exact", "ranking_weight=500,1000"]), seeds=[0])) == 4
    assert len(plan_sweep(base, parse_grid(["ranking_weight=500"]), seeds=[0])) == 1  # one value: nothing swept


def test_sweep_step_killed_as_its_evaluation_is_published_runs_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from selectseg import _io
    from selectseg.results import EvaluationResult

    base = load_config(overrides=BASE)
    grid = parse_grid(["ranking_weight=1"])
    real = os.replace

    def replace(a: object, b: object) -> None:
        if ".partial" in str(a) and ".partial" not in str(b) and str(b).endswith("evaluation.json"):
            raise KeyboardInterrupt("killed as evaluation.json was about to appear")
        real(a, b)  # type: ignore[arg-type]

    monkeypatch.setattr(_io.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(base, grid, tmp_path, seeds=[0])
    monkeypatch.setattr(_io.os, "replace", real)
    run = next((tmp_path / "runs").iterdir())
    assert (run / "model.pt").is_file() and (run / "evaluation" / "curve.csv").is_file()
    assert not EvaluationResult.exists(run / "evaluation")  # the other files are in, the mark is not: unfinished
    seen: list[tuple[str, str]] = []
    rows = run_sweep(base, grid, tmp_path, seeds=[0], on_run=lambda n, s: seen.append((n, s)))
    assert seen == [(run.name, "done")] and len(rows) == 1  # evaluated again, not skipped forever
    assert EvaluationResult.exists(run / "evaluation") and not (run / ".lock").exists()
