"""Evaluation of a cross-validation folder (``selectseg train --folds K``), aggregated as Ding et al. report MM-WHS:
each fold's model on its held-out fold (or on a given test set), then the Table 1 numbers and the Dice-coverage
curve as the mean over folds with their spread.

Written to ``OUT`` (default ``RUN/evaluation``): ``cv.json`` (per-fold values, mean and std over folds of AURC and
of the Dice mean / 5th percentile / achieved coverage at each target coverage) and ``cv_curve.csv`` (the folds'
Dice-coverage curves on a common grid of 101 coverages, linear between each curve's points, mean and std over
folds). Each fold's own results are in ``RUN/fold_k/evaluation`` (as :func:`evaluate_cases` writes them, with
bootstrap intervals over images, except for a fold of one case, which has none). The std over folds is the
population std (ddof = 0), as for the Dice std over images.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write_text, staged_output
from ..data.splits import kfold_split
from ..metrics.bootstrap import DEFAULT_N_RESAMPLES
from ..results import EvaluationResult, _json
from ..runs import folder
from ..runs.data import load_cases
from ..uncertainty import InferenceOptions
from .evaluate import DEFAULT_COVERAGES, evaluate_cases
from .run import DEFAULT_INFERENCE, load_run

__all__ = ["evaluate_folds", "is_cv_folder"]

CV_SUMMARY = "cv.json"
"""The aggregate over folds, in the evaluation folder."""
GRID = np.linspace(0.0, 1.0, 101)
CV_CURVE = "cv_curve.csv"
"""The folds' Dice-coverage curves on a common grid, beside ``cv.json``."""


def is_cv_folder(run_dir: str | Path) -> bool:
    """True for a folder written by ``selectseg train --folds K``."""
    return (Path(run_dir) / folder.CV_INDEX).is_file()


def evaluate_folds(
    run_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    data: str | None = None,
    split: str = "test",
    format_: str = "auto",
    coverages: Sequence[float] = DEFAULT_COVERAGES,
    inference: InferenceOptions = DEFAULT_INFERENCE,
    sv_roi_radius: int | None = None,
    device: str = "auto",
    on_fold: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Evaluate every fold of a cross-validation folder and aggregate over folds (module docstring).

    Args:
        run_dir: the folder of ``train --folds K``.
        out_dir: where ``cv.json`` and ``cv_curve.csv`` go (default ``run_dir/evaluation``).
        data: None = each fold on its held-out training cases; a dataset path = every fold on its ``split``.
        split, format_: of ``data``.
        coverages, inference, sv_roi_radius: as :func:`evaluate_cases`.
        device: inference device.
        on_fold: called with (fold, K) after each fold.

    Returns:
        The ``cv.json`` content.

    Raises:
        ValueError: if ``run_dir`` is not a cross-validation folder or a fold has not finished training.
    """
    run_dir = Path(run_dir)
    if not is_cv_folder(run_dir):
        raise ValueError(f"{str(run_dir)!r} is not a cross-validation folder ({folder.CV_INDEX} is missing).")
    index = _json.load_object(run_dir / folder.CV_INDEX)
    per_fold: list[EvaluationResult] = []
    curves = []
    for k, name in enumerate(index["runs"]):
        run = load_run(run_dir / name, device=device)
        config = run.config.data
        if data is None:
            cases = kfold_split(
                load_cases(config, split="train").cases, config.folds, config.fold, seed=run.config.seed
            )[1]
        else:
            cases = run.data_cases(data, split=split, format_=format_)
        result = evaluate_cases(
            run,
            cases,
            run_dir / name / folder.EVALUATION_DIR,
            coverages=coverages,
            inference=inference,
            n_resamples=DEFAULT_N_RESAMPLES if len(cases) >= 2 else 0,  # one held-out case: nothing to resample
            sv_roi_radius=sv_roi_radius,
        )
        per_fold.append(result)
        curves.append(np.interp(GRID, result.curve.coverage, result.curve.dice))
        if on_fold is not None:
            on_fold(k, len(index["runs"]))

    def spread(values: list[float]) -> dict[str, Any]:
        array = np.asarray(values, dtype=np.float64)
        return {"mean": float(array.mean()), "std": float(array.std()), "per_fold": array.tolist()}

    table = []
    for i, target in enumerate(per_fold[0].points):
        rows_i = [result.points[i] for result in per_fold]
        table.append(
            {
                "target_coverage": target.target_coverage,
                "coverage": spread([r.coverage for r in rows_i]),
                "dice_mean": spread([r.dice_mean for r in rows_i]),
                "dice_p5": spread([r.dice_p5 for r in rows_i]),
            }
        )
    summary = {
        "run": str(run_dir),
        "folds": index["folds"],
        "evaluated_on": "each fold's held-out cases" if data is None else f"{data} ({split})",
        "uncertainty": inference.score,
        "estimator": inference.estimator,
        "num_cases": [result.num_cases for result in per_fold],
        "aurc": spread([result.aurc for result in per_fold]),
        "table": table,
    }
    out = Path(out_dir) if out_dir is not None else run_dir / folder.EVALUATION_DIR
    stack = np.stack(curves)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["coverage", "dice_mean", "dice_std", *(f"dice_{name}" for name in index["runs"])])
    for j, c in enumerate(GRID):
        writer.writerow(
            [
                repr(float(c)),
                repr(float(stack[:, j].mean())),
                repr(float(stack[:, j].std())),
                *map(repr, stack[:, j].tolist()),
            ]
        )
    # cv.json and cv_curve.csv complete or absent (cv.json moved in last), one writer of the folder at a time
    with (
        folder.lock_output(run_dir, out, purpose="evaluate"),
        staged_output(out, CV_SUMMARY, replaces=[CV_CURVE]) as stage,
    ):
        _json.dump(stage / CV_SUMMARY, summary)
        atomic_write_text(stage / CV_CURVE, buffer.getvalue())
    return summary
