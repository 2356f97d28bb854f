"""The result of ``selectseg evaluate`` as typed values: written once by :meth:`EvaluationResult.save`, read back as
the same type by :meth:`EvaluationResult.load` (no torch, no MONAI, no matplotlib).

Files (in the evaluation folder, ``RUN/evaluation/`` by default; written complete or absent by
:meth:`EvaluationResult.save`: staged first, then moved in with ``evaluation.json`` removed first and moved in last,
so that its presence means the other files are those of the same evaluation):

- ``summary.csv``: ``metric,value,ci_low,ci_high``: AURC and Dice at each coverage with their bootstrap intervals;
- ``curve.csv``: the Dice-coverage curve ``threshold,coverage,dice,risk``;
- ``per_image.csv``: per-image ``coverage@c,dice@c`` and image scores;
- ``montage.npz``: the qualitative montage (:class:`~selectseg.results.Montage`), when the evaluation made one;
- ``evaluation.json``: everything else (see :class:`EvaluationResult`), under the JSON convention of
  :mod:`selectseg.results._json` (NaN as null, infinities as strings). Files written before a number existed are
  read with that number absent (None) or NaN, as each field documents.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write_text, staged_output
from . import _json
from .montage import MONTAGE_NPZ, Montage

__all__ = [
    "DEFAULT_COVERAGES",
    "HEADLINE_METRICS",
    "Calibration",
    "DiceCurve",
    "Disagreement",
    "EvaluationResult",
    "OperatingPoint",
    "QCScore",
    "QualityControl",
    "Reliability",
]

EVALUATION_JSON = "evaluation.json"
SUMMARY_CSV = "summary.csv"
CURVE_CSV = "curve.csv"
PER_IMAGE_CSV = "per_image.csv"
EVALUATION_FILES = (EVALUATION_JSON, SUMMARY_CSV, CURVE_CSV, PER_IMAGE_CSV, MONTAGE_NPZ)
"""Every file of an evaluation folder (:meth:`EvaluationResult.save` replaces them all, or none)."""
_TOL = 1e-9

DEFAULT_COVERAGES = (1.0, 0.99, 0.98, 0.97, 0.96, 0.95, 0.9, 0.8, 0.7)
"""The target coverages evaluated by default: Ding et al.'s Table 1 (0.95..0.7) and Table 4 (1.00..0.95)."""

HEADLINE_METRICS = ("aurc", "oracle_aurc", "excess_aurc", "error_auroc", "augrc")
"""The pooled figures of an evaluation, attributes of :class:`EvaluationResult` (see ``docs/metrics.md``)."""


@dataclass(frozen=True)
class OperatingPoint:
    """The operating point chosen for one target coverage (one row of the table).

    Attributes:
        target_coverage: the requested coverage; coverage: the achieved one (the largest <= target over every
            distinct threshold).
        threshold: the global uncertainty threshold (a pixel is kept when its uncertainty <= threshold).
        dice_mean, dice_std, dice_p5: mean, standard deviation and 5th percentile of the per-image Dice.
        gamma: wrong fraction among the referred pixels; psi_c: pixel accuracy on the kept pixels (NaN if undefined).
        image_coverage, image_dice: per-image coverage and Dice by case id, in case order.
        dice_ci: the bootstrap interval of ``dice_mean`` over images; None when not computed.
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

    def to_json(self) -> dict[str, Any]:
        """The table row (plain JSON types; NaN kept as float until :func:`~selectseg.results._json.encode`)."""
        return {
            "target_coverage": self.target_coverage,
            "coverage": self.coverage,
            "threshold": self.threshold,
            "dice_mean": self.dice_mean,
            **({"dice_ci": list(self.dice_ci)} if self.dice_ci is not None else {}),
            "dice_std": self.dice_std,
            "dice_p5": self.dice_p5,
            "gamma": self.gamma,
            "psi_c": self.psi_c,
            "image_coverage": dict(self.image_coverage),
            "image_dice": dict(self.image_dice),
        }

    @classmethod
    def from_json(cls, row: Any, *, source: str = "the table") -> OperatingPoint:
        """Inverse of :meth:`to_json`; a missing per-image map is empty, a missing number NaN.

        Raises:
            ValueError: if the row is not an object or lacks ``target_coverage``/``dice_mean`` (naming ``source``).
        """
        if not isinstance(row, dict):
            raise ValueError(f"Expected every row of `table` in {source} to be an object, but got {row!r}.")
        for key in ("target_coverage", "dice_mean"):
            if key not in row:
                raise ValueError(f"Expected key {key!r} in every row of `table` in {source}, but got {sorted(row)}.")
        f = _json.read_float
        return cls(
            target_coverage=f(row["target_coverage"]),
            coverage=f(row.get("coverage")),
            threshold=f(row.get("threshold")),
            dice_mean=f(row["dice_mean"]),
            dice_std=f(row.get("dice_std")),
            dice_p5=f(row.get("dice_p5")),
            gamma=f(row.get("gamma")),
            psi_c=f(row.get("psi_c")),
            image_coverage={str(k): f(v) for k, v in (row.get("image_coverage") or {}).items()},
            image_dice={str(k): f(v) for k, v in (row.get("image_dice") or {}).items()},
            dice_ci=_json.read_interval(row.get("dice_ci")),
        )


@dataclass(frozen=True, eq=False)
class DiceCurve:
    """The Dice-coverage curve at every stored point (``curve.csv``).

    Shape:
        threshold, coverage, dice: ``(P,)`` float64; :attr:`risk` = 1 - Dice (higher is worse).
    """

    threshold: np.ndarray
    coverage: np.ndarray
    dice: np.ndarray

    @property
    def risk(self) -> np.ndarray:
        """``(P,)`` 1 - Dice."""
        return 1.0 - self.dice

    def to_csv(self) -> str:
        """``threshold,coverage,dice,risk`` with every float written exactly (``repr``)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["threshold", "coverage", "dice", "risk"])
        for t, c, d in zip(self.threshold, self.coverage, self.dice):
            writer.writerow([repr(float(t)), repr(float(c)), repr(float(d)), repr(float(1.0 - d))])
        return buffer.getvalue()

    @classmethod
    def from_csv(cls, path: str | Path) -> DiceCurve:
        """Read ``curve.csv``.

        Raises:
            ValueError: if it is empty or lacks the ``coverage``/``dice`` columns (naming the file).
        """
        header, rows = _read_csv(Path(path))
        if any(c not in header for c in ("coverage", "dice")):
            raise ValueError(f"Expected columns threshold,coverage,dice,risk in {str(path)!r}, but got {header}.")
        columns = {
            name: np.array([_json.read_float(_at(r, i)) for r in rows], dtype=np.float64)
            for i, name in enumerate(header)
        }
        dice = columns["dice"]
        return cls(
            threshold=columns.get("threshold", np.full_like(dice, np.nan)), coverage=columns["coverage"], dice=dice
        )


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
    """Calibration of the mean probabilities over all voxels (NLL, Brier, ECE: lower is better), with the bins."""

    nll: float
    brier: float
    ece_top_label: float
    ece_classwise: float
    n_bins: int | None
    reliability: Reliability | None

    def to_json(self) -> dict[str, Any]:
        rel = self.reliability
        return {
            "nll": self.nll,
            "brier": self.brier,
            "ece_top_label": self.ece_top_label,
            "ece_classwise": self.ece_classwise,
            "n_bins": self.n_bins,
            "reliability_top_label": None
            if rel is None
            else {
                "edges": rel.edges.tolist(),
                "counts": rel.counts.tolist(),
                "confidence": rel.confidence.tolist(),
                "accuracy": rel.accuracy.tolist(),
            },
        }

    @classmethod
    def from_json(cls, value: Any) -> Calibration | None:
        """Inverse of :meth:`to_json` (None for anything but an object)."""
        if not isinstance(value, dict):
            return None
        rel = value.get("reliability_top_label")
        reliability = None
        if isinstance(rel, dict) and rel.get("edges"):
            reliability = Reliability(
                edges=_json.read_floats(rel.get("edges")),
                counts=_json.read_floats(rel.get("counts")),
                confidence=_json.read_floats(rel.get("confidence")),
                accuracy=_json.read_floats(rel.get("accuracy")),
            )
        n_bins = value.get("n_bins")
        return cls(
            nll=_json.read_float(value.get("nll")),
            brier=_json.read_float(value.get("brier")),
            ece_top_label=_json.read_float(value.get("ece_top_label")),
            ece_classwise=_json.read_float(value.get("ece_classwise")),
            n_bins=int(n_bins) if isinstance(n_bins, (int, float)) else None,
            reliability=reliability,
        )


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

    def to_json(self) -> dict[str, Any]:
        def arr(a: np.ndarray | None) -> list[float]:
            return [] if a is None else a.tolist()

        return {
            "auc": self.auc,
            "auc_ideal": self.auc_ideal,
            "d_auc": self.d_auc,
            "fraction_flagged": arr(self.fraction_flagged),
            "fraction_failing": arr(self.fraction_failing),
            "ideal_fraction_failing": arr(self.ideal_fraction_failing),
        }

    @classmethod
    def from_json(cls, name: str, value: Mapping[str, Any]) -> QCScore:
        curves = [value.get(k) for k in ("fraction_flagged", "fraction_failing", "ideal_fraction_failing")]
        arrays = [_json.read_floats(c) if isinstance(c, list) and c else None for c in curves]
        return cls(
            name=name,
            auc=_json.read_float(value.get("auc")),
            auc_ideal=_json.read_float(value.get("auc_ideal")),
            d_auc=_json.read_float(value.get("d_auc")),
            fraction_flagged=arrays[0],
            fraction_failing=arrays[1],
            ideal_fraction_failing=arrays[2],
        )


@dataclass(frozen=True)
class QualityControl:
    """Quality control: an image fails when its Dice at coverage 1 is below ``tau``; one :class:`QCScore` per image
    score."""

    tau: float
    scores: tuple[QCScore, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "tau": self.tau,
            "image_dice": "Dice at coverage 1.0",
            "scores": {s.name: s.to_json() for s in self.scores},
        }

    @classmethod
    def from_json(cls, value: Any, uncertainty: Any = "") -> QualityControl | None:
        """The shape ``{tau, scores: {name: {...}}}`` or the older ``{image_score, tau, auc, auc_ideal, d_auc}``."""
        if not isinstance(value, dict):
            return None
        if isinstance(value.get("scores"), dict):
            scores = tuple(QCScore.from_json(str(k), v) for k, v in value["scores"].items() if isinstance(v, dict))
        else:
            name = value.get("image_score") or f"mean {uncertainty}"
            scores = (QCScore.from_json(str(name), value),)
        return cls(tau=_json.read_float(value.get("tau")), scores=scores)


@dataclass(frozen=True)
class Disagreement:
    """Agreement of the uncertainty map with the annotators' variance (multi-annotator data only).

    Attributes:
        uncertainty: the map compared; sv_roi, sv_roi_radius: where SV is summed (whole image, or the annotators'
            union dilated by the radius).
        image_pearson, image_spearman: correlation of the per-image sums (SV); pixel_pearson: mean per-image Pearson
            over pixels; each ``..._ci`` a percentile-bootstrap interval over images (NaN without one).
        ci: the bootstrap settings; image_sv, annotator_sv, image_pixel_pearson: per-image values by case id.
        soft_dice_thresholds, soft_dice: soft Dice of the foreground probability against the annotators' mean.
        samples: what GED and Hungarian IoU compared; ged, hungarian_iou: their means over images (None in files
            written before they existed).
    """

    uncertainty: str
    image_pearson: float
    image_spearman: float
    pixel_pearson: float
    soft_dice_thresholds: tuple[float, ...]
    soft_dice: tuple[float, ...]
    ged: float | None
    hungarian_iou: float | None
    sv_roi: str = "image"
    sv_roi_radius: int | None = None
    image_pearson_ci: tuple[float, float] = (math.nan, math.nan)
    image_spearman_ci: tuple[float, float] = (math.nan, math.nan)
    pixel_pearson_ci: tuple[float, float] = (math.nan, math.nan)
    ci: Mapping[str, Any] = field(default_factory=dict)
    image_sv: Mapping[str, float] = field(default_factory=dict, repr=False)
    annotator_sv: Mapping[str, float] = field(default_factory=dict, repr=False)
    image_pixel_pearson: Mapping[str, float] = field(default_factory=dict, repr=False)
    samples: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "uncertainty": self.uncertainty,
            "sv_roi": self.sv_roi,
            "sv_roi_radius": self.sv_roi_radius,
            "image_pearson": self.image_pearson,
            "image_pearson_ci": list(self.image_pearson_ci),
            "image_spearman": self.image_spearman,
            "image_spearman_ci": list(self.image_spearman_ci),
            "pixel_pearson": self.pixel_pearson,
            "pixel_pearson_ci": list(self.pixel_pearson_ci),
            "ci": dict(self.ci),
            "image_sv": dict(self.image_sv),
            "annotator_sv": dict(self.annotator_sv),
            "image_pixel_pearson": dict(self.image_pixel_pearson),
            "soft_dice_thresholds": list(self.soft_dice_thresholds),
            "soft_dice": list(self.soft_dice),
            "samples": self.samples,
            "ged": self.ged,
            "hungarian_iou": self.hungarian_iou,
        }

    @classmethod
    def from_json(cls, value: Any) -> Disagreement | None:
        if not isinstance(value, dict):
            return None
        f = _json.read_float
        nan2 = (math.nan, math.nan)
        radius = value.get("sv_roi_radius")
        return cls(
            uncertainty=str(value.get("uncertainty", "")),
            image_pearson=f(value.get("image_pearson")),
            image_spearman=f(value.get("image_spearman")),
            pixel_pearson=f(value.get("pixel_pearson")),
            soft_dice_thresholds=tuple(float(x) for x in _json.read_floats(value.get("soft_dice_thresholds"))),
            soft_dice=tuple(float(x) for x in _json.read_floats(value.get("soft_dice"))),
            ged=None if "ged" not in value else f(value.get("ged")),
            hungarian_iou=None if "hungarian_iou" not in value else f(value.get("hungarian_iou")),
            sv_roi=str(value.get("sv_roi", "image")),
            sv_roi_radius=int(radius) if isinstance(radius, int) else None,
            image_pearson_ci=_json.read_interval(value.get("image_pearson_ci")) or nan2,
            image_spearman_ci=_json.read_interval(value.get("image_spearman_ci")) or nan2,
            pixel_pearson_ci=_json.read_interval(value.get("pixel_pearson_ci")) or nan2,
            ci=value["ci"] if isinstance(value.get("ci"), dict) else {},
            image_sv={str(k): f(v) for k, v in (value.get("image_sv") or {}).items()},
            annotator_sv={str(k): f(v) for k, v in (value.get("annotator_sv") or {}).items()},
            image_pixel_pearson={str(k): f(v) for k, v in (value.get("image_pixel_pearson") or {}).items()},
            samples=str(value.get("samples", "")),
        )


@dataclass(frozen=True)
class EvaluationResult:
    """Everything ``selectseg evaluate`` computes for one run on one labelled test set.

    Attributes:
        run: the run folder evaluated; uncertainty, estimator, estimator_options: how its uncertainty was made.
        num_cases, num_classes, class_names: the test set (class names None where the run did not record them).
        reference_sha256: fingerprint of the reference label maps (None in older files), so that comparisons can
            check that two evaluations share their data.
        aurc: Dice AURC; oracle_aurc + excess_aurc = aurc (segmentation quality + ordering); error_auroc: pixel
            error-detection AUROC (NaN when no voxel or every voxel is wrong); augrc: AUGRC with the pixel error. The
            last four are None in files written before they existed.
        aurc_ci: the bootstrap interval of ``aurc`` over images; bootstrap: its settings (both None without one).
        points: one :class:`OperatingPoint` per target coverage, in the requested order.
        curve: the Dice-coverage curve.
        calibration, quality_control, disagreement: None where not computed (disagreement needs >= 2 annotators
            on every case).
        image_scores: image-level uncertainty score name -> {case id: value}.
    """

    run: str
    uncertainty: str
    estimator: str
    estimator_options: Mapping[str, Any]
    num_cases: int
    num_classes: int
    class_names: tuple[str, ...] | None
    aurc: float
    points: tuple[OperatingPoint, ...]
    curve: DiceCurve
    oracle_aurc: float | None = None
    excess_aurc: float | None = None
    error_auroc: float | None = None
    augrc: float | None = None
    reference_sha256: str | None = None
    aurc_ci: tuple[float, float] | None = None
    bootstrap: Mapping[str, Any] | None = None
    calibration: Calibration | None = None
    quality_control: QualityControl | None = None
    image_scores: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    disagreement: Disagreement | None = None

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

    def headline(self) -> dict[str, float]:
        """The :data:`HEADLINE_METRICS` this result holds (absent ones left out; NaN kept)."""
        values = {name: getattr(self, name) for name in HEADLINE_METRICS}
        return {name: float(v) for name, v in values.items() if v is not None}

    def to_json(self) -> dict[str, Any]:
        """The content of ``evaluation.json`` (before the NaN/inf convention is applied)."""
        out: dict[str, Any] = {
            "run": self.run,
            "uncertainty": self.uncertainty,
            "estimator": self.estimator,
            "estimator_options": dict(self.estimator_options),
            "num_cases": self.num_cases,
            "num_classes": self.num_classes,
            "class_names": None if self.class_names is None else list(self.class_names),
            "reference_sha256": self.reference_sha256,
            "aurc": self.aurc,
        }
        out.update({k: v for k, v in self.headline().items() if k != "aurc"})
        if self.aurc_ci is not None:
            out["aurc_ci"] = list(self.aurc_ci)
        out["bootstrap"] = None if self.bootstrap is None else dict(self.bootstrap)
        out["table"] = [p.to_json() for p in self.points]
        if self.calibration is not None:
            out["calibration"] = self.calibration.to_json()
        if self.quality_control is not None:
            out["quality_control"] = self.quality_control.to_json()
        out["image_scores"] = {name: dict(values) for name, values in self.image_scores.items()}
        if self.disagreement is not None:
            out["disagreement"] = self.disagreement.to_json()
        return out

    @classmethod
    def from_json(
        cls,
        value: Mapping[str, Any],
        curve: DiceCurve,
        *,
        source: str = "evaluation.json",
        per_image: Mapping[float, Mapping[str, tuple[float, float]]] | None = None,
    ) -> EvaluationResult:
        """Inverse of :meth:`to_json`, given the curve (kept in its own file).

        Args:
            value: the parsed ``evaluation.json``.
            curve: the Dice-coverage curve.
            source: the file's name for error messages.
            per_image: ``per_image.csv`` as {target coverage: {case id: (coverage, Dice)}}, used where a table row
                lacks its per-image maps (files written before they moved into the JSON).

        Raises:
            ValueError: if ``table`` is missing or malformed (naming ``source``).
        """
        if "table" not in value:
            raise ValueError(f"Expected key 'table' in {source}, but it has only {sorted(value)}.")
        rows = value["table"]
        if not isinstance(rows, list):
            raise ValueError(f"Expected `table` in {source} to be a list of operating points.")
        points = tuple(_with_per_image(OperatingPoint.from_json(r, source=source), per_image) for r in rows)
        class_names, options = value.get("class_names"), value.get("estimator_options")
        f = _json.read_float

        def optional(name: str) -> float | None:
            return f(value[name]) if name in value else None

        return cls(
            run=str(value.get("run", "")),
            uncertainty=str(value.get("uncertainty", "")),
            estimator=str(value.get("estimator", "")),
            estimator_options=options if isinstance(options, dict) else {},
            num_cases=_json.read_int(value.get("num_cases"), len(points[0].image_dice) if points else 0),
            num_classes=_json.read_int(value.get("num_classes"), 2),
            class_names=tuple(str(c) for c in class_names) if isinstance(class_names, list) else None,
            aurc=f(value.get("aurc")),
            points=points,
            curve=curve,
            oracle_aurc=optional("oracle_aurc"),
            excess_aurc=optional("excess_aurc"),
            error_auroc=optional("error_auroc"),
            augrc=optional("augrc"),
            reference_sha256=value["reference_sha256"] if isinstance(value.get("reference_sha256"), str) else None,
            aurc_ci=_json.read_interval(value.get("aurc_ci")),
            bootstrap=value["bootstrap"] if isinstance(value.get("bootstrap"), dict) else None,
            calibration=Calibration.from_json(value.get("calibration")),
            quality_control=QualityControl.from_json(value.get("quality_control"), value.get("uncertainty")),
            image_scores={
                str(name): {str(k): f(v) for k, v in values.items()}
                for name, values in (value.get("image_scores") or {}).items()
                if isinstance(values, dict)
            },
            disagreement=Disagreement.from_json(value.get("disagreement")),
        )

    def save(self, out_dir: str | Path, *, montage: Montage | None = None) -> Path:
        """Write ``summary.csv``, ``curve.csv``, ``per_image.csv``, ``montage.npz`` (when given) and
        ``evaluation.json`` into ``out_dir`` (created), complete or absent (:func:`selectseg._io.staged_output`):
        a kill leaves the previous evaluation whole, or no ``evaluation.json`` at all, never new files beside old
        ones. A ``montage.npz`` of an earlier evaluation is removed when no montage is given. Returns the path of
        ``evaluation.json``."""
        out_dir = Path(out_dir)
        with staged_output(out_dir, EVALUATION_JSON, replaces=EVALUATION_FILES) as stage:
            atomic_write_text(stage / SUMMARY_CSV, self._summary_csv())
            atomic_write_text(stage / CURVE_CSV, self.curve.to_csv())
            atomic_write_text(stage / PER_IMAGE_CSV, self._per_image_csv())
            if montage is not None:
                montage.save(stage / MONTAGE_NPZ)
            _json.dump(stage / EVALUATION_JSON, self.to_json())
        return out_dir / EVALUATION_JSON

    @classmethod
    def load(cls, out_dir: str | Path) -> EvaluationResult:
        """Read an evaluation folder written by :meth:`save` (or by older versions of selectseg).

        Raises:
            ValueError: if ``evaluation.json`` or ``curve.csv`` is missing or malformed (naming the file).
        """
        out_dir = Path(out_dir)
        for name in (EVALUATION_JSON, CURVE_CSV):
            if not (out_dir / name).is_file():
                raise ValueError(f"{str(out_dir / name)!r} is missing; run `selectseg evaluate` first.")
        path = out_dir / EVALUATION_JSON
        per_image = _read_per_image(out_dir / PER_IMAGE_CSV) if (out_dir / PER_IMAGE_CSV).is_file() else {}
        return cls.from_json(
            _json.load_object(path),
            DiceCurve.from_csv(out_dir / CURVE_CSV),
            source=repr(str(path)),
            per_image=per_image,
        )

    @staticmethod
    def exists(out_dir: str | Path) -> bool:
        """Whether ``out_dir`` holds a complete evaluation: ``evaluation.json`` is removed before any other file of
        a new evaluation is moved in and is moved in last (:meth:`save`), so its presence means the whole set."""
        return (Path(out_dir) / EVALUATION_JSON).is_file()

    def _summary_csv(self) -> str:
        """The headline figures with their bootstrap intervals: ``metric,value,ci_low,ci_high`` (empty without one)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["metric", "value", "ci_low", "ci_high"])
        ci_of = self.aurc_ci if self.bootstrap is not None else None
        rows: list[tuple[str, float, Sequence[float] | None]] = [("aurc", self.aurc, ci_of)]
        rows += [(f"dice@{p.target_coverage}", p.dice_mean, p.dice_ci) for p in self.points]
        for name, value, ci in rows:
            writer.writerow([name, repr(float(value)), *(["", ""] if ci is None else [repr(float(v)) for v in ci])])
        return buffer.getvalue()

    def _per_image_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        header = ["case_id"]
        for p in self.points:
            header += [f"coverage@{p.target_coverage}", f"dice@{p.target_coverage}"]
        writer.writerow(header + list(self.image_scores))
        for case_id in self.case_ids:
            line: list[Any] = [case_id]
            for p in self.points:
                line += [repr(p.image_coverage[case_id]), repr(p.image_dice[case_id])]
            writer.writerow(line + [repr(float(values[case_id])) for values in self.image_scores.values()])
        return buffer.getvalue()


def _with_per_image(
    point: OperatingPoint, per_image: Mapping[float, Mapping[str, tuple[float, float]]] | None
) -> OperatingPoint:
    if point.image_dice or not per_image:
        return point
    for c, values in per_image.items():
        if abs(c - point.target_coverage) <= _TOL:
            return dataclasses.replace(
                point,
                image_coverage={k: v[0] for k, v in values.items()},
                image_dice={k: v[1] for k, v in values.items()},
            )
    return point


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        raise ValueError(f"{str(path)!r} is empty; expected a header line.")
    return rows[0], [r for r in rows[1:] if r]


def _at(row: Sequence[str], i: int) -> str:
    """The i-th field of a CSV row, "nan" where the row is short."""
    return row[i] if i < len(row) else "nan"


def _read_per_image(path: Path) -> dict[float, dict[str, tuple[float, float]]]:
    """``per_image.csv`` as {target coverage: {case id: (coverage, Dice)}}."""
    header, rows = _read_csv(path)
    out: dict[float, dict[str, tuple[float, float]]] = {}
    for i, name in enumerate(header):
        if not name.startswith("dice@"):
            continue
        suffix = name.removeprefix("dice@")
        j = header.index(f"coverage@{suffix}") if f"coverage@{suffix}" in header else None
        out[_json.read_float(suffix)] = {
            r[0]: (math.nan if j is None else _json.read_float(_at(r, j)), _json.read_float(_at(r, i))) for r in rows
        }
    return out
