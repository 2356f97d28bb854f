"""``selectseg threshold``: choose a run's referral threshold on a labelled calibration set and store it in the run
as ``referral.json`` (``predict`` then uses it by default). See ``docs/referral.md``."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .._validation import look_up_option
from ..data import Case
from ..data.annotators import reference_labels
from ..metrics import selective_dice_curve
from ..results.referral import REFERRAL_JSON, ReferralResult
from ..runs import folder
from ..selection import (
    IMAGE_METHODS,
    ReferralThreshold,
    dice_risk_threshold,
    require_calibration_size,
    selective_guaranteed_risk,
    threshold_for_coverage,
)
from ..selection.bounds import check_open_unit
from ..uncertainty import InferenceOptions
from .run import DEFAULT_INFERENCE, LoadedRun

__all__ = ["REFERRAL_FILE", "RISKS", "choose_referral_threshold", "load_referral"]

REFERRAL_FILE = REFERRAL_JSON
RISKS = ("dice", "pixel")
"""Risk measures: ``"dice"`` the per-image ``1 - Dice`` after referral, ``"pixel"`` the error rate of kept voxels."""


def choose_referral_threshold(
    run: LoadedRun,
    cases: Sequence[Case],
    *,
    coverage: float | None = None,
    max_risk: float | None = None,
    delta: float = 0.1,
    risk: str = "dice",
    method: str | None = None,
    inference: InferenceOptions = DEFAULT_INFERENCE,
    on_case: Callable[[str], None] | None = None,
) -> ReferralResult:
    """Calibrate ``run``'s referral threshold on labelled ``cases`` and write ``RUN/referral.json`` on success.

    Give exactly one target:

    - ``coverage``: the threshold of the smallest achievable pooled coverage >= the target
      (:func:`~selectseg.selection.threshold_for_coverage`); ``risk`` is then reported as the empirical risk there
      (``bound`` is NaN);
    - ``max_risk`` (with ``delta``): the threshold of largest coverage whose risk on new images is certified
      <= max_risk. ``risk="dice"``: per-image ``1 - Dice`` after referral, method ``"ltt"`` (default: with
      probability >= 1 - delta) or ``"crc"`` (in expectation) over every distinct threshold
      (:func:`~selectseg.selection.dice_risk_threshold`); ``risk="pixel"``: the error rate of kept voxels by
      selection with guaranteed risk (``"sgr"``, the only and default method; treats voxels as i.i.d.).

    The calibration set size is checked before any inference. On any error nothing is written (an existing
    ``referral.json`` is left as it was). The file holds threshold, coverage, risk, bound, method, target,
    risk_measure, uncertainty, estimator, estimator_options, calibration_cases, num_cases and num_voxels (NaN
    written as null, infinities as "inf"/"-inf"; :func:`load_referral` reads them back).

    Args:
        run: the loaded training run.
        cases: labelled calibration cases, drawn from the distribution the guarantee is for and not used in training.
        coverage: target coverage in [0, 1]; or
        max_risk: target risk in (0, 1), with delta: failure probability in (0, 1) (default 0.1).
        risk: ``"dice"`` (default) or ``"pixel"``.
        method: ``"ltt"`` or ``"crc"`` for ``risk="dice"``, ``"sgr"`` for ``risk="pixel"``; None: ``"ltt"`` /
            ``"sgr"``. Validated but unused with ``coverage``.
        inference: the estimator, its options and the uncertainty map (see :meth:`LoadedRun.outputs`); predict
            must use the same.
        on_case: called with each case id after inference (progress).

    Returns:
        The :class:`~selectseg.results.ReferralResult`, as saved in ``RUN/referral.json``.

    Raises:
        ValueError: if not exactly one of ``coverage`` and ``max_risk`` is given, an option is unknown or out of
            range, ``method`` does not fit ``risk``, there are no cases or fewer than the guarantee needs (the
            message says how many), a case has no labels or does not fit the network, or ``max_risk`` is
            unreachable at any coverage > 0 (the message gives the best achievable bound).
        TypeError: if a number has the wrong type.
    """
    if (coverage is None) == (max_risk is None):
        given = "both" if coverage is not None else "neither"
        raise ValueError(
            "Expected exactly one of `coverage` (a target coverage) and `max_risk` (a target risk with a guarantee), "
            f"but got {given}."
        )
    risk = look_up_option("risk", risk, RISKS)
    if len(cases) == 0:
        raise ValueError("Expected at least one labelled calibration case, but got none.")
    voxels = sum(math.prod(case.spatial_shape) for case in cases)
    method = _resolve_method(risk, method)
    choose: Callable[[list[np.ndarray], list[np.ndarray], list[np.ndarray], int], ReferralThreshold]
    if max_risk is not None:
        alpha = check_open_unit("max_risk", max_risk)
        level = check_open_unit("delta", delta)
        count = voxels if method == "sgr" else len(cases)
        require_calibration_size(count, max_risk=alpha, delta=level, method=method)
        choose = functools.partial(_certified, max_risk=alpha, delta=level, method=method)
    elif isinstance(coverage, bool) or not isinstance(coverage, (int, float)) or not 0 <= coverage <= 1:
        raise ValueError(f"Expected `coverage` to be a float in [0, 1], but got {coverage!r}.")
    else:
        choose = functools.partial(_at_coverage, coverage=float(coverage), risk=risk)
    with folder.lock(run.run_dir, purpose="threshold"):  # RUN/referral.json: one writer of the run at a time
        references = [reference_labels(case, run.config.data.annotator, run.num_classes) for case in cases]
        predictions: list[np.ndarray] = []
        uncertainties: list[np.ndarray] = []
        outputs = run.outputs(list(cases), inference)
        for output in outputs:
            predictions.append(output.segmentation.astype(np.int64))
            uncertainties.append(output.uncertainty)
            if on_case is not None:
                on_case(output.case.case_id)
        chosen = choose(predictions, references, uncertainties, run.num_classes)
        result = ReferralResult(
            threshold=chosen.threshold,
            coverage=chosen.coverage,
            risk=chosen.risk,
            bound=chosen.bound,
            method=chosen.method,
            target=chosen.target,
            risk_measure=risk,
            uncertainty=inference.score,
            estimator=inference.estimator,
            estimator_options=dict(inference.estimator_options),
            calibration_cases=tuple(case.case_id for case in cases),
            num_cases=len(cases),
            num_voxels=int(voxels),
            weights_sha256=run.weights_sha256 or None,
        )
        result.save(run.run_dir)
        return result


def _resolve_method(risk: str, method: str | None) -> str:
    if method is None:
        return "ltt" if risk == "dice" else "sgr"
    allowed = IMAGE_METHODS if risk == "dice" else ("sgr",)
    method = look_up_option("method", method, ("ltt", "crc", "sgr"))
    if method not in allowed:
        raise ValueError(f"Expected `method` to be one of {list(allowed)} for risk={risk!r}, but got {method!r}.")
    return method


def _certified(
    predictions: list[np.ndarray],
    references: list[np.ndarray],
    uncertainties: list[np.ndarray],
    num_classes: int,
    max_risk: float,
    delta: float,
    method: str,
) -> ReferralThreshold:
    if method == "sgr":
        flat_unc = np.concatenate([u.reshape(-1) for u in uncertainties])
        wrong = np.concatenate([(p != r).reshape(-1) for p, r in zip(predictions, references)])
        return selective_guaranteed_risk(flat_unc, wrong, max_risk=max_risk, delta=delta)
    return dice_risk_threshold(
        predictions, references, uncertainties, num_classes=num_classes, max_risk=max_risk, delta=delta, method=method
    )


def _at_coverage(
    predictions: list[np.ndarray],
    references: list[np.ndarray],
    uncertainties: list[np.ndarray],
    num_classes: int,
    coverage: float,
    risk: str,
) -> ReferralThreshold:
    """The coverage-mode threshold with its empirical risk (NaN for the pixel error rate when nothing is kept)."""
    chosen = threshold_for_coverage(uncertainties, coverage)
    if risk == "dice":
        curve = selective_dice_curve(predictions, references, uncertainties, num_classes=num_classes)
        empirical = 1.0 - curve.at_threshold(chosen.threshold).dice_mean
    else:
        kept = errors = 0
        for p, r, u in zip(predictions, references, uncertainties):
            keep = u.astype(np.float64) <= chosen.threshold
            kept += int(keep.sum())
            errors += int((keep & (p != r)).sum())
        empirical = errors / kept if kept else math.nan
    return chosen._replace(risk=float(empirical))


def load_referral(run_dir: str | Path) -> ReferralResult | None:
    """The referral threshold stored in a run by :func:`choose_referral_threshold`, or None if it was never given one
    (see :meth:`~selectseg.results.ReferralResult.find`).

    Raises:
        ValueError: if ``referral.json`` exists but is not valid JSON or has no ``threshold``.
    """
    return ReferralResult.find(run_dir)
