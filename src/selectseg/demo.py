"""The main job on built-in synthetic data: train a baseline and an uncertainty-aware U-Net, evaluate both.

Used by ``make demo`` / ``selectseg demo``. Everything lands in one folder::

    OUT/baseline/            training run (config.yaml, metrics.csv, checkpoints/, model.pt)
    OUT/baseline/evaluation/ evaluation.json, curve.csv, per_image.csv on the synthetic test set
    OUT/uncertainty_aware/   the same with the exact ranking loss (Ding et al.)
    OUT/summary.json         side-by-side numbers; OUT/comparison.csv the same table
    OUT/report.html          the HTML report comparing both runs (figures in OUT/report_figures/)

Both runs use the same data, seed, network, schedule and budget; only the loss differs: the uncertainty-aware run
adds the exact ranking loss with the settings the GlaS study chose on validation images (``recommended_overrides``:
from halfway through training; see
docs/training.md for the evidence, which does not show it beating the baseline). The summary splits each AURC into
segmentation quality (oracle AURC) and ordering (excess AURC) and gives the pixel error-detection AUROC, with a
sentence of reading. A demo interrupted at any point resumes where it stopped when run again with the same options.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._io import atomic_write_text
from .evaluation import DEFAULT_COVERAGES, evaluate_cases, load_run
from .results import EvaluationResult
from .runs import folder
from .runs.config import (
    DataConfig,
    LossConfig,
    ModelConfig,
    OptimConfig,
    SyntheticConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    recommended_overrides,
)
from .runs.data import load_cases
from .training import ProgressEvent, TrainConfig, train

__all__ = ["COVERAGES", "RUNS", "demo_config", "reading", "run_demo"]

COVERAGES = DEFAULT_COVERAGES
RUNS = (("baseline", "none"), ("uncertainty_aware", "exact"))
"""(run name, ``loss.ranking``); the uncertainty-aware run also uses the rest of ``recommended_overrides``."""


def demo_config(*, quick: bool = False, seed: int = 0, ranking: str = "none", device: str = "cpu") -> TrainConfig:
    """The demo's training config: 2D synthetic discs with ambiguous borders, 3 annotators, a small U-Net, the poly
    learning-rate schedule; with a ranking loss, the recommended uncertainty-aware settings
    (:func:`selectseg.runs.config.recommended_overrides`). ``device``: ``"cpu"`` (the default, whose figures the docs
    quote), ``"auto"`` or ``"cuda[:N]"``."""
    synthetic = (
        SyntheticConfig(num_train=8, num_test=4, size=32, seed=seed)
        if quick
        else SyntheticConfig(num_train=48, num_test=24, size=64, seed=seed)
    )
    config = TrainConfig(
        data=DataConfig(path="synthetic", val_fraction=0.25 if quick else 0.15, synthetic=synthetic),
        model=ModelConfig(channels=(8, 16) if quick else (16, 32, 64), num_res_units=1),
        loss=LossConfig(ranking=ranking),
        optim=OptimConfig(lr=2e-3, batch_size=8, epochs=2 if quick else 80, schedule="poly"),
        seed=seed,
        device=device,
        tensorboard=False,
    )
    if ranking == "none":
        return config
    overrides = [*recommended_overrides(config.optim.epochs), f"loss.ranking={ranking}"]
    return typing.cast(TrainConfig, config_from_dict(apply_overrides(config_to_dict(config), overrides)))


def _named(progress: Callable[[str, ProgressEvent], None] | None, name: str) -> Callable[[ProgressEvent], None] | None:
    if progress is None:
        return None
    return lambda event: progress(name, event)


def run_demo(
    out: str | Path,
    *,
    seed: int = 0,
    quick: bool = False,
    device: str = "cpu",
    progress: Callable[[str, ProgressEvent], None] | None = None,
    notify: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train, evaluate and compare both runs into ``out``; return the summary (also written as JSON and CSV).

    A finished run is reused, not retrained (an interrupted one resumes), and a finished evaluation of it is read
    back instead of recomputed; ``notify`` says which.

    Args:
        out: the demo folder.
        seed: seeds data, weights and training.
        quick: tiny data and 2 epochs (seconds; for tests).
        device: where to train and evaluate (see :func:`demo_config`).
        progress: called with the run name and each training :class:`~selectseg.training.ProgressEvent`.
        notify: called with one line before each step (what is about to run, or what was reused).
    """
    say = notify or (lambda _message: None)
    out = Path(out)
    rows = []
    for name, ranking in RUNS:
        config = demo_config(quick=quick, seed=seed, ranking=ranking, device=device)
        run_dir = out / name
        evaluation_dir = run_dir / folder.EVALUATION_DIR
        what = (
            "baseline (segmentation loss only)" if ranking == "none" else f"uncertainty-aware ({ranking} ranking loss)"
        )
        if folder.is_trained(run_dir):
            saved = dataclasses.replace(folder.read_config(run_dir), device=config.device)
            if not config.data.patch_size:  # the saved config holds the patch size the data resolved to
                saved = dataclasses.replace(saved, data=dataclasses.replace(saved.data, patch_size=()))
            if saved != config:
                raise ValueError(
                    f"{str(run_dir)!r} holds a run with other settings than this demo's (another --seed or --quick, or "
                    "an older selectseg); remove it or choose another --out."
                )
            say(f"{name}: reusing the trained run in {run_dir}")
        else:
            start = "resuming" if folder.has_config(run_dir) else "training"
            cases = config.data.synthetic.num_train
            say(f"{name}: {start} a {what} U-Net, {config.optim.epochs} epochs on {cases} synthetic images")
            train(config, run_dir, resume=folder.has_config(run_dir), progress=_named(progress, name))
        evaluation = _saved_evaluation(evaluation_dir)
        if evaluation is not None:
            say(f"{name}: reusing its evaluation in {evaluation_dir}")
        else:
            say(f"{name}: evaluating on {config.data.synthetic.num_test} held-out synthetic images")
            run = load_run(run_dir, device=config.device)
            test = load_cases(config.data, split="test")
            evaluation = evaluate_cases(run, test.cases, evaluation_dir, coverages=COVERAGES)
        row: dict[str, Any] = {"run": name, "ranking": ranking, **evaluation.headline()}
        for point in evaluation.points:
            c = point.target_coverage
            row[f"dice@{c}"] = point.dice_mean
            row[f"dice_std@{c}"] = point.dice_std
            row[f"dice_p5@{c}"] = point.dice_p5
            row[f"coverage@{c}"] = point.coverage
        rows.append(row)
    summary = {
        "config": dataclasses.asdict(demo_config(quick=quick, seed=seed)),
        "test_cases": demo_config(quick=quick, seed=seed).data.synthetic.num_test,
        "coverages": list(COVERAGES),
        "table": rows,
        "reading": reading(rows[0], rows[1]),
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=list))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "comparison.csv", buffer.getvalue())
    from .report import write_report

    say("writing the HTML report")
    summary["report"] = str(write_report([out / name for name, _ in RUNS], out / "report.html"))
    return summary


def _saved_evaluation(evaluation_dir: Path) -> EvaluationResult | None:
    """A finished evaluation holding exactly the demo's coverages, or None (then it is recomputed)."""
    if not EvaluationResult.exists(evaluation_dir):
        return None
    try:
        saved = EvaluationResult.load(evaluation_dir)
    except ValueError:
        return None
    return saved if tuple(p.target_coverage for p in saved.points) == tuple(map(float, COVERAGES)) else None


def reading(baseline: dict[str, Any], aware: dict[str, Any]) -> str:
    """One plain sentence on what the uncertainty-aware run changed: its AURC against the baseline's, split into
    segmentation quality (oracle AURC) and ordering (excess AURC), and the error-detection AUROC of both.

    Example:
        >>> text = reading({"aurc": 0.02, "oracle_aurc": 0.012, "excess_aurc": 0.008, "error_auroc": 0.90},
        ...                {"aurc": 0.018, "oracle_aurc": 0.0125, "excess_aurc": 0.0055, "error_auroc": 0.93})
        >>> text[:66]
        'The uncertainty-aware run lowers AURC from 2.00 % to 1.80 % (-10 %'
        >>> "+0.05 points (oracle AURC)" in text and "-0.25 points (excess AURC)" in text
        True
    """
    change = 100 * (aware["aurc"] - baseline["aurc"]) / baseline["aurc"] if baseline["aurc"] > 0 else float("nan")
    verb = "lowers" if aware["aurc"] < baseline["aurc"] else "raises" if aware["aurc"] > baseline["aurc"] else "keeps"
    oracle = 100 * (aware["oracle_aurc"] - baseline["oracle_aurc"])
    excess = 100 * (aware["excess_aurc"] - baseline["excess_aurc"])
    return (
        f"The uncertainty-aware run {verb} AURC from {100 * baseline['aurc']:.2f} % to {100 * aware['aurc']:.2f} % "
        f"({change:+.0f} %): its segmentation alone would change it by {oracle:+.2f} points (oracle AURC) and its "
        f"ordering of errors by {excess:+.2f} points (excess AURC); its uncertainty tells wrong from correct pixels "
        f"with AUROC {_auroc(aware)} against {_auroc(baseline)}."
    )


def _auroc(row: dict[str, Any]) -> str:
    value = row.get("error_auroc")
    return "n/a" if value is None else f"{value:.3f}"
