"""Crash-safe writes, free of torch and MONAI imports so that light modules (the report) can use them.

- :func:`atomic_write` (one file): the bytes go to ``.<name>.<pid>.<n>.tmp`` beside the target, are fsynced and
  renamed over it (``os.replace``). A reader sees the previous version or the new one, never half a file. A process
  killed mid-write leaves its temp file behind; the next write of the same name removes the temp files of processes
  that are no longer alive (a temp file of a live process, or of another host sharing the folder, is left alone).
- :func:`staged_output` (several files that belong together: an evaluation folder, predictions, a report): the files
  are written into a private staging folder ``.<mark>.<pid>.<n>.partial`` inside the output folder, then published:
  the old output's *mark* file (the one its readers look for: ``evaluation.json``, ``predictions.json``, ...) is
  removed first, then the old output's other files, then the new files are moved in and the new mark last. A kill
  while writing leaves the old complete output; a kill while publishing leaves no mark, which every reader treats
  as "no output". Files of other names in the folder are never touched. Staging folders of dead processes are removed
  by the next staged write into the same folder.

New files get the permissions ``open()`` would give them (0o666 minus the umask, applied by the kernel); the process
umask is never changed (changing it, even briefly, would race with other threads creating files).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "remove_stale",
    "staged_output",
    "temp_done",
    "temp_path",
]

_counter = itertools.count()
_in_flight: set[str] = set()
"""Temp files and staging folders this process is writing now (its own leftovers from a reused pid are stale)."""
_in_flight_lock = threading.Lock()
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.(?P<n>\d+)\.(?P<kind>tmp|partial)(?P<ending>(?:\.[A-Za-z0-9]+)*)$")


def _temp_path(folder: Path, name: str, kind: str, ending: str = "") -> Path:
    """A fresh ``.<name>.<pid>.<n>.<kind><ending>`` path in ``folder``, registered as in flight."""
    path = folder / f".{name}.{os.getpid()}.{next(_counter)}.{kind}{ending}"
    with _in_flight_lock:
        _in_flight.add(str(path))
    return path


def temp_path(folder: str | Path, name: str, ending: str = "") -> Path:
    """A temp file name beside ``folder/name`` that :func:`remove_stale` recognises (``.<name>.<pid>.<n>.tmp`` plus
    ``ending``, for writers that choose the format from the file's ending, e.g. nibabel's ``.nii.gz``); release it
    with :func:`temp_done` once it was moved into place or removed."""
    return _temp_path(Path(folder), name, "tmp", ending)


def temp_done(path: Path) -> None:
    """The temp file ``path`` (from :func:`temp_path`) is no longer being written."""
    _done(path)


def _done(path: Path) -> None:
    with _in_flight_lock:
        _in_flight.discard(str(path))


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (a process of another user counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True  # cannot tell: keep its files
    return True


def remove_stale(folder: str | Path, name: str | None = None) -> list[Path]:
    """Remove the temp files and staging folders left in ``folder`` by dead processes (all, or those of ``name``).

    Returns:
        The removed paths.
    """
    folder = Path(folder)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        match = _TEMP.match(entry.name)
        if match is None or (name is not None and match["name"] != name):
            continue
        pid = int(match["pid"])
        with _in_flight_lock:
            mine = entry.path in _in_flight
        if mine or (pid != os.getpid() and _alive(pid)):
            continue
        path = Path(entry.path)
        with contextlib.suppress(FileNotFoundError):
            if match["kind"] == "partial" and entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
    return removed


def _fsync_dir(folder: Path) -> None:
    """Make renames in ``folder`` durable where the OS allows opening a folder (POSIX)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a folder
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temp file beside ``path``; on success fsync it and rename it over ``path``; on error remove it.

    The temp file (``.<name>.<pid>.<n>.tmp``) is created with ``os.open(..., 0o666)``, so the kernel applies the
    umask and the file gets the mode ``open(path, "w")`` would give. Temp files of ``path``'s name left by dead
    processes are removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path.parent, path.name)
    tmp = _temp_path(path.parent, path.name, "tmp")
    try:
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    finally:
        _done(tmp)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def staged_output(out_dir: str | Path, mark: str, *, replaces: Iterable[str] = ()) -> Iterator[Path]:
    """Write a multi-file output into ``out_dir`` complete or absent (module docstring).

    Yields a private staging folder; write every file of the output into it under its final relative path (the
    ``mark`` file included: readers take the output as present only when the mark is). On success the output is
    published; on error (or a kill) the staging folder is removed and ``out_dir`` is left as it was.

    Args:
        out_dir: the output folder (created).
        mark: the file, relative to ``out_dir``, that readers look for; removed first and moved in last.
        replaces: relative paths of the old output's other files, removed when publishing (files the new output
            also holds are replaced in any case).

    Raises:
        ValueError: if the staged output lacks its ``mark`` file.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    mark_name = Path(mark).name
    remove_stale(out_dir, mark_name)
    stage = _temp_path(out_dir, mark_name, "partial")
    try:
        stage.mkdir()
        yield stage
        _publish(stage, out_dir, mark, replaces)
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(stage)
        _done(stage)


def _publish(stage: Path, out_dir: Path, mark: str, replaces: Iterable[str]) -> None:
    """Move a staged output into place: old mark out, old files out, new files in, new mark last."""
    if not (stage / mark).is_file():
        raise ValueError(f"Expected the staged output for {str(out_dir)!r} to hold its mark file {mark!r}.")
    files = sorted(p.relative_to(stage) for p in stage.rglob("*") if p.is_file() and p != stage / mark)
    for relative in [*files, Path(mark)]:  # the bytes reach the disk before any name points at them
        fd = os.open(stage / relative, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(out_dir / mark)  # from here on the old output counts as absent
    _fsync_dir((out_dir / mark).parent)
    new = {str(p) for p in files}
    for old in replaces:
        if old != mark and old not in new:
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                os.unlink(out_dir / old)
    folders = set()
    for relative in files:
        target = out_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(stage / relative, target)
        folders.add(target.parent)
    for folder in folders:
        _fsync_dir(folder)
    (out_dir / mark).parent.mkdir(parents=True, exist_ok=True)
    os.replace(stage / mark, out_dir / mark)
    _fsync_dir((out_dir / mark).parent)
