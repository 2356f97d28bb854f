"""Fake evaluated run folders with small synthetic result files, in the formats ``selectseg evaluate`` writes.

The per-image Dice and coverage of the two standard runs (``BASE`` and ``BETTER``) are chosen so that Table 4 and the
quadrant shares can be computed by hand (see ``tests/report/test_collect.py``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np

COVERAGES = (1.0, 0.99, 0.98, 0.97, 0.96, 0.95, 0.9, 0.8, 0.7)
CASES = ("a", "b", "c", "d")

# Reference run: Dice at 1.0 mean 0.75, std sqrt(0.0125) = 0.1118, 5th percentile 0.615.
BASE_DICE = {1.0: {"a": 0.80, "b": 0.70, "c": 0.90, "d": 0.60}, 0.95: {"a": 0.85, "b": 0.75, "c": 0.92, "d": 0.70}}
BASE_COVERAGE = {0.95: {"a": 0.95, "b": 0.96, "c": 0.94, "d": 0.95}}
# Compared run. Table 4 at 1.0: mean of (0.05, 0.02, -0.02, 0.05) = +2.50 points; at 0.95: mean of
# (0.05, 0.05, -0.02, 0.04) = +3.00 points. Scatter at 0.95, (dx, dy): a (+0.02, +0.05) upper right, b (-0.03, +0.05)
# upper left, c (+0.02, -0.02) lower right, d (0, +0.04) on an axis: 25 % each, lower left 0 %.
BETTER_DICE = {1.0: {"a": 0.85, "b": 0.72, "c": 0.88, "d": 0.65}, 0.95: {"a": 0.90, "b": 0.80, "c": 0.90, "d": 0.74}}
BETTER_COVERAGE = {0.95: {"a": 0.97, "b": 0.93, "c": 0.96, "d": 0.95}}


def _per_image(
    values: Mapping[float, Mapping[str, float]], cases: tuple[str, ...], c: float, *, dice: bool
) -> dict[str, float]:
    if c in values:
        return {k: float(values[c][k]) for k in cases}
    if dice:  # referral only improves Dice: a smooth made-up rise from the coverage-1 values
        return {k: float(min(1.0, values[1.0][k] + 0.5 * (1.0 - c))) for k in cases}
    return dict.fromkeys(cases, float(c))


def evaluation_json(
    dice: Mapping[float, Mapping[str, float]],
    coverage: Mapping[float, Mapping[str, float]],
    *,
    cases: tuple[str, ...] = CASES,
    aurc: float = 0.1234,
    coverages: tuple[float, ...] = COVERAGES,
    qc: str | None = "new",
    calibration: bool = True,
    disagreement: bool = False,
    image_scores: bool = True,
    per_image_in_json: bool = True,
    decomposition: Mapping[str, float | None] | None = None,
    bootstrap: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The content of ``evaluation.json`` (Dice statistics computed from the per-image values).

    ``decomposition``: top-level ``oracle_aurc``, ``excess_aurc``, ``error_auroc``, ``augrc`` to add (None: none, as
    in files written before they existed).
    ``bootstrap``: with made-up intervals (AURC - 0.01 to + 0.015, each Dice mean - 0.02 to + 0.01) and settings, as
    ``evaluate`` writes them since it bootstraps; ``extra``: more top-level keys (e.g. ``reference_sha256``).
    """
    table = []
    for c in coverages:
        image_dice = _per_image(dice, cases, c, dice=True)
        image_cov = _per_image(coverage, cases, c, dice=False)
        d = np.array(list(image_dice.values()))
        row: dict[str, Any] = {
            "target_coverage": c,
            "coverage": c - 0.0004 if c < 1 else 1.0,
            "threshold": 0.5 * c if c < 1 else 0.9,
            "dice_mean": float(d.mean()),
            "dice_std": float(d.std()),
            "dice_p5": float(np.percentile(d, 5)),
            "gamma": None if c == 1.0 else 0.4,
            "psi_c": 0.97,
        }
        if bootstrap:
            row["dice_ci"] = [row["dice_mean"] - 0.02, row["dice_mean"] + 0.01]
        if per_image_in_json:
            row["image_coverage"] = image_cov
            row["image_dice"] = image_dice
        table.append(row)
    out: dict[str, Any] = {
        "run": "somewhere",
        "uncertainty": "max_softmax",
        "estimator": "softmax",
        "estimator_options": {},
        "num_cases": len(cases),
        "num_classes": 2,
        "class_names": ["background", "lesion"],
        "aurc": aurc,
        **(decomposition or {}),
        "table": table,
        **(extra or {}),
    }
    if bootstrap:
        out["aurc_ci"] = [aurc - 0.01, aurc + 0.015]
        out["bootstrap"] = {"n_resamples": 1000, "seed": 0, "confidence_level": 0.95, "method": "percentile"}
    if calibration:
        counts = [0] * 10 + [5, 10, 40, 100, 845]
        out["calibration"] = {
            "nll": 0.1234,
            "brier": 0.0456,
            "ece_top_label": 0.0123,
            "ece_classwise": 0.0101,
            "n_bins": 15,
            "reliability_top_label": {
                "edges": [float(x) for x in np.linspace(0.0, 1.0, 16)],
                "counts": counts,
                "confidence": [None] * 10 + [0.7, 0.77, 0.84, 0.91, 0.98],
                "accuracy": [None] * 10 + [0.6, 0.7, 0.8, 0.9, 0.99],
            },
        }
    n = len(cases)
    flagged = [k / n for k in range(n + 1)]
    if qc == "new":
        out["quality_control"] = {
            "tau": 0.8,
            "scores": {
                "mean max_softmax": {
                    "auc": 0.3,
                    "auc_ideal": 0.25,
                    "d_auc": 0.05,
                    "fraction_flagged": flagged,
                    "fraction_failing": [max(0.0, 0.5 - 0.4 * f) if f < 1 else 0.0 for f in flagged],
                    "ideal_fraction_failing": [max(0.0, 0.5 - f) for f in flagged],
                },
                "mean entropy": {
                    "auc": 0.32,
                    "auc_ideal": 0.25,
                    "d_auc": 0.07,
                    "fraction_flagged": flagged,
                    "fraction_failing": [max(0.0, 0.5 - 0.3 * f) if f < 1 else 0.0 for f in flagged],
                    "ideal_fraction_failing": [max(0.0, 0.5 - f) for f in flagged],
                },
            },
        }
    elif qc == "old":
        out["quality_control"] = {
            "image_score": "mean max_softmax",
            "tau": 0.8,
            "auc": 0.3125,
            "auc_ideal": 0.25,
            "d_auc": 0.0625,
        }
    if disagreement:
        out["disagreement"] = {
            "uncertainty": "max_softmax",
            "image_pearson": 0.61,
            "image_spearman": 0.55,
            "pixel_pearson": None,
            "soft_dice_thresholds": [round(0.1 * i, 1) for i in range(1, 10)],
            "soft_dice": [0.9 - 0.05 * i for i in range(9)],
            "ged": 0.42,
            "hungarian_iou": 0.71,
        }
    if image_scores:
        out["image_scores"] = {"mean max_softmax": {k: 0.1 * (i + 1) for i, k in enumerate(cases)}}
    return out


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def write_montage(path: Path, cases: tuple[str, ...], *, variances: bool = False, size: int = 16) -> None:
    """``montage.npz``: a disc lesion, a prediction shifted by two pixels, uncertainty high at the border."""
    yy, xx = np.mgrid[:size, :size]
    arrays: dict[str, np.ndarray] = {"case_ids": np.array(cases), "coverage": np.array(0.9)}
    for i, _ in enumerate(cases):
        r = size / 4 + i
        reference = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2 < r**2).astype(np.int64)
        prediction = ((yy - size / 2) ** 2 + (xx - size / 2 - 2) ** 2 < r**2).astype(np.int64)
        distance = np.abs(np.sqrt((yy - size / 2) ** 2 + (xx - size / 2) ** 2) - r)
        uncertainty = np.exp(-distance).astype(np.float32)
        arrays[f"image_{i}"] = (reference + 0.1 * np.sin(xx)).astype(np.float32)
        arrays[f"reference_{i}"] = reference
        arrays[f"prediction_{i}"] = prediction
        arrays[f"uncertainty_{i}"] = uncertainty
        arrays[f"referred_{i}"] = uncertainty > np.quantile(uncertainty, 0.9)
        if variances:
            arrays[f"annotator_variance_{i}"] = (0.25 * (distance < 1.5)).astype(np.float32)
            arrays[f"model_variance_{i}"] = (0.2 * uncertainty).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)  # type: ignore[arg-type]


def write_ood(run_dir: Path, cases: tuple[str, ...]) -> None:
    """``ood/ood.json`` and ``ood/ood.csv`` for fractions 0 (clean set), 0.5 and 1."""
    scores = ["mean max_softmax", "mean entropy"]
    (run_dir / "ood").mkdir(parents=True, exist_ok=True)
    info = {
        "run": str(run_dir),
        "estimator": "softmax",
        "severity": 3,
        "kinds": ["noise", "blur"],
        "fractions": [0.5, 1.0],
        "scores": scores,
        "auroc": {"0.5": {scores[0]: 0.81, scores[1]: 0.79}, "1.0": {scores[0]: 0.93, scores[1]: None}},
    }
    (run_dir / "ood" / "ood.json").write_text(json.dumps(info, indent=2))
    rows = []
    for fraction in (0.0, 0.5, 1.0):
        for i, case in enumerate(cases):
            distorted = fraction == 1.0 or (fraction == 0.5 and i % 2 == 0)
            base = 0.1 + 0.02 * i + (0.3 if distorted else 0.0)
            kind = ("noise" if i % 2 else "blur") if distorted else ""
            rows.append([fraction, case, distorted, kind, 0.8 - base / 2, base, 1.5 * base])
    _write_csv(run_dir / "ood" / "ood.csv", ["fraction", "case_id", "distorted", "kind", "dice", *scores], rows)


CONFIG_YAML = "seed: 0\ndata:\n  format: synthetic\n  annotator: random\nloss:\n  ranking: exact  # <b>not bold</b>\n"


def write_config(folder: Path, *, dataset: str = "synthetic", seed: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(CONFIG_YAML.replace("seed: 0", f"seed: {seed}"))
    info = {
        "selectseg_version": "0.1.0",
        "torch_version": "2.13.0",
        "dataset": dataset,
        "format": "synthetic",
        "class_names": ["background", "lesion"],
        "versions": {"numpy": "2.4.6"},
    }
    (folder / "run.json").write_text(json.dumps(info, indent=2))


def make_run(
    run_dir: Path,
    dice: Mapping[float, Mapping[str, float]] = BASE_DICE,
    coverage: Mapping[float, Mapping[str, float]] = BASE_COVERAGE,
    *,
    cases: tuple[str, ...] = CASES,
    everything: bool = True,
    qc: str | None = "auto",
    ensemble: bool = False,
    per_image_in_json: bool = True,
    **json_options: Any,
) -> Path:
    """Write a fake evaluated run folder.

    With ``everything`` it also has a montage (with annotator/model variance), OOD results, disagreement and the
    config; without, only ``evaluation.json`` (no optional parts unless asked for), ``curve.csv`` and
    ``per_image.csv``. ``qc``: ``"new"`` or ``"old"`` result shape, None for none, ``"auto"``: new with everything.
    """
    ev_dir = run_dir / "evaluation"
    ev_dir.mkdir(parents=True, exist_ok=True)
    if not everything:
        json_options = {"calibration": False, "image_scores": False, **json_options}
    if qc == "auto":
        qc = "new" if everything else None
    content = evaluation_json(
        dice,
        coverage,
        cases=cases,
        qc=qc,
        disagreement=everything,
        per_image_in_json=per_image_in_json,
        **json_options,
    )
    (ev_dir / "evaluation.json").write_text(json.dumps(content, indent=2))
    d1 = float(np.mean([dice[1.0][k] for k in cases]))
    cov = np.linspace(0.0, 1.0, 21)
    curve_dice = 1.0 - (1.0 - d1) * cov**2
    thresholds = ["-inf", *[repr(float(t)) for t in np.linspace(0.05, 0.9, 20)]]
    _write_csv(
        ev_dir / "curve.csv",
        ["threshold", "coverage", "dice", "risk"],
        [[t, repr(float(c)), repr(float(d)), repr(float(1 - d))] for t, c, d in zip(thresholds, cov, curve_dice)],
    )
    header = ["case_id"]
    for c in COVERAGES:
        header += [f"coverage@{c}", f"dice@{c}"]
    rows = []
    for k in cases:
        line: list[Any] = [k]
        for c in COVERAGES:
            line += [_per_image(coverage, cases, c, dice=False)[k], _per_image(dice, cases, c, dice=True)[k]]
        rows.append(line)
    _write_csv(ev_dir / "per_image.csv", header, rows)
    if everything:
        write_montage(ev_dir / "montage.npz", cases[:2], variances=True)
        write_ood(run_dir, cases)
        if ensemble:
            (run_dir / "ensemble.json").write_text(json.dumps({"members": ["member_0", "member_1"], "seeds": [0, 1]}))
            write_config(run_dir / "member_0")
        else:
            write_config(run_dir)
    return run_dir


class _TableParser(HTMLParser):
    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id = table_id
        self.depth = 0  # > 0 inside the wanted table
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and (self.depth or dict(attrs).get("id") == self.table_id):
            self.depth += 1
        elif self.depth and tag == "tr":
            self.rows.append([])
        elif self.depth and tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self.depth:
            self.depth -= 1
        elif self.depth and tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def table_rows(html: str, table_id: str) -> list[list[str]]:
    """The text of every cell of the table with ``id=table_id``, row by row (header rows included)."""
    parser = _TableParser(table_id)
    parser.feed(html)
    return parser.rows
