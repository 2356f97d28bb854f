"""Read one evaluated run folder into plain dataclasses; no plotting here (no matplotlib, no MONAI).

Files read from a run folder ``RUN`` (written by ``selectseg evaluate`` and ``selectseg train``); only the first two
are required, every other part is read when present:

- ``RUN/evaluation/evaluation.json``: settings, AURC and (when present) its split into oracle and excess AURC, the
  pixel error-detection AUROC and the AUGRC, the operating-point table (Dice at each target coverage with per-image
  coverage and Dice), calibration, quality control, disagreement with annotators, image scores (JSON null and a
  missing key, as in files written before these numbers existed, are read as NaN);
  Where written, also the bootstrap intervals (``aurc_ci``, the rows' ``dice_ci``, ``bootstrap``), the
  reference fingerprint ``reference_sha256`` and the other top-level metrics of :data:`SUMMARY_METRICS`;
- ``RUN/evaluation/curve.csv``: the Dice-coverage curve ``threshold,coverage,dice,risk``;
- ``RUN/evaluation/per_image.csv``: per-image ``coverage@c,dice@c`` (used where the JSON table lacks them);
- ``RUN/evaluation/montage.npz``: a few cases' image, reference, prediction, uncertainty and referral maps;
- ``RUN/ood/ood.json`` and ``RUN/ood/ood.csv``: out-of-distribution detection (AUROC and per-image scores);
- ``RUN/config.yaml`` and ``RUN/run.json`` (for an ensemble folder, those of its first member, and ``ensemble.json``);
- ``RUN/metrics.csv``: the training history (loss parts, ranking weight, learning rate, gradient norms per epoch).
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "SUMMARY_METRICS",
    "Calibration",
    "DiceCurve",
    "Disagreement",
    "Montage",
    "MontageCase",
    "OODResults",
    "OperatingPoint",
    "QCScore",
    "QualityControl",
    "Reliability",
    "RunResults",
    "TrainingHistory",
    "default_labels",
    "load_run_results",
]

_TOL = 1e-9
_EVALUATION = Path("evaluation") / "evaluation.json"
_CURVE = Path("evaluation") / "curve.csv"
_PER_IMAGE = Path("evaluation") / "per_image.csv"
_MONTAGE = Path("evaluation") / "montage.npz"
_OOD_JSON = Path("ood") / "ood.json"
_OOD_CSV = Path("ood") / "ood.csv"

SUMMARY_METRICS = ("aurc", "oracle_aurc", "excess_aurc", "error_auroc", "augrc")
"""Top-level numbers of ``evaluation.json`` read into :attr:`RunResults.summary_metrics` where present."""


@dataclass(frozen=True)
class TrainingHistory:
    """``RUN/metrics.csv``: one value per finished epoch for each logged column (NaN where an epoch has none, e.g. no
    gradient measurement or no validation in that epoch; columns of older files that lack them are absent).

    Attributes:
        epochs: ``(E,)`` the epoch numbers, from 1.
        columns: column name -> ``(E,)`` float64 values (``segmentation``, ``ranking``, ``ranking_weight``, ``lr``,
            ``grad_segmentation``, ``grad_ranking``, ``grad_ratio``, ``val_dice``, ``val_aurc``, ...).
    """

    epochs: np.ndarray
    columns: Mapping[str, np.ndarray]

    def get(self, name: str) -> np.ndarray | None:
        """The column's values, or None when the file has no such column."""
        return self.columns.get(name)


@dataclass(frozen=True)
class OperatingPoint:
    """One row of ``evaluation.json``'s ``table``: the operating point chosen for a target coverage.

    Attributes:
        target_coverage: the requested coverage; coverage: the achieved one (largest <= target).
        threshold: the global uncertainty threshold (a pixel is kept when its uncertainty <= threshold).
        dice_mean, dice_std, dice_p5: mean, standard deviation and 5th percentile of the per-image Dice.
        gamma: wrong fraction among the referred pixels; psi_c: pixel accuracy on the kept pixels (NaN if absent).
        image_coverage, image_dice: per-image coverage and Dice by case id (empty when the files hold none).
        dice_ci: the bootstrap interval of ``dice_mean`` over images, ``(low, high)``; None when not computed.
    """

    target_coverage: float
    coverage: float
    threshold: float
    dice_mean: float
    dice_std: float
    dice_p5: float
    gamma: float
    psi_c: float
    image_coverage: Mapping[str, float] = field(repr=False)
    image_dice: Mapping[str, float] = field(repr=False)
    dice_ci: tuple[float, float] | None = None


@dataclass(frozen=True, eq=False)
class DiceCurve:
    """The Dice-coverage curve of ``curve.csv``.

    Shape:
        threshold, coverage, dice, risk: ``(P,)``, the curve's points; risk = 1 - Dice (higher is worse).
    """

    threshold: np.ndarray
    coverage: np.ndarray
    dice: np.ndarray
    risk: np.ndarray


@dataclass(frozen=True, eq=False)
class Reliability:
    """Top-label reliability bins.

    Shape:
        edges: ``(n_bins + 1,)``; counts, confidence, accuracy: ``(n_bins,)``, per-bin voxel count, mean confidence
        and accuracy (NaN for empty bins).
    """

    edges: np.ndarray
    counts: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray


@dataclass(frozen=True)
class Calibration:
    """Calibration of the mean probabilities (NLL, Brier, ECE: lower is better) and the reliability bins."""

    nll: float
    brier: float
    ece_top_label: float
    ece_classwise: float
    n_bins: int | None
    reliability: Reliability | None


@dataclass(frozen=True, eq=False)
class QCScore:
    """Quality control with one image score: AUC, ideal AUC and d-AUC (lower is better) and, when stored, the curve.

    Shape:
        fraction_flagged, fraction_failing, ideal_fraction_failing: ``(N + 1,)``, or None (old result files).
    """

    name: str
    auc: float
    auc_ideal: float
    d_auc: float
    fraction_flagged: np.ndarray | None
    fraction_failing: np.ndarray | None
    ideal_fraction_failing: np.ndarray | None

    @property
    def has_curve(self) -> bool:
        """Whether the curve itself was stored (not only its areas)."""
        x, y = self.fraction_flagged, self.fraction_failing
        return x is not None and y is not None and len(x) == len(y) > 0


@dataclass(frozen=True)
class QualityControl:
    """Quality control: an image fails when its Dice at coverage 1 is below ``tau``."""

    tau: float
    scores: tuple[QCScore, ...]


@dataclass(frozen=True)
class Disagreement:
    """Agreement of the uncertainty map with the annotators' variance (multi-annotator data only)."""

    uncertainty: str
    image_pearson: float
    image_spearman: float
    pixel_pearson: float
    soft_dice_thresholds: tuple[float, ...]
    soft_dice: tuple[float, ...]
    ged: float | None
    hungarian_iou: float | None


@dataclass(frozen=True, eq=False)
class MontageCase:
    """One case of the qualitative montage.

    Shape:
        every map ``(H, W)``: image float, reference and prediction int64 label maps, uncertainty float (higher =
        less sure), referred bool (referred at the montage's coverage); annotator_variance and model_variance float
        or None.
    """

    case_id: str
    image: np.ndarray
    reference: np.ndarray
    prediction: np.ndarray
    uncertainty: np.ndarray
    referred: np.ndarray
    annotator_variance: np.ndarray | None
    model_variance: np.ndarray | None


@dataclass(frozen=True)
class Montage:
    """The montage cases and the coverage of their referral maps."""

    coverage: float
    cases: tuple[MontageCase, ...]


@dataclass(frozen=True, eq=False)
class OODResults:
    """Out-of-distribution detection: AUROC per distorted fraction and score, and the per-image rows of ``ood.csv``.

    Shape:
        fraction, distorted, dice: ``(R,)`` one entry per row of ``ood.csv`` (fraction 0 = the clean set);
        image_scores: score name -> ``(R,)``. All empty when ``ood.csv`` is absent.
    """

    severity: Any
    kinds: tuple[str, ...]
    fractions: tuple[float, ...]
    score_names: tuple[str, ...]
    auroc: Mapping[float, Mapping[str, float]]
    fraction: np.ndarray
    case_ids: tuple[str, ...]
    distorted: np.ndarray
    kind: tuple[str, ...]
    dice: np.ndarray
    image_scores: Mapping[str, np.ndarray]


@dataclass(frozen=True)
class RunResults:
    """Everything the report shows about one evaluated run (optional parts None or empty when absent).

    Attributes:
        aurc: the Dice AURC; oracle_aurc + excess_aurc = aurc (its split); error_auroc: pixel error-detection AUROC;
            augrc: AUGRC with the pixel error (see ``docs/metrics.md``). NaN where the file does not hold them.

    ``aurc_ci`` and ``bootstrap`` (its settings: n_resamples, seed, confidence_level, ...) are None for evaluations
    without a bootstrap; ``reference_sha256`` is None for older evaluations; ``summary_metrics`` holds the keys of
    :data:`SUMMARY_METRICS` the file has (NaN for null).
    """

    run_dir: Path
    label: str
    uncertainty: str
    estimator: str
    estimator_options: Mapping[str, Any]
    num_cases: int
    num_classes: int
    class_names: tuple[str, ...] | None
    aurc: float
    points: tuple[OperatingPoint, ...]
    curve: DiceCurve
    oracle_aurc: float = math.nan
    excess_aurc: float = math.nan
    error_auroc: float = math.nan
    augrc: float = math.nan
    calibration: Calibration | None = None
    quality_control: QualityControl | None = None
    disagreement: Disagreement | None = None
    image_scores: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    montage: Montage | None = None
    ood: OODResults | None = None
    config_path: Path | None = None
    config_text: str | None = None
    run_info: Mapping[str, Any] | None = None
    ensemble: Mapping[str, Any] | None = None
    training: TrainingHistory | None = None
    aurc_ci: tuple[float, float] | None = None
    bootstrap: Mapping[str, Any] | None = None
    reference_sha256: str | None = None
    summary_metrics: Mapping[str, float] = field(default_factory=dict)

    def point(self, target_coverage: float) -> OperatingPoint | None:
        """The operating point for ``target_coverage``, or None when the run was not evaluated there."""
        for p in self.points:
            if abs(p.target_coverage - target_coverage) <= _TOL:
                return p
        return None

    @property
    def case_ids(self) -> tuple[str, ...]:
        """Every case id with a per-image value, in first-seen order."""
        seen: dict[str, None] = {}
        for p in self.points:
            seen.update(dict.fromkeys(p.image_dice))
        return tuple(seen)


def default_labels(run_dirs: Sequence[str | Path]) -> list[str]:
    """Labels for runs: the folder names; where two share a name, their paths relative to the common parent.

    Example:
        >>> default_labels(["out/a/run", "out/b/run", "out/base"])
        ['a/run', 'b/run', 'base']
    """
    paths = [Path(os.path.abspath(p)) for p in run_dirs]
    names = [p.name for p in paths]
    if len(set(names)) == len(names):
        return names
    parent = Path(os.path.commonpath([str(p) for p in paths])) if len(paths) > 1 else paths[0].parent
    labels = []
    for path, name in zip(paths, names):
        if names.count(name) > 1:
            rel = os.path.relpath(path, parent)
            labels.append(name if rel == "." else Path(rel).as_posix())
        else:
            labels.append(name)
    seen: dict[str, int] = {}
    unique = []
    for label in labels:  # the same folder given twice
        seen[label] = seen.get(label, 0) + 1
        unique.append(label if seen[label] == 1 else f"{label} #{seen[label]}")
    return unique


def load_run_results(run_dir: str | Path, *, label: str | None = None) -> RunResults:
    """Read one evaluated run folder (see the module doc for the files).

    Args:
        run_dir: the run folder given to ``selectseg evaluate``.
        label: the name shown in the report (default: the folder name).

    Returns:
        The run's results; optional parts absent from the folder are None (or empty).

    Raises:
        ValueError: if ``evaluation/evaluation.json`` or ``evaluation/curve.csv`` is missing (the message names the
            path and says to run ``selectseg evaluate``), or a result file is malformed (the message names it).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"Expected a run folder, but {str(run_dir)!r} is not a directory.")
    for required in (_EVALUATION, _CURVE):
        if not (run_dir / required).is_file():
            raise ValueError(
                f"{str(run_dir)!r} has no evaluation results: {str(run_dir / required)!r} is missing; "
                f"run `selectseg evaluate {run_dir} --data ...` first."
            )
    path = run_dir / _EVALUATION
    ev = _read_json(path)
    if not isinstance(ev, dict):
        raise ValueError(f"Expected {str(path)!r} to hold a JSON object, but got {type(ev).__name__}.")
    per_image = _read_per_image(run_dir / _PER_IMAGE) if (run_dir / _PER_IMAGE).is_file() else {}
    rows = _require(ev, "table", path)
    if not isinstance(rows, list):
        raise ValueError(f"Expected `table` in {str(path)!r} to be a list of operating points.")
    points = tuple(_operating_point(row, path, per_image) for row in rows)
    class_names, options = ev.get("class_names"), ev.get("estimator_options")
    config_path, config_text, run_info, ensemble = _read_config(run_dir)
    return RunResults(
        run_dir=run_dir,
        label=label if label is not None else run_dir.name,
        uncertainty=str(ev.get("uncertainty", "")),
        estimator=str(ev.get("estimator", "")),
        estimator_options=options if isinstance(options, dict) else {},
        num_cases=_int(ev.get("num_cases"), len(points[0].image_dice) if points else 0),
        num_classes=_int(ev.get("num_classes"), 2),
        class_names=tuple(str(c) for c in class_names) if isinstance(class_names, list) else None,
        aurc=_float(ev.get("aurc")),
        points=points,
        curve=_read_curve(run_dir / _CURVE),
        oracle_aurc=_float(ev.get("oracle_aurc")),
        excess_aurc=_float(ev.get("excess_aurc")),
        error_auroc=_float(ev.get("error_auroc")),
        augrc=_float(ev.get("augrc")),
        calibration=_calibration(ev.get("calibration")),
        quality_control=_quality_control(ev.get("quality_control"), ev.get("uncertainty")),
        disagreement=_disagreement(ev.get("disagreement")),
        image_scores={
            str(name): {str(k): _float(v) for k, v in values.items()}
            for name, values in (ev.get("image_scores") or {}).items()
            if isinstance(values, dict)
        },
        montage=_read_montage(run_dir / _MONTAGE) if (run_dir / _MONTAGE).is_file() else None,
        ood=_read_ood(run_dir) if (run_dir / _OOD_JSON).is_file() else None,
        config_path=config_path,
        config_text=config_text,
        run_info=run_info,
        ensemble=ensemble,
        training=_read_training(config_path.parent / "metrics.csv") if config_path is not None else None,
        aurc_ci=_interval(ev.get("aurc_ci")),
        bootstrap=ev["bootstrap"] if isinstance(ev.get("bootstrap"), dict) else None,
        reference_sha256=str(ev["reference_sha256"]) if isinstance(ev.get("reference_sha256"), str) else None,
        summary_metrics={k: _float(ev[k]) for k in SUMMARY_METRICS if k in ev},
    )


def _read_training(path: Path) -> TrainingHistory | None:
    """``metrics.csv`` as columns (None when absent or empty; an unreadable cell is NaN)."""
    if not path.is_file():
        return None
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "epoch" not in rows[0]:
        return None
    names = [k for k in rows[0] if k != "epoch"]
    columns = {k: np.array([_float(r.get(k)) for r in rows], dtype=np.float64) for k in names}
    return TrainingHistory(epochs=np.array([_int(_float(r["epoch"]), 0) for r in rows]), columns=columns)


def _interval(value: Any) -> tuple[float, float] | None:
    """A JSON ``[low, high]`` as floats; None when absent or malformed."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return (_float(value[0]), _float(value[1]))
    return None


def _float(value: Any) -> float:
    """A JSON number (null = NaN; "inf"/"-inf" strings as written by ``evaluate``) as a float."""
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _int(value: Any, default: int) -> int:
    return int(value) if isinstance(value, (int, float)) and math.isfinite(value) else default


def _floats(values: Any) -> np.ndarray:
    return np.array([_float(v) for v in (values or [])], dtype=np.float64)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{str(path)!r} is not valid JSON: {err}.") from err


def _require(mapping: Mapping[str, Any], key: str, path: Path) -> Any:
    if key not in mapping:
        raise ValueError(f"Expected key {key!r} in {str(path)!r}, but it has only {sorted(mapping)}.")
    return mapping[key]


def _operating_point(row: Any, path: Path, per_image: Mapping[float, dict[str, tuple[float, float]]]) -> OperatingPoint:
    if not isinstance(row, dict):
        raise ValueError(f"Expected every row of `table` in {str(path)!r} to be an object, but got {row!r}.")
    target = _float(_require(row, "target_coverage", path))
    image_coverage = {str(k): _float(v) for k, v in (row.get("image_coverage") or {}).items()}
    image_dice = {str(k): _float(v) for k, v in (row.get("image_dice") or {}).items()}
    if not image_dice:
        for c, values in per_image.items():
            if abs(c - target) <= _TOL:
                image_coverage = {k: v[0] for k, v in values.items()}
                image_dice = {k: v[1] for k, v in values.items()}
    return OperatingPoint(
        target_coverage=target,
        coverage=_float(row.get("coverage")),
        threshold=_float(row.get("threshold")),
        dice_mean=_float(_require(row, "dice_mean", path)),
        dice_std=_float(row.get("dice_std")),
        dice_p5=_float(row.get("dice_p5")),
        gamma=_float(row.get("gamma")),
        psi_c=_float(row.get("psi_c")),
        image_coverage=image_coverage,
        image_dice=image_dice,
        dice_ci=_interval(row.get("dice_ci")),
    )


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        raise ValueError(f"{str(path)!r} is empty; expected a header line.")
    return rows[0], [r for r in rows[1:] if r]


def _at(row: Sequence[str], i: int) -> str:
    """The i-th field of a CSV row, "nan" where the row is short."""
    return row[i] if i < len(row) else "nan"


def _read_curve(path: Path) -> DiceCurve:
    header, rows = _read_csv(path)
    missing = [c for c in ("coverage", "dice") if c not in header]
    if missing:
        raise ValueError(f"Expected columns threshold,coverage,dice,risk in {str(path)!r}, but got {header}.")
    columns = {name: np.array([_float(_at(r, i)) for r in rows], dtype=np.float64) for i, name in enumerate(header)}
    dice = columns["dice"]
    threshold = columns.get("threshold", np.full_like(dice, np.nan))
    return DiceCurve(threshold=threshold, coverage=columns["coverage"], dice=dice, risk=columns.get("risk", 1.0 - dice))


def _read_per_image(path: Path) -> dict[float, dict[str, tuple[float, float]]]:
    """``per_image.csv`` as {target coverage: {case id: (coverage, Dice)}}."""
    header, rows = _read_csv(path)
    out: dict[float, dict[str, tuple[float, float]]] = {}
    for i, name in enumerate(header):
        if not name.startswith("dice@"):
            continue
        suffix = name.removeprefix("dice@")
        j = header.index(f"coverage@{suffix}") if f"coverage@{suffix}" in header else None
        out[_float(suffix)] = {r[0]: (math.nan if j is None else _float(_at(r, j)), _float(_at(r, i))) for r in rows}
    return out


def _calibration(value: Any) -> Calibration | None:
    if not isinstance(value, dict):
        return None
    rel = value.get("reliability_top_label")
    reliability = None
    if isinstance(rel, dict) and rel.get("edges"):
        reliability = Reliability(
            edges=_floats(rel.get("edges")),
            counts=_floats(rel.get("counts")),
            confidence=_floats(rel.get("confidence")),
            accuracy=_floats(rel.get("accuracy")),
        )
    n_bins = value.get("n_bins")
    return Calibration(
        nll=_float(value.get("nll")),
        brier=_float(value.get("brier")),
        ece_top_label=_float(value.get("ece_top_label")),
        ece_classwise=_float(value.get("ece_classwise")),
        n_bins=int(n_bins) if isinstance(n_bins, (int, float)) else None,
        reliability=reliability,
    )


def _qc_score(name: str, value: Mapping[str, Any]) -> QCScore:
    curves = [value.get(k) for k in ("fraction_flagged", "fraction_failing", "ideal_fraction_failing")]
    arrays = [_floats(c) if isinstance(c, list) and c else None for c in curves]
    return QCScore(
        name=name,
        auc=_float(value.get("auc")),
        auc_ideal=_float(value.get("auc_ideal")),
        d_auc=_float(value.get("d_auc")),
        fraction_flagged=arrays[0],
        fraction_failing=arrays[1],
        ideal_fraction_failing=arrays[2],
    )


def _quality_control(value: Any, uncertainty: Any) -> QualityControl | None:
    """The new shape ``{tau, scores: {name: {...}}}`` or the old one ``{image_score, tau, auc, auc_ideal, d_auc}``."""
    if not isinstance(value, dict):
        return None
    tau = _float(value.get("tau"))
    if isinstance(value.get("scores"), dict):
        scores = tuple(_qc_score(str(k), v) for k, v in value["scores"].items() if isinstance(v, dict))
    else:
        name = value.get("image_score") or f"mean {uncertainty}"
        scores = (_qc_score(str(name), value),)
    return QualityControl(tau=tau, scores=scores)


def _disagreement(value: Any) -> Disagreement | None:
    if not isinstance(value, dict):
        return None
    ged, hungarian = value.get("ged"), value.get("hungarian_iou")
    return Disagreement(
        uncertainty=str(value.get("uncertainty", "")),
        image_pearson=_float(value.get("image_pearson")),
        image_spearman=_float(value.get("image_spearman")),
        pixel_pearson=_float(value.get("pixel_pearson")),
        soft_dice_thresholds=tuple(float(x) for x in _floats(value.get("soft_dice_thresholds"))),
        soft_dice=tuple(float(x) for x in _floats(value.get("soft_dice"))),
        ged=None if "ged" not in value else _float(ged),
        hungarian_iou=None if "hungarian_iou" not in value else _float(hungarian),
    )


def _slice2d(array: np.ndarray) -> np.ndarray:
    """A 2D map as is; a volume's middle slice along its leading axes."""
    while array.ndim > 2:
        array = array[array.shape[0] // 2]
    return array


def _read_montage(path: Path) -> Montage:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as err:
        raise ValueError(f"{str(path)!r} is not a readable montage (.npz): {err}") from err
    if "case_ids" not in arrays:
        raise ValueError(f"Expected `case_ids` in {str(path)!r}, but it holds only {sorted(arrays)}.")
    cases = []
    for i, case_id in enumerate(arrays["case_ids"].reshape(-1).tolist()):
        maps: dict[str, np.ndarray | None] = {}
        for name in ("image", "reference", "prediction", "uncertainty", "referred"):
            key = f"{name}_{i}"
            if key not in arrays:
                raise ValueError(f"Expected `{key}` in {str(path)!r} for case {case_id!r}, but it is missing.")
            maps[name] = _slice2d(arrays[key])
        for name in ("annotator_variance", "model_variance"):
            key = f"{name}_{i}"
            maps[name] = _slice2d(arrays[key]).astype(np.float64) if key in arrays else None
        shapes = {m.shape for m in maps.values() if m is not None}
        if len(shapes) != 1:
            raise ValueError(
                f"Expected every map of case {case_id!r} in {str(path)!r} to share one shape, got {shapes}."
            )
        cases.append(
            MontageCase(
                case_id=str(case_id),
                image=np.asarray(maps["image"], dtype=np.float64),
                reference=np.asarray(maps["reference"], dtype=np.int64),
                prediction=np.asarray(maps["prediction"], dtype=np.int64),
                uncertainty=np.asarray(maps["uncertainty"], dtype=np.float64),
                referred=np.asarray(maps["referred"], dtype=bool),
                annotator_variance=maps["annotator_variance"],
                model_variance=maps["model_variance"],
            )
        )
    coverage = _float(arrays["coverage"].reshape(-1)[0]) if "coverage" in arrays else math.nan
    return Montage(coverage=coverage, cases=tuple(cases))


def _read_ood(run_dir: Path) -> OODResults:
    path = run_dir / _OOD_JSON
    ood = _read_json(path)
    if not isinstance(ood, dict):
        raise ValueError(f"Expected {str(path)!r} to hold a JSON object, but got {type(ood).__name__}.")
    auroc = {
        _float(f): {str(s): _float(v) for s, v in values.items()}
        for f, values in (ood.get("auroc") or {}).items()
        if isinstance(values, dict)
    }
    score_names = [str(s) for s in ood.get("scores") or []] or sorted({s for v in auroc.values() for s in v})
    fraction, distorted, dice = np.zeros(0), np.zeros(0, dtype=bool), np.zeros(0)
    case_ids: tuple[str, ...] = ()
    kind: tuple[str, ...] = ()
    scores: dict[str, np.ndarray] = {}
    if (run_dir / _OOD_CSV).is_file():
        header, rows = _read_csv(run_dir / _OOD_CSV)
        missing = [c for c in ("fraction", "case_id", "distorted") if c not in header]
        if missing:
            raise ValueError(f"Expected columns {missing} in {str(run_dir / _OOD_CSV)!r}, but got {header}.")
        col = {name: [_at(r, i) for r in rows] for i, name in enumerate(header)}
        fraction = np.array([_float(v) for v in col["fraction"]])
        case_ids = tuple(col["case_id"])
        distorted = np.array([v.strip().lower() in ("1", "true", "yes") for v in col["distorted"]], dtype=bool)
        kind = tuple(col.get("kind", [""] * len(rows)))
        dice = np.array([_float(v) for v in col.get("dice", ["nan"] * len(rows))])
        fixed = {"fraction", "case_id", "distorted", "kind", "dice"}
        for name in [h for h in header if h not in fixed]:
            scores[name] = np.array([_float(v) for v in col[name]])
        score_names = score_names or list(scores)
    return OODResults(
        severity=ood.get("severity"),
        kinds=tuple(str(k) for k in ood.get("kinds") or []),
        fractions=tuple(_float(f) for f in ood.get("fractions") or sorted(auroc)),
        score_names=tuple(score_names),
        auroc=auroc,
        fraction=fraction,
        case_ids=case_ids,
        distorted=distorted,
        kind=kind,
        dice=dice,
        image_scores=scores,
    )


def _read_config(run_dir: Path) -> tuple[Path | None, str | None, dict[str, Any] | None, dict[str, Any] | None]:
    """The resolved config text, run.json and (for an ensemble folder) ensemble.json; None where absent."""
    source = run_dir
    ensemble = None
    if (run_dir / "ensemble.json").is_file():
        ensemble = _read_json(run_dir / "ensemble.json")
        members = ensemble.get("members") if isinstance(ensemble, dict) else None
        if isinstance(members, list) and members:
            source = run_dir / str(members[0])
    config_path = source / "config.yaml"
    config_text = config_path.read_text(encoding="utf-8") if config_path.is_file() else None
    run_info = _read_json(source / "run.json") if (source / "run.json").is_file() else None
    return (
        config_path if config_text is not None else None,
        config_text,
        run_info if isinstance(run_info, dict) else None,
        ensemble if isinstance(ensemble, dict) else None,
    )
