"""Cross-validation: ``selectseg train --folds K`` trains one run per fold of a subject-level k-fold split.

Layout::

    RUN/cv.json          {"folds": K, "runs": ["fold_0", ...], "seed": s}
    RUN/fold_k/          an ordinary run with data.folds = K, data.fold = k (validated on its held-out fold)

Each fold is resumable on its own; a finished fold is never trained again. Evaluation and aggregation over the
folds: :func:`selectseg.evaluation.evaluate_folds`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import yaml

from ..data.splits import kfold_assignments
from .checkpoint import atomic_write_text
from .config import TrainConfig, config_from_dict
from .data import load_cases
from .loop import ProgressEvent, TrainResult, train

__all__ = ["CV_FILE", "train_folds"]

CV_FILE = "cv.json"


def train_folds(
    config: TrainConfig | None,
    run_dir: str | Path,
    folds: int,
    *,
    resume: bool = False,
    progress: Callable[[int, ProgressEvent], None] | None = None,
) -> list[TrainResult]:
    """Train fold ``k = 0..K-1`` of a K-fold split of the training cases into ``run_dir/fold_k``.

    Folds keep a subject's cases together (``Case.subject``, e.g. GlaS patients; see
    :func:`selectseg.data.splits.kfold_split`), seeded by ``config.seed``.

    Args:
        config: the runs' config (its ``data.folds``/``data.fold`` are set per fold); None with ``resume``.
        run_dir: the cross-validation folder; new or empty unless ``resume``.
        folds: K >= 2, at most the number of subjects.
        resume: continue (finished folds are kept as they are, an interrupted one resumes).
        progress: called with the fold index and each :class:`ProgressEvent`.

    Raises:
        ValueError: before any training if ``folds < 2``, K exceeds the number of subjects, the folder is not empty
            without ``resume``, or on resume it is not a K-fold folder.
    """
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ValueError(f"Expected `folds` to be an int >= 2, but got {folds!r}.")
    run_dir = Path(run_dir)
    index_file = run_dir / CV_FILE
    if resume:
        if not index_file.is_file():
            raise ValueError(f"Cannot resume: {str(index_file)!r} not found (was {str(run_dir)!r} a --folds run?).")
        saved = json.loads(index_file.read_text())
        if saved["folds"] != folds:
            raise ValueError(f"Cannot resume {str(run_dir)!r} with {folds} folds: it holds {saved['folds']}.")
        if config is None:
            config = config_from_dict(yaml.safe_load((run_dir / "fold_0" / "config.yaml").read_text()))
    elif run_dir.exists() and any(run_dir.iterdir()):
        raise ValueError(
            f"Run folder {str(run_dir)!r} is not empty; pass resume to continue it, or choose a new output folder."
        )
    if config is None:
        raise ValueError("A config is needed to start a cross-validation (only `resume` can take the saved one).")
    cases = load_cases(config.data, split="train").cases
    kfold_assignments([c.subject or c.case_id for c in cases], folds, seed=config.seed)  # K > subjects: error now
    names = [f"fold_{k}" for k in range(folds)]
    if not resume:
        atomic_write_text(index_file, json.dumps({"folds": folds, "runs": names, "seed": config.seed}, indent=2))
    results = []
    for k, name in enumerate(names):
        fold_config = dataclasses.replace(config, data=dataclasses.replace(config.data, folds=folds, fold=k))
        started = (run_dir / name / "config.yaml").is_file()
        report = None if progress is None else _for_fold(progress, k)
        results.append(train(fold_config, run_dir / name, resume=started, progress=report))
    return results


def _for_fold(progress: Callable[[int, ProgressEvent], None], k: int) -> Callable[[ProgressEvent], None]:
    return lambda event: progress(k, event)
