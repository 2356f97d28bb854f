"""Typed results: what evaluation computes, as frozen dataclasses written once and read back as the same type.

Torch-free (numpy only): the report, the sweep, the CLI and the experiment scripts read results through these types,
never by string keys. One JSON convention for every file (:mod:`selectseg.results._json`: NaN as null, infinities
as ``"inf"``/``"-inf"``).

- :class:`EvaluationResult` (``selectseg evaluate``): :class:`OperatingPoint` per coverage (with psi_c),
  :class:`DiceCurve`, :class:`Calibration`, :class:`QualityControl`, :class:`Disagreement`;
- :class:`Montage` (``montage.npz``); :class:`OODResult` (``selectseg ood``); :class:`ReferralResult`
  (``selectseg calibrate``); :class:`TrainingHistory` (``metrics.csv``).
"""

from .evaluation import (
    HEADLINE_METRICS,
    Calibration,
    DiceCurve,
    Disagreement,
    EvaluationResult,
    OperatingPoint,
    QCScore,
    QualityControl,
    Reliability,
)
from .montage import Montage, MontageCase
from .ood import OODResult
from .referral import ReferralResult
from .training import TrainingHistory

__all__ = [
    "HEADLINE_METRICS",
    "Calibration",
    "DiceCurve",
    "Disagreement",
    "EvaluationResult",
    "Montage",
    "MontageCase",
    "OODResult",
    "OperatingPoint",
    "QCScore",
    "QualityControl",
    "ReferralResult",
    "Reliability",
    "TrainingHistory",
]
