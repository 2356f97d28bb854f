"""``selectseg evaluate``: the Dice risk-coverage evaluation of a run on a labelled test set (Ding et al. Table 1 and
Fig. 2 data), written as JSON and CSV."""

from __future__ import annotations

import csv
import io
import json
import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import UndefinedMetricWarning
from ..data import Case
from ..metrics import selective_dice_curve, selective_pixel_metrics
from ..training.checkpoint import atomic_write_text
from ..training.data import reference_labels
from .run import LoadedRun

__all__ = ["DEFAULT_COVERAGES", "evaluate_cases"]

DEFAULT_COVERAGES = (1.0, 0.95, 0.9, 0.8, 0.7)


def evaluate_cases(
    run: LoadedRun,
    cases: Sequence[Case],
    out_dir: str | Path,
    *,
    coverages: Sequence[float] = DEFAULT_COVERAGES,
    uncertainty: str = "max_softmax",
    estimator: str = "softmax",
    estimator_options: dict[str, Any] | None = None,
    on_case: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Evaluate ``run`` on labelled ``cases`` and write ``evaluation.json``, ``curve.csv`` and ``per_image.csv``.

    One global uncertainty threshold across all cases per operating point (see ``docs/metrics.md``). Reported: the
    full Dice-coverage curve, AURC and E-AURC-free numbers, and at each target coverage (largest achievable <= the
    target over every distinct threshold) the Dice mean, std and 5th percentile over images, gamma (wrong fraction
    among referred voxels), psi_c (voxel accuracy on the kept voxels) and per-image coverage and Dice.

    Args:
        run: the loaded training run.
        cases: labelled cases (with several annotators, the run's annotator policy gives the reference).
        out_dir: output folder (created).
        coverages: target coverages, each in [0, 1].
        uncertainty: the uncertainty map (see :meth:`LoadedRun.outputs`).
        estimator: the uncertainty estimator (``softmax``, ``mc_dropout``, ``tta``); estimator_options: its options.
        on_case: called with each case id after inference (progress).

    Returns:
        The ``evaluation.json`` content.

    Raises:
        ValueError: if there are no cases, a case has no labels or does not fit the network, or a coverage is
            outside [0, 1].
    """
    if len(cases) == 0:
        raise ValueError("Expected at least one labelled case to evaluate, but got none.")
    for c in coverages:
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not 0 <= c <= 1:
            raise ValueError(f"Expected every coverage in [0, 1], but got {c!r}.")
    references = [reference_labels(case, run.config.data.annotator, run.num_classes) for case in cases]
    predictions, uncertainties = [], []
    outputs = run.outputs(
        list(cases), uncertainty=uncertainty, estimator=estimator, estimator_options=estimator_options
    )
    for output in outputs:
        predictions.append(output.segmentation.astype(np.int64))
        uncertainties.append(output.uncertainty)
        if on_case is not None:
            on_case(output.case.case_id)
    curve = selective_dice_curve(predictions, references, uncertainties, num_classes=run.num_classes)
    flat_pred = np.concatenate([p.reshape(-1) for p in predictions])
    flat_ref = np.concatenate([r.reshape(-1) for r in references])
    flat_unc = np.concatenate([u.reshape(-1) for u in uncertainties])
    ids = [case.case_id for case in cases]
    table = []
    for c in coverages:
        point = curve.at_coverage(float(c))
        # psi_c is NaN when nothing is kept; gamma (taken from the curve instead) is undefined when nothing is referred.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            psi_c = selective_pixel_metrics(flat_pred, flat_ref, flat_unc, threshold=point.threshold).psi_c
        table.append(
            {
                "target_coverage": float(c),
                "coverage": point.coverage,
                "threshold": point.threshold,
                "dice_mean": point.dice_mean,
                "dice_std": point.dice_std,
                "dice_p5": point.dice_p5,
                "gamma": point.gamma,
                "psi_c": psi_c,
                "image_coverage": dict(zip(ids, point.image_coverage.tolist())),
                "image_dice": dict(zip(ids, point.image_dice.tolist())),
            }
        )
    result = {
        "run": str(run.run_dir),
        "uncertainty": uncertainty,
        "estimator": estimator,
        "estimator_options": estimator_options or {},
        "num_cases": len(cases),
        "num_classes": run.num_classes,
        "class_names": run.info.get("class_names"),
        "aurc": curve.aurc,
        "table": table,
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "evaluation.json", json.dumps(_finite(result), indent=2))
    atomic_write_text(out_dir / "curve.csv", _curve_csv(curve.thresholds, curve.coverage, curve.dice))
    atomic_write_text(out_dir / "per_image.csv", _per_image_csv(ids, table))
    return result


def _finite(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null (NaN) or strings."""
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _curve_csv(thresholds: np.ndarray, coverage: np.ndarray, dice: np.ndarray) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["threshold", "coverage", "dice", "risk"])
    for t, c, d in zip(thresholds, coverage, dice):
        writer.writerow([repr(float(t)), repr(float(c)), repr(float(d)), repr(float(1.0 - d))])
    return buffer.getvalue()


def _per_image_csv(ids: list[str], table: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["case_id"]
    for row in table:
        c = row["target_coverage"]
        header += [f"coverage@{c}", f"dice@{c}"]
    writer.writerow(header)
    for case_id in ids:
        line: list[Any] = [case_id]
        for row in table:
            line += [repr(row["image_coverage"][case_id]), repr(row["image_dice"][case_id])]
        writer.writerow(line)
    return buffer.getvalue()
