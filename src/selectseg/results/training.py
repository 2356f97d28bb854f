"""The training history of a run (``RUN/metrics.csv``, one row per finished epoch), read as one type."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import _json

__all__ = ["TrainingHistory"]


@dataclass(frozen=True)
class TrainingHistory:
    """One value per finished epoch for each logged column (NaN where an epoch has none, e.g. no gradient
    measurement or no validation in that epoch; columns of older files that lack them are absent).

    Attributes:
        epochs: ``(E,)`` the epoch numbers, from 1.
        columns: column name -> ``(E,)`` float64 values (``segmentation``, ``ranking``, ``ranking_weight``, ``lr``,
            ``grad_segmentation``, ``grad_ranking``, ``grad_ratio``, ``val_dice``, ``val_aurc``, ...).
    """

    epochs: np.ndarray
    columns: Mapping[str, np.ndarray]

    def get(self, name: str) -> np.ndarray | None:
        """The column's values, or None when the file has no such column."""
        return self.columns.get(name)

    @classmethod
    def load(cls, path: str | Path) -> TrainingHistory | None:
        """``metrics.csv`` as columns (None when absent or empty; an unreadable cell is NaN)."""
        path = Path(path)
        if not path.is_file():
            return None
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        if not rows or "epoch" not in rows[0]:
            return None
        names = [k for k in rows[0] if k != "epoch"]
        columns = {k: np.array([_json.read_float(r.get(k)) for r in rows], dtype=np.float64) for k in names}
        epochs = np.array([_json.read_int(_json.read_float(r["epoch"]), 0) for r in rows])
        return cls(epochs=epochs, columns=columns)
