"""``selectseg evaluate``: the Dice risk-coverage evaluation of a run on a labelled test set (Ding et al. Table 1 and
Fig. 2 data), written as JSON and CSV."""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import UndefinedMetricWarning, check_positive_int
from ..data import Case
from ..data.annotators import reference_labels
from ..metrics import (
    CalibrationStats,
    annotator_roi,
    annotator_variance,
    generalized_energy_distance,
    hungarian_matched_iou,
    image_level_correlation,
    image_level_correlation_ci,
    per_image_pixel_correlation,
    pixel_augrc,
    pixel_error_auroc,
    pixel_level_correlation_ci,
    prediction_variance,
    quality_control_curve,
    selective_dice_curve,
    soft_dice_at_thresholds,
)
from ..metrics.bootstrap import (
    DEFAULT_CONFIDENCE_LEVEL,
    DEFAULT_N_RESAMPLES,
    DiceBootstrap,
    bootstrap_dice_curve,
    check_bootstrap_options,
)
from ..metrics.dice_curve import SelectiveDiceCurve
from ..metrics.quality import DEFAULT_TAU
from ..results import (
    Calibration,
    DiceCurve,
    Disagreement,
    EvaluationResult,
    Montage,
    MontageCase,
    OperatingPoint,
    QCScore,
    QualityControl,
    Reliability,
)
from ..results.evaluation import DEFAULT_COVERAGES
from ..runs import folder
from ..uncertainty import SCORES, InferenceOptions
from .image_scores import image_scores
from .run import DEFAULT_INFERENCE, CaseOutput, LoadedRun

__all__ = ["DEFAULT_COVERAGES", "evaluate_cases"]

MONTAGE_COVERAGE = 0.9
"""The referral operating point of the qualitative montage (``montage.npz``)."""
MONTAGE_CASES = 8
"""Cases kept in the montage, spread over Dice at coverage 1: more than a figure shows, so that another run's montage
more often holds the cases the report takes from the reference run."""
MONTAGE_MAX_SIDE = 512
"""Longest side of a montage map: larger views are strided (the image block-averaged), keeping ``montage.npz`` small."""


def evaluate_cases(
    run: LoadedRun,
    cases: Sequence[Case],
    out_dir: str | Path,
    *,
    coverages: Sequence[float] = DEFAULT_COVERAGES,
    inference: InferenceOptions = DEFAULT_INFERENCE,
    sv_roi_radius: int | None = None,
    on_case: Callable[[str], None] | None = None,
    n_resamples: int = DEFAULT_N_RESAMPLES,
    bootstrap_seed: int = 0,
    confidence_level: float = DEFAULT_CONFIDENCE_LEVEL,
) -> EvaluationResult:
    """Evaluate ``run`` on labelled ``cases`` and write ``evaluation.json``, ``summary.csv``, ``curve.csv``,
    ``per_image.csv`` and ``montage.npz``.

    The five files are written complete or absent (:meth:`~selectseg.results.EvaluationResult.save`): a kill leaves
    the previous evaluation whole or none. While it runs, the run folder is locked
    (:func:`selectseg.runs.folder.lock_output`: the run's lock when ``out_dir`` is inside it, else the output
    folder's).

    One global uncertainty threshold across all cases per operating point (see ``docs/metrics.md``). Reported: the
    full Dice-coverage curve, AURC and its split ``oracle_aurc`` (the AURC of the same segmentation with a perfect
    error detector) + ``excess_aurc`` (the ordering part), the pixel error-detection AUROC ``error_auroc`` (null
    when no voxel or every voxel is wrong) and the ``augrc`` (pixel error), all over the voxels of all cases pooled,
    and at each target coverage (largest achievable <= the target over every
    distinct threshold) the Dice mean, std and 5th percentile over images, gamma (wrong fraction among referred
    voxels), psi_c (voxel accuracy on the kept voxels) and per-image coverage and Dice. The AURC and each mean Dice
    get a percentile bootstrap interval over images (:func:`~selectseg.metrics.bootstrap_dice_curve`: ``aurc_ci``,
    ``dice_ci`` and the settings in ``bootstrap``; ``summary.csv`` lists them). ``reference_sha256`` fingerprints the
    cases' reference label maps, so that comparisons can check that two evaluations share their data. Beside them:

    - calibration of the mean probabilities over all voxels (NLL, Brier, ECE top-label and class-wise, 15 bins, the
      reliability bins);
    - image-level uncertainty scores (:mod:`selectseg.evaluation.image_scores`: mean uncertainty, mean entropy,
      and with members SV, model disagreement, for layer ensembles 1 - AULA), each with its quality-control curve
      (images ranked by the score against failing, Dice < 0.8 at coverage 1: AUC, ideal AUC, d-AUC);
    - when every case has at least two annotators: the correlation of the uncertainty map with the annotators'
      variance m(1 - m) (image level: Pearson and Spearman of the per-image sums, SV, over the whole image or over
      the region ``sv_roi_radius`` defines, the same region for both maps; pixel level: mean per-image Pearson over
      the whole image, constant maps skipped), each with a 95 % percentile-bootstrap interval over images (1000
      resamples, seed 0; ``..._ci``, null with fewer than 2 images) and the per-image values (``image_sv``,
      ``annotator_sv``, ``image_pixel_pearson``) for pooling across folds, soft Dice of the foreground probability
      (1 - p(bg)) against the annotators' mean at thresholds 0.1..0.9, and the generalised energy distance
      (d = 1 - IoU, self pairs included) and Hungarian-matched IoU between the model's samples (the members' argmax
      foreground, or the one prediction) and the annotators' foreground masks, each averaged over images;
    - ``montage.npz``: 2-D views (image, reference, prediction, uncertainty, referred at coverage 0.9, variance
      maps) of up to 4 cases spread from the worst to the best Dice, for the report.

    NaN values are written as null.

    Args:
        run: the loaded training run.
        cases: labelled cases (with several annotators, the run's annotator policy gives the reference).
        out_dir: output folder (created).
        coverages: target coverages, each in [0, 1].
        inference: the estimator (``softmax``, ``mc_dropout``, ``tta``, ``ensemble``, ``layer_ensemble``, ``edue``),
            its options and the uncertainty map (:class:`~selectseg.uncertainty.InferenceOptions`).
        on_case: called with each case id after inference (progress).
        n_resamples: resamples of the bootstrap over images (0: no bootstrap, no intervals).
        bootstrap_seed: its seed; confidence_level: its level, in (0, 1).

    Returns:
        The :class:`~selectseg.results.EvaluationResult`, as saved (``EvaluationResult.load(out_dir)`` reads it
        back).

    Raises:
        ValueError: if there are no cases, a case has no labels or does not fit the network (channels, dimensions,
            labels outside the run's classes), ``coverages`` is empty or not a list, a coverage is outside [0, 1],
            ``sv_roi_radius`` is not None or an int >= 0, or, before any inference, the bootstrap options are
            invalid, ``n_resamples`` > 0 with fewer than 2 cases, or the folder is locked by another process.
        TypeError: if a bootstrap option has the wrong type.
    """
    _check_arguments(cases, coverages, sv_roi_radius, n_resamples, confidence_level, bootstrap_seed)
    run.check_cases(list(cases))  # channels, dimensions and classes of every case, before any inference
    with folder.lock_output(run.run_dir, out_dir, purpose="evaluate"):  # one writer of the run at a time
        references = [reference_labels(case, run.config.data.annotator, run.num_classes) for case in cases]
        seen = _collect(run, cases, references, inference, sv_roi_radius, on_case)
        curve = selective_dice_curve(seen.predictions, references, seen.uncertainties, num_classes=run.num_classes)
        with warnings.catch_warnings():  # no wrong or no correct voxel: the AUROC is NaN (written as null)
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            error_auroc = pixel_error_auroc(seen.predictions, references, seen.uncertainties)
        boot = None
        if n_resamples > 0:
            boot = bootstrap_dice_curve(
                curve,
                [float(c) for c in coverages],
                n_resamples=n_resamples,
                confidence_level=confidence_level,
                seed=bootstrap_seed,
            )
        ids = [case.case_id for case in cases]
        full = curve.at_coverage(1.0)
        disagreement = None
        if seen.multi:
            bootstrap = (n_resamples, confidence_level, bootstrap_seed)
            disagreement = _disagreement(seen, ids, inference.score, sv_roi_radius, bootstrap)
        class_names = run.info.get("class_names")
        result = EvaluationResult(
            run=str(run.run_dir),
            uncertainty=inference.score,
            estimator=inference.estimator,
            estimator_options=dict(inference.estimator_options),
            num_cases=len(cases),
            num_classes=run.num_classes,
            class_names=tuple(class_names) if class_names is not None else None,
            reference_sha256=_reference_digest(ids, references),
            aurc=curve.aurc,
            oracle_aurc=curve.oracle_aurc,
            excess_aurc=curve.excess_aurc,
            error_auroc=error_auroc,
            augrc=pixel_augrc(seen.predictions, references, seen.uncertainties),
            aurc_ci=None if boot is None else (float(boot.aurc_ci[0]), float(boot.aurc_ci[1])),
            bootstrap=boot.settings() if boot is not None else None,
            points=_operating_points(curve, coverages, ids, boot),
            curve=DiceCurve(threshold=curve.thresholds, coverage=curve.coverage, dice=curve.dice),
            calibration=_calibration(seen.calibration),
            quality_control=_quality_control(seen.scores, full.image_dice),
            image_scores={name: dict(zip(ids, values)) for name, values in seen.scores.items()},
            disagreement=disagreement,
        )
        threshold = curve.at_coverage(MONTAGE_COVERAGE).threshold
        bounds = _score_range(inference.score, run.num_classes)
        montage = _montage(ids, full.image_dice, seen.slices, threshold, bounds)
        result.save(out_dir, montage=montage)  # the five files complete or absent, never mixed with older ones
        return result


def _check_arguments(
    cases: Sequence[Case],
    coverages: Sequence[float],
    sv_roi_radius: int | None,
    n_resamples: int,
    confidence_level: float,
    bootstrap_seed: int,
) -> None:
    """Everything checked before any inference (see :func:`evaluate_cases`, Raises)."""
    if len(cases) == 0:
        raise ValueError("Expected at least one labelled case to evaluate, but got none.")
    if sv_roi_radius is not None and (
        isinstance(sv_roi_radius, bool) or not isinstance(sv_roi_radius, int) or sv_roi_radius < 0
    ):
        raise ValueError(f"Expected `sv_roi_radius` to be None or an int >= 0 (pixels), but got {sv_roi_radius!r}.")
    if isinstance(coverages, (str, bytes)) or not isinstance(coverages, (Sequence, np.ndarray)) or len(coverages) == 0:
        raise ValueError(
            f"Expected `coverages` to be a non-empty list of target coverages in [0, 1], but got {coverages!r}."
        )
    for c in coverages:
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not 0 <= c <= 1:
            raise ValueError(f"Expected every coverage in [0, 1], but got {c!r}.")
    if check_positive_int("n_resamples", n_resamples, minimum=0) > 0:
        check_bootstrap_options(len(cases), n_resamples, confidence_level, bootstrap_seed)


@dataclass
class _Seen:
    """What one pass of inference over the cases keeps (the per-case outputs themselves are not kept)."""

    multi: bool
    predictions: list[np.ndarray] = field(default_factory=list)
    uncertainties: list[np.ndarray] = field(default_factory=list)
    calibration: CalibrationStats = field(default_factory=CalibrationStats)
    scores: dict[str, list[float]] = field(default_factory=dict)
    slices: list[dict[str, Any]] = field(default_factory=list)
    annotator_maps: list[np.ndarray] = field(default_factory=list)
    sv_pairs: list[tuple[float, float]] = field(default_factory=list)  # (model, annotators) SV over the SV region
    soft_dice: list[np.ndarray] = field(default_factory=list)
    distances: list[tuple[float, float]] = field(default_factory=list)  # (GED, Hungarian IoU) per image
    sampled_members: bool = False  # GED / Hungarian IoU over the members' samples (else the one prediction)


def _collect(
    run: LoadedRun,
    cases: Sequence[Case],
    references: list[np.ndarray],
    inference: InferenceOptions,
    sv_roi_radius: int | None,
    on_case: Callable[[str], None] | None,
) -> _Seen:
    """Run inference case by case and keep what the figures need."""
    seen = _Seen(multi=all(case.num_annotators >= 2 for case in cases))
    for output, reference in zip(run.outputs(list(cases), inference), references):
        seen.predictions.append(output.segmentation.astype(np.int64))
        seen.uncertainties.append(output.uncertainty)
        seen.calibration.update(output.probabilities[None], reference[None])
        for name, value in image_scores(
            output.probabilities, output.uncertainty, output.members, layered=output.layered
        ).items():
            seen.scores.setdefault(name, []).append(value)
        if seen.multi:
            _add_annotator_terms(seen, output, sv_roi_radius)
        seen.slices.append(_montage_slice(output, reference, seen.annotator_maps[-1] if seen.multi else None))
        if on_case is not None:
            on_case(output.case.case_id)
    return seen


def _add_annotator_terms(seen: _Seen, output: CaseOutput, sv_roi_radius: int | None) -> None:
    """One case's annotator variance, SV pair, soft Dice and sample distances (every case has >= 2 annotators)."""
    masks = np.asarray(output.case.labels) > 0
    seen.annotator_maps.append(annotator_variance(masks))
    roi = None if sv_roi_radius is None else annotator_roi(masks, radius=sv_roi_radius)
    seen.sv_pairs.append(_sums(output.uncertainty, seen.annotator_maps[-1], roi))
    foreground = 1.0 - output.probabilities[0]
    seen.soft_dice.append(soft_dice_at_thresholds(np.clip(foreground, 0.0, 1.0), masks).dice)
    seen.sampled_members = output.members is not None
    samples = output.members.argmax(axis=1) > 0 if output.members is not None else output.segmentation[None] > 0
    seen.distances.append((generalized_energy_distance(samples, masks), hungarian_matched_iou(samples, masks)))


def _operating_points(
    curve: SelectiveDiceCurve, coverages: Sequence[float], ids: list[str], boot: DiceBootstrap | None
) -> tuple[OperatingPoint, ...]:
    """One :class:`OperatingPoint` per target coverage (psi_c from the curve's own counts)."""
    points = []
    for j, c in enumerate(coverages):
        point = curve.at_coverage(float(c))
        points.append(
            OperatingPoint(
                target_coverage=float(c),
                coverage=point.coverage,
                threshold=point.threshold,
                dice_mean=point.dice_mean,
                dice_std=point.dice_std,
                dice_p5=point.dice_p5,
                gamma=point.gamma,
                psi_c=point.psi_c,
                image_coverage=dict(zip(ids, point.image_coverage.tolist())),
                image_dice=dict(zip(ids, point.image_dice.tolist())),
                dice_ci=None if boot is None else (float(boot.dice_ci[j][0]), float(boot.dice_ci[j][1])),
            )
        )
    return tuple(points)


def _calibration(stats: CalibrationStats) -> Calibration:
    cal = stats.compute()
    bins = cal.bins
    return Calibration(
        nll=cal.nll,
        brier=cal.brier,
        ece_top_label=cal.ece_top_label,
        ece_classwise=cal.ece_classwise,
        n_bins=len(bins.edges) - 1,
        reliability=Reliability(
            edges=bins.edges, counts=bins.counts, confidence=bins.confidence, accuracy=bins.accuracy
        ),
    )


def _quality_control(scores: dict[str, list[float]], image_dice: np.ndarray) -> QualityControl:
    """Each image score's quality-control curve against failing (Dice at coverage 1 below ``DEFAULT_TAU``)."""
    out = []
    for name, values in scores.items():
        qc = quality_control_curve(np.asarray(values), image_dice)
        out.append(
            QCScore(
                name=name,
                auc=qc.auc,
                auc_ideal=qc.auc_ideal,
                d_auc=qc.d_auc,
                fraction_flagged=qc.fraction_flagged,
                fraction_failing=qc.fraction_failing,
                ideal_fraction_failing=qc.ideal_fraction_failing,
            )
        )
    return QualityControl(tau=DEFAULT_TAU, scores=tuple(out))


def _disagreement(
    seen: _Seen, ids: list[str], score: str, sv_roi_radius: int | None, bootstrap: tuple[int, float, int]
) -> Disagreement:
    """Agreement of the uncertainty map with the annotators' variance, with bootstrap intervals over images."""
    n_resamples, confidence_level, seed = bootstrap
    with warnings.catch_warnings():  # constant maps and too few images are documented NaN cases
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        model_sv, annotator_sv = [p[0] for p in seen.sv_pairs], [p[1] for p in seen.sv_pairs]
        image_corr = image_level_correlation(model_sv, annotator_sv)
        pixel_r = per_image_pixel_correlation(seen.uncertainties, seen.annotator_maps)
        counted = pixel_r[~np.isnan(pixel_r)]
        image_ci = ((math.nan, math.nan), (math.nan, math.nan))
        pixel_ci = (math.nan, math.nan)
        if n_resamples > 0 and len(ids) >= 2:
            image_ci = image_level_correlation_ci(
                model_sv, annotator_sv, n_resamples=n_resamples, confidence=confidence_level, seed=seed
            )
        if n_resamples > 0 and counted.size >= 2:
            pixel_ci = pixel_level_correlation_ci(
                counted, n_resamples=n_resamples, confidence=confidence_level, seed=seed
            )
    return Disagreement(
        uncertainty=score,
        sv_roi="image" if sv_roi_radius is None else f"annotators' union dilated by {sv_roi_radius} px",
        sv_roi_radius=sv_roi_radius,
        image_pearson=image_corr.pearson,
        image_pearson_ci=(float(image_ci[0][0]), float(image_ci[0][1])),
        image_spearman=image_corr.spearman,
        image_spearman_ci=(float(image_ci[1][0]), float(image_ci[1][1])),
        pixel_pearson=float(counted.mean()) if counted.size else math.nan,
        pixel_pearson_ci=(float(pixel_ci[0]), float(pixel_ci[1])),
        ci={
            "method": "percentile bootstrap over images",
            "confidence": confidence_level,
            "n_resamples": n_resamples,
            "seed": seed,
        },
        image_sv=dict(zip(ids, model_sv)),
        annotator_sv=dict(zip(ids, annotator_sv)),
        image_pixel_pearson=dict(zip(ids, pixel_r.tolist())),
        soft_dice_thresholds=tuple(round(0.1 * i, 1) for i in range(1, 10)),
        soft_dice=tuple(np.mean(seen.soft_dice, axis=0).tolist()),
        samples="the members' argmax foreground" if seen.sampled_members else "the prediction",
        ged=float(np.mean([d[0] for d in seen.distances])),
        hungarian_iou=float(np.mean([d[1] for d in seen.distances])),
    )


def _reference_digest(ids: list[str], references: list[np.ndarray]) -> str:
    """SHA-256 of the cases' reference label maps (case id, shape, int64 values), in case-id order."""
    digest = hashlib.sha256()
    for case_id, reference in sorted(zip(ids, references), key=lambda pair: pair[0]):
        digest.update(f"{case_id}\0{reference.shape}\0".encode())
        digest.update(np.ascontiguousarray(reference, dtype="<i8").tobytes())
    return digest.hexdigest()


def _sums(uncertainty: np.ndarray, annotators: np.ndarray, roi: np.ndarray | None) -> tuple[float, float]:
    """The model's and the annotators' map summed over ``roi`` (None = everywhere), float64."""
    if roi is None:
        return float(np.sum(uncertainty, dtype=np.float64)), float(np.sum(annotators, dtype=np.float64))
    return float(np.sum(uncertainty[roi], dtype=np.float64)), float(np.sum(annotators[roi], dtype=np.float64))


def _montage_slice(output: CaseOutput, reference: np.ndarray, annotators: np.ndarray | None) -> dict[str, Any]:
    """The 2-D view of one case kept for the montage: the whole image in 2D; in 3D the slice along the last axis
    with the most reference foreground (the middle one when there is none), its index as ``slice_index`` (None in
    2D). Views longer than :data:`MONTAGE_MAX_SIDE` keep every ``step``-th pixel (the image: the block's mean)."""
    index: tuple[Any, ...] = ()
    slice_index = None
    if reference.ndim == 3:
        per_slice = (reference > 0).reshape(-1, reference.shape[-1]).sum(axis=0)
        slice_index = int(per_slice.argmax()) if per_slice.any() else reference.shape[-1] // 2
        index = (..., slice_index)
    view = {
        "image": np.asarray(output.case.image[0], dtype=np.float32)[index],
        "reference": reference[index].astype(np.int64),
        "prediction": output.segmentation[index].astype(np.int64),
        "uncertainty": output.uncertainty[index].astype(np.float32),
    }
    if annotators is not None:
        view["annotator_variance"] = annotators[index].astype(np.float32)
    if output.members is not None and output.members.shape[0] > 1:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            member_index = (slice(None), *index)
            fg = np.clip(1.0 - output.members[:, 0][member_index].astype(np.float64), 0.0, 1.0)
            view["model_variance"] = prediction_variance(fg).astype(np.float32)
    step = -(-max(view["image"].shape) // MONTAGE_MAX_SIDE)
    if step > 1:
        height, width = (n // step for n in view["image"].shape)
        blocks = view["image"][: height * step, : width * step].reshape(height, step, width, step)
        view = {name: m[step // 2 :: step, step // 2 :: step][:height, :width] for name, m in view.items()}
        view["image"] = blocks.mean(axis=(1, 3), dtype=np.float64).astype(np.float32)
    return {**view, "slice_index": slice_index}


def _score_range(score: str, num_classes: int) -> tuple[float, float] | None:
    """The values a registered score can take for K classes; None for a member map or a score without bounds."""
    if score not in SCORES:
        return None
    bounds = SCORES.entry(score).metadata.bounds
    if bounds is None:
        return None
    low, high = bounds(num_classes)
    return float(low), float(high)


def _montage(
    ids: list[str],
    dice: np.ndarray,
    slices: list[dict[str, Any]],
    threshold: float,
    uncertainty_range: tuple[float, float] | None,
) -> Montage:
    """The montage cases, worst to best by Dice at coverage 1: the worst, the best and evenly spaced ones between."""
    order = np.argsort(np.asarray(dice), kind="stable")
    positions = sorted({round(q * (len(order) - 1)) for q in np.linspace(0, 1, MONTAGE_CASES)})
    cases = tuple(
        MontageCase(case_id=ids[i], referred=slices[i]["uncertainty"] > threshold, **slices[i])
        for i in (int(order[p]) for p in positions)
    )
    return Montage(coverage=MONTAGE_COVERAGE, cases=cases, threshold=threshold, uncertainty_range=uncertainty_range)
