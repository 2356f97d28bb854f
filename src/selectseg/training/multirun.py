"""Several runs in one folder: deep ensembles and cross-validation share one orchestrator.

Layout (names owned by :mod:`selectseg.runs.folder`)::

    RUN/ensemble.json    {"members": ["member_0", ...], "seeds": [...]}        train --ensemble N
    RUN/cv.json          {"folds": K, "runs": ["fold_0", ...], "seed": s}        train --folds K
    RUN/<member>/        an ordinary training run (config.yaml, checkpoints/, model.pt, ...)

Deep ensembles (Lakshminarayanan et al. 2017): member k uses ``seed + k`` (initial weights, data order, augmentation;
the train/validation split uses the member's seed too unless ``data.folds`` fixes it). Cross-validation: fold k is a
run with ``data.folds = K, data.fold = k``, validated on its held-out fold (subject-level split, seeded by
``config.seed``). Members are trained one after another; each resumes on its own, so an interrupted folder
continues where it stopped and a finished member is never trained again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .._io import atomic_write_text
from ..data.splits import kfold_assignments
from ..runs import folder
from ..runs.config import TrainConfig
from ..runs.data import load_cases
from .distributed import is_main_process
from .loop import ProgressEvent, TrainResult, train

__all__ = ["train_ensemble", "train_folds", "train_runs"]


def train_runs(
    configs: Sequence[tuple[str, TrainConfig]],
    run_dir: str | Path,
    *,
    index_name: str,
    index: dict[str, Any],
    resume: bool = False,
    progress: Callable[[int, ProgressEvent], None] | None = None,
) -> list[TrainResult]:
    """Train one run per ``(member folder, config)`` into ``run_dir/<member>``, after writing the index file.

    The orchestrator behind :func:`train_ensemble` and :func:`train_folds`: the folder's lock
    (:func:`selectseg.runs.folder.lock`, held throughout; each member takes its own too), the new-folder check, the
    index written once (atomically, before the first member), members trained in order, each resumed when it has
    started.

    Args:
        configs: ``(member folder name, its config)`` in training order.
        run_dir: the multi-run folder; new or empty unless ``resume``.
        index_name: the index file (:data:`~selectseg.runs.folder.ENSEMBLE_INDEX` or ``CV_INDEX``).
        index: its content (written on a new folder only).
        resume: continue an interrupted folder.
        progress: called with the member index and each :class:`ProgressEvent`.

    Raises:
        ValueError: if the folder is not empty without ``resume``, is locked by another process, or a member fails
            the checks of :func:`~selectseg.training.train`.
    """
    run_dir = Path(run_dir)
    # Taken before the new-folder check (check and start are one step); under torchrun by rank 0 only.
    owner = folder.lock(run_dir, purpose="train (several runs)") if is_main_process() else contextlib.nullcontext()
    with owner:
        if not resume:
            folder.check_new_run(run_dir)
            atomic_write_text(run_dir / index_name, json.dumps(index, indent=2))
        results = []
        for k, (name, config) in enumerate(configs):
            member_dir = run_dir / name
            report = None if progress is None else _for_member(progress, k)
            results.append(train(config, member_dir, resume=folder.has_config(member_dir), progress=report))
        return results


def train_ensemble(
    config: TrainConfig | None,
    run_dir: str | Path,
    members: int,
    *,
    resume: bool = False,
    progress: Callable[[int, ProgressEvent], None] | None = None,
) -> list[TrainResult]:
    """Train ``members`` networks with seeds ``seed, seed + 1, ...`` into ``run_dir/member_k``.

    Args:
        config: the members' config (seed = member 0's); None with ``resume`` to take the saved one.
        run_dir: the ensemble folder; new or empty unless ``resume``.
        members: N >= 2.
        resume: continue an interrupted ensemble (finished members are kept as they are).
        progress: called with the member index and each :class:`ProgressEvent`.

    Raises:
        ValueError: if ``members < 2``, the folder is not empty without ``resume``, is not an ensemble of that size
            on resume, or a member fails the checks of :func:`~selectseg.training.train`.
    """
    if isinstance(members, bool) or not isinstance(members, int) or members < 2:
        raise ValueError(f"Expected `members` (ensemble size) to be an int >= 2, but got {members!r}.")
    run_dir = Path(run_dir)
    names = [f"member_{k}" for k in range(members)]
    if resume:
        saved = _saved_index(run_dir, "ensemble", "an ensemble")
        if len(saved["members"]) != members:
            raise ValueError(
                f"Cannot resume {str(run_dir)!r} with {members} members: it is an ensemble of {len(saved['members'])}."
            )
        base_seed = int(saved["seeds"][0])
        if config is None:
            if not folder.has_config(run_dir / names[0]):
                raise ValueError("A config is needed to start a new ensemble (only `resume` can take the saved one).")
            config = folder.read_config(run_dir / names[0])
    elif config is None:
        raise ValueError("A config is needed to start a new ensemble (only `resume` can take the saved one).")
    else:
        folder.check_new_run(run_dir)
        base_seed = config.seed
    configs = [(name, dataclasses.replace(config, seed=base_seed + k)) for k, name in enumerate(names)]
    index = {"members": names, "seeds": [base_seed + k for k in range(members)]}
    return train_runs(configs, run_dir, index_name=folder.ENSEMBLE_INDEX, index=index, resume=resume, progress=progress)


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
    :func:`selectseg.data.splits.kfold_split`), seeded by ``config.seed``. Evaluation and aggregation over the
    folds: :func:`selectseg.evaluation.evaluate_folds`.

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
    names = [f"fold_{k}" for k in range(folds)]
    if resume:
        saved = _saved_index(run_dir, "cv", "a --folds run")
        if saved["folds"] != folds:
            raise ValueError(f"Cannot resume {str(run_dir)!r} with {folds} folds: it holds {saved['folds']}.")
        if config is None:
            config = folder.read_config(run_dir / names[0])
    elif config is not None:
        folder.check_new_run(run_dir)
    if config is None:
        raise ValueError("A config is needed to start a cross-validation (only `resume` can take the saved one).")
    cases = load_cases(config.data, split="train").cases
    kfold_assignments([c.subject or c.case_id for c in cases], folds, seed=config.seed)  # K > subjects: error now
    configs = [
        (name, dataclasses.replace(config, data=dataclasses.replace(config.data, folds=folds, fold=k)))
        for k, name in enumerate(names)
    ]
    index = {"folds": folds, "runs": names, "seed": config.seed}
    return train_runs(configs, run_dir, index_name=folder.CV_INDEX, index=index, resume=resume, progress=progress)


def _saved_index(run_dir: Path, kind: str, what: str) -> dict[str, Any]:
    found = folder.read_index(run_dir)
    if found is None or found[0] != kind:
        name = folder.ENSEMBLE_INDEX if kind == "ensemble" else folder.CV_INDEX
        raise ValueError(f"Cannot resume: {str(run_dir / name)!r} not found (was {str(run_dir)!r} {what}?).")
    return found[1]


def _for_member(progress: Callable[[int, ProgressEvent], None], k: int) -> Callable[[ProgressEvent], None]:
    return lambda event: progress(k, event)
