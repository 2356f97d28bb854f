"""``selectseg predict``: per case the segmentation, the uncertainty map and the referral mask, with the source
geometry, plus a JSON of per-case numbers."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write_bytes, staged_output
from .._validation import check_threshold
from ..data import Case, save_like
from ..data.annotators import reference_labels
from ..metrics import coverage_threshold, mean_dice
from ..results import _json
from ..runs import folder
from ..uncertainty import InferenceOptions
from .referral import load_referral
from .run import DEFAULT_INFERENCE, LoadedRun

__all__ = ["PREDICTIONS_JSON", "coverage_threshold", "predict_cases", "referral_mask"]

PREDICTIONS_JSON = "predictions.json"
"""The per-case numbers and file names of a prediction folder; written last, so its presence means the whole set."""


def referral_mask(uncertainty: np.ndarray, threshold: float) -> np.ndarray:
    """True where a voxel is referred to the radiologist (uncertainty > threshold).

    Shape:
        uncertainty ``(*S)`` -> bool ``(*S)``.
    """
    return np.asarray(uncertainty) > threshold


def predict_cases(
    run: LoadedRun,
    cases: list[Case] | tuple[Case, ...],
    out_dir: str | Path,
    *,
    threshold: float | None = None,
    coverage: float | None = None,
    inference: InferenceOptions = DEFAULT_INFERENCE,
    use_referral: bool = True,
    naming: str = "selectseg",
    save_probabilities: bool = False,
    on_case: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Predict every case and write ``<case>_seg``, ``<case>_uncertainty`` and ``<case>_referral`` maps.

    ``naming="nnunet"`` names the segmentation ``<case>.nii.gz`` (what nnU-Net's evaluation and MONAI's writers
    expect), the other maps beside it unchanged; ``save_probabilities`` adds ``<case>.npz`` with the mean softmax
    ``probabilities`` ``(K, *S)`` float32 (nnU-Net's ``--save_probabilities`` layout, without its ``.pkl``).

    Files are NIfTI (``.nii.gz``, the source affine and header) or PNG for PNG inputs; the segmentation holds class
    indices, the referral mask 1 where the voxel is referred. ``predictions.json`` lists per case the files, the
    threshold used, the achieved coverage, referred voxels, mean uncertainty, predicted class voxel counts and, for
    labelled cases, Dice before and after referral (referred voxels counted as corrected).

    Args:
        run: the loaded training run.
        cases: cases to predict.
        out_dir: output folder (created).
        threshold: refer voxels with uncertainty above this global threshold; or
        coverage: keep (per case) the largest achievable fraction <= ``coverage`` of least uncertain voxels.
            Neither: the threshold calibrated by ``selectseg calibrate`` (``RUN/referral.json``) when there is one
            and ``use_referral``, else coverage 1 (nothing referred).
        inference: the estimator, its options and the uncertainty map
            (:class:`~selectseg.uncertainty.InferenceOptions`).
        use_referral: use the run's calibrated threshold when neither ``threshold`` nor ``coverage`` is given.
        naming: ``"selectseg"`` (``<case>_seg``) or ``"nnunet"`` (``<case>`` for the segmentation).
        save_probabilities: also write the probabilities (``<case>.npz``).
        on_case: called with each case id after it is written (progress).

    Returns:
        The ``predictions.json`` content.

    Raises:
        ValueError: if both ``threshold`` and ``coverage`` are given, either is invalid, a case does not fit the
            network, or the calibrated threshold was made for another uncertainty map or estimator.
    """
    if threshold is not None and coverage is not None:
        raise ValueError("Give either `threshold` or `coverage`, not both.")
    if naming not in NAMINGS:
        raise ValueError(f"Expected `naming` to be one of {list(NAMINGS)}, but got {naming!r}.")
    source = "threshold" if threshold is not None else "coverage" if coverage is not None else "none"
    referral = load_referral(run.run_dir) if use_referral and source == "none" else None
    if referral is not None:
        made_for = referral.made_for
        if made_for != (inference.score, inference.estimator, dict(inference.estimator_options)):
            raise ValueError(
                f"The calibrated threshold in {str(run.run_dir)!r}/referral.json is for uncertainty "
                f"{made_for[0]!r} with estimator {made_for[1]!r} {made_for[2]}, but this prediction uses "
                f"{inference.score!r} with {inference.estimator!r} {dict(inference.estimator_options)}; use "
                "those, or give a threshold or "
                "coverage, or turn the calibrated threshold off."
            )
        if referral.weights_sha256 is not None and run.weights_sha256 and referral.weights_sha256 != run.weights_sha256:
            raise ValueError(
                f"The referral threshold in {str(run.run_dir)!r}/referral.json is stale: it was chosen with other "
                "weights than the ones loaded now (the run was trained further, or another snapshot is loaded). "
                "Choose it again (`selectseg threshold`), give a threshold or coverage, or turn the stored threshold "
                "off."
            )
        threshold, source = referral.threshold, "referral.json"
    if threshold is not None:
        threshold = check_threshold("threshold", threshold)
    if coverage is not None and (
        isinstance(coverage, bool) or not isinstance(coverage, (int, float)) or not 0 <= coverage <= 1
    ):
        raise ValueError(f"Expected `coverage` to be a float in [0, 1], but got {coverage!r}.")
    run.check_cases(list(cases))  # every case fits the run before the output folder is made
    out_dir = Path(out_dir)
    # One writer at a time; the files are staged and published complete or absent, predictions.json last, and the
    # files an earlier prediction listed are removed with it (never new files beside an old predictions.json).
    with (
        folder.lock_output(run.run_dir, out_dir, purpose="predict"),
        staged_output(out_dir, PREDICTIONS_JSON, replaces=_listed_files(out_dir)) as stage,
    ):
        records = []
        outputs = run.outputs(cases, inference)
        for output in outputs:
            case = output.case
            if threshold is not None:
                used = threshold
            else:
                used = coverage_threshold(output.uncertainty, 1.0 if coverage is None else coverage)
            referred = referral_mask(output.uncertainty, used)
            suffix = ".png" if case.file_kind == "png" else ".nii.gz"
            seg_name = f"{case.case_id}{suffix}" if naming == "nnunet" else f"{case.case_id}_seg{suffix}"
            files = {
                "segmentation": save_like(output.segmentation.astype(np.uint8), case, stage / seg_name),
                "uncertainty": save_like(output.uncertainty, case, stage / f"{case.case_id}_uncertainty{suffix}"),
                "referral": save_like(referred.astype(np.uint8), case, stage / f"{case.case_id}_referral{suffix}"),
            }
            if save_probabilities:
                buffer = io.BytesIO()
                np.savez_compressed(buffer, probabilities=output.probabilities.astype(np.float32))
                files["probabilities"] = atomic_write_bytes(stage / f"{case.case_id}.npz", buffer.getvalue())
            voxel_volume = float(np.prod(case.spacing)) if case.spacing else 1.0
            counts = np.bincount(output.segmentation.reshape(-1), minlength=run.num_classes)
            record: dict[str, Any] = {
                "case_id": case.case_id,
                "shape": list(output.segmentation.shape),
                "files": {k: v.name for k, v in files.items()},
                "threshold": used,
                "coverage": float(1.0 - referred.mean()),
                "referred_voxels": int(referred.sum()),
                "mean_uncertainty": float(output.uncertainty.mean()),
                "class_voxels": {name: int(n) for name, n in zip(run.info["class_names"], counts)},
                "class_volumes": {name: float(n) * voxel_volume for name, n in zip(run.info["class_names"], counts)},
            }
            if case.labels is not None:
                reference = reference_labels(case, run.config.data.annotator, run.num_classes)
                corrected = np.where(referred, reference, output.segmentation)
                record["dice"] = mean_dice(output.segmentation, reference, num_classes=run.num_classes)
                record["dice_after_referral"] = mean_dice(corrected, reference, num_classes=run.num_classes)
            records.append(record)
            if on_case is not None:
                on_case(case.case_id)
        summary = {
            "run": str(run.run_dir),
            "uncertainty": inference.score,
            "estimator": inference.estimator,
            "estimator_options": dict(inference.estimator_options),
            "threshold": threshold,
            "coverage": coverage,
            "threshold_source": source,
            "referral": None if referral is None else referral.to_json(),
            "cases": records,
        }
        _json.dump(stage / PREDICTIONS_JSON, summary)
    return summary


NAMINGS = ("selectseg", "nnunet")
"""Output file naming of :func:`predict_cases`."""


def _listed_files(out_dir: Path) -> list[str]:
    """The files an earlier complete prediction in ``out_dir`` lists (removed when the new one is published)."""
    path = out_dir / PREDICTIONS_JSON
    try:
        cases = json.loads(path.read_text(encoding="utf-8")).get("cases", [])
        names = [str(name) for case in cases for name in (case.get("files") or {}).values()]
    except (OSError, ValueError, AttributeError, TypeError):
        return []  # none, or not ours: only predictions.json itself is replaced
    return [name for name in names if name and Path(name).name == name]  # plain names in out_dir only
