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
from ..metrics import (
    CalibrationStats,
    annotator_variance,
    image_level_correlation,
    pixel_level_correlation,
    quality_control_curve,
    selective_dice_curve,
    selective_pixel_metrics,
    soft_dice_at_thresholds,
)
from ..metrics.quality import DEFAULT_TAU
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
    full Dice-coverage curve, AURC, and at each target coverage (largest achievable <= the target over every
    distinct threshold) the Dice mean, std and 5th percentile over images, gamma (wrong fraction among referred
    voxels), psi_c (voxel accuracy on the kept voxels) and per-image coverage and Dice. Beside them: calibration of
    the mean probabilities over all voxels (NLL, Brier, ECE top-label and class-wise, 15 bins, the reliability
    bins), quality control (images ranked by their mean uncertainty against failing, Dice < 0.8 at coverage 1:
    AUC, ideal AUC, d-AUC) and, when every case has at least two annotators, the correlation of the uncertainty
    map with the annotators' variance m(1 - m) (image level: Pearson and Spearman of the per-image sums; pixel
    level: mean per-image Pearson, constant maps skipped) and soft Dice of the foreground probability (1 - p(bg))
    against the annotators' mean at thresholds 0.1..0.9. NaN values are written as null.

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
    calibration = CalibrationStats()
    multi = all(case.num_annotators >= 2 for case in cases)
    annotator_maps: list[np.ndarray] = []
    soft_dice: list[np.ndarray] = []
    outputs = run.outputs(
        list(cases), uncertainty=uncertainty, estimator=estimator, estimator_options=estimator_options
    )
    for output, reference in zip(outputs, references):
        predictions.append(output.segmentation.astype(np.int64))
        uncertainties.append(output.uncertainty)
        calibration.update(output.probabilities[None], reference[None])
        if multi:
            masks: np.ndarray = np.asarray(output.case.labels) > 0  # every case has >= 2 annotators here
            annotator_maps.append(annotator_variance(masks))
            foreground = 1.0 - output.probabilities[0]
            soft_dice.append(soft_dice_at_thresholds(np.clip(foreground, 0.0, 1.0), masks).dice)
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
    cal = calibration.compute()
    image_uncertainty = np.array([float(u.mean()) for u in uncertainties])
    full = curve.at_coverage(1.0)
    qc = quality_control_curve(image_uncertainty, full.image_dice)
    extra: dict[str, Any] = {
        "calibration": {
            "nll": cal.nll,
            "brier": cal.brier,
            "ece_top_label": cal.ece_top_label,
            "ece_classwise": cal.ece_classwise,
            "n_bins": len(cal.bins.edges) - 1,
            "reliability_top_label": {
                "edges": cal.bins.edges.tolist(),
                "counts": cal.bins.counts.tolist(),
                "confidence": cal.bins.confidence.tolist(),
                "accuracy": cal.bins.accuracy.tolist(),
            },
        },
        "quality_control": {
            "image_score": f"mean {uncertainty}",
            "tau": DEFAULT_TAU,
            "auc": qc.auc,
            "auc_ideal": qc.auc_ideal,
            "d_auc": qc.d_auc,
        },
    }
    if multi:
        with warnings.catch_warnings():  # constant maps and too few images are documented NaN cases
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            image_corr = image_level_correlation(
                [float(u.sum()) for u in uncertainties], [float(a.sum()) for a in annotator_maps]
            )
            extra["disagreement"] = {
                "uncertainty": uncertainty,
                "image_pearson": image_corr.pearson,
                "image_spearman": image_corr.spearman,
                "pixel_pearson": pixel_level_correlation(uncertainties, annotator_maps),
                "soft_dice_thresholds": [round(0.1 * i, 1) for i in range(1, 10)],
                "soft_dice": np.mean(soft_dice, axis=0).tolist(),
            }
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
        **extra,
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
