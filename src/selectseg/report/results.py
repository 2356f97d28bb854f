"""Read one evaluated run folder into :class:`RunResults`: the typed results of :mod:`selectseg.results` plus the run's
own files; no plotting here (no matplotlib, no MONAI).

Files read from a run folder ``RUN`` (names owned by :mod:`selectseg.runs.folder`); only the evaluation is required,
every other part is read when present:

- ``RUN/evaluation/``: :class:`~selectseg.results.EvaluationResult` (``evaluation.json``, ``curve.csv``, ...) and
  :class:`~selectseg.results.Montage` (``montage.npz``);
- ``RUN/ood/``: :class:`~selectseg.results.OODResult`;
- ``RUN/config.yaml`` and ``RUN/run.json`` (for an ensemble folder, those of its first member, and ``ensemble.json``);
- ``RUN/metrics.csv``: :class:`~selectseg.results.TrainingHistory`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..results import EvaluationResult, Montage, OODResult, TrainingHistory, _json
from ..results.evaluation import CURVE_CSV, EVALUATION_JSON
from ..results.montage import MONTAGE_NPZ
from ..results.ood import OOD_JSON
from ..runs import folder

__all__ = ["RunResults", "default_labels", "load_run_results"]


@dataclass(frozen=True)
class RunResults:
    """Everything the report shows about one evaluated run (optional parts None when absent).

    Attributes:
        run_dir: the run folder; label: its name in the report.
        evaluation: the evaluation's typed result (AURC and its split, operating points, curve, calibration, ...).
        montage, ood: the qualitative montage and the OOD evaluation.
        config_path, config_text: the resolved config (of member 0 for an ensemble); run_info: ``run.json``;
        ensemble: ``ensemble.json`` for an ensemble folder; training: the training history.
    """

    run_dir: Path
    label: str
    evaluation: EvaluationResult
    montage: Montage | None = None
    ood: OODResult | None = None
    config_path: Path | None = None
    config_text: str | None = None
    run_info: Mapping[str, Any] | None = None
    ensemble: Mapping[str, Any] | None = None
    training: TrainingHistory | None = None


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
        The run's results; optional parts absent from the folder are None.

    Raises:
        ValueError: if ``evaluation/evaluation.json`` or ``evaluation/curve.csv`` is missing (the message names the
            path and says to run ``selectseg evaluate``), or a result file is malformed (the message names it).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"Expected a run folder, but {str(run_dir)!r} is not a directory.")
    evaluation_dir = run_dir / folder.EVALUATION_DIR
    for required in (EVALUATION_JSON, CURVE_CSV):
        if not (evaluation_dir / required).is_file():
            raise ValueError(
                f"{str(run_dir)!r} has no evaluation results: {str(evaluation_dir / required)!r} is missing; "
                f"run `selectseg evaluate {run_dir} --data ...` first."
            )
    evaluation = EvaluationResult.load(evaluation_dir)
    config_path, config_text, run_info, ensemble = _read_config(run_dir)
    montage = evaluation_dir / MONTAGE_NPZ
    ood_dir = run_dir / folder.OOD_DIR
    return RunResults(
        run_dir=run_dir,
        label=label if label is not None else run_dir.name,
        evaluation=evaluation,
        montage=Montage.load(montage) if montage.is_file() else None,
        ood=OODResult.load(ood_dir) if (ood_dir / OOD_JSON).is_file() else None,
        config_path=config_path,
        config_text=config_text,
        run_info=run_info,
        ensemble=ensemble,
        training=TrainingHistory.load(config_path.parent / folder.METRICS) if config_path is not None else None,
    )


def _read_config(run_dir: Path) -> tuple[Path | None, str | None, dict[str, Any] | None, dict[str, Any] | None]:
    """The resolved config text, run.json and (for an ensemble folder) ensemble.json; None where absent."""
    index = folder.read_index(run_dir)
    ensemble = index[1] if index is not None and index[0] == "ensemble" else None
    source = folder.first_member(run_dir) if ensemble is not None else run_dir
    config_path = source / folder.CONFIG
    config_text = config_path.read_text(encoding="utf-8") if config_path.is_file() else None
    run_info = _json.load_object(source / folder.RUN_INFO) if (source / folder.RUN_INFO).is_file() else None
    return (config_path if config_text is not None else None, config_text, run_info, ensemble)
