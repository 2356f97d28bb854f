"""A calibrated referral threshold (``RUN/referral.json``, written by ``selectseg calibrate``), one type."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _json

__all__ = ["REFERRAL_JSON", "ReferralResult"]

REFERRAL_JSON = "referral.json"


@dataclass(frozen=True)
class ReferralResult:
    """A referral threshold chosen on calibration cases: keep voxels with ``uncertainty <= threshold``.

    Attributes:
        threshold: the uncertainty threshold (-inf refers everything); coverage: the calibration voxels kept.
        risk: the empirical calibration risk at the threshold (NaN where not computed); bound: the certified bound
            (NaN for the coverage method); method: ``"coverage"``, ``"ltt"``, ``"crc"`` or ``"sgr"``; target: what
            was asked (e.g. ``{"coverage": 0.9}`` or ``{"max_risk": 0.05, "delta": 0.1}``); risk_measure: ``"dice"``
            (per-image 1 - Dice) or ``"pixel"`` (error rate among kept voxels).
        uncertainty, estimator, estimator_options: the uncertainty the threshold applies to (predict refuses
            another).
        calibration_cases, num_cases, num_voxels: the calibration set.
        weights_sha256: the weights the threshold belongs to.
    """

    threshold: float
    coverage: float
    risk: float
    bound: float
    method: str
    target: Mapping[str, Any]
    risk_measure: str
    uncertainty: str
    estimator: str
    estimator_options: Mapping[str, Any] = field(default_factory=dict)
    calibration_cases: tuple[str, ...] = ()
    num_cases: int = 0
    num_voxels: int = 0
    weights_sha256: str | None = None
    """SHA-256 of the weights the threshold was chosen with (None in files written before it was recorded): a
    threshold chosen on other weights is stale."""

    @property
    def made_for(self) -> tuple[str, str, dict[str, Any]]:
        """``(uncertainty, estimator, estimator_options)``: what an inference must use for the threshold to apply."""
        return self.uncertainty, self.estimator, dict(self.estimator_options)

    def to_json(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "coverage": self.coverage,
            "risk": self.risk,
            "bound": self.bound,
            "method": self.method,
            "target": dict(self.target),
            "risk_measure": self.risk_measure,
            "uncertainty": self.uncertainty,
            "estimator": self.estimator,
            "estimator_options": dict(self.estimator_options),
            "calibration_cases": list(self.calibration_cases),
            "num_cases": self.num_cases,
            "num_voxels": self.num_voxels,
            "weights_sha256": self.weights_sha256,
        }

    def save(self, run_dir: str | Path) -> Path:
        """Write ``RUN/referral.json`` atomically."""
        return _json.dump(Path(run_dir) / REFERRAL_JSON, self.to_json())

    @classmethod
    def find(cls, run_dir: str | Path) -> ReferralResult | None:
        """The run's calibrated threshold, or None if it was never calibrated.

        Raises:
            ValueError: if ``referral.json`` exists but is not valid JSON or has no ``threshold`` (naming the file and
                the way out).
        """
        path = Path(run_dir) / REFERRAL_JSON
        if not path.is_file():
            return None
        try:
            content = _json.load_object(path)
        except ValueError as err:
            raise ValueError(f"{err} Re-run `selectseg calibrate`.") from None
        if "threshold" not in content:
            raise ValueError(f"{str(path)!r} holds no `threshold`; re-run `selectseg calibrate`.")
        f = _json.read_float
        options, target = content.get("estimator_options"), content.get("target")
        return cls(
            threshold=f(content["threshold"]),
            coverage=f(content.get("coverage")),
            risk=f(content.get("risk")),
            bound=f(content.get("bound")),
            method=str(content.get("method", "")),
            target=target if isinstance(target, dict) else {},
            risk_measure=str(content.get("risk_measure", "")),
            uncertainty=str(content.get("uncertainty", "max_softmax")),
            estimator=str(content.get("estimator", "softmax")),
            estimator_options=options if isinstance(options, dict) else {},
            calibration_cases=tuple(str(c) for c in content.get("calibration_cases") or []),
            num_cases=_json.read_int(content.get("num_cases"), 0),
            num_voxels=_json.read_int(content.get("num_voxels"), 0),
            weights_sha256=content["weights_sha256"] if isinstance(content.get("weights_sha256"), str) else None,
        )
