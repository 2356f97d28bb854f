"""What the command-line interface shows: progress bars and tables drawn from the library's typed results.

The commands (:mod:`selectseg.cli`) parse, make one library call and hand the result here; nothing here computes.
Tables fit the terminal (no forced width).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Column, Table

__all__ = [
    "TrainDisplay",
    "comparison_table",
    "console",
    "cv_table",
    "dataset_summary",
    "demo_table",
    "evaluation_table",
    "ood_table",
    "progress",
    "sweep_tables",
]

console = Console(stderr=True)
"""Messages and progress go to stderr; tables to stdout."""


def progress() -> Progress:
    """A progress display whose count and times stay visible at 80 columns: the bar shrinks first, and the free
    text (loss parts, case id) comes last and is cut at the terminal's edge rather than pushing the count out."""
    room = max(10, console.width - 66)  # what the description, bar, count and times leave for the free text
    return Progress(
        TextColumn("[bold]{task.description}", table_column=Column(no_wrap=True)),
        BarColumn(bar_width=12),
        MofNCompleteColumn(table_column=Column(no_wrap=True, min_width=7)),
        TimeElapsedColumn(table_column=Column(no_wrap=True, min_width=7)),
        TimeRemainingColumn(table_column=Column(no_wrap=True, min_width=7)),
        TextColumn("{task.fields[info]}", table_column=Column(no_wrap=True, overflow="ellipsis", max_width=room)),
        console=console,
        expand=False,
    )


class TrainDisplay:
    """Progress bar over epochs and steps, with the loss parts."""

    def __init__(self, progress: Progress, label: str = "train") -> None:
        self.progress = progress
        self.label = label
        self.task: Any = None

    def __call__(self, event: Any) -> None:
        if event.kind == "start":
            description = f"{self.label} epoch {event.epoch}/{event.epochs}"
            if self.task is None:
                self.task = self.progress.add_task(description, total=event.steps, info="")
            else:
                self.progress.reset(self.task, total=event.steps, description=description, info="")
        elif event.kind == "step":
            p = event.parts
            guidance = f", guidance {p['guidance']:.2e}" if p.get("guidance") else ""
            info = f"loss {p['total']:.4f} (seg {p['segmentation']:.4f}, rank {p['ranking']:.2e}{guidance})"
            self.progress.update(self.task, completed=event.step, info=info)
        elif event.kind == "epoch":
            p = event.parts
            val = f", val Dice {p['val_dice']:.4f}, AURC {p['val_aurc']:.4f}" if p["val_dice"] == p["val_dice"] else ""
            self.progress.console.print(
                f"{self.label} epoch {event.epoch}/{event.epochs}: loss {p['loss']:.4f} "
                f"(seg {p['segmentation']:.4f}, rank {p['ranking']:.3e}, guidance {p.get('guidance', 0.0):.3e})"
                f"{val} [{p['seconds']:.1f} s]",
                highlight=False,
            )


def interval(ci: Any, scale: float, digits: int) -> str:
    """``[low, high]`` of a JSON interval (scaled), or "" when there is none."""
    if not isinstance(ci, (list, tuple)) or len(ci) != 2 or None in ci:
        return ""
    return f"[{scale * ci[0]:.{digits}f}, {scale * ci[1]:.{digits}f}]"


def _print(table: Table) -> None:
    """A table on stdout, fitted to the terminal (Rich wraps cells rather than forcing a width)."""
    Console().print(table)


def evaluation_table(result: Any, run_dir: Path, confidence_level: float) -> None:
    """Table 1 of one evaluation (:class:`~selectseg.results.EvaluationResult`): AURC with its bootstrap interval
    and each operating point."""
    level = f"{100 * confidence_level:g}% CI"
    aurc_ci = interval(result.aurc_ci, 100.0, 3)
    table = Table(
        title=f"{run_dir}: {result.num_cases} cases, AURC {100 * result.aurc:.3f}%"
        + (f" {aurc_ci} ({level}, bootstrap over images)" if aurc_ci else "")
    )
    columns = ["target", "coverage", "Dice mean ± std", *([level] if aurc_ci else []), "Dice p5", "gamma", "psi_c"]
    for column in columns:
        table.add_column(column, justify="right")
    for point in result.points:
        table.add_row(
            f"{point.target_coverage:.2f}",
            f"{point.coverage:.4f}",
            f"{point.dice_mean:.4f} ± {point.dice_std:.4f}",
            *([interval(point.dice_ci, 1.0, 4)] if aurc_ci else []),
            f"{point.dice_p5:.4f}",
            f"{point.gamma:.4f}",
            f"{point.psi_c:.4f}",
        )
    _print(table)


def cv_table(summary: dict[str, Any], run_dir: Path) -> None:
    """The cross-validation summary (``cv.json``): AURC and Dice as mean ± std over folds."""
    aurc = summary["aurc"]
    table = Table(
        title=f"{run_dir}: {summary['folds']} folds, AURC {100 * aurc['mean']:.3f} ± {100 * aurc['std']:.3f}%"
    )
    for column in ("target", "coverage", "Dice mean (± over folds)", "Dice p5 (± over folds)"):
        table.add_column(column, justify="right")
    for row in summary["table"]:
        table.add_row(
            f"{row['target_coverage']:.2f}",
            f"{row['coverage']['mean']:.4f}",
            f"{row['dice_mean']['mean']:.4f} ± {row['dice_mean']['std']:.4f}",
            f"{row['dice_p5']['mean']:.4f} ± {row['dice_p5']['std']:.4f}",
        )
    _print(table)


def ood_table(result: Any, run_dir: Path) -> None:
    """AUROC of each image score at each distorted fraction (:class:`~selectseg.results.OODResult`), and its notes."""
    table = Table(title=f"{run_dir}: OOD AUROC ({', '.join(result.kinds)}, severity {result.severity})")
    table.add_column("score")
    for f in result.fractions:
        table.add_column(f"{100 * f:g}% distorted", justify="right")
    for name in result.score_names:
        table.add_row(name, *(f"{result.auroc[f][name]:.3f}" for f in result.fractions))
    _print(table)
    for note in result.notes:
        console.print(f"Note: {note}")


def sweep_tables(rows: Sequence[dict[str, Any]], keys: Sequence[str], out: Path, comparisons: Sequence[Any]) -> None:
    """The finished runs of a sweep and, with a reference point, each point's paired comparison with it."""
    table = Table(title=f"{out}: {len(rows)} finished runs")
    for column in (*keys, "seed", "AURC %", "Dice", "train s"):
        table.add_column(column.split(".")[-1], justify="right")
    for row in rows:
        values = [str(row[k]) for k in keys]
        table.add_row(
            *values, str(row["seed"]), f"{100 * row['aurc']:.3f}", f"{row['dice']:.4f}", f"{row['train_seconds']:.0f}"
        )
    _print(table)
    if not comparisons:
        return
    compared = Table(
        box=box.SIMPLE_HEAD, title="Against the reference point, paired by seed (difference = point - reference, %)"
    )
    compared.add_column("point", no_wrap=True)
    compared.add_column("AURC difference\n[95% CI]", justify="right", no_wrap=True)
    for column in ("seeds", "p (t)", "Dice@1 difference", "+/-/= (AURC)"):
        compared.add_column(column, justify="right")
    for comparison in comparisons:
        aurc, dice = comparison.metric("aurc"), comparison.metric("dice@1.0")
        if aurc is None:
            continue
        r = aurc.result
        compared.add_row(
            comparison.candidate_label,
            f"{100 * r.mean:+.3f}\n[{100 * r.ci[0]:+.3f}, {100 * r.ci[1]:+.3f}]",
            str(len(comparison.seeds)),
            f"{r.p_value:.3g}",
            f"{100 * dice.result.mean:+.2f}" if dice is not None else "n/a",
            f"{r.better}/{r.worse}/{r.equal}",
        )
    _print(compared)


def comparison_table(comparison: Any, names: Sequence[str], confidence_level: float) -> None:
    """A paired comparison over seeds (:class:`~selectseg.report.compare.RunComparison`), one row per metric."""
    from ..report.compare import shown_in_percent

    level = f"{100 * confidence_level:g}% CI"
    table = Table(
        box=box.SIMPLE_HEAD,
        title=f"{names[0]} vs {names[1]}: {len(comparison.seeds)} seeds ({', '.join(map(str, comparison.seeds))}), "
        f"{comparison.num_cases} cases; difference = {names[0]} - {names[1]} (AURC, Dice in %)",
    )
    for column in ("metric", "better", names[0], names[1], f"difference\n[{level}]", "p (t)", "p (sign)", "+/-/="):
        numeric = column not in ("metric", "better")
        table.add_column(column, justify="right" if numeric else "left", no_wrap=numeric, overflow="fold")
    for m in comparison.metrics:
        r = m.result
        scale, digits = (100.0, 3) if shown_in_percent(m.metric) else (1.0, 4)

        def num(value: float, signed: bool = False, scale: float = scale, digits: int = digits) -> str:
            return "n/a" if math.isnan(value) else f"{scale * value:{'+' if signed else ''}.{digits}f}"

        table.add_row(
            m.metric,
            "higher" if m.higher_is_better else "lower",
            num(sum(m.candidate) / len(m.candidate)),
            num(sum(m.reference) / len(m.reference)),
            f"{num(r.mean, True)}\n[{num(r.ci[0], True)}, {num(r.ci[1], True)}]",
            "n/a" if math.isnan(r.p_value) else f"{r.p_value:.3g}",
            "n/a" if math.isnan(r.sign_p_value) else f"{r.sign_p_value:.3g}",
            f"{r.better}/{r.worse}/{r.equal}",
        )
    _print(table)
    for note in comparison.notes:
        console.print(f"Note: {note}", highlight=False)


def dataset_summary(path: Path, s: dict[str, Any]) -> None:
    """What ``selectseg inspect`` prints of :func:`~selectseg.data.summary.summarize_dataset`."""
    out = Console()
    out.print(
        f"[bold]{path}[/]: format [bold]{s['format']}[/], {s['num_cases']} cases ({s['num_labelled']} labelled, "
        f"{s['num_subjects']} subjects), {s['spatial_dims']}-D, channels {', '.join(s['channels'])}"
    )
    shape_min, shape_max = s["shape"]["min"], s["shape"]["max"]
    shape = " x ".join(str(a) if a == b else f"{a}-{b}" for a, b in zip(shape_min, shape_max))
    spacing = " x ".join(
        f"{a:.3g}" if a == b else f"{a:.3g}-{b:.3g}" for a, b in zip(s["spacing"]["min"], s["spacing"]["max"])
    )
    out.print(f"image shape {shape} ({s['shape']['distinct']} distinct); spacing {spacing}")
    out.print(f"annotators per labelled case: {s['annotators']['min']}-{s['annotators']['max']}")
    table = Table()
    for column in ("class", "name", "voxel share", "inter-annotator Dice"):
        table.add_column(column, justify="right" if column != "name" else "left")
    for c in s["classes"]:
        dice = s["inter_annotator_dice"]
        agreement = "" if c["index"] == 0 or dice is None else f"{dice[c['index'] - 1]:.4f}"
        share = "" if c["share"] is None else f"{100 * c['share']:.2f}%"
        table.add_row(str(c["index"]), c["name"], share, agreement)
    out.print(table)


def demo_table(summary: dict[str, Any], coverages: Sequence[float]) -> None:
    """The demo's comparison: AURC = oracle + excess, error AUROC and Dice at 1.0/0.9/0.8, then how to read it (fits
    80 columns: numbers are never cut, headers wrap)."""
    table = Table(
        box=box.SIMPLE_HEAD, title=f"Dice risk-coverage on the synthetic test set ({summary['test_cases']} images)"
    )
    table.add_column("run", no_wrap=True)
    for label in ("AURC\n(%)", "=\noracle", "+\nexcess", "error\nAUROC"):
        table.add_column(label, justify="right", no_wrap=True, min_width=5)
    shown = [c for c in coverages if c in (1.0, 0.9, 0.8)]  # every coverage is in comparison.csv
    for c in shown:
        table.add_column(f"Dice\n@{c}", justify="right", no_wrap=True, min_width=6)
    for row in summary["table"]:
        auroc = row.get("error_auroc")
        table.add_row(
            row["run"],
            f"{100 * row['aurc']:.3f}",
            f"{100 * row['oracle_aurc']:.3f}",
            f"{100 * row['excess_aurc']:+.3f}",
            "n/a" if auroc is None or math.isnan(auroc) else f"{auroc:.3f}",
            *(f"{row[f'dice@{c}']:.4f}\n±{row[f'dice_std@{c}']:.3f}" for c in shown),
        )
    _print(table)
    console.print(
        "AURC = oracle (the AURC of a perfect error detector on the same segmentation) + excess (what the "
        "uncertainty's ordering adds); error AUROC: how well the uncertainty separates wrong from correct pixels."
    )
    console.print(summary["reading"])
