"""``selectseg compare``: candidate runs against reference runs, paired by training seed.

A training run is the unit of replication: the candidate and the reference trained with the same ``seed`` (from each
run's ``config.yaml``) form one pair, and each metric is compared over the pairs with
:func:`selectseg.metrics.paired_comparison` (mean difference, t interval, paired t-test, sign test, better / worse /
equal). Images are not replications of a training; their uncertainty is the bootstrap interval of ``evaluate``.

Metrics compared, from each run's ``evaluation/evaluation.json``: ``aurc`` (lower is better), ``dice@c``, the mean
Dice at every evaluated target coverage c (higher is better), and the keys ``oracle_aurc``, ``excess_aurc``,
``augrc`` (lower is better) and ``error_auroc`` (higher is better) where every run's file has them.

Refused before anything is computed (ValueError): a run not evaluated, a seed missing on one side or given twice on
one side, runs evaluated on different cases (the case ids of the per-image results), on different data (number of
classes; the fingerprint ``reference_sha256`` of the reference labels where the files have it: evaluations written
before it are checked by case ids only, which the notes say) or at different target coverages.

Files written by :func:`write_comparison` (atomically) into ``OUT``: ``compare.json`` (:meth:`RunComparison.to_json`,
read back by :func:`load_comparison`) and ``compare.csv`` (one row per metric).
"""

from __future__ import annotations

import csv
import io
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .._io import atomic_write_text
from .._validation import UndefinedMetricWarning
from ..metrics.paired import PairedComparison, paired_comparison
from ..results import HEADLINE_METRICS as SUMMARY_METRICS
from ..results import _json
from .results import RunResults, load_run_results

__all__ = [
    "COMPARE_CSV",
    "COMPARE_JSON",
    "HIGHER_IS_BETTER",
    "MetricComparison",
    "RunComparison",
    "compare_runs",
    "load_comparison",
    "shown_in_percent",
    "write_comparison",
]

COMPARE_JSON = "compare.json"
COMPARE_CSV = "compare.csv"
HIGHER_IS_BETTER: Mapping[str, bool] = {
    "aurc": False,
    "oracle_aurc": False,
    "excess_aurc": False,
    "error_auroc": True,
    "augrc": False,
}
"""Direction of each top-level metric compared (``dice@c`` is higher-is-better)."""
_TOL = 1e-9


@dataclass(frozen=True)
class MetricComparison:
    """One metric over the paired seeds: each side's values (in :attr:`RunComparison.seeds` order) and the result.

    Attributes:
        metric: ``aurc``, ``dice@<target coverage>`` (``dice@1.0``, ``dice@0.95``, as in ``summary.csv``) or a key of
            :data:`HIGHER_IS_BETTER`.
        candidate, reference: the per-seed values.
        result: the paired comparison, differences candidate - reference.
    """

    metric: str
    candidate: tuple[float, ...]
    reference: tuple[float, ...]
    result: PairedComparison

    @property
    def higher_is_better(self) -> bool:
        """The metric's direction."""
        return self.result.higher_is_better


@dataclass(frozen=True)
class RunComparison:
    """Candidate runs against reference runs over seeds (module doc); written as ``compare.json``.

    Attributes:
        candidate_label, reference_label: the two methods' names.
        seeds: the paired seeds, increasing; candidate_runs, reference_runs: the run folders in that order.
        num_cases: the cases every run was evaluated on; reference_sha256: their labels' fingerprint (None when the
            files predate it).
        coverages: the target coverages every run was evaluated at.
        confidence_level: of the t intervals.
        metrics: one per metric compared.
        notes: what was left out or could not be checked, in words.
    """

    candidate_label: str
    reference_label: str
    seeds: tuple[int, ...]
    candidate_runs: tuple[str, ...]
    reference_runs: tuple[str, ...]
    num_cases: int
    reference_sha256: str | None
    coverages: tuple[float, ...]
    confidence_level: float
    metrics: tuple[MetricComparison, ...]
    notes: tuple[str, ...] = ()

    def metric(self, name: str) -> MetricComparison | None:
        """The comparison of metric ``name``, or None when it was not compared."""
        return next((m for m in self.metrics if m.metric == name), None)

    def to_json(self) -> dict[str, Any]:
        """The ``compare.json`` content (NaN as null)."""
        return {
            "unit": "training run (paired by seed)",
            "candidate": {"label": self.candidate_label, "runs": list(self.candidate_runs)},
            "reference": {"label": self.reference_label, "runs": list(self.reference_runs)},
            "seeds": list(self.seeds),
            "num_cases": self.num_cases,
            "reference_sha256": self.reference_sha256,
            "coverages": list(self.coverages),
            "confidence_level": self.confidence_level,
            "metrics": [
                {
                    "metric": m.metric,
                    "candidate": [_none(v) for v in m.candidate],
                    "reference": [_none(v) for v in m.reference],
                    **m.result.to_json(),
                }
                for m in self.metrics
            ],
            "notes": list(self.notes),
        }

    @classmethod
    def from_json(cls, data: Any) -> RunComparison:
        """Read back :meth:`to_json`.

        Raises:
            ValueError: if ``data`` is not such an object (the message names the missing key).
        """
        if not isinstance(data, dict):
            raise ValueError(f"Expected a comparison JSON object, but got {type(data).__name__}.")
        try:
            metrics = tuple(
                MetricComparison(
                    metric=str(m["metric"]),
                    candidate=tuple(_nan(v) for v in m["candidate"]),
                    reference=tuple(_nan(v) for v in m["reference"]),
                    result=PairedComparison.from_json(m),
                )
                for m in data["metrics"]
            )
            sha = data.get("reference_sha256")
            return cls(
                candidate_label=str(data["candidate"]["label"]),
                reference_label=str(data["reference"]["label"]),
                seeds=tuple(int(s) for s in data["seeds"]),
                candidate_runs=tuple(str(r) for r in data["candidate"]["runs"]),
                reference_runs=tuple(str(r) for r in data["reference"]["runs"]),
                num_cases=int(data["num_cases"]),
                reference_sha256=str(sha) if sha is not None else None,
                coverages=tuple(float(c) for c in data["coverages"]),
                confidence_level=float(data["confidence_level"]),
                metrics=metrics,
                notes=tuple(str(n) for n in data.get("notes", [])),
            )
        except (KeyError, TypeError) as err:
            raise ValueError(f"Expected a comparison JSON object with key {err}, but it is missing.") from None


def compare_runs(
    runs: Sequence[str | Path],
    references: Sequence[str | Path],
    *,
    candidate_label: str = "candidate",
    reference_label: str = "reference",
    confidence_level: float = 0.95,
) -> RunComparison:
    """Compare candidate runs with reference runs, paired by seed (module doc). Nothing is written.

    Args:
        runs: the candidate's evaluated run folders (one per seed).
        references: the reference's evaluated run folders (the same seeds).
        candidate_label, reference_label: names shown in tables and files.
        confidence_level: of the t intervals, in (0, 1).

    Returns:
        The comparison, metrics in the order aurc, dice@c (the coverages in the runs' order), then the other keys.

    Raises:
        ValueError: if either side is empty, a run is not evaluated or has no ``config.yaml`` with an integer
            ``seed``, a seed is missing on one side or repeated on one side, the runs were evaluated on different
            cases, data (number of classes, reference labels) or target coverages, or ``confidence_level`` is outside
            (0, 1).
        TypeError: if ``confidence_level`` is not a number.

    Warns:
        UndefinedMetricWarning: with a single seed (the t quantities are NaN; the notes say so too).

    Example:
        >>> compare_runs(["runs/rank_s0", "runs/rank_s1"], ["runs/base_s0", "runs/base_s1"])  # doctest: +SKIP
    """
    for name, side in (("runs", runs), ("references", references)):
        if isinstance(side, (str, Path)) or len(side) == 0:
            raise ValueError(f"Expected `{name}` to be a non-empty list of run folders, but got {side!r}.")
    if isinstance(confidence_level, bool) or not isinstance(confidence_level, (int, float)):
        raise TypeError(f"Expected `confidence_level` to be a float in (0, 1), but got {confidence_level!r}.")
    if not 0.0 < confidence_level < 1.0:
        raise ValueError(f"Expected `confidence_level` to be a float in (0, 1), but got {confidence_level}.")
    candidates = _by_seed([load_run_results(r) for r in runs], candidate_label)
    refs = _by_seed([load_run_results(r) for r in references], reference_label)
    missing_ref = sorted(set(candidates) - set(refs))
    missing_cand = sorted(set(refs) - set(candidates))
    if missing_ref or missing_cand:
        raise ValueError(
            f"Expected the same seeds on both sides, but seeds {missing_ref or 'none'} have no {reference_label} run "
            f"and seeds {missing_cand or 'none'} have no {candidate_label} run."
        )
    seeds = tuple(sorted(candidates))
    cand_runs = [candidates[s] for s in seeds]
    ref_runs = [refs[s] for s in seeds]
    everyone = cand_runs + ref_runs
    notes = _check_same_evaluation(everyone)
    coverages = tuple(p.target_coverage for p in ref_runs[0].evaluation.points)

    values: dict[str, tuple[list[float], list[float], bool]] = {
        "aurc": ([r.evaluation.aurc for r in cand_runs], [r.evaluation.aurc for r in ref_runs], False)
    }
    for c in coverages:
        values[f"dice@{c}"] = ([_dice(r, c) for r in cand_runs], [_dice(r, c) for r in ref_runs], True)
    for key in SUMMARY_METRICS:
        if key == "aurc" or key not in HIGHER_IS_BETTER:
            continue
        holding = [r for r in everyone if key in r.evaluation.headline()]
        if len(holding) == len(everyone):
            values[key] = (
                [r.evaluation.headline()[key] for r in cand_runs],
                [r.evaluation.headline()[key] for r in ref_runs],
                HIGHER_IS_BETTER[key],
            )
        elif holding:
            notes.append(
                f"{key}: not in every run's evaluation.json ({len(holding)} of {len(everyone)}); not compared."
            )
    if len(seeds) < 2:
        warnings.warn(
            f"One seed ({seeds[0]}): the t interval and both tests need at least 2 paired runs; they are NaN.",
            UndefinedMetricWarning,
            stacklevel=2,
        )
        notes.append("One seed: the t interval and the tests need at least 2 paired runs (NaN).")
    metrics = []
    for name, (cand, ref, higher) in values.items():
        if not all(math.isfinite(v) for v in cand + ref):
            notes.append(f"{name}: undefined (NaN) for some seed; not compared.")
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UndefinedMetricWarning)
            result = paired_comparison(cand, ref, higher_is_better=higher, confidence_level=confidence_level)
        if len(seeds) >= 2:
            notes += [f"{name}: {w.message}" for w in caught if issubclass(w.category, UndefinedMetricWarning)]
        metrics.append(MetricComparison(name, tuple(cand), tuple(ref), result))
    return RunComparison(
        candidate_label=candidate_label,
        reference_label=reference_label,
        seeds=seeds,
        candidate_runs=tuple(str(r.run_dir) for r in cand_runs),
        reference_runs=tuple(str(r.run_dir) for r in ref_runs),
        num_cases=len(ref_runs[0].evaluation.case_ids),
        reference_sha256=ref_runs[0].evaluation.reference_sha256,
        coverages=coverages,
        confidence_level=float(confidence_level),
        metrics=tuple(metrics),
        notes=tuple(notes),
    )


def shown_in_percent(metric: str) -> bool:
    """Whether tables show ``metric`` in percent (AURC-like areas and Dice; differences in percentage points)."""
    return metric.startswith("dice@") or (metric in HIGHER_IS_BETTER and metric != "error_auroc")


def write_comparison(comparison: RunComparison, out_dir: str | Path) -> Path:
    """Write ``compare.json`` and ``compare.csv`` into ``out_dir`` (created), each atomically; returns the folder."""
    out = Path(out_dir)
    _json.dump(out / COMPARE_JSON, comparison.to_json())
    atomic_write_text(out / COMPARE_CSV, _csv(comparison))
    return out


def load_comparison(path: str | Path) -> RunComparison:
    """Read ``compare.json`` (the file, or the folder holding it).

    Raises:
        ValueError: if the file is missing, not JSON, or not a comparison.
    """
    path = Path(path)
    file = path / COMPARE_JSON if path.is_dir() else path
    if not file.is_file():
        raise ValueError(f"Expected a comparison file, but {str(file)!r} does not exist; run `selectseg compare`.")
    data = _json.load_object(file)
    try:
        return RunComparison.from_json(data)
    except ValueError as err:
        raise ValueError(f"{str(file)!r}: {err}") from None


def _by_seed(runs: list[RunResults], side: str) -> dict[int, RunResults]:
    out: dict[int, RunResults] = {}
    for run in runs:
        seed = _seed(run)
        if seed in out:
            raise ValueError(
                f"Expected one {side} run per seed, but seed {seed} is in both {str(out[seed].run_dir)!r} and "
                f"{str(run.run_dir)!r}."
            )
        out[seed] = run
    return out


def _seed(run: RunResults) -> int:
    """The ``seed`` of the run's ``config.yaml`` (for an ensemble folder, its first member's)."""
    if run.config_text is None:
        raise ValueError(
            f"{str(run.run_dir)!r} has no config.yaml (for an ensemble: member_0/config.yaml); runs are paired by "
            "the seed it records."
        )
    try:
        config = yaml.safe_load(run.config_text)
    except yaml.YAMLError as err:
        raise ValueError(f"{str(run.config_path)!r} is not valid YAML: {err}") from None
    seed = config.get("seed") if isinstance(config, dict) else None
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"Expected an integer `seed` in {str(run.config_path)!r}, but got {seed!r}.")
    return seed


def _check_same_evaluation(runs: list[RunResults]) -> list[str]:
    """Raise unless every run was evaluated on the same cases, data and coverages; the notes on what was not checked."""
    first = runs[0]
    ids = set(first.evaluation.case_ids)
    for run in runs:
        if not run.evaluation.case_ids:
            raise ValueError(
                f"{str(run.run_dir)!r} has no per-image results, so the cases it was evaluated on are unknown; "
                "evaluate it again with `selectseg evaluate`."
            )
        if set(run.evaluation.case_ids) != ids:
            only_first = sorted(ids - set(run.evaluation.case_ids))
            only_run = sorted(set(run.evaluation.case_ids) - ids)
            raise ValueError(
                f"Expected every run evaluated on the same cases, but {str(first.run_dir)!r} and "
                f"{str(run.run_dir)!r} differ: only in the first {_few(only_first)}, only in the second "
                f"{_few(only_run)}. Evaluate them on the same data and split."
            )
        if run.evaluation.num_classes != first.evaluation.num_classes:
            raise ValueError(
                f"Expected every run evaluated on the same data, but {str(first.run_dir)!r} has "
                f"{first.evaluation.num_classes} classes and {str(run.run_dir)!r} {run.evaluation.num_classes}."
            )
        targets = sorted(p.target_coverage for p in run.evaluation.points)
        expected = sorted(p.target_coverage for p in first.evaluation.points)
        if len(targets) != len(expected) or any(abs(a - b) > _TOL for a, b in zip(targets, expected)):
            raise ValueError(
                f"Expected every run evaluated at the same target coverages, but {str(first.run_dir)!r} has "
                f"{expected} and {str(run.run_dir)!r} {targets}; evaluate them with the same --coverages."
            )
    digests = {r.evaluation.reference_sha256 for r in runs if r.evaluation.reference_sha256 is not None}
    if len(digests) > 1:
        differing = next(r for r in runs if r.evaluation.reference_sha256 != first.evaluation.reference_sha256)
        raise ValueError(
            f"Expected every run evaluated on the same data, but the reference labels of {str(first.run_dir)!r} and "
            f"{str(differing.run_dir)!r} differ (reference_sha256): another data set, or another annotator policy."
        )
    unchecked = [str(r.run_dir) for r in runs if r.evaluation.reference_sha256 is None]
    if unchecked:
        return [
            f"Data checked by case ids only for {len(unchecked)} run(s) evaluated before evaluation.json recorded "
            f"reference_sha256: {', '.join(unchecked)}."
        ]
    return []


def _dice(run: RunResults, coverage: float) -> float:
    point = run.evaluation.point(coverage)
    return point.dice_mean if point is not None else math.nan


def _few(ids: list[str]) -> str:
    shown = ", ".join(repr(i) for i in ids[:3])
    return f"{len(ids)} ({shown}{', ...' if len(ids) > 3 else ''})" if ids else "none"


def _csv(comparison: RunComparison) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    seed_columns = [f"difference_seed_{s}" for s in comparison.seeds]
    writer.writerow(
        [
            "metric",
            "higher_is_better",
            "n",
            "candidate_mean",
            "reference_mean",
            "mean_difference",
            "sd",
            "se",
            "ci_low",
            "ci_high",
            "t_statistic",
            "df",
            "p_value",
            "sign_p_value",
            "better",
            "worse",
            "equal",
            *seed_columns,
        ]
    )
    for m in comparison.metrics:
        r = m.result
        writer.writerow(
            [
                m.metric,
                r.higher_is_better,
                r.n,
                _text(sum(m.candidate) / len(m.candidate)),
                _text(sum(m.reference) / len(m.reference)),
                *(_text(v) for v in (r.mean, r.sd, r.se, r.ci[0], r.ci[1], r.t_statistic)),
                r.df,
                _text(r.p_value),
                _text(r.sign_p_value),
                r.better,
                r.worse,
                r.equal,
                *(_text(float(d)) for d in r.differences),
            ]
        )
    return buffer.getvalue()


def _text(value: float) -> str:
    return "" if math.isnan(value) else repr(float(value))


def _none(value: float) -> float | None:
    return None if math.isnan(value) else value


def _nan(value: Any) -> float:
    return math.nan if value is None else float(value)
