"""Deep ensembles: N members trained alike but for the seed, in one folder (Lakshminarayanan et al. 2017).

Layout::

    RUN/ensemble.json      {"members": ["member_0", ...], "seeds": [...]}
    RUN/member_k/          an ordinary training run (config.yaml, checkpoints/, model.pt, ...)

Member k uses ``seed + k`` (initial weights, data order, augmentation; the train/validation split uses the member's
seed too unless ``data.folds`` fixes it). Members are trained one after another; each resumes on its own, so an
interrupted ensemble continues where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import yaml

from .checkpoint import atomic_write_text
from .config import TrainConfig, config_from_dict
from .loop import ProgressEvent, TrainResult, train

__all__ = ["ENSEMBLE_FILE", "train_ensemble"]

ENSEMBLE_FILE = "ensemble.json"


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
    index_file = run_dir / ENSEMBLE_FILE
    if resume:
        if not index_file.is_file():
            raise ValueError(f"Cannot resume: {str(index_file)!r} not found (was {str(run_dir)!r} an ensemble?).")
        saved = json.loads(index_file.read_text())
        if len(saved["members"]) != members:
            raise ValueError(
                f"Cannot resume {str(run_dir)!r} with {members} members: it is an ensemble of {len(saved['members'])}."
            )
    elif run_dir.exists() and any(run_dir.iterdir()):
        raise ValueError(
            f"Run folder {str(run_dir)!r} is not empty; pass resume to continue it, or choose a new output folder."
        )
    if config is None:
        first = run_dir / "member_0" / "config.yaml"
        if not resume or not first.is_file():
            raise ValueError("A config is needed to start a new ensemble (only `resume` can take the saved one).")
        config = config_from_dict(yaml.safe_load(first.read_text()))
    base_seed = json.loads(index_file.read_text())["seeds"][0] if resume else config.seed
    names = [f"member_{k}" for k in range(members)]
    if not resume:
        entry = {"members": names, "seeds": [base_seed + k for k in range(members)]}
        atomic_write_text(index_file, json.dumps(entry, indent=2))
    results = []
    for k, name in enumerate(names):
        member_dir = run_dir / name
        member_config = dataclasses.replace(config, seed=base_seed + k)
        started = (member_dir / "config.yaml").is_file()
        results.append(train(member_config, member_dir, resume=started, progress=_for_member(progress, k)))
    return results


def _for_member(
    progress: Callable[[int, ProgressEvent], None] | None, k: int
) -> Callable[[ProgressEvent], None] | None:
    if progress is None:
        return None
    return lambda event: progress(k, event)
