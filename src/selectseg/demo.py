"""The main job on built-in synthetic data: train a baseline and an uncertainty-aware U-Net, evaluate both.

Used by ``make demo`` / ``selectseg demo``. Everything lands in one folder::

    OUT/baseline/            training run (config.yaml, metrics.csv, checkpoints/, model.pt)
    OUT/baseline/evaluation/ evaluation.json, curve.csv, per_image.csv on the synthetic test set
    OUT/uncertainty_aware/   the same with the exact ranking loss (Ding et al.)
    OUT/summary.json         side-by-side numbers; OUT/comparison.csv the same table
    OUT/report.html          the HTML report comparing both runs (figures in OUT/report_figures/)

Both runs use the same data, seed, network and budget; only the loss differs. A demo interrupted at any point
resumes where it stopped when run again with the same options.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .evaluation import DEFAULT_COVERAGES, evaluate_cases, load_run
from .training import ProgressEvent, TrainConfig, train
from .training.checkpoint import atomic_write_text
from .training.config import DataConfig, LossConfig, ModelConfig, OptimConfig, SyntheticConfig
from .training.data import load_cases

__all__ = ["COVERAGES", "RUNS", "demo_config", "run_demo"]

COVERAGES = DEFAULT_COVERAGES
RUNS = (("baseline", "none"), ("uncertainty_aware", "exact"))


def demo_config(*, quick: bool = False, seed: int = 0, ranking: str = "none") -> TrainConfig:
    """The demo's training config: 2D synthetic discs with ambiguous borders, 3 annotators, a small U-Net."""
    synthetic = (
        SyntheticConfig(num_train=8, num_test=4, size=32, seed=seed)
        if quick
        else SyntheticConfig(num_train=48, num_test=24, size=64, seed=seed)
    )
    return TrainConfig(
        data=DataConfig(path="synthetic", val_fraction=0.25 if quick else 0.15, synthetic=synthetic),
        model=ModelConfig(channels=(8, 16) if quick else (16, 32, 64), num_res_units=1),
        loss=LossConfig(ranking=ranking),
        optim=OptimConfig(lr=2e-3, batch_size=8, epochs=2 if quick else 80),
        seed=seed,
        device="cpu",
        tensorboard=False,
    )


def _named(progress: Callable[[str, ProgressEvent], None] | None, name: str) -> Callable[[ProgressEvent], None] | None:
    if progress is None:
        return None
    return lambda event: progress(name, event)


def run_demo(
    out: str | Path,
    *,
    seed: int = 0,
    quick: bool = False,
    progress: Callable[[str, ProgressEvent], None] | None = None,
) -> dict[str, Any]:
    """Train, evaluate and compare both runs into ``out``; return the summary (also written as JSON and CSV).

    Args:
        out: the demo folder.
        seed: seeds data, weights and training.
        quick: tiny data and 2 epochs (seconds; for tests).
        progress: called with the run name and each training :class:`~selectseg.training.ProgressEvent`.
    """
    out = Path(out)
    rows = []
    for name, ranking in RUNS:
        config = demo_config(quick=quick, seed=seed, ranking=ranking)
        run_dir = out / name
        train(config, run_dir, resume=(run_dir / "config.yaml").is_file(), progress=_named(progress, name))
        run = load_run(run_dir, device=config.device)
        test = load_cases(config.data, split="test")
        evaluation = evaluate_cases(run, test.cases, run_dir / "evaluation", coverages=COVERAGES)
        row: dict[str, Any] = {"run": name, "ranking": ranking, "aurc": evaluation["aurc"]}
        for point in evaluation["table"]:
            c = point["target_coverage"]
            row[f"dice@{c}"] = point["dice_mean"]
            row[f"dice_std@{c}"] = point["dice_std"]
            row[f"dice_p5@{c}"] = point["dice_p5"]
            row[f"coverage@{c}"] = point["coverage"]
        rows.append(row)
    summary = {
        "config": dataclasses.asdict(demo_config(quick=quick, seed=seed)),
        "test_cases": demo_config(quick=quick, seed=seed).data.synthetic.num_test,
        "coverages": list(COVERAGES),
        "table": rows,
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=list))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "comparison.csv", buffer.getvalue())
    from .report import write_report

    summary["report"] = str(write_report([out / name for name, _ in RUNS], out / "report.html"))
    return summary
