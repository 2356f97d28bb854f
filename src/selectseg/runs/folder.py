"""The run-folder contract: every file name of a run, the new-run check, and reading what a run saved.

One module owns the layout, so that training, evaluation, the report, the sweep and the CLI never spell a file
name themselves::

    RUN/config.yaml              the fully resolved TrainConfig (read back through :func:`read_config`)
    RUN/run.json                 data facts the run depends on (classes, channels, patch size, cases, versions)
    RUN/metrics.csv              one row per finished epoch
    RUN/checkpoints/last.pt      the resumable state after the last finished epoch
    RUN/model.pt                 final weights + architecture (what predict/evaluate load)
    RUN/snapshots/epoch_NNNN.pt  weights after the epochs in ``snapshot_epochs``
    RUN/referral.json            a calibrated referral threshold (``selectseg calibrate``)
    RUN/evaluation/              ``selectseg evaluate`` (see :mod:`selectseg.results`)
    RUN/ood/                     ``selectseg ood``
    RUN/predictions/             ``selectseg predict`` (default output folder)

A multi-run folder holds an index file and one ordinary run per member: ``ensemble.json`` + ``member_k/`` (deep
ensembles), ``cv.json`` + ``fold_k/`` (cross-validation).

No torch import here: the report and the sweep read run folders without loading a network.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import yaml

if typing.TYPE_CHECKING:
    from .config import TrainConfig

__all__ = [
    "CHECKPOINT",
    "CONFIG",
    "CV_INDEX",
    "ENSEMBLE_INDEX",
    "EVALUATION_DIR",
    "METRICS",
    "MODEL",
    "OOD_DIR",
    "PREDICTIONS_DIR",
    "REFERRAL",
    "RUN_INFO",
    "SNAPSHOTS_DIR",
    "check_new_run",
    "first_member",
    "has_config",
    "is_trained",
    "read_config",
    "read_index",
    "read_json",
    "read_run_info",
    "snapshot_path",
]

CONFIG = "config.yaml"
RUN_INFO = "run.json"
METRICS = "metrics.csv"
MODEL = "model.pt"
CHECKPOINT = "checkpoints/last.pt"
SNAPSHOTS_DIR = "snapshots"
REFERRAL = "referral.json"
EVALUATION_DIR = "evaluation"
OOD_DIR = "ood"
PREDICTIONS_DIR = "predictions"
ENSEMBLE_INDEX = "ensemble.json"
CV_INDEX = "cv.json"


def snapshot_path(run_dir: str | Path, epoch: int) -> Path:
    """``RUN/snapshots/epoch_NNNN.pt``: the weights saved after ``epoch`` (the config's ``snapshot_epochs``)."""
    return Path(run_dir) / SNAPSHOTS_DIR / f"epoch_{epoch:04d}.pt"


def check_new_run(run_dir: str | Path, *, what: str = "Run folder") -> None:
    """The new-run check: a run starts only in a missing or empty folder.

    Raises:
        ValueError: if ``run_dir`` exists and holds anything (naming the folder and the way out).
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise ValueError(
            f"{what} {str(run_dir)!r} is not empty; pass resume to continue it, or choose a new output folder."
        )


def has_config(run_dir: str | Path) -> bool:
    """Whether training has started in ``run_dir`` (its ``config.yaml`` was written)."""
    return (Path(run_dir) / CONFIG).is_file()


def is_trained(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` is a finished single run (``model.pt``, ``config.yaml`` and ``run.json`` present)."""
    run_dir = Path(run_dir)
    return all((run_dir / name).is_file() for name in (MODEL, CONFIG, RUN_INFO))


def read_config(run_dir: str | Path) -> TrainConfig:
    """The config a run saved, parsed and checked as :func:`~selectseg.runs.config.load_config` would.

    Raises:
        ValueError: if ``config.yaml`` is missing, is not YAML, or holds an unknown key or a bad value (the
            message names the file).
    """
    from .config import config_from_dict  # imported here: the folder's names stay free of torch

    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise ValueError(f"{str(path)!r} not found: {str(Path(run_dir))!r} is not a selectseg run folder.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return typing.cast("TrainConfig", config_from_dict(data))
    except yaml.YAMLError as error:
        raise ValueError(f"{str(path)!r} is not valid YAML: {error}") from None
    except ValueError as error:
        raise ValueError(f"{str(path)!r}: {error}") from None


def read_json(path: str | Path) -> Any:
    """A JSON file of a run folder.

    Raises:
        ValueError: if it is missing or not valid JSON (naming the file).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{str(path)!r} not found.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{str(path)!r} is not valid JSON: {error}.") from None


def read_run_info(run_dir: str | Path) -> dict[str, Any]:
    """``RUN/run.json`` as a dict.

    Raises:
        ValueError: if it is missing, not JSON or not an object.
    """
    info = read_json(Path(run_dir) / RUN_INFO)
    if not isinstance(info, dict):
        raise ValueError(f"Expected {str(Path(run_dir) / RUN_INFO)!r} to hold a JSON object.")
    return info


def read_index(run_dir: str | Path) -> tuple[str, dict[str, Any]] | None:
    """The multi-run index of ``run_dir``: ``(kind, content)`` with kind ``"ensemble"`` or ``"cv"``, None for a
    single run. The content lists the member folders under ``"members"`` (``cv.json`` calls them ``"runs"``; both
    keys are filled).

    Raises:
        ValueError: if the index is unreadable or lists no member.
    """
    run_dir = Path(run_dir)
    for kind, name in (("ensemble", ENSEMBLE_INDEX), ("cv", CV_INDEX)):
        path = run_dir / name
        if path.is_file():
            content = read_json(path)
            members = content.get("members", content.get("runs")) if isinstance(content, dict) else None
            if not isinstance(members, list) or not members:
                raise ValueError(f"Expected {str(path)!r} to list its member runs, but it lists none.")
            return kind, {**content, "members": members, "runs": members}
    return None


def first_member(run_dir: str | Path) -> Path:
    """The folder whose config describes ``run_dir``: the run itself, or member 0 of a multi-run folder."""
    index = read_index(run_dir)
    return Path(run_dir) / str(index[1]["members"][0]) if index is not None else Path(run_dir)
