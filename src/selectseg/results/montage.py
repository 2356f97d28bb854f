"""The qualitative montage of an evaluation (``montage.npz``): a few cases' 2-D maps, written and read as one type.

A volume is kept as one slice along its last axis (``MontageCase.slice_index``). Older files without the newer
entries (``slice_index``, ``uncertainty_range``) read with None there.
"""

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

    ``slice_index``: for a volume, the index along its last axis of the slice shown; None for a 2-D image.
    """

    case_id: str
    image: np.ndarray
    reference: np.ndarray
    prediction: np.ndarray
    uncertainty: np.ndarray
    referred: np.ndarray
    annotator_variance: np.ndarray | None = None
    model_variance: np.ndarray | None = None
    slice_index: int | None = None


@dataclass(frozen=True)
class Montage:
    """The montage cases (worst to best by Dice at coverage 1 in files written since the order was kept), the coverage
    of their referral maps and its uncertainty threshold (NaN in old files).

    ``uncertainty_range``: the ``(low, high)`` values the uncertainty score can take for the run's K classes, where
    the score's range is known (:class:`~selectseg.uncertainty.ScoreInfo`), for a colour scale shared by runs; None
    otherwise.
    """

    coverage: float
    cases: tuple[MontageCase, ...]
    threshold: float = math.nan
    uncertainty_range: tuple[float, float] | None = None

    def case(self, case_id: str) -> MontageCase | None:
        """The case called ``case_id``, or None when the montage does not hold it."""
        return next((c for c in self.cases if c.case_id == case_id), None)

    def save(self, path: str | Path) -> Path:
        """Write ``montage.npz`` atomically (maps as float32 / int64 / bool)."""
        arrays: dict[str, np.ndarray] = {
            "case_ids": np.array([c.case_id for c in self.cases]),
            "coverage": np.array(self.coverage),
            "threshold": np.array(self.threshold),
            "slice_index": np.array(
                [-1 if c.slice_index is None else int(c.slice_index) for c in self.cases], np.int64
            ),
            "uncertainty_range": np.array(
                self.uncertainty_range if self.uncertainty_range is not None else (np.nan,) * 2
            ),
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
        """Read ``montage.npz`` (maps as float64 / int64 / bool; a volume in an old file as its middle slice, with no
        ``slice_index``).

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
        ids = arrays["case_ids"].reshape(-1).tolist()
        slices = arrays["slice_index"].reshape(-1).tolist() if "slice_index" in arrays else []
        if slices and len(slices) != len(ids):
            raise ValueError(
                f"Expected one `slice_index` per case in {str(path)!r} ({len(ids)}), but got {len(slices)}."
            )
        for i, case_id in enumerate(ids):
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
                    slice_index=int(slices[i]) if slices and slices[i] >= 0 else None,
                )
            )

        def scalar(key: str) -> float:
            return float(arrays[key].reshape(-1)[0]) if key in arrays else math.nan

        bounds = arrays["uncertainty_range"].reshape(-1).tolist() if "uncertainty_range" in arrays else []
        known = len(bounds) == 2 and all(math.isfinite(b) for b in bounds)
        return cls(
            coverage=scalar("coverage"),
            cases=tuple(cases),
            threshold=scalar("threshold"),
            uncertainty_range=(float(bounds[0]), float(bounds[1])) if known else None,
        )


def _slice2d(array: np.ndarray) -> np.ndarray:
    """A 2D map as is; a volume's middle slice along its leading axes."""
    while array.ndim > 2:
        array = array[array.shape[0] // 2]
    return array
