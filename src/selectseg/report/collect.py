"""Compare evaluated runs: Table 1, Table 4 and the per-image scatter of Ding et al.; no plotting here (no matplotlib).

Comparisons between runs (Table 4 and Fig. 2) pair the images by case id and use only the cases both runs were
evaluated on; the page lists the cases left out. Runs with no case in common cannot be compared: ValueError.

References:
    Ding et al., Uncertainty-Aware Training of Neural Networks for Selective Medical Image Segmentation,
    MIDL 2020, Table 1, Table 4, Fig. 2-3.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._versions import package_versions
from ..results import OperatingPoint
from .compare import RunComparison, load_comparison
from .results import RunResults, default_labels, load_run_results

__all__ = [
    "SCATTER_COVERAGE",
    "TABLE1_COVERAGES",
    "TABLE4_COVERAGES",
    "DiceDifferenceRow",
    "Quadrants",
    "ReportData",
    "ScatterData",
    "Table1",
    "Table1Row",
    "Table4",
    "collect_report",
    "quadrant_fractions",
    "software_versions",
]

TABLE1_COVERAGES = (1.0, 0.95, 0.9, 0.8, 0.7)
"""Target coverages shown in Table 1 (Ding et al. show 0.95..0.7; 1.0 is the model without referral)."""
TABLE4_COVERAGES = (1.0, 0.99, 0.98, 0.97, 0.96, 0.95)
"""Target coverages of Table 4, the Dice difference between two runs."""
SCATTER_COVERAGE = 0.95
"""Operating point of the per-image scatter (Fig. 2)."""

_TOL = 1e-9


@dataclass(frozen=True)
class Table1Row:
    """One run's row of Table 1: AURC (fraction; shown in %) and the operating point at each of the table's coverages
    (None where the run was not evaluated at that coverage); then the AURC's split into oracle + excess, the AUGRC
    (fractions) and the pixel error-detection AUROC, NaN where the run's files do not hold them; ``aurc_ci`` the
    AURC's bootstrap interval over images (None without one; the points hold theirs)."""

    label: str
    aurc: float
    points: tuple[OperatingPoint | None, ...]
    oracle_aurc: float = math.nan
    excess_aurc: float = math.nan
    augrc: float = math.nan
    error_auroc: float = math.nan
    aurc_ci: tuple[float, float] | None = None


@dataclass(frozen=True)
class Table1:
    """Ding et al. Table 1: AURC and Dice (mean ± std, 5th percentile) at fixed coverages, one row per run; beside
    them, when any run has them, the oracle/excess split of the AURC, the AUGRC and the error-detection AUROC."""

    coverages: tuple[float, ...]
    rows: tuple[Table1Row, ...]

    @property
    def has_decomposition(self) -> bool:
        """Whether any row holds one of the oracle AURC, excess AURC, AUGRC or error AUROC (older result files hold
        none, and their table keeps Ding et al.'s columns only)."""
        return any(math.isfinite(v) for r in self.rows for v in (r.oracle_aurc, r.excess_aurc, r.augrc, r.error_auroc))


@dataclass(frozen=True)
class DiceDifferenceRow:
    """One run against the reference: mean Dice difference (run - reference, over the common cases) per coverage.

    Attributes:
        differences: one per :attr:`Table4.coverages`; NaN where either run lacks that coverage.
        num_cases: the number of cases compared (0 when the files hold no per-image Dice: then the difference of the
            runs' mean Dice is shown instead).
    """

    label: str
    reference_label: str
    differences: tuple[float, ...]
    num_cases: int


@dataclass(frozen=True)
class Table4:
    """Ding et al. Table 4: the Dice difference between each run and the reference run at coverages 1.00..0.95."""

    coverages: tuple[float, ...]
    rows: tuple[DiceDifferenceRow, ...]


@dataclass(frozen=True)
class Quadrants:
    """Share of images in each quadrant of the (coverage difference, Dice difference) plane, in [0, 1].

    The quadrants are strict (a point with a zero difference is ``on_axis``); the five shares sum to 1 over the ``n``
    images with finite differences (all NaN when ``n`` is 0).
    """

    upper_right: float
    upper_left: float
    lower_left: float
    lower_right: float
    on_axis: float
    n: int


@dataclass(frozen=True, eq=False)
class ScatterData:
    """Per-image differences between a run and the reference at one target coverage (Ding et al. Fig. 2).

    Shape:
        coverage_difference, dice_difference: ``(N,)`` run - reference, over the N common cases (``case_ids``).
    """

    label: str
    reference_label: str
    target_coverage: float
    case_ids: tuple[str, ...]
    coverage_difference: np.ndarray
    dice_difference: np.ndarray
    quadrants: Quadrants
    only_in_run: tuple[str, ...]
    only_in_reference: tuple[str, ...]


@dataclass(frozen=True)
class ReportData:
    """Everything the page shows: the runs, the comparison tables and points, and the software versions."""

    runs: tuple[RunResults, ...]
    reference: int
    table1: Table1
    table4: Table4 | None
    scatters: tuple[ScatterData, ...]
    versions: Mapping[str, str]
    notes: tuple[str, ...] = ()
    comparisons: tuple[RunComparison, ...] = ()


def quadrant_fractions(
    coverage_difference: Sequence[float] | np.ndarray, dice_difference: Sequence[float] | np.ndarray
) -> Quadrants:
    """Share of images in each quadrant of the (coverage difference, Dice difference) plane (Ding et al. Fig. 2).

    Upper right: the run keeps more of the image and has the higher Dice. A point with a zero difference on either
    axis counts as ``on_axis``; points with a NaN difference are left out.

    Args:
        coverage_difference: per-image coverage of the run minus that of the reference.
        dice_difference: per-image Dice of the run minus that of the reference.

    Shape:
        coverage_difference, dice_difference: ``(N,)``.

    Returns:
        The five shares (summing to 1) and the number of points counted.

    Raises:
        ValueError: if the two vectors differ in length.

    Example:
        >>> q = quadrant_fractions([0.1, -0.2, 0.3, 0.0], [0.05, 0.1, -0.1, 0.2])
        >>> q.upper_right, q.upper_left, q.lower_right, q.on_axis
        (0.25, 0.25, 0.25, 0.25)
    """
    dx = np.asarray(coverage_difference, dtype=np.float64).reshape(-1)
    dy = np.asarray(dice_difference, dtype=np.float64).reshape(-1)
    if dx.shape != dy.shape:
        raise ValueError(
            f"Expected `coverage_difference` and `dice_difference` to have the same length, but got {dx.size} and "
            f"{dy.size}."
        )
    finite = np.isfinite(dx) & np.isfinite(dy)
    dx, dy = dx[finite], dy[finite]
    n = int(dx.size)
    if n == 0:
        return Quadrants(math.nan, math.nan, math.nan, math.nan, math.nan, 0)

    def share(mask: np.ndarray) -> float:
        return float(np.count_nonzero(mask)) / n

    return Quadrants(
        upper_right=share((dx > 0) & (dy > 0)),
        upper_left=share((dx < 0) & (dy > 0)),
        lower_left=share((dx < 0) & (dy < 0)),
        lower_right=share((dx > 0) & (dy < 0)),
        on_axis=share((dx == 0) | (dy == 0)),
        n=n,
    )


def _paired(run: OperatingPoint, ref: OperatingPoint, ids: Sequence[str], key: str) -> np.ndarray:
    a, b = getattr(run, key), getattr(ref, key)
    return np.array([a.get(i, math.nan) - b.get(i, math.nan) for i in ids], dtype=np.float64)


def _nan_if_absent(value: float | None) -> float:
    """A figure an older evaluation did not write is shown as n/a (NaN)."""
    return math.nan if value is None else value


def _common_ids(run: RunResults, ref: RunResults) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Cases in both runs (reference order), only in the run, only in the reference."""
    run_ids, ref_ids = run.evaluation.case_ids, ref.evaluation.case_ids
    common = tuple(i for i in ref_ids if i in set(run_ids))
    if run_ids and ref_ids and not common:
        raise ValueError(
            f"Runs {str(run.run_dir)!r} and {str(ref.run_dir)!r} were evaluated on disjoint case sets (e.g. "
            f"{run_ids[0]!r} vs {ref_ids[0]!r}); nothing to compare per image. Evaluate both on the same data, or "
            "write one report per data set."
        )
    return (
        common,
        tuple(i for i in run_ids if i not in set(ref_ids)),
        tuple(i for i in ref_ids if i not in set(run_ids)),
    )


def _table1(runs: Sequence[RunResults]) -> Table1:
    coverages = tuple(c for c in TABLE1_COVERAGES if any(r.evaluation.point(c) is not None for r in runs))
    rows = tuple(
        Table1Row(
            label=r.label,
            aurc=r.evaluation.aurc,
            points=tuple(r.evaluation.point(c) for c in coverages),
            oracle_aurc=_nan_if_absent(r.evaluation.oracle_aurc),
            excess_aurc=_nan_if_absent(r.evaluation.excess_aurc),
            augrc=_nan_if_absent(r.evaluation.augrc),
            error_auroc=_nan_if_absent(r.evaluation.error_auroc),
            aurc_ci=r.evaluation.aurc_ci,
        )
        for r in runs
    )
    return Table1(coverages=coverages, rows=rows)


def _difference(run: RunResults, ref: RunResults, c: float, ids: Sequence[str]) -> float:
    a, b = run.evaluation.point(c), ref.evaluation.point(c)
    if a is None or b is None:
        return math.nan
    if ids and a.image_dice and b.image_dice:
        return float(np.mean(_paired(a, b, ids, "image_dice")))
    return a.dice_mean - b.dice_mean


def _scatter(
    run: RunResults,
    ref: RunResults,
    target: float,
    ids: tuple[str, ...],
    only_run: tuple[str, ...],
    only_ref: tuple[str, ...],
) -> ScatterData | None:
    common = [c for c in _sorted_targets(run) if ref.evaluation.point(c) is not None and c < 1.0 - _TOL]
    if not ids or not common:
        return None
    chosen = target if any(abs(c - target) <= _TOL for c in common) else max(common)
    a, b = run.evaluation.point(chosen), ref.evaluation.point(chosen)
    if a is None or b is None or not a.image_dice or not b.image_dice:
        return None
    dx, dy = _paired(a, b, ids, "image_coverage"), _paired(a, b, ids, "image_dice")
    return ScatterData(
        label=run.label,
        reference_label=ref.label,
        target_coverage=chosen,
        case_ids=ids,
        coverage_difference=dx,
        dice_difference=dy,
        quadrants=quadrant_fractions(dx, dy),
        only_in_run=only_run,
        only_in_reference=only_ref,
    )


def _sorted_targets(run: RunResults) -> list[float]:
    return sorted({p.target_coverage for p in run.evaluation.points}, reverse=True)


def collect_report(
    run_dirs: Sequence[str | Path],
    *,
    labels: Sequence[str] | None = None,
    reference: int = 0,
    scatter_coverage: float = SCATTER_COVERAGE,
    comparisons: Sequence[str | Path] = (),
) -> ReportData:
    """Read the runs and compute Table 1, Table 4 and the per-image scatters against the reference run.

    Table 4 and the scatter compare each other run with run ``reference`` over the cases both were evaluated on (a
    run whose evaluation fingerprints other reference labels than the reference run's is not paired with it: a note
    says so)
    (Table 4: the mean per-image Dice difference, run - reference; without per-image values, the difference of the
    mean Dice). The scatter uses ``scatter_coverage`` when both runs were evaluated there, otherwise the largest
    target coverage below 1 they share (none: no scatter).

    Args:
        run_dirs: evaluated run folders, in the order of the report.
        labels: their names in the report (default :func:`default_labels`); must be unique.
        reference: index of the run the others are compared with.
        scatter_coverage: target coverage of the per-image scatter, in (0, 1).
        comparisons: ``compare.json`` files (or their folders) of ``selectseg compare``, shown as they are.

    Returns:
        The report's data.

    Raises:
        ValueError: if no run is given, ``labels`` has the wrong length or repeats a name, ``reference`` is out of
            range, a run folder has no evaluation results (see :func:`load_run_results`), two compared runs
            share no case, or a comparison file is missing or malformed.
    """
    if len(run_dirs) == 0:
        raise ValueError("Expected at least one run folder, but got none.")
    if labels is None:
        labels = default_labels(run_dirs)
    elif len(labels) != len(run_dirs):
        raise ValueError(f"Expected one label per run folder ({len(run_dirs)}), but got {len(labels)} labels.")
    elif len(set(labels)) != len(labels):
        raise ValueError(f"Expected unique labels, but got {list(labels)}.")
    if isinstance(reference, bool) or not isinstance(reference, int) or not 0 <= reference < len(run_dirs):
        raise ValueError(f"Expected `reference` to be a run index in [0, {len(run_dirs) - 1}], but got {reference!r}.")
    runs = tuple(load_run_results(d, label=str(lab)) for d, lab in zip(run_dirs, labels))
    paired = tuple(load_comparison(c) for c in comparisons)
    ref = runs[reference]
    table4 = None
    scatters = []
    notes = []
    if len(runs) > 1:
        coverages = tuple(c for c in TABLE4_COVERAGES if ref.evaluation.point(c) is not None)
        rows = []
        for i, run in enumerate(runs):
            if i == reference:
                continue
            a, b = run.evaluation.reference_sha256, ref.evaluation.reference_sha256
            if a is not None and b is not None and a != b:
                notes.append(
                    f"{run.label} vs {ref.label}: not compared case by case: the two were evaluated on different "
                    "reference labels (their reference_sha256 differ), so equal case ids are not the same images."
                )
                continue
            ids, only_run, only_ref = _common_ids(run, ref)
            if only_run or only_ref:
                notes.append(
                    f"{run.label} vs {ref.label}: compared on the {len(ids)} common cases; "
                    f"only in {run.label}: {', '.join(only_run) or 'none'}; "
                    f"only in {ref.label}: {', '.join(only_ref) or 'none'}."
                )
            rows.append(
                DiceDifferenceRow(
                    label=run.label,
                    reference_label=ref.label,
                    differences=tuple(_difference(run, ref, c, ids) for c in coverages),
                    num_cases=len(ids),
                )
            )
            scatter = _scatter(run, ref, scatter_coverage, ids, only_run, only_ref)
            if scatter is not None:
                scatters.append(scatter)
        table4 = Table4(coverages=coverages, rows=tuple(rows))
    return ReportData(
        runs=runs,
        reference=reference,
        table1=_table1(runs),
        table4=table4,
        scatters=tuple(scatters),
        versions=software_versions(),
        notes=tuple(notes),
        comparisons=paired,
    )


def software_versions() -> dict[str, str]:
    """Versions of the software making the report: python, selectseg, torch, monai, numpy, matplotlib.

    Read from the installed package metadata (nothing is imported; "not installed" where absent).
    """
    from .. import __version__

    versions = package_versions(("torch", "monai", "numpy", "matplotlib"))
    return {"python": versions.pop("python"), "selectseg": __version__, **versions}
