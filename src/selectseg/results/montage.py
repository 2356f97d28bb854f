"""The qualitative montage of an evaluation (``montage.npz``): a few cases' 2-D maps, written and read as one type."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._io import atomic_write_bytes

__all__ = ["MONTAGE_NPZ", "Montage", "MontageCase"]

MONTAGE_NPZ = "montage.npz"


@dataclass(frozen=True, eq=False)
class MontageCase:
    """One case of the qualitative montage.

    Shape:
        every map ``(H, W)``: image float, reference and prediction int64 label maps, uncertainty float (higher =
        less sure), referred bool (referred at the montage's coverage); annotator_variance and model_variance float
        or None.
    """

    case_id: str
    image: np.ndarray
    reference: np.ndarray
    prediction: np.ndarray
    uncertainty: np.ndarray
    referred: np.ndarray
    annotator_variance: np.ndarray | None = None
    model_variance: np.ndarray | None = None


@dataclass(frozen=True)
class Montage:
    """The montage cases, the coverage of their referral maps and its uncertainty threshold (NaN in old files)."""

    coverage: float
    cases: tuple[MontageCase, ...]
    threshold: float = math.nan

    def save(self, path: str | Path) -> Path:
        """Write ``montage.npz`` atomically (maps as float32 / int64 / bool)."""
        arrays: dict[str, np.ndarray] = {
            "case_ids": np.array([c.case_id for c in self.cases]),
            "coverage": np.array(self.coverage),
            "threshold": np.array(self.threshold),
        }
        for j, case in enumerate(self.cases):
            arrays[f"image_{j}"] = np.asarray(case.image, dtype=np.float32)
            arrays[f"reference_{j}"] = np.asarray(case.reference, dtype=np.int64)
            arrays[f"prediction_{j}"] = np.asarray(case.prediction, dtype=np.int64)
            arrays[f"uncertainty_{j}"] = np.asarray(case.uncertainty, dtype=np.float32)
            if case.annotator_variance is not None:
                arrays[f"annotator_variance_{j}"] = np.asarray(case.annotator_variance, dtype=np.float32)
            if case.model_variance is not None:
                arrays[f"model_variance_{j}"] = np.asarray(case.model_variance, dtype=np.float32)
            arrays[f"referred_{j}"] = np.asarray(case.referred, dtype=bool)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
        return atomic_write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> Montage:
        """Read ``montage.npz`` (maps as float64 / int64 / bool; a volume in an old file as its middle slice).

        Raises:
            ValueError: if the file is not a readable montage or a case lacks a map (naming the file and case).
        """
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, ValueError) as err:
            raise ValueError(f"{str(path)!r} is not a readable montage (.npz): {err}") from None
        if "case_ids" not in arrays:
            raise ValueError(f"Expected `case_ids` in {str(path)!r}, but it holds only {sorted(arrays)}.")
        cases = []
        for i, case_id in enumerate(arrays["case_ids"].reshape(-1).tolist()):
            maps: dict[str, np.ndarray | None] = {}
            for name in ("image", "reference", "prediction", "uncertainty", "referred"):
                key = f"{name}_{i}"
                if key not in arrays:
                    raise ValueError(f"Expected `{key}` in {str(path)!r} for case {case_id!r}, but it is missing.")
                maps[name] = _slice2d(arrays[key])
            for name in ("annotator_variance", "model_variance"):
                key = f"{name}_{i}"
                maps[name] = _slice2d(arrays[key]).astype(np.float64) if key in arrays else None
            shapes = {m.shape for m in maps.values() if m is not None}
            if len(shapes) != 1:
                raise ValueError(
                    f"Expected every map of case {case_id!r} in {str(path)!r} to share one shape, got {shapes}."
                )
            cases.append(
                MontageCase(
                    case_id=str(case_id),
                    image=np.asarray(maps["image"], dtype=np.float64),
                    reference=np.asarray(maps["reference"], dtype=np.int64),
                    prediction=np.asarray(maps["prediction"], dtype=np.int64),
                    uncertainty=np.asarray(maps["uncertainty"], dtype=np.float64),
                    referred=np.asarray(maps["referred"], dtype=bool),
                    annotator_variance=maps["annotator_variance"],
                    model_variance=maps["model_variance"],
                )
            )

        def scalar(key: str) -> float:
            return float(arrays[key].reshape(-1)[0]) if key in arrays else math.nan

        return cls(coverage=scalar("coverage"), cases=tuple(cases), threshold=scalar("threshold"))


def _slice2d(array: np.ndarray) -> np.ndarray:
    """A 2D map as is; a volume's middle slice along its leading axes."""
    while array.ndim > 2:
        array = array[array.shape[0] // 2]
    return array
