"""Draw the report's figures from collected numbers (the only module that imports matplotlib).

Each ``plot_*`` function takes data from :mod:`selectseg.report.results` or :mod:`~selectseg.report.collect` and
returns a :class:`matplotlib.figure.Figure` on the Agg canvas: no pyplot, no global state, no display needed.
:func:`report_figures` lists every figure the data supports; :func:`figure_bytes` renders one as PNG or SVG.

References:
    Ding et al., Uncertainty-Aware Training of Neural Networks for Selective Medical Image Segmentation,
    MIDL 2020, Fig. 2-4.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ..results import Montage, OODResult, TrainingHistory
from .collect import ReportData, ScatterData
from .results import RunResults

__all__ = [
    "FIGURE_FORMATS",
    "MONTAGE_ROWS",
    "MontageLayout",
    "ReportFigure",
    "figure_bytes",
    "montage_layout",
    "plot_curves",
    "plot_image_scores",
    "plot_montage",
    "plot_ood",
    "plot_quality_control",
    "plot_reliability",
    "plot_scatter",
    "report_figures",
]

FIGURE_FORMATS = ("png", "svg")
"""Formats :func:`figure_bytes` writes."""

_DPI = 100
_REFERRED_RGBA = (0.15, 0.45, 1.0, 0.45)
_ERROR_RGBA = (1.0, 0.1, 0.1, 1.0)


@dataclass(frozen=True, eq=False)
class ReportFigure:
    """One figure of the report.

    Attributes:
        name: file stem (letters, digits, ``._-``), unique within a report.
        section: the report section it belongs to (``curves``, ``scatter``, ``montage``, ``reliability``,
            ``quality_control``, ``ood``, ``image_scores``).
        title, caption: plain text shown above and below it.
        figure: the matplotlib figure.
    """

    name: str
    section: str
    title: str
    caption: str
    figure: Figure


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _t(text: str) -> str:
    """Plain text for matplotlib (a ``$`` would start mathtext)."""
    return text.replace("$", r"\$")


def _fmt(value: float, spec: str = ".3f") -> str:
    return "n/a" if value is None or not math.isfinite(value) else format(value, spec)


def _grid(fig: Figure, n: int, *, max_cols: int = 4) -> list[Axes]:
    cols = min(n, max_cols)
    rows = math.ceil(n / cols)
    axes = np.asarray(fig.subplots(rows, cols, squeeze=False)).reshape(-1)
    for ax in axes[n:]:
        ax.set_visible(False)
    return list(axes[:n])


def _panel_size(n: int, *, max_cols: int = 4, width: float = 4.2, height: float = 3.6) -> tuple[float, float]:
    cols = min(n, max_cols)
    return width * cols, height * math.ceil(n / cols)


def plot_curves(runs: Sequence[RunResults]) -> Figure:
    """Dice-coverage and risk-coverage curves of all runs on shared axes (Ding et al. Fig. 3).

    Args:
        runs: the runs; each run's curve is drawn in its own colour (``C{index}``), AURC in the legend.

    Returns:
        A figure with two axes: Dice (higher is better) and risk = 1 - Dice (lower is better) against coverage.
    """
    fig = _new_figure(10.5, 4.2)
    ax_dice, ax_risk = fig.subplots(1, 2)
    for i, run in enumerate(runs):
        label = _t(f"{run.label} (AURC {_fmt(100 * run.evaluation.aurc, '.2f')}%)")
        ax_dice.plot(
            run.evaluation.curve.coverage, run.evaluation.curve.dice, color=f"C{i}", label=label, linewidth=1.6
        )
        ax_risk.plot(
            run.evaluation.curve.coverage, run.evaluation.curve.risk, color=f"C{i}", label=label, linewidth=1.6
        )
    for ax, name in ((ax_dice, "Dice (higher is better)"), (ax_risk, "risk = 1 - Dice (lower is better)")):
        ax.set_xlim(0.0, 1.0)
        ax.set_xlabel("coverage (share of pixels kept)")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    ax_dice.set_title("Dice-coverage")
    ax_risk.set_title("Risk-coverage")
    ax_risk.legend(loc="upper left", fontsize="small")
    return fig


def plot_scatter(scatter: ScatterData) -> Figure:
    """Per-image coverage difference against Dice difference, run - reference, with quadrant shares (Fig. 2).

    Args:
        scatter: the per-image differences and quadrant shares.

    Returns:
        A figure with one axis, symmetric about 0 on both axes; each quadrant's share of images in its corner.
    """
    fig = _new_figure(5.6, 5.0)
    ax = fig.subplots()
    dx, dy = scatter.coverage_difference, scatter.dice_difference
    ax.scatter(dx, dy, s=22, alpha=0.8, color="C1", edgecolors="none", zorder=3)
    ax.axhline(0.0, color="0.3", linewidth=0.8)
    ax.axvline(0.0, color="0.3", linewidth=0.8)
    finite = np.isfinite(dx) & np.isfinite(dy)
    span_x = float(np.max(np.abs(dx[finite]))) if finite.any() else 0.0
    span_y = float(np.max(np.abs(dy[finite]))) if finite.any() else 0.0
    ax.set_xlim(-1.3 * span_x or -0.01, 1.3 * span_x or 0.01)
    ax.set_ylim(-1.3 * span_y or -0.01, 1.3 * span_y or 0.01)
    q = scatter.quadrants
    box = {"boxstyle": "round", "facecolor": "white", "alpha": 0.6, "edgecolor": "0.7"}
    for x, y, share, ha, va in (
        (0.97, 0.97, q.upper_right, "right", "top"),
        (0.03, 0.97, q.upper_left, "left", "top"),
        (0.03, 0.03, q.lower_left, "left", "bottom"),
        (0.97, 0.03, q.lower_right, "right", "bottom"),
    ):
        ax.text(
            x, y, _fmt(100 * share, ".1f") + "%", transform=ax.transAxes, ha=ha, va=va, fontsize=11, bbox=box, zorder=2
        )
    ax.set_xlabel(_t(f"coverage difference ({scatter.label} - {scatter.reference_label})"))
    ax.set_ylabel(_t(f"Dice difference ({scatter.label} - {scatter.reference_label})"))
    title = f"{scatter.label} vs {scatter.reference_label}, coverage {scatter.target_coverage:.2f}, {q.n} images"
    ax.set_title(_t(title), fontsize="medium")
    ax.grid(alpha=0.3)
    return fig


def _label_cmap(num_classes: int) -> ListedColormap:
    base = colormaps["tab10"]
    colours = [(0.0, 0.0, 0.0, 1.0)] + [base(i % 10) for i in range(max(num_classes - 1, 1))]
    return ListedColormap(colours)


def _overlay(mask: np.ndarray, rgba: tuple[float, float, float, float]) -> np.ndarray:
    out = np.zeros((*mask.shape, 4))
    out[mask] = rgba
    return out


@dataclass(frozen=True)
class MontageLayout:
    """What every run's montage figure shares, so that the figures compare (see :func:`montage_layout`).

    Attributes:
        case_ids: the rows, worst to best by the reference run's Dice at coverage 1.0.
        source: the label of the run the rows were taken from (the reference run, or the first with a montage).
        uncertainty_scale: ``{score: (low, high)}``, one colour scale per uncertainty score shown.
        variance_high: the top of the colour scale of the variance panels (annotators' and model's), from 0.
    """

    case_ids: tuple[str, ...]
    source: str
    uncertainty_scale: Mapping[str, tuple[float, float]]
    variance_high: float = 1.0


MONTAGE_ROWS = 4
"""Rows of a montage figure: at most this many of the reference's stored cases."""


def _image_dice(run: RunResults) -> dict[str, float]:
    full = run.evaluation.point(1.0)
    return dict(full.image_dice) if full is not None else {}


def montage_layout(runs: Sequence[RunResults], *, reference: int = 0, rows: int = MONTAGE_ROWS) -> MontageLayout | None:
    """The rows and colour scales shared by every run's montage figure.

    The rows are taken once from the reference run's stored cases (the first run with a montage when the reference
    has none), ordered from its worst to its best Dice at coverage 1.0; with more than ``rows`` of them, the stored
    list is cut into ``rows`` consecutive groups and each gives the case that the most runs' montages hold (ties: the
    group's first case for the worst group, its last for the best, the middle one otherwise), so the figures keep
    the spread from worst to best and show as few "n/a" rows as they can. Each uncertainty score gets one colour
    scale over all runs: its theoretical range when every run's montage records the same one, else 0 to the largest
    value of the maps shown.

    Args:
        runs: the runs; those without a montage are ignored.
        reference: index of the reference run.
        rows: the most rows to show.

    Returns:
        The layout, or None when no run has a montage with cases.

    Raises:
        ValueError: if ``rows`` is not a positive int.
    """
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise ValueError(f"Expected `rows` to be a positive int, but got {rows!r}.")
    with_montage = [r for r in runs if r.montage is not None and r.montage.cases]
    if not with_montage:
        return None
    source = next((r for r in with_montage if r is runs[reference]), with_montage[0])
    stored = [c.case_id for c in source.montage.cases] if source.montage is not None else []
    dice = _image_dice(source)
    if dice:  # worst to best; a case without a finite Dice last (an old file without per-image Dice: stored order)
        stored.sort(key=lambda i: (not math.isfinite(dice.get(i, math.nan)), dice.get(i, 0.0)))
    candidates = stored
    if len(candidates) > rows:
        held = {
            i: sum(r.montage is not None and r.montage.case(i) is not None for r in with_montage) for i in candidates
        }
        picks = []
        for g, split in enumerate(np.array_split(np.arange(len(candidates)), rows)):
            group = [candidates[k] for k in split]
            target = 0 if g == 0 else (len(group) - 1 if g == rows - 1 else len(group) // 2)
            best = max(range(len(group)), key=lambda k: (held[group[k]], -abs(k - target)))
            picks.append(group[best])
        candidates = picks
    case_ids = tuple(candidates)
    scales: dict[str, tuple[float, float]] = {}
    variance_high = 0.0
    by_score: dict[str, list[RunResults]] = {}
    for run in with_montage:
        by_score.setdefault(run.evaluation.uncertainty, []).append(run)
    for score, group_runs in by_score.items():
        ranges = {r.montage.uncertainty_range if r.montage is not None else None for r in group_runs}
        known = next(iter(ranges))
        if len(ranges) == 1 and known is not None:
            scales[score] = known
            continue
        top = 0.0
        for run in group_runs:
            for case_id in case_ids:
                case = run.montage.case(case_id) if run.montage is not None else None
                if case is not None and np.isfinite(case.uncertainty).any():
                    top = max(top, float(np.nanmax(case.uncertainty)))
        scales[score] = (0.0, top or 1.0)
    for run in with_montage:
        for case_id in case_ids:
            case = run.montage.case(case_id) if run.montage is not None else None
            for variance in (case.annotator_variance, case.model_variance) if case is not None else ():
                if variance is not None and np.isfinite(variance).any():
                    variance_high = max(variance_high, float(np.nanmax(variance)))
    return MontageLayout(case_ids, source.label, scales, variance_high or 1.0)


def plot_montage(
    montage: Montage,
    *,
    num_classes: int = 2,
    case_ids: Sequence[str] | None = None,
    dice: Mapping[str, float] | None = None,
    uncertainty_scale: tuple[float, float] | None = None,
    variance_high: float | None = None,
    score: str = "uncertainty",
) -> Figure:
    """Qualitative montage, one row per case (Ding et al. Fig. 4; with annotators, EDUE Fig. 4).

    Columns: image, ground truth, prediction, uncertainty (brighter = less sure), errors at coverage 1.0 (red), errors
    left at the montage's coverage (red) with the referred region in translucent blue and outlined; then, where
    stored, the annotators' variance and the model's. The uncertainty panels share one colour scale, shown by a colour
    bar (as do the variance panels). A row is titled with the case id, its Dice at coverage 1.0 when given, and for a
    volume the index of the slice shown (along the last axis).

    Args:
        montage: the cases.
        num_classes: K, for the label colours (background black).
        case_ids: the rows (default: the montage's cases, in its order); a case the montage lacks shows "n/a".
        dice: per-case Dice at coverage 1.0 for the row titles.
        uncertainty_scale: ``(low, high)`` of the uncertainty colour scale (default: the montage's
            ``uncertainty_range``, else 0 to the largest value shown).
        variance_high: top of the variance colour scale, from 0 (default: the largest value shown).
        score: the uncertainty score's name, for the colour bar.

    Shape:
        every map of a case ``(H, W)``.

    Returns:
        The figure.
    """
    ids = [c.case_id for c in montage.cases] if case_ids is None else list(case_ids)
    shown = [montage.case(i) for i in ids]
    present = [c for c in shown if c is not None]
    extra = [
        name
        for name in ("annotator_variance", "model_variance")
        if any(getattr(case, name) is not None for case in present)
    ]
    if uncertainty_scale is None:
        finite = [c.uncertainty for c in present if np.isfinite(c.uncertainty).any()]
        top = max((float(np.nanmax(u)) for u in finite), default=0.0) or 1.0
        uncertainty_scale = montage.uncertainty_range if montage.uncertainty_range is not None else (0.0, top)
    if variance_high is None:
        maps = [getattr(c, n) for c in present for n in extra]
        variance_high = max((float(np.nanmax(v)) for v in maps if v is not None and np.isfinite(v).any()), default=0.0)
        variance_high = variance_high or 1.0
    cols = 6 + len(extra)
    n_rows = max(len(ids), 1)
    fig = _new_figure(1.9 * cols + 1.0, 2.0 * n_rows + 0.3)
    axes = np.asarray(fig.subplots(n_rows, cols, squeeze=False))
    labels_cmap = _label_cmap(num_classes)
    vmax = max(num_classes - 1, 1)
    cov = montage.coverage
    titles = [
        "image",
        "ground truth",
        "prediction",
        "uncertainty",
        "errors, coverage 1.00",
        f"errors, coverage {_fmt(cov, '.2f')}\n(blue: referred)",
        *[name.replace("_", " ") for name in extra],
    ]
    low, high = uncertainty_scale
    for r, (case_id, case) in enumerate(zip(ids, shown)):
        row = axes[r]
        if case is None:
            for ax in row:
                ax.text(0.5, 0.5, "n/a", ha="center", va="center", color="0.4", transform=ax.transAxes)
        else:
            error = case.prediction != case.reference
            kept_error = error & ~case.referred
            row[0].imshow(case.image, cmap="gray")
            row[1].imshow(case.reference, cmap=labels_cmap, vmin=0, vmax=vmax, interpolation="nearest")
            row[2].imshow(case.prediction, cmap=labels_cmap, vmin=0, vmax=vmax, interpolation="nearest")
            row[3].imshow(case.uncertainty, cmap="magma", vmin=low, vmax=high)
            row[4].imshow(case.image, cmap="gray")
            row[4].imshow(_overlay(error, _ERROR_RGBA), interpolation="nearest")
            row[5].imshow(case.image, cmap="gray")
            row[5].imshow(_overlay(case.referred, _REFERRED_RGBA), interpolation="nearest")
            row[5].imshow(_overlay(kept_error, _ERROR_RGBA), interpolation="nearest")
            if case.referred.any() and not case.referred.all():
                row[5].contour(case.referred.astype(np.float64), levels=[0.5], colors=["#3cf"], linewidths=0.8)
            for c, name in enumerate(extra, start=6):
                variance = getattr(case, name)
                if variance is None:
                    row[c].text(0.5, 0.5, "not stored", ha="center", va="center", transform=row[c].transAxes)
                else:
                    row[c].imshow(variance, cmap="viridis", vmin=0.0, vmax=variance_high)
        for c, ax in enumerate(row):
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(titles[c], fontsize="small")
        value = (dice or {}).get(case_id)
        lines = [case_id, f"Dice {_fmt(value, '.3f') if value is not None else 'n/a'}"]
        if case is not None and case.slice_index is not None:
            lines.append(f"slice {case.slice_index}")
        row[0].set_ylabel(_t("\n".join(lines)), fontsize="small")
    bar = fig.colorbar(
        ScalarMappable(Normalize(low, high), cmap="magma"), ax=list(axes[:, 3]), location="bottom", shrink=0.9
    )
    bar.set_label(_t(score), fontsize="small")
    if extra:
        bar = fig.colorbar(
            ScalarMappable(Normalize(0.0, variance_high), cmap="viridis"),
            ax=list(axes[:, 6:].reshape(-1)),
            location="bottom",
            shrink=0.9,
        )
        bar.set_label("variance", fontsize="small")
    return fig


def _montage_figures(data: ReportData) -> tuple[str, list[tuple[RunResults, Figure, str]]]:
    """The run the rows come from, and every run's montage figure on the shared layout with a caption sentence."""
    layout = montage_layout(data.runs, reference=data.reference)
    if layout is None:
        return "", []
    out = []
    for run in data.runs:
        if run.montage is None or not run.montage.cases:
            continue
        score = run.evaluation.uncertainty
        fig = plot_montage(
            run.montage,
            num_classes=run.evaluation.num_classes,
            case_ids=layout.case_ids,
            dice=_image_dice(run),
            uncertainty_scale=layout.uncertainty_scale[score],
            variance_high=layout.variance_high,
            score=score,
        )
        missing = sum(run.montage.case(i) is None for i in layout.case_ids)
        note = f" {missing} of the cases are not in this run's montage (n/a)." if missing else ""
        out.append((run, fig, note))
    return layout.source, out


def plot_reliability(runs: Sequence[RunResults]) -> Figure:
    """Top-label reliability diagrams, one panel per run with stored bins: accuracy per confidence bin (bars) and
    the diagonal of perfect calibration; ECE in the title (lower is better).

    Args:
        runs: the runs with ``calibration.reliability`` (others are skipped).

    Returns:
        The figure (one empty panel saying so when no run has bins).
    """
    shown = [
        (i, r, r.evaluation.calibration, r.evaluation.calibration.reliability)
        for i, r in enumerate(runs)
        if r.evaluation.calibration is not None and r.evaluation.calibration.reliability is not None
    ]
    fig = _new_figure(*_panel_size(max(len(shown), 1), width=3.8, height=3.8))
    axes = _grid(fig, max(len(shown), 1))
    for ax, (i, run, cal, rel) in zip(axes, shown):
        edges = rel.edges
        n = min(len(edges) - 1, len(rel.accuracy))
        lefts, widths = edges[:n], np.diff(edges)[:n]
        present = np.isfinite(rel.accuracy[:n])
        ax.bar(
            lefts[present],
            rel.accuracy[:n][present],
            width=widths[present],
            align="edge",
            color=f"C{i}",
            alpha=0.7,
            edgecolor="white",
            label="accuracy",
        )
        conf = rel.confidence[:n]
        both = present & np.isfinite(conf)
        ax.plot(conf[both], rel.accuracy[:n][both], "o", color="0.15", markersize=3, label="(confidence, accuracy)")
        ax.plot([0, 1], [0, 1], "--", color="0.4", linewidth=1, label="perfect calibration")
        ax.set_xlim(float(min(edges[0], 0.0)), 1.0)
        ax.set_ylim(0.0, 1.0)
        ax.set_xlabel("confidence")
        ax.set_ylabel("accuracy")
        ax.set_title(_t(f"{run.label}: ECE {_fmt(cal.ece_top_label, '.4f')}"), fontsize="medium")
        ax.legend(loc="upper left", fontsize="x-small")
    if not shown:
        axes[0].text(0.5, 0.5, "no reliability bins stored", ha="center", va="center", transform=axes[0].transAxes)
    return fig


TRAINING_PANELS = (
    ("segmentation", "segmentation loss", False),
    ("weighted_ranking", "ranking loss x weight", True),
    ("grad_ratio", "|weight x g_rank| / |g_seg|", True),
    ("lr", "learning rate", False),
    ("val_aurc", "validation AURC", False),
)
"""The training figure's panels: (column, title, log scale); ``weighted_ranking`` = ranking x ranking_weight."""


def plot_training(runs: Sequence[RunResults]) -> Figure:
    """The runs' training histories (``metrics.csv``) against the epoch, one panel per quantity: the segmentation
    loss, the weighted ranking loss, the gradient ratio of the two parts (how much the ranking term drives the
    parameters), the learning rate and the validation AURC.

    Args:
        runs: the runs with a training history (others are skipped).

    Returns:
        The figure.
    """
    return plot_histories([(run.label, run.training) for run in runs])


def plot_histories(histories: Sequence[tuple[str, TrainingHistory | None]]) -> Figure:
    """:func:`plot_training` from ``(label, history)`` pairs (a run folder's own ``metrics.csv`` needs no
    evaluation: ``progress.png``)."""
    fig = _new_figure(*_panel_size(len(TRAINING_PANELS), max_cols=5, width=3.4, height=3.0))
    axes = _grid(fig, len(TRAINING_PANELS), max_cols=5)
    for ax, (column, title, log) in zip(axes, TRAINING_PANELS):
        for i, (label, history) in enumerate(histories):
            if history is None:
                continue
            if column == "weighted_ranking":
                ranking, weight = history.get("ranking"), history.get("ranking_weight")
                values = None if ranking is None or weight is None else ranking * weight
            else:
                values = history.get(column)
            if values is None:
                continue
            keep = np.isfinite(values) & ((values > 0) if log else True)
            if keep.any():
                ax.plot(history.epochs[keep], values[keep], "-", color=f"C{i}", linewidth=1.2, label=_t(label))
        if log and ax.has_data():
            ax.set_yscale("log")
        ax.set_title(_t(title), fontsize="medium")
        ax.set_xlabel("epoch")
    if axes[0].has_data():
        axes[0].legend(loc="upper right", fontsize="x-small")
    return fig


def plot_quality_control(runs: Sequence[RunResults]) -> Figure:
    """Quality-control curves, one panel per run with stored curves: the share of images failing and not yet flagged
    against the share flagged for review (by decreasing image score), and the ideal curve; d-AUC in the legend
    (lower is better).

    Args:
        runs: the runs with ``quality_control`` curves (others are skipped).

    Returns:
        The figure.
    """
    shown = [
        (r, r.evaluation.quality_control)
        for r in runs
        if r.evaluation.quality_control is not None and any(s.has_curve for s in r.evaluation.quality_control.scores)
    ]
    fig = _new_figure(*_panel_size(max(len(shown), 1), width=4.2, height=3.8))
    axes = _grid(fig, max(len(shown), 1))
    for ax, (run, qc) in zip(axes, shown):
        ideal_drawn = False
        for j, score in enumerate(qc.scores):
            x, y, ideal = score.fraction_flagged, score.fraction_failing, score.ideal_fraction_failing
            if not score.has_curve or x is None or y is None:
                continue
            label = _t(f"{score.name} (d-AUC {_fmt(score.d_auc, '.4f')})")
            ax.plot(x, y, color=f"C{j}", label=label, linewidth=1.5)
            if not ideal_drawn and ideal is not None and len(ideal) == len(x):
                ax.plot(x, ideal, "--", color="0.2", label="ideal")
                ideal_drawn = True
        ax.set_xlim(0.0, 1.0)
        ax.set_ylim(bottom=0.0)
        ax.set_xlabel("share of images flagged for review")
        ax.set_ylabel("share failing and not flagged")
        ax.set_title(_t(f"{run.label}: failing = Dice < {_fmt(qc.tau, 'g')}"), fontsize="medium")
        ax.legend(loc="upper right", fontsize="x-small")
        ax.grid(alpha=0.3)
    if not shown:
        axes[0].text(
            0.5, 0.5, "no quality-control curves stored", ha="center", va="center", transform=axes[0].transAxes
        )
    return fig


def plot_ood(ood: OODResult, *, label: str = "") -> Figure:
    """OOD box plots, one panel per image score: its distribution at each distorted fraction, split into clean and
    distorted images (fraction 0 is the clean set); AUROC per fraction in the panel title (higher is better).

    Args:
        ood: the run's OOD results (with the per-image rows of ``ood.csv``).
        label: the run's name, for the titles.

    Returns:
        The figure.
    """
    names = [s for s in ood.score_names if s in ood.image_scores] or list(ood.image_scores)
    fig = _new_figure(*_panel_size(max(len(names), 1), max_cols=3, width=4.4, height=3.8))
    axes = _grid(fig, max(len(names), 1), max_cols=3)
    fractions = sorted(set(ood.fraction[np.isfinite(ood.fraction)].tolist()))
    for ax, name in zip(axes, names):
        values = ood.image_scores[name]
        data, positions, colours = [], [], []
        for g, f in enumerate(fractions):
            for k, distorted in enumerate((False, True)):
                v = values[(ood.fraction == f) & (ood.distorted == distorted) & np.isfinite(values)]
                if v.size:
                    data.append(v)
                    positions.append(3 * g + k)
                    colours.append("C3" if distorted else "C0")
        if data:
            parts = ax.boxplot(data, positions=positions, widths=0.8, patch_artist=True, showfliers=True)
            for box, colour in zip(parts["boxes"], colours):
                box.set_facecolor(colour)
                box.set_alpha(0.6)
        ax.set_xticks([3 * g + 0.5 for g in range(len(fractions))], [f"{f:g}" for f in fractions])
        ax.set_xlabel("fraction of distorted images")
        ax.set_ylabel(_t(name))
        auroc = ", ".join(
            f"{f:g}: {_fmt(ood.auroc.get(f, {}).get(name, math.nan), '.3f')}" for f in sorted(ood.auroc) if f > 0
        )
        ax.set_title(_t(f"{label} {name}\nAUROC {auroc or 'n/a'}").strip(), fontsize="small")
        ax.legend(
            handles=[Patch(color="C0", alpha=0.6, label="clean"), Patch(color="C3", alpha=0.6, label="distorted")],
            fontsize="x-small",
            loc="best",
        )
        ax.grid(alpha=0.3, axis="y")
    if not names:
        axes[0].text(0.5, 0.5, "no per-image OOD scores stored", ha="center", va="center", transform=axes[0].transAxes)
    return fig


def plot_image_scores(run: RunResults) -> Figure:
    """Each stored image score against the image's Dice at coverage 1.0, one panel per score (what quality control
    ranks: a useful score is high where Dice is low).

    Args:
        run: a run with ``image_scores``.

    Returns:
        The figure.
    """
    names = list(run.evaluation.image_scores)
    fig = _new_figure(*_panel_size(max(len(names), 1), max_cols=3, width=4.0, height=3.6))
    axes = _grid(fig, max(len(names), 1), max_cols=3)
    full = run.evaluation.point(1.0)
    dice = dict(full.image_dice) if full is not None else {}
    for ax, name in zip(axes, names):
        scores = run.evaluation.image_scores[name]
        ids = [i for i in scores if i in dice]
        ax.scatter([scores[i] for i in ids], [dice[i] for i in ids], s=20, alpha=0.8, color="C2", edgecolors="none")
        ax.set_xlabel(_t(name))
        ax.set_ylabel("Dice at coverage 1.0")
        ax.set_title(_t(f"{run.label}: {name}"), fontsize="medium")
        ax.grid(alpha=0.3)
    return fig


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_.") or "run"


def report_figures(data: ReportData) -> list[ReportFigure]:
    """Every figure the report's data supports, in page order; parts absent from the runs give no figure.

    Args:
        data: from :func:`selectseg.report.collect.collect_report`.

    Returns:
        The figures, with unique file names.
    """
    runs = data.runs
    out: list[ReportFigure] = []
    used: set[str] = set()

    def add(name: str, section: str, title: str, caption: str, fig: Figure) -> None:
        stem, k = name, 2
        while stem in used:
            stem, k = f"{name}_{k}", k + 1
        used.add(stem)
        out.append(ReportFigure(name=stem, section=section, title=title, caption=caption, figure=fig))

    add(
        "curves",
        "curves",
        "Dice-coverage and risk-coverage curves",
        "Mean Dice over images (left) and risk = 1 - Dice (right) against the share of pixels kept; referred pixels "
        "take the ground truth. AURC, the area under the risk curve, in the legend (lower is better).",
        plot_curves(runs),
    )
    for s in data.scatters:
        add(
            f"scatter_{_slug(s.label)}_vs_{_slug(s.reference_label)}",
            "scatter",
            f"Per-image differences: {s.label} - {s.reference_label} at coverage {s.target_coverage:.2f}",
            f"One point per image ({s.quadrants.n} common cases). Upper right: {s.label} keeps more of the image and "
            "has the higher Dice; lower left: it refers more and has the lower Dice. "
            f"On an axis (a zero difference): {_fmt(100 * s.quadrants.on_axis, '.1f')}%.",
            plot_scatter(s),
        )
    source, montages = _montage_figures(data)
    for run, fig, note in montages:
        coverage = _fmt(run.montage.coverage if run.montage is not None else math.nan, ".2f")
        add(
            f"montage_{_slug(run.label)}",
            "montage",
            f"Qualitative results: {run.label}",
            f"The same cases for every run: {source}'s, from its worst to its best Dice at coverage 1.00; the row "
            "titles give this run's Dice for the case. Errors in red. At coverage "
            f"{coverage} the referred pixels (blue, outlined) "
            "take the ground truth, so only the red errors outside them remain. Every run's uncertainty (score named "
            f"under the colour bar) is drawn on one colour scale.{note}",
            fig,
        )
    if any(r.evaluation.calibration is not None and r.evaluation.calibration.reliability is not None for r in runs):
        add(
            "reliability",
            "reliability",
            "Reliability diagrams (top label)",
            "Accuracy of the voxels in each confidence bin; bars below the diagonal mean over-confidence.",
            plot_reliability(runs),
        )
    if any(
        r.evaluation.quality_control is not None and any(s.has_curve for s in r.evaluation.quality_control.scores)
        for r in runs
    ):
        add(
            "quality_control",
            "quality_control",
            "Quality-control curves",
            "Images flagged for review by decreasing image score; the curve follows the share of images that fail "
            "and are not yet flagged. d-AUC is the area between the curve and the ideal one (lower is better).",
            plot_quality_control(runs),
        )
    for run in runs:
        if run.ood is not None and run.ood.image_scores:
            add(
                f"ood_{_slug(run.label)}",
                "ood",
                f"Out-of-distribution detection: {run.label}",
                "Image scores of clean (blue) and distorted (red) images at each fraction of distorted images; "
                "AUROC of telling them apart in the panel titles (higher is better).",
                plot_ood(run.ood, label=run.label),
            )
    if any(r.training is not None for r in runs):
        add(
            "training",
            "training",
            "Training",
            "Per epoch: the segmentation loss, the ranking loss times its weight, the ratio of the weighted ranking "
            "gradient to the segmentation gradient (parameter-gradient norms, measured every loss.grad_norm_every "
            "steps; about 1000 means the ranking term alone steers training), the learning rate and the validation "
            "AURC.",
            plot_training(runs),
        )
    for run in runs:
        if run.evaluation.image_scores and run.evaluation.point(1.0) is not None:
            add(
                f"image_scores_{_slug(run.label)}",
                "image_scores",
                f"Image scores against Dice: {run.label}",
                "One point per image: the image-level score against the image's Dice without referral.",
                plot_image_scores(run),
            )
    return out


def figure_bytes(fig: Figure, fmt: str = "png") -> bytes:
    """Render ``fig`` as PNG (100 dpi) or SVG, without timestamps in the file.

    Raises:
        ValueError: if ``fmt`` is not ``png`` or ``svg``.
    """
    if fmt not in FIGURE_FORMATS:
        raise ValueError(f"Expected `fmt` to be one of {list(FIGURE_FORMATS)}, but got {fmt!r}.")
    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {}
    fig.savefig(buffer, format=fmt, dpi=_DPI, metadata=metadata, facecolor="white")
    return buffer.getvalue()


def plot_sweep_parameter(key: str, points: Sequence[dict[str, Any]]) -> Figure:
    """Ding et al. Fig. 5 for one swept key: AURC (%) mean ± std over runs against the value, training time beside.

    Args:
        key: the config key swept.
        points: ``summary.json``'s entries for the key: ``value``, ``runs``, ``aurc_mean``, ``aurc_std``,
            ``train_seconds_mean`` (None where no run has finished).

    Shape:
        V points -> one figure with two panels.
    """
    done = [p for p in points if p["runs"]]
    labels = [str(p["value"]) for p in done]
    x = np.arange(len(done))
    fig = _new_figure(8.4, 3.4)
    left, right = fig.subplots(1, 2)
    left.errorbar(
        x, [100 * p["aurc_mean"] for p in done], yerr=[100 * p["aurc_std"] for p in done], marker="o", capsize=4
    )
    left.set_ylabel("AURC (%), mean ± std over runs")
    right.bar(x, [p["train_seconds_mean"] / 60 for p in done], color="tab:gray")
    right.set_ylabel("training time (min), mean")
    for ax in (left, right):
        ax.set_xticks(x, labels)
        ax.set_xlabel(_t(key))
        ax.grid(alpha=0.3)
    left.set_title(_t(f"AURC against {key} (lower is better)"))
    right.set_title("Training time")
    return fig
