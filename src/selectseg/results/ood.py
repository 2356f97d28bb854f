"""The result of ``selectseg ood`` (``ood.json`` + ``ood.csv``), written and read as one type."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write_text, staged_output
from . import _json

__all__ = ["OOD_CSV", "OOD_JSON", "OODResult"]

OOD_JSON = "ood.json"
OOD_CSV = "ood.csv"


@dataclass(frozen=True, eq=False)
class OODResult:
    """Out-of-distribution detection: AUROC per distorted fraction and image score, and the per-image rows.

    Attributes:
        run, uncertainty, estimator, estimator_options, num_cases, seed: what was evaluated and how.
        severity, kinds, fractions: the distortion protocol; score_names: the image scores.
        auroc: fraction -> score name -> AUROC (distorted images positive, the clean ones of the same set negative).
        mean_dice: fraction (0 = the clean set) -> mean Dice; negatives: what the negatives are; notes: caveats.

    Shape:
        fraction, distorted, dice: ``(R,)`` one entry per row of ``ood.csv`` (fraction 0 = the clean set); case_ids,
        kind: ``R`` strings; image_scores: score name -> ``(R,)``. All empty when ``ood.csv`` is absent.
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
    run: str = ""
    uncertainty: str = ""
    estimator: str = ""
    estimator_options: Mapping[str, Any] = field(default_factory=dict)
    num_cases: int = 0
    seed: int | None = None
    mean_dice: Mapping[float, float] = field(default_factory=dict)
    negatives: str = ""
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The content of ``ood.json`` (keys of fractions as strings, e.g. ``"0.5"``)."""
        return {
            "run": self.run,
            "uncertainty": self.uncertainty,
            "estimator": self.estimator,
            "estimator_options": dict(self.estimator_options),
            "num_cases": self.num_cases,
            "severity": self.severity,
            "kinds": list(self.kinds),
            "seed": self.seed,
            "fractions": list(self.fractions),
            "scores": list(self.score_names),
            "auroc": {str(f): dict(v) for f, v in self.auroc.items()},
            "mean_dice": {str(f): v for f, v in self.mean_dice.items()},
            "negatives": self.negatives,
            "notes": list(self.notes),
        }

    def save(self, out_dir: str | Path) -> Path:
        """Write ``ood.csv`` and ``ood.json`` into ``out_dir`` (created), complete or absent
        (:func:`selectseg._io.staged_output`: ``ood.json`` removed first and moved in last); returns ``ood.json``."""
        out_dir = Path(out_dir)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["fraction", "case_id", "distorted", "kind", "dice", *self.score_names])
        for i, case_id in enumerate(self.case_ids):
            scores = (repr(float(self.image_scores[n][i])) for n in self.score_names)
            flag = int(bool(self.distorted[i]))
            writer.writerow([float(self.fraction[i]), case_id, flag, self.kind[i], repr(float(self.dice[i])), *scores])
        with staged_output(out_dir, OOD_JSON, replaces=(OOD_CSV,)) as stage:
            atomic_write_text(stage / OOD_CSV, buffer.getvalue())
            _json.dump(stage / OOD_JSON, self.to_json())
        return out_dir / OOD_JSON

    @classmethod
    def load(cls, out_dir: str | Path) -> OODResult:
        """Read an OOD folder (``ood.csv`` optional).

        Raises:
            ValueError: if ``ood.json`` is missing or malformed, or ``ood.csv`` lacks its fixed columns.
        """
        out_dir = Path(out_dir)
        ood = _json.load_object(out_dir / OOD_JSON)
        f = _json.read_float
        auroc = {
            f(k): {str(s): f(v) for s, v in values.items()}
            for k, values in (ood.get("auroc") or {}).items()
            if isinstance(values, dict)
        }
        score_names = [str(s) for s in ood.get("scores") or []] or sorted({s for v in auroc.values() for s in v})
        fraction, distorted, dice = np.zeros(0), np.zeros(0, dtype=bool), np.zeros(0)
        case_ids: tuple[str, ...] = ()
        kind: tuple[str, ...] = ()
        scores: dict[str, np.ndarray] = {}
        path = out_dir / OOD_CSV
        if path.is_file():
            with path.open(newline="", encoding="utf-8") as handle:
                rows = [r for r in csv.reader(handle) if r]
            header, rows = (rows[0], rows[1:]) if rows else ([], [])
            missing = [c for c in ("fraction", "case_id", "distorted") if c not in header]
            if missing:
                raise ValueError(f"Expected columns {missing} in {str(path)!r}, but got {header}.")
            col = {name: [r[i] if i < len(r) else "nan" for r in rows] for i, name in enumerate(header)}
            fraction = np.array([f(v) for v in col["fraction"]])
            case_ids = tuple(col["case_id"])
            distorted = np.array([v.strip().lower() in ("1", "true", "yes") for v in col["distorted"]], dtype=bool)
            kind = tuple(col.get("kind", [""] * len(rows)))
            dice = np.array([f(v) for v in col.get("dice", ["nan"] * len(rows))])
            fixed = {"fraction", "case_id", "distorted", "kind", "dice"}
            for name in [h for h in header if h not in fixed]:
                scores[name] = np.array([f(v) for v in col[name]])
            score_names = score_names or list(scores)
        seed = ood.get("seed")
        return cls(
            severity=ood.get("severity"),
            kinds=tuple(str(k) for k in ood.get("kinds") or []),
            fractions=tuple(f(x) for x in ood.get("fractions") or sorted(auroc)),
            score_names=tuple(score_names),
            auroc=auroc,
            fraction=fraction,
            case_ids=case_ids,
            distorted=distorted,
            kind=kind,
            dice=dice,
            image_scores=scores,
            run=str(ood.get("run", "")),
            uncertainty=str(ood.get("uncertainty", "")),
            estimator=str(ood.get("estimator", "")),
            estimator_options=ood["estimator_options"] if isinstance(ood.get("estimator_options"), dict) else {},
            num_cases=_json.read_int(ood.get("num_cases"), len(set(case_ids))),
            seed=int(seed) if isinstance(seed, int) else None,
            mean_dice={f(k): f(v) for k, v in (ood.get("mean_dice") or {}).items()},
            negatives=str(ood.get("negatives", "")),
            notes=tuple(str(n) for n in ood.get("notes") or []),
        )
