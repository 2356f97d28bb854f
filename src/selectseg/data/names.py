"""Names that come from a dataset's own files: the paths a dataset description lists and the case ids.

A dataset folder is input we did not write (downloaded, shared), so what it names is checked before it is used:

- :func:`confine`: a path a description lists (an MSD ``dataset.json`` entry, a file found in ``imagesTr/``) must lie
  inside the dataset folder after ``..`` and symbolic links are resolved, unless the user opts in to data elsewhere
  (:func:`outside_root_allowed`: ``load_dataset(..., allow_outside_root=True)`` or the environment variable
  ``SELECTSEG_ALLOW_OUTSIDE_DATA=1``). The check comes before any existence check, and its message names the entry,
  never whether the outside file exists.
- :func:`safe_case_id`: a case id becomes part of file names (``<case_id>_seg.nii.gz``), so it may not hold a path
  separator, ``..`` or a control character. Every reader passes its case ids through it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

__all__ = ["ALLOW_OUTSIDE_ENV", "allowing_outside_root", "confine", "outside_root_allowed", "safe_case_id"]

ALLOW_OUTSIDE_ENV = "SELECTSEG_ALLOW_OUTSIDE_DATA"
"""Set to ``1`` (or ``true``, ``yes``) to let dataset descriptions name files outside the dataset folder."""

_ALLOW_OUTSIDE: ContextVar[bool | None] = ContextVar("selectseg_allow_outside_root", default=None)
_UNSAFE_CASE_ID = re.compile(r"[/\\\x00-\x1f\x7f]|\.\.")


def outside_root_allowed(explicit: bool | None = None) -> bool:
    """Whether a dataset description may name files outside the dataset folder (default: no).

    ``explicit`` when given; else what the enclosing :func:`allowing_outside_root` (that is,
    ``load_dataset(..., allow_outside_root=...)``) set; else whether ``SELECTSEG_ALLOW_OUTSIDE_DATA`` is ``1``, ``true``
    or ``yes``.

    Example:
        >>> outside_root_allowed(), outside_root_allowed(True)
        (False, True)
    """
    if explicit is not None:
        return bool(explicit)
    scoped = _ALLOW_OUTSIDE.get()
    if scoped is not None:
        return scoped
    return os.environ.get(ALLOW_OUTSIDE_ENV, "").strip().lower() in ("1", "true", "yes")


@contextmanager
def allowing_outside_root(allow: bool | None) -> Iterator[None]:
    """Within the block, :func:`outside_root_allowed` returns ``allow`` (None: the environment variable decides).

    This is how :func:`~selectseg.data.load_dataset` hands its ``allow_outside_root`` to the format readers without
    changing their ``(root, split)`` signature.
    """
    token = _ALLOW_OUTSIDE.set(allow)
    try:
        yield
    finally:
        _ALLOW_OUTSIDE.reset(token)


def confine(root: Path, path: Path, what: str, *, allow_outside: bool) -> Path:
    """Return ``path`` if it lies inside ``root`` once both are resolved (``..`` and symbolic links followed).

    Call it before checking whether ``path`` exists: the error is the same whether or not the outside file exists.

    Args:
        root: the dataset folder.
        path: a path a dataset description names (already joined to ``root`` when relative).
        what: the entry that names it, for the message (e.g. ``"entry 3 of 'training' in /d/dataset.json ('image':
            '../x.nii.gz')"``).
        allow_outside: skip the check (the user opted in; see :func:`outside_root_allowed`).

    Returns:
        ``path`` unchanged.

    Raises:
        ValueError: naming ``what``, if ``path`` resolves outside ``root`` (or cannot be resolved: a symlink loop).

    Example:
        >>> confine(Path("/data/d"), Path("/data/d/imagesTr/x.nii.gz"), "entry 0", allow_outside=False).name
        'x.nii.gz'
    """
    if allow_outside:
        return path
    try:
        inside = path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # a symlink loop
        inside = False
    if not inside:
        raise ValueError(
            f"Expected {what} to be inside the dataset folder {root}, but it resolves outside it (through an absolute "
            f"path, '..' or a symbolic link). If the data lives elsewhere on purpose, pass "
            f"load_dataset(..., allow_outside_root=True) or set {ALLOW_OUTSIDE_ENV}=1."
        )
    return path


def safe_case_id(case_id: str, source: str | Path) -> str:
    """Return ``case_id`` if it can be part of a file name: non-empty, not ``.``, without ``/``, ``\\``, ``..`` or
    control characters.

    Args:
        case_id: the id a reader derived (from a file or folder name, or a listing).
        source: where it came from, for the message (the file or folder).

    Raises:
        ValueError: naming ``source`` and the id, if the id is unsafe.

    Example:
        >>> safe_case_id("BraTS_001", "imagesTr/BraTS_001_0000.nii.gz")
        'BraTS_001'
    """
    if not case_id or case_id == "." or _UNSAFE_CASE_ID.search(case_id):
        raise ValueError(
            f"Expected the case id from {source} to be usable as a file name (non-empty, no '/', '\\', '..' or "
            f"control characters), but got {case_id!r}."
        )
    return case_id
