"""``selectseg ood``: the out-of-distribution protocol of EDUE (Abutalip et al. 2024): distort a share of the test
images and measure how well each image-level uncertainty score tells the distorted images from the clean ones.

Protocol (the parts the paper's abstract leaves open are ours, and configurable):

1. The clean test set (fraction 0) is predicted once; each image gets its image-level scores
   (:mod:`selectseg.evaluation.image_scores`) and its Dice at coverage 1 against the reference.
2. For each fraction f (default 0.5 and 1.0), :func:`selectseg.data.distort_fraction` distorts ``round(f N)``
   images (seeded; each by one kind drawn from ``kinds`` at ``severity``), on the raw image before the run's
   intensity normalisation. Only the distorted images are predicted again (the others are the clean ones).
3. AUROC per score (:func:`selectseg.metrics.ood_auroc`, ties count 1/2), the distorted images as positives
   against, as negatives, the images of the same set left clean; at f = 1, where none is left, against the clean
   set of step 1.

A run that z-scores each image (``data.normalize = zscore``, the default) undoes the ``contrast`` distortion (a
linear change about the mean) exactly, so for such runs the default kinds are ``noise`` and ``blur``; asking for
``contrast`` explicitly is allowed and recorded with a note.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .._validation import look_up_option
from ..data import Case
from ..data.annotators import reference_labels
from ..data.distortions import DISTORTIONS, distort_fraction
from ..metrics import mean_dice, ood_auroc
from ..results import OODResult
from ..runs import folder
from ..uncertainty import InferenceOptions
from .image_scores import image_scores
from .run import DEFAULT_INFERENCE, LoadedRun

__all__ = ["DEFAULT_FRACTIONS", "default_kinds", "evaluate_ood"]

DEFAULT_FRACTIONS = (0.5, 1.0)


def default_kinds(run: LoadedRun) -> tuple[str, ...]:
    """The distortions used when none are asked for: all three, without ``contrast`` for z-scored runs."""
    return ("noise", "blur") if run.config.data.normalize == "zscore" else DISTORTIONS


def evaluate_ood(
    run: LoadedRun,
    cases: Sequence[Case],
    out_dir: str | Path,
    *,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    kinds: Sequence[str] | None = None,
    severity: float = 0.5,
    seed: int = 0,
    inference: InferenceOptions = DEFAULT_INFERENCE,
    on_case: Callable[[str], None] | None = None,
) -> OODResult:
    """Run the OOD protocol (module docstring) and write ``ood.json`` and ``ood.csv`` to ``out_dir``.

    Args:
        run: the loaded training run.
        cases: labelled test cases (the reference follows the run's annotator policy).
        out_dir: output folder (created).
        fractions: shares of distorted images, each in (0, 1].
        kinds: distortions to draw from (``noise``, ``blur``, ``contrast``); None = :func:`default_kinds`.
        severity: strength of every distortion, in [0, 1].
        seed: seed of the chosen images, their kinds and the noise.
        inference: the estimator, its options and the uncertainty map, as :meth:`LoadedRun.outputs`.
        on_case: called with each case id after each inference (progress; ``N + sum round(f N)`` calls).

    Shape:
        N cases ``(C, *S)``. ``ood.csv`` holds one row per (fraction, case): fraction 0 is the clean set.

    Returns:
        The :class:`~selectseg.results.OODResult` as saved: ``auroc[fraction][score]``, ``mean_dice[fraction]``,
        the settings, notes and per-image rows.

    Raises:
        ValueError: with fewer than 2 cases, a fraction outside (0, 1], a fraction distorting no image, or an
            unknown distortion (with a near match).
    """
    if len(cases) < 2:
        raise ValueError(f"Expected at least 2 test cases for the OOD protocol, but got {len(cases)}.")
    levels = []
    for f in fractions:
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f <= 1:
            raise ValueError(f"Expected every OOD fraction in (0, 1], but got {f!r}.")
        if math.floor(f * len(cases) + 0.5) == 0:  # distort_fraction's count
            raise ValueError(f"Fraction {f} of {len(cases)} cases distorts no image; use a larger fraction.")
        levels.append(float(f))
    chosen = default_kinds(run) if kinds is None else tuple(look_up_option("kinds", k, DISTORTIONS) for k in kinds)
    notes = []
    if "contrast" in chosen and run.config.data.normalize == "zscore":
        notes.append("this run z-scores each image, which undoes the linear 'contrast' distortion exactly")
    with folder.lock_output(run.run_dir, out_dir, purpose="ood"):  # one writer of the run at a time
        references = {c.case_id: reference_labels(c, run.config.data.annotator, run.num_classes) for c in cases}

        def predict(batch: list[Case]) -> dict[str, tuple[float, dict[str, float]]]:
            out = {}
            outputs = run.outputs(batch, inference)
            for output in outputs:
                dice = mean_dice(output.segmentation, references[output.case.case_id], num_classes=run.num_classes)
                scores = image_scores(output.probabilities, output.uncertainty, output.members, layered=output.layered)
                out[output.case.case_id] = (dice, scores)
                if on_case is not None:
                    on_case(output.case.case_id)
            return out

        clean = predict(list(cases))
        names = list(next(iter(clean.values()))[1])
        rows: list[tuple[float, str, bool, str, float, dict[str, float]]] = [
            (0.0, c.case_id, False, "", *clean[c.case_id]) for c in cases
        ]
        auroc: dict[str, dict[str, float]] = {}
        mean_dice_by_level = {"0.0": float(np.mean([clean[c.case_id][0] for c in cases]))}
        for f in levels:
            distorted = distort_fraction([c.image for c in cases], f, kinds=chosen, severity=severity, seed=seed)
            changed = [
                dataclasses.replace(c, image=image)
                for c, image, flag in zip(cases, distorted.images, distorted.distorted)
                if flag
            ]
            again = predict(changed)
            level = []
            for c, flag, kind in zip(cases, distorted.distorted, distorted.kinds):
                dice, scores = again[c.case_id] if flag else clean[c.case_id]
                level.append((f, c.case_id, bool(flag), kind or "", dice, scores))
            rows += level
            inside = [r for r in level if not r[2]] or [r for r in rows if r[0] == 0.0]
            outside = [r for r in level if r[2]]
            auroc[str(f)] = {
                name: ood_auroc([r[5][name] for r in inside], [r[5][name] for r in outside]) for name in names
            }
            mean_dice_by_level[str(f)] = float(np.mean([r[4] for r in level]))
        score_rows = {name: np.array([r[5][name] for r in rows], dtype=np.float64) for name in names}
        result = OODResult(
            run=str(run.run_dir),
            uncertainty=inference.score,
            estimator=inference.estimator,
            estimator_options=dict(inference.estimator_options),
            num_cases=len(cases),
            severity=severity,
            kinds=tuple(chosen),
            seed=seed,
            fractions=tuple(levels),
            score_names=tuple(names),
            auroc={float(f): values for f, values in auroc.items()},
            mean_dice={float(f): value for f, value in mean_dice_by_level.items()},
            negatives="the images left clean in the same set; at fraction 1, the clean set",
            notes=tuple(notes),
            fraction=np.array([r[0] for r in rows], dtype=np.float64),
            case_ids=tuple(r[1] for r in rows),
            distorted=np.array([r[2] for r in rows], dtype=bool),
            kind=tuple(r[3] for r in rows),
            dice=np.array([r[4] for r in rows], dtype=np.float64),
            image_scores=score_rows,
        )
        result.save(out_dir)
        return result
