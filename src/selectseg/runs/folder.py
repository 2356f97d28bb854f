"""The run-folder contract: every file name of a run, the new-run check, and reading what a run saved.

One module owns the layout, so that training, evaluation, the report, the sweep and the CLI never spell a file
name themselves::

    RUN/config.yaml              the fully resolved TrainConfig (read back through :func:`read_config`)
    RUN/run.json                 data facts the run depends on (classes, channels, patch size, cases, versions)
    RUN/metrics.csv              one row per finished epoch
    RUN/checkpoints/last.pt      the resumable state after the last finished epoch
    RUN/checkpoints/best.pt      the weights of the best epoch by ``best_metric`` (validation Dice by default)
    RUN/progress.png             the training curves (nnU-Net's progress.png), drawn by ``selectseg train``
    RUN/model.pt                 final weights + architecture (what predict/evaluate load)
    RUN/snapshots/epoch_NNNN.pt  weights after the epochs in ``snapshot_epochs``
    RUN/referral.json            a calibrated referral threshold (``selectseg calibrate``)
    RUN/evaluation/              ``selectseg evaluate`` (see :mod:`selectseg.results`)
    RUN/ood/                     ``selectseg ood``
    RUN/predictions/             ``selectseg predict`` (default output folder)
    RUN/.lock                    while a process writes the run: its pid, host and command (see :func:`lock`)

A multi-run folder holds an index file and one ordinary run per member: ``ensemble.json`` + ``member_k/`` (deep
ensembles), ``cv.json`` + ``fold_k/`` (cross-validation).

A run folder is written by one process at a time: training, and evaluate/predict/threshold/ood writing into it,
hold :func:`lock` (an OS lock on ``RUN/.lock``) for as long as they write.

No torch import here: the report and the sweep read run folders without loading a network.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import shlex
import socket
import sys
import threading
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..results._json import load_object

if typing.TYPE_CHECKING:
    from .config import TrainConfig

__all__ = [
    "BEST",
    "CHECKPOINT",
    "CONFIG",
    "CV_INDEX",
    "ENSEMBLE_INDEX",
    "EVALUATION_DIR",
    "LOCK",
    "METRICS",
    "MODEL",
    "OOD_DIR",
    "PREDICTIONS_DIR",
    "PROGRESS",
    "REFERRAL",
    "RUN_INFO",
    "SNAPSHOTS_DIR",
    "check_new_run",
    "first_member",
    "has_config",
    "is_trained",
    "lock",
    "lock_output",
    "read_config",
    "read_index",
    "read_run_info",
    "snapshot_path",
]

CONFIG = "config.yaml"
RUN_INFO = "run.json"
METRICS = "metrics.csv"
MODEL = "model.pt"
CHECKPOINT = "checkpoints/last.pt"
BEST = "checkpoints/best.pt"
"""The weights of the epoch with the best ``best_metric`` so far (same format as ``model.pt``)."""
PROGRESS = "progress.png"
"""The training curves, drawn after training by the CLI (:func:`selectseg.report.write_progress`)."""
SNAPSHOTS_DIR = "snapshots"
REFERRAL = "referral.json"
EVALUATION_DIR = "evaluation"
OOD_DIR = "ood"
PREDICTIONS_DIR = "predictions"
ENSEMBLE_INDEX = "ensemble.json"
CV_INDEX = "cv.json"
LOCK = ".lock"


def snapshot_path(run_dir: str | Path, epoch: int) -> Path:
    """``RUN/snapshots/epoch_NNNN.pt``: the weights saved after ``epoch`` (the config's ``snapshot_epochs``)."""
    return Path(run_dir) / SNAPSHOTS_DIR / f"epoch_{epoch:04d}.pt"


def check_new_run(run_dir: str | Path, *, what: str = "Run folder") -> None:
    """The new-run check: a run starts only in a missing or empty folder (a ``.lock`` file does not count).

    Make it under :func:`lock`, so that no other process starts a run between the check and the first file.

    Raises:
        ValueError: if ``run_dir`` exists and holds anything (naming the folder and the way out).
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and (not run_dir.is_dir() or any(p.name != LOCK for p in run_dir.iterdir())):
        raise ValueError(
            f"{what} {str(run_dir)!r} is not empty; resume it (--resume on the command line, resume=True in Python) "
            "or choose a new output folder."
        )


@dataclass
class _Held:
    fd: int
    thread: int
    count: int
    created: bool


_held: dict[str, _Held] = {}
_held_guard = threading.Lock()


@contextlib.contextmanager
def lock(run_dir: str | Path, *, purpose: str) -> Iterator[Path]:
    """Own ``run_dir`` for the duration of the block: a non-blocking OS lock (``fcntl.flock``) on ``RUN/.lock``.

    The lock file holds the holder's pid, host, command, purpose and start time, for the message another writer
    gets. The OS releases the lock when its holder dies, however it dies, so a lock left by a killed process is
    simply taken again. Re-entrant within one thread (the sweep holds a run while training and evaluating it);
    another thread of the same process is refused like another process. The folder is created if missing (and
    removed again on release if it is then empty). On release the lock file is removed.

    Args:
        run_dir: the folder to own.
        purpose: what the holder does (``"train"``, ``"evaluate"``, ...), shown to the next writer.

    Yields:
        ``run_dir`` as a Path.

    Raises:
        ValueError: if another process (or thread) holds the lock, naming the folder and the holder.
    """
    run_dir = Path(run_dir)
    key = os.path.realpath(run_dir)
    me = threading.get_ident()
    with _held_guard:
        held = _held.get(key)
        if held is not None and held.thread == me:
            held.count += 1
        elif held is not None:
            raise ValueError(
                f"Run folder {str(run_dir)!r} is locked by another thread of this process (pid {os.getpid()}); "
                "one writer at a time."
            )
        else:
            _held[key] = _acquire(run_dir, purpose)
    try:
        yield run_dir
    finally:
        with _held_guard:
            held = _held[key]
            held.count -= 1
            if held.count == 0:
                del _held[key]
                _release(run_dir, held)


def lock_output(run_dir: str | Path, out_dir: str | Path, *, purpose: str) -> contextlib.AbstractContextManager[Path]:
    """The lock a writer of ``out_dir`` takes: the run's when ``out_dir`` lies inside ``run_dir`` (``RUN/evaluation``,
    ``RUN/predictions``, ...), else the output folder's own (a ``.lock`` file there while it is written)."""
    run, out = os.path.realpath(run_dir), os.path.realpath(out_dir)
    inside = out == run or out.startswith(run.rstrip(os.sep) + os.sep)
    return lock(run_dir if inside else out_dir, purpose=purpose)


def _acquire(run_dir: Path, purpose: str) -> _Held:
    created = not run_dir.exists()
    path = run_dir / LOCK
    while True:
        run_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except FileNotFoundError:
            continue  # the previous holder removed the folder it had created: make it again
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = _describe(os.pread(fd, 4096, 0))
            os.close(fd)
            raise ValueError(
                f"Run folder {str(run_dir)!r} is locked by {other}; wait for it to finish (or stop it), or choose "
                "another folder."
            ) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the previous holder removed this lock file on release: lock the new one
    holder: dict[str, Any] = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": shlex.join(sys.argv) if sys.argv and sys.argv[0] else sys.executable,
        "purpose": purpose,
        "since": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    data = (json.dumps(holder) + "\n").encode("utf-8")
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
    return _Held(fd=fd, thread=threading.get_ident(), count=1, created=created)


def _release(run_dir: Path, held: _Held) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(run_dir / LOCK)  # removed while still held: a waiting opener notices (inode check) and retries
    os.close(held.fd)
    if held.created:
        with contextlib.suppress(OSError):
            run_dir.rmdir()  # only if the holder wrote nothing


def _describe(raw: bytes) -> str:
    """The holder named from the lock file's content."""
    try:
        info = json.loads(raw.decode("utf-8"))
        return (
            f"pid {info['pid']} on host {info['host']} ({info['purpose']} since {info['since']}: `{info['command']}`)"
        )
    except (ValueError, KeyError, TypeError):
        return "another process (its pid is not written yet)"


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


def read_run_info(run_dir: str | Path) -> dict[str, Any]:
    """``RUN/run.json`` as a dict.

    Raises:
        ValueError: if it is missing, not JSON or not an object.
    """
    return load_object(Path(run_dir) / RUN_INFO)


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
            content = load_object(path)
            members = content.get("members", content.get("runs")) if isinstance(content, dict) else None
            if not isinstance(members, list) or not members:
                raise ValueError(f"Expected {str(path)!r} to list its member runs, but it lists none.")
            return kind, {**content, "members": members, "runs": members}
    return None


def first_member(run_dir: str | Path) -> Path:
    """The folder whose config describes ``run_dir``: the run itself, or member 0 of a multi-run folder."""
    index = read_index(run_dir)
    return Path(run_dir) / str(index[1]["members"][0]) if index is not None else Path(run_dir)
