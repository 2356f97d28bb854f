from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from selectseg.cli import app

from .training.test_loop import TINY

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("cli") / "run"
    result = invoke("train", "--out", run, *(f"--set={o}" for o in TINY), "--epochs", "1", "--ranking", "sampled")
    assert result.exit_code == 0, result.output
    return run


def test_train_predict_evaluate_from_the_command_line(trained: Path, tmp_path: Path) -> None:
    assert (trained / "model.pt").is_file()
    result = invoke("predict", trained, "--out", tmp_path / "pred", "--coverage", "0.9", "--device", "cpu")
    assert result.exit_code == 0, result.output
    cases = json.loads((tmp_path / "pred" / "predictions.json").read_text())["cases"]
    assert len(cases) == 2 and all(c["coverage"] <= 0.9 for c in cases)
    result = invoke("evaluate", trained, "--out", tmp_path / "ev", "--coverages", "1,0.9", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "AURC" in result.output and "95% CI" in result.output
    saved = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert len(saved["table"]) == 2 and len(saved["aurc_ci"]) == 2 and saved["bootstrap"]["n_resamples"] == 1000
    assert (tmp_path / "ev" / "summary.csv").is_file()


def test_synth_writes_a_dataset_train_reads(tmp_path: Path) -> None:
    result = invoke("synth", tmp_path / "ds", "--cases", "4", "--test-cases", "2", "--size", "16")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "ds" / "dataset.json").is_file()
    run = tmp_path / "run"
    options = [f"--set={o}" for o in TINY if not o.startswith("data.synthetic")]
    result = invoke("train", "--out", run, *options, "--data", tmp_path / "ds", "--epochs", "1")
    assert result.exit_code == 0, result.output
    result = invoke("evaluate", run, "--device", "cpu")  # the run's own data folder, test split (labelsTs)
    assert result.exit_code == 0, result.output
    assert (run / "evaluation" / "evaluation.json").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--set", "loss.rankng=exact"], "Did you mean 'loss.ranking'"),
        (["train", "--ranking", "exat"], "Did you mean 'exact'"),
        (["train", "--data", "/nonexistent/folder"], "/nonexistent/folder"),
        (["train", "--resume"], "Cannot resume"),
        (["predict", "/nonexistent/run", "--out", "x"], "not a finished selectseg run"),
        (["evaluate", "/nonexistent/run"], "not a finished selectseg run"),
        (["evaluate", "RUN", "--coverages", "1,abc"], "comma-separated numbers"),
        (["evaluate", "RUN", "--bootstrap", "-1"], "`n_resamples` to be an int >= 0"),
        (["predict", "RUN", "--out", "OUT", "--coverage", "0.9", "--threshold", "0.1"], "either `threshold`"),
        # issue 16: options that used to train one model or write an empty table with exit 0
        (["train", "--ensemble", "0"], "`--ensemble` to be a number of members >= 1 (1 = one network), but got 0"),
        (["train", "--ensemble", "-3"], "but got -3"),
        (["train", "--folds", "1"], "`--folds` to be 0 (no cross-validation) or a number of folds >= 2"),
        (["train", "--folds", "-2"], "but got -2"),
        (["evaluate", "RUN", "--coverages", ""], "`--coverages` to list one or more coverages in [0, 1]"),
        (["evaluate", "RUN", "--coverages", " , "], "one or more coverages"),
        (["evaluate", "RUN", "--coverages", "0.9,1.5"], "one or more coverages in [0, 1], but got '0.9,1.5'"),
        (["train", "--set", "optim.lr=[1, 2"], "value of override 'optim.lr=[1, 2' to be valid YAML"),
        (["train", "--set", "optim..lr=1"], "`section.key=value`"),
    ],
)
def test_user_errors_are_one_line_with_exit_code_2(
    args: list[str], message: str, trained: Path, tmp_path: Path
) -> None:
    args = [str(trained) if a == "RUN" else str(tmp_path / "o") if a == "OUT" else a for a in args]
    if args[0] == "train":
        args += ["--out", str(tmp_path / "new")]
    result = invoke(*args)
    assert result.exit_code == 2
    assert "Error:" in result.output and message in result.output.replace("\n", "")
    assert "Traceback" not in result.output


def test_unknown_option_is_refused() -> None:
    result = runner.invoke(app, ["train", "--epoch", "3"])
    assert result.exit_code == 2
    assert "No such option" in result.output


def test_inspect_prints_and_writes_json(tmp_path: Path) -> None:
    assert invoke("synth", tmp_path / "ds", "--cases", "3", "--test-cases", "1", "--size", "16").exit_code == 0
    result = invoke("inspect", tmp_path / "ds", "--json", tmp_path / "s.json")
    assert result.exit_code == 0, result.output
    assert "format msd" in result.output and "inter-annotator Dice" in result.output
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["num_cases"] == 4 and summary["annotators"] == {"min": 3, "max": 3}
    bad = invoke("inspect", tmp_path / "ds", "--format", "msdd")
    assert bad.exit_code == 2 and "Did you mean 'msd'" in bad.output


def test_inspect_scale_resamples_first(tmp_path: Path) -> None:
    assert invoke("synth", tmp_path / "ds", "--cases", "2", "--test-cases", "1", "--size", "16").exit_code == 0
    result = invoke("inspect", tmp_path / "ds", "--scale", "0.5", "--json", tmp_path / "s.json")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["scale"] == 0.5 and summary["shape"]["max"] == [8, 8] and summary["spacing"]["min"] == [2.0, 2.0]
    bad = invoke("inspect", tmp_path / "ds", "--scale", "0")
    assert bad.exit_code == 2 and "--scale" in bad.output


def test_inspect_shared_qubiq_reports_annotator_agreement(tmp_path: Path) -> None:
    from ._shared_data import shared

    kidney = shared("qubiq_kidney")
    if not kidney.is_dir():
        pytest.skip(f"shared QUBIQ kidney data not found at {kidney} (set SELECTSEG_DATA)")
    result = invoke("inspect", kidney, "--json", tmp_path / "s.json")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["format"] == "qubiq" and summary["num_cases"] == 20
    assert summary["annotators"] == {"min": 3, "max": 3}
    assert summary["inter_annotator_dice"] == pytest.approx([0.94957], abs=1e-4)  # the README's 0.91-0.97 per case


def test_evaluate_with_mc_dropout_and_mutual_information(tmp_path: Path) -> None:
    run = tmp_path / "run"
    options = [f"--set={o}" for o in TINY]
    assert invoke("train", "--out", run, *options, "--set", "model.dropout=0.3", "--epochs", "1").exit_code == 0
    result = invoke(
        "evaluate",
        run,
        "--out",
        tmp_path / "ev",
        "--estimator",
        "mc_dropout",
        "--mc-samples",
        "3",
        "--uncertainty",
        "mutual_information",
        "--device",
        "cpu",
    )
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert saved["estimator"] == "mc_dropout" and saved["estimator_options"] == {"n_samples": 3}
    assert saved["uncertainty"] == "mutual_information"
    single = invoke("evaluate", run, "--out", tmp_path / "ev2", "--uncertainty", "variance", "--device", "cpu")
    assert single.exit_code == 2 and "needs several members" in single.output
    no_dropout = invoke("evaluate", run.parent / "nodrop", "--estimator", "mc_dropout")
    assert no_dropout.exit_code == 2


def test_mc_dropout_on_a_run_without_dropout_is_a_named_error(trained: Path, tmp_path: Path) -> None:
    result = invoke("evaluate", trained, "--out", tmp_path / "e", "--estimator", "mc_dropout", "--device", "cpu")
    assert result.exit_code == 2 and "needs a model with dropout" in result.output


def test_train_ensemble_then_evaluate_it(tmp_path: Path) -> None:
    options = [f"--set={o}" for o in TINY]
    result = invoke("train", "--out", tmp_path / "ens", *options, "--epochs", "1", "--ensemble", "2")
    assert result.exit_code == 0, result.output
    result = invoke(
        "evaluate",
        tmp_path / "ens",
        "--estimator",
        "ensemble",
        "--uncertainty",
        "mutual_information",
        "--device",
        "cpu",
    )
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "ens" / "evaluation" / "evaluation.json").read_text())["estimator"] == "ensemble"


def test_train_method_edue_then_layer_ensemble_estimator(tmp_path: Path) -> None:
    options = [f"--set={o}" for o in TINY]
    run = tmp_path / "edue"
    result = invoke(
        "train", "--out", run, *options, "--method", "edue", "--set", "model.channels=[4,8,8]", "--epochs", "1"
    )
    assert result.exit_code == 0, result.output
    result = invoke("evaluate", run, "--estimator", "layer_ensemble", "--uncertainty", "variance", "--device", "cpu")
    assert result.exit_code == 0, result.output
    bad = invoke("train", "--out", tmp_path / "x", "--method", "edu")
    assert bad.exit_code == 2 and "Did you mean 'edue'" in bad.output


def test_skip_first_and_sv_roi_radius_flags(trained: Path, tmp_path: Path) -> None:
    run = tmp_path / "edue"
    options = [f"--set={o}" for o in TINY]
    result = invoke(
        "train", "--out", run, *options, "--method", "edue", "--set", "model.channels=[4,8,8,8]", "--epochs", "1"
    )
    assert result.exit_code == 0, result.output  # 3 heads: --skip-first 0 or 1
    result = invoke(
        "evaluate",
        run,
        "--estimator",
        "edue",
        "--uncertainty",
        "variance",
        "--skip-first",
        "1",
        "--sv-roi-radius",
        "1",
        "--device",
        "cpu",
        "--no-report",
    )
    assert result.exit_code == 0, result.output
    evaluation = json.loads((run / "evaluation" / "evaluation.json").read_text())
    assert evaluation["estimator_options"] == {"skip_first": 1} and evaluation["disagreement"]["sv_roi_radius"] == 1
    montage = run / "evaluation" / "montage.npz"
    assert montage.is_file()
    for command in (
        ("predict", run, "--out", tmp_path / "pred", "--coverage", "0.9"),
        ("ood", run, "--out", tmp_path / "ood", "--kinds", "noise"),
    ):
        result = invoke(
            *command,
            "--estimator",
            "layer_ensemble",
            "--uncertainty",
            "variance",
            "--skip-first",
            "1",
            "--device",
            "cpu",
        )
        assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "pred" / "predictions.json").read_text())["estimator_options"] == {"skip_first": 1}
    bad = invoke("evaluate", trained, "--skip-first", "1", "--device", "cpu")
    assert bad.exit_code == 2 and "`--skip-first` applies to the estimators ['edue', 'layer_ensemble']" in bad.output
    bad = invoke(
        "predict", run, "--out", tmp_path / "x", "--estimator", "edue", "--skip-first", "2", "--coverage", "0.9"
    )
    assert bad.exit_code == 2 and "`skip_first` to be an int in [0, 1] for 3 heads, but got 2" in bad.output
    bad = invoke("ood", run, "--estimator", "edue", "--skip-first", "-1")
    assert bad.exit_code == 2 and "`--skip-first` to be >= 0" in bad.output


def test_ood_command(trained: Path, tmp_path: Path) -> None:
    result = invoke(
        "ood", trained, "--out", tmp_path / "ood", "--fractions", "0.5,1", "--kinds", "noise", "--device", "cpu"
    )
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "ood" / "ood.json").read_text())
    assert saved["fractions"] == [0.5, 1.0] and set(saved["auroc"]["1.0"]) == {"mean_uncertainty", "mean_entropy"}
    assert "mean_entropy" in result.output
    bad = invoke("ood", trained, "--kinds", "nois", "--device", "cpu")
    assert bad.exit_code == 2 and "Did you mean 'noise'" in bad.output
    bad = invoke("ood", trained, "--fractions", "half", "--device", "cpu")
    assert bad.exit_code == 2 and "--fractions" in bad.output


def test_train_folds_then_evaluate_aggregates(tmp_path: Path) -> None:
    run = tmp_path / "cv"
    options = [f"--set={o}" for o in TINY]
    result = invoke(
        "train",
        "--out",
        run,
        *options,
        "--epochs",
        "1",
        "--folds",
        "2",
        "--ranking",
        "exact",
        "--ranking-start-epoch",
        "0",
        "--ranking-warmup",
        "2",
    )
    assert result.exit_code == 0, result.output
    assert json.loads((run / "cv.json").read_text())["folds"] == 2
    result = invoke("evaluate", run, "--coverages", "1,0.9", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert json.loads((run / "evaluation" / "cv.json").read_text())["folds"] == 2 and "cv_curve.csv" in result.output
    bad = invoke("train", "--out", tmp_path / "x", *options, "--folds", "9")
    assert bad.exit_code == 2 and "number of subjects (6), but got 9" in bad.output
    assert not (tmp_path / "x" / "fold_0").exists()
    bad = invoke("train", "--out", tmp_path / "y", *options, "--ranking-start-epoch", "3")
    assert bad.exit_code == 2 and "loss.ranking" in bad.output


def test_calibrate_then_predict_uses_the_stored_threshold(trained: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    few = invoke("calibrate", run, "--max-risk", "0.05", "--delta", "0.1", "--device", "cpu")
    assert few.exit_code == 2 and "needs at least" in few.output and not (run / "referral.json").exists()
    result = invoke("threshold", run, "--coverage", "0.8", "--device", "cpu")
    assert result.exit_code == 0, result.output
    stored = json.loads((run / "referral.json").read_text())
    info = json.loads((run / "run.json").read_text())
    assert stored["calibration_cases"] == info["val_cases"] and stored["coverage"] >= 0.8
    result = invoke("predict", run, "--out", tmp_path / "p", "--device", "cpu")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "p" / "predictions.json").read_text())
    assert summary["threshold_source"] == "referral.json" and summary["threshold"] == stored["threshold"]
    assert all(case["threshold"] == stored["threshold"] for case in summary["cases"])
    result = invoke("predict", run, "--out", tmp_path / "q", "--device", "cpu", "--no-calibrated")
    assert json.loads((tmp_path / "q" / "predictions.json").read_text())["threshold_source"] == "none"
    assert "nothing was referred" in result.output  # said, not silent
    per_case = invoke("predict", run, "--out", tmp_path / "c", "--device", "cpu", "--case-coverage", "0.9")
    assert per_case.exit_code == 0 and "nothing was referred" not in per_case.output
    other = invoke("predict", run, "--out", tmp_path / "r", "--device", "cpu", "--uncertainty", "entropy")
    assert other.exit_code == 2 and "referral.json" in other.output and "'max_softmax'" in other.output


def test_report_command_and_evaluate_writes_a_report(trained: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    result = invoke("evaluate", run, "--device", "cpu")
    assert result.exit_code == 0, result.output
    page = (run / "report.html").read_text()
    assert "AURC" in page and "data:image/png;base64," in page
    shutil.copytree(run, tmp_path / "run2")
    result = invoke("report", run, tmp_path / "run2", "--out", tmp_path / "cmp.html", "--labels", "first,second")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cmp.html").is_file() and any((tmp_path / "cmp_figures").glob("*.svg"))
    bad = invoke("report", tmp_path / "nowhere", "--out", tmp_path / "x.html")
    assert bad.exit_code == 2 and "nowhere" in bad.output


def test_cli_default_coverages_are_the_library_defaults() -> None:
    import inspect

    from selectseg.cli import evaluate_command
    from selectseg.evaluation import DEFAULT_COVERAGES

    default = inspect.signature(evaluate_command).parameters["coverages"].default
    assert tuple(float(c) for c in default.split(",")) == DEFAULT_COVERAGES


def test_cli_bootstrap_defaults_are_the_library_defaults() -> None:
    import inspect

    from selectseg.cli import evaluate_command
    from selectseg.metrics.bootstrap import DEFAULT_CONFIDENCE_LEVEL, DEFAULT_N_RESAMPLES

    parameters = inspect.signature(evaluate_command).parameters
    assert parameters["bootstrap"].default == DEFAULT_N_RESAMPLES
    assert parameters["confidence_level"].default == DEFAULT_CONFIDENCE_LEVEL


def test_compare_command_writes_files_and_the_report_shows_them(tmp_path: Path) -> None:
    from .report.test_compare import seeded_run

    cand = [seeded_run(tmp_path / f"rank_s{s}", s, aurc=0.1 - 0.01 * s, shift=0.01) for s in range(3)]
    ref = [seeded_run(tmp_path / f"base_s{s}", s, aurc=0.12) for s in range(3)]
    refs = [a for r in ref[::-1] for a in ("--reference", r)]
    result = invoke("compare", *cand, *refs, "--out", tmp_path / "cmp", "--labels", "rank,base")
    assert result.exit_code == 0, result.output
    assert "rank vs base: 3 seeds (0, 1, 2)" in result.output and "dice@0.95" in result.output
    assert "-3.000" in result.output and "3/0/0" in result.output  # AURC difference -3 points; better on all seeds
    saved = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert saved["candidate"]["label"] == "rank" and saved["metrics"][0]["metric"] == "aurc"
    assert (tmp_path / "cmp" / "compare.csv").is_file()
    page = tmp_path / "page.html"
    result = invoke("report", cand[0], ref[0], "--out", page, "--comparison", tmp_path / "cmp")
    assert result.exit_code == 0, result.output
    assert 'id="paired-comparison"' in page.read_text()


@pytest.mark.parametrize(
    ("which", "message"),
    [
        ("missing", "seeds [2] have no reference run"),
        ("cases", "Expected every run evaluated on the same cases"),
        ("labels", "`--labels` to be two names"),
    ],
)
def test_compare_command_user_errors(which: str, message: str, tmp_path: Path) -> None:
    from .report.test_compare import seeded_run

    cand = [seeded_run(tmp_path / f"c{s}", s, aurc=0.1) for s in range(3)]
    ref = [
        seeded_run(tmp_path / f"r{s}", s, aurc=0.1, cases=("a", "b", "x", "y") if which == "cases" else None)
        for s in range(3)
    ]
    if which == "missing":
        ref = ref[:2]
    labels = ["--labels", "one"] if which == "labels" else []
    result = invoke("compare", *cand, *[a for r in ref for a in ("--reference", r)], "--out", tmp_path / "o", *labels)
    assert result.exit_code == 2
    assert "Error:" in result.output and message in result.output.replace("\n", "")
    assert "Traceback" not in result.output and not (tmp_path / "o").exists()


def test_sweep_collect_only_with_a_reference_prints_the_paired_comparison(tmp_path: Path) -> None:
    from .test_sweep import _fake_finished_run

    for weight, shift in (("0", 0.0), ("2", -0.01)):
        for seed in (0, 1):
            _fake_finished_run(
                tmp_path / "runs" / f"ranking_weight={weight}__seed={seed}", seed, 0.1 + shift + seed / 100
            )
    args = [
        "sweep",
        "--set",
        "loss.ranking=exact",
        "--grid",
        "ranking_weight=0,2",
        "--seeds",
        "0,1",
        "--out",
        tmp_path,
        "--collect-only",
    ]
    result = invoke(*args, "--reference", "ranking_weight=0")
    assert result.exit_code == 0, result.output
    assert "ranking_weight=2" in result.output and "2/0/0" in result.output
    assert "-1.000" in result.output and "[-1.000, -1.000]" in result.output  # the difference and its interval
    assert (tmp_path / "compare" / "ranking_weight=2" / "compare.json").is_file()
    bad = invoke(*args, "--reference", "ranking_weight=1")
    assert bad.exit_code == 2 and "one of the grid's ['0', '2']" in bad.output


def test_resume_with_more_epochs_takes_the_saved_config(tmp_path: Path) -> None:
    """`train --out RUN --resume --epochs N` trains longer without the whole config again; config.yaml says N."""
    run = tmp_path / "run"
    first = invoke("train", "--out", run, *(f"--set={o}" for o in TINY), "--epochs", "1")
    assert first.exit_code == 0, first.output
    longer = invoke("train", "--out", run, "--resume", "--epochs", "2")
    assert longer.exit_code == 0, longer.output
    import yaml

    assert yaml.safe_load((run / "config.yaml").read_text())["optim"]["epochs"] == 2
    assert len((run / "metrics.csv").read_text().splitlines()) == 3  # header + 2 epochs
    other = invoke("train", "--out", run, "--resume", "--epochs", "3", "--seed", "5")
    assert other.exit_code == 2 and "only optim.epochs" in other.output and "seed" in other.output


@pytest.mark.parametrize("annotators", ["1", "3"])
def test_evaluating_a_two_class_run_on_three_class_data_names_the_folder_and_the_run(
    annotators: str, trained: Path, tmp_path: Path
) -> None:
    data = tmp_path / "three"
    synth = ("synth", data, "--cases", "2", "--test-cases", "2", "--size", "16", "--classes", "3")
    assert invoke(*synth, "--annotators", annotators).exit_code == 0
    for command in (["evaluate", trained, "--out", tmp_path / "e"], ["predict", trained, "--out", tmp_path / "p"]):
        result = invoke(*command, "--data", data, "--device", "cpu")
        text = result.output.replace("\n", "")
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert f"The data '{data}' do not fit the run '{trained}': 3 classes" in text
    assert not (tmp_path / "e").exists() and not (tmp_path / "p").exists()


@pytest.mark.parametrize("width", [80, 120])
def test_progress_keeps_its_count_and_times_at_80_columns(width: int) -> None:
    import io

    from rich.console import Console

    from selectseg.cli import render

    old = render.console.width
    render.console.width = width
    try:
        bar = render.progress()
        task = bar.add_task("uncertainty_aware epoch 12/80", total=6, info="loss 0.4321 (seg 0.1234, rank 1.2e-04)")
        bar.update(task, completed=3)
        out = Console(width=width, file=io.StringIO(), force_terminal=False)
        out.print(bar.make_tasks_table(bar.tasks))
    finally:
        render.console.width = old
    line = out.file.getvalue().splitlines()[0]
    assert "uncertainty_aware epoch 12/80" in line and "3/6" in line and "0:00:00" in line and len(line) <= width


def test_a_threshold_chosen_on_older_weights_is_stale(tmp_path: Path) -> None:
    """Training further after `selectseg threshold` makes the stored threshold stale: predict refuses it."""
    run = tmp_path / "run"
    assert invoke("train", "--out", run, *(f"--set={o}" for o in TINY), "--epochs", "1").exit_code == 0
    assert invoke("threshold", run, "--pooled-coverage", "0.8", "--device", "cpu").exit_code == 0
    assert json.loads((run / "referral.json").read_text())["weights_sha256"]
    ok = invoke("predict", run, "--out", tmp_path / "p", "--device", "cpu")
    assert ok.exit_code == 0 and "from" in ok.output and "referral.json" in ok.output
    assert invoke("train", "--out", run, "--resume", "--epochs", "2").exit_code == 0
    stale = invoke("predict", run, "--out", tmp_path / "q", "--device", "cpu")
    assert stale.exit_code == 2 and "stale" in stale.output


def test_train_keeps_a_best_checkpoint_and_draws_progress(tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = invoke("train", "--out", run, *(f"--set={o}" for o in TINY), "--epochs", "2")
    assert result.exit_code == 0, result.output
    assert (run / "checkpoints" / "best.pt").is_file() and (run / "progress.png").read_bytes()[:4] == b"\x89PNG"
    from selectseg.training import load_model

    best = load_model(run / "checkpoints" / "best.pt")
    assert best.spec == load_model(run / "model.pt").spec


def test_a_run_works_from_another_folder_and_its_config_is_resolved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The data path is stored resolved, the patch size as the data gave it, and no synthetic block for a folder."""
    import yaml

    monkeypatch.chdir(tmp_path)
    assert invoke("synth", "data", "--cases", "6", "--test-cases", "2", "--size", "16").exit_code == 0
    options = [o for o in TINY if not o.startswith("data.")]
    result = invoke("train", "--out", "run", "--data", "data", *(f"--set={o}" for o in options), "--epochs", "1")
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["data"]["path"] == str((tmp_path / "data").resolve()) and saved["data"]["patch_size"]
    assert "synthetic" not in saved["data"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    evaluated = invoke("evaluate", tmp_path / "run", "--out", "ev", "--device", "cpu", "--bootstrap", "0")
    assert evaluated.exit_code == 0, evaluated.output


def test_predict_on_a_plain_nnunet_input_folder_with_nnunet_names(trained: Path, tmp_path: Path) -> None:
    """nnU-Net's -i layout (<case>_0000.nii.gz, no dataset.json) in; <case>.nii.gz and <case>.npz out."""
    import shutil

    import numpy as np

    assert invoke("synth", tmp_path / "ds", "--cases", "2", "--test-cases", "2", "--size", "16").exit_code == 0
    plain = tmp_path / "plain"
    plain.mkdir()
    for f in (tmp_path / "ds" / "imagesTs").iterdir():
        shutil.copy(f, plain / f.name)
    out = tmp_path / "pred"
    result = invoke(
        "predict",
        trained,
        "--data",
        plain,
        "--out",
        out,
        "--device",
        "cpu",
        "--naming",
        "nnunet",
        "--save-probabilities",
    )
    assert result.exit_code == 0, result.output
    ids = sorted(f.name.removesuffix("_0000.nii.gz") for f in plain.iterdir())
    for case_id in ids:
        assert (out / f"{case_id}.nii.gz").is_file() and (out / f"{case_id}_uncertainty.nii.gz").is_file()
        with np.load(out / f"{case_id}.npz") as npz:
            probs = npz["probabilities"]
        assert probs.shape[0] == 2 and np.allclose(probs.sum(axis=0), 1.0, atol=1e-5)
    assert sorted(c["case_id"] for c in json.loads((out / "predictions.json").read_text())["cases"]) == ids


def test_the_demo_table_fits_80_columns_without_cutting_a_number() -> None:
    import io

    from rich.console import Console

    from selectseg.cli import render
    from selectseg.demo import COVERAGES

    row = {"aurc": 0.02118, "oracle_aurc": 0.00401, "excess_aurc": 0.01716, "error_auroc": 0.881}
    row |= {f"dice@{c}": 0.8374 for c in COVERAGES} | {f"dice_std@{c}": 0.108 for c in COVERAGES}
    summary = {
        "test_cases": 24,
        "reading": "",
        "table": [{"run": "baseline", **row}, {"run": "uncertainty_aware", **row}],
    }
    buffer = io.StringIO()
    original = render.Console
    render.Console = lambda *a, **k: Console(file=buffer, width=80)  # type: ignore[assignment,misc]
    try:
        render.demo_table(summary, COVERAGES)
    finally:
        render.Console = original  # type: ignore[misc]
    text = buffer.getvalue()
    assert "…" not in text and "uncertainty_aware" in text and "2.118" in text and "+1.716" in text
    assert all(len(line) <= 80 for line in text.splitlines())
