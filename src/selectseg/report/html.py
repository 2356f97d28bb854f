"""Assemble the report as one self-contained HTML page: inline CSS, figures as ``data:`` PNG images, no JavaScript.

Every piece of text from the result files is escaped (:func:`html.escape`); the page loads nothing from the network
or the disk. Numbers: AURC (with its oracle/excess split, and the AUGRC) and Dice in percent (Dice differences in
percentage points), other metrics as fractions; "n/a" where a value is undefined (NaN) or was not computed.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from html import escape
from typing import Any

import numpy as np

from .collect import ReportData
from .compare import RunComparison, shown_in_percent
from .results import RunResults

__all__ = ["EmbeddedFigure", "render_html"]


@dataclass(frozen=True)
class EmbeddedFigure:
    """A rendered figure for the page.

    Attributes:
        name: file stem (also the HTML id, ``fig-<name>``).
        section: the report section it belongs to (see :class:`selectseg.report.figures.ReportFigure`).
        title, caption: plain text.
        png: the PNG bytes, embedded as a ``data:`` URI.
    """

    name: str
    section: str
    title: str
    caption: str
    png: bytes


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1d232a;
       background: #ffffff; margin: 0; line-height: 1.45; }
main { max-width: 1200px; margin: 0 auto; padding: 1.5rem 2rem 3rem; }
h1 { font-size: 1.7rem; margin: 0 0 0.3rem; }
h2 { font-size: 1.3rem; margin: 2.2rem 0 0.6rem; border-bottom: 2px solid #d5dbe1; padding-bottom: 0.2rem; }
h3 { font-size: 1.05rem; margin: 1.2rem 0 0.4rem; }
.meta, figcaption, .caption { color: #505a64; font-size: 0.9rem; }
table { border-collapse: collapse; margin: 0.4rem 0 0.8rem; font-size: 0.9rem; display: block; max-width: 100%;
        overflow-x: auto; }
th, td { border: 1px solid #d5dbe1; padding: 0.25rem 0.55rem; text-align: right; vertical-align: top; }
th { background: #eef2f6; }
td.text, th.text { text-align: left; }
tr.reference td { background: #f7f9e8; }
.pos { color: #1a7f37; } .neg { color: #b42318; }
figure { margin: 0.6rem 0 1.4rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e7eb; }
details { margin: 0.3rem 0; } summary { cursor: pointer; }
pre { background: #f5f7f9; border: 1px solid #e3e7eb; padding: 0.6rem; overflow-x: auto; font-size: 0.8rem; }
.note { background: #fff7e0; border-left: 4px solid #e0a800; padding: 0.4rem 0.7rem; }
.badge { background: #dfe8f3; border-radius: 0.3rem; padding: 0 0.35rem; font-size: 0.8rem; }
.summary { font-size: 1.05rem; background: #eef6ee; border-left: 4px solid #1a7f37; padding: 0.4rem 0.7rem; }
nav.contents ol { columns: 2; margin: 0.2rem 0 0.8rem; }
"""


def _num(value: float | None, digits: int = 3, *, scale: float = 1.0, sign: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{scale * value:{'+' if sign else ''}.{digits}f}"


def _sig(value: float | None) -> str:
    """Three significant digits (learning rates, weights and ratios span orders of magnitude)."""
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3g}"


def _pct(value: float | None, digits: int = 2) -> str:
    return _num(value, digits, scale=100.0)


def _cov(c: float) -> str:
    return f"{c:.2f}"


def _cell(text: str, *, cls: str = "", title: str = "", header: bool = False) -> str:
    tag = "th" if header else "td"
    attrs = f' class="{escape(cls)}"' if cls else ""
    attrs += f' title="{escape(title)}"' if title else ""
    return f"<{tag}{attrs}>{escape(text)}</{tag}>"


def _table(table_id: str, header: Iterable[str], rows: Iterable[Sequence[str]], *, caption: str = "") -> str:
    head = "".join(_cell(h, header=True, cls="text" if i == 0 else "") for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(_cell(v, cls="text" if i == 0 else "") for i, v in enumerate(r)) + "</tr>" for r in rows
    )
    cap = f'<p class="caption">{escape(caption)}</p>' if caption else ""
    return f'<table id="{escape(table_id)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{cap}'


def _section(section_id: str, title: str, body: str) -> str:
    return f'<section id="{escape(section_id)}"><h2>{escape(title)}</h2>{body}</section>'


def _figures(figures: Sequence[EmbeddedFigure], section: str) -> str:
    parts = []
    for fig in figures:
        if fig.section != section:
            continue
        data = base64.b64encode(fig.png).decode("ascii")
        parts.append(
            f'<figure id="fig-{escape(fig.name)}"><h3>{escape(fig.title)}</h3>'
            f'<img src="data:image/png;base64,{data}" alt="{escape(fig.title)}">'
            f"<figcaption>{escape(fig.caption)}</figcaption></figure>"
        )
    return "".join(parts)


def _runs_table(data: ReportData) -> str:
    rows = []
    for i, run in enumerate(data.runs):
        info = run.run_info or {}
        label = run.label + (" (reference)" if i == data.reference and len(data.runs) > 1 else "")
        options = (
            json.dumps(dict(run.evaluation.estimator_options), sort_keys=True)
            if run.evaluation.estimator_options
            else ""
        )
        members = run.ensemble.get("members") if run.ensemble else None
        rows.append(
            [
                label,
                str(run.run_dir),
                str(info.get("dataset", "n/a")),
                f"{run.evaluation.estimator} {options}".strip()
                + (f" ({len(members)} members)" if isinstance(members, list) else ""),
                run.evaluation.uncertainty,
                str(run.evaluation.num_cases),
                ", ".join(run.evaluation.class_names)
                if run.evaluation.class_names
                else str(run.evaluation.num_classes),
                _trained_with(info),
            ]
        )
    header = ["run", "folder", "data set", "estimator", "uncertainty", "cases", "classes", "trained with"]
    return _table("runs-table", header, rows)


def _trained_with(info: Mapping[str, Any]) -> str:
    """The software versions a run's ``run.json`` records (``selectseg_version``, ``torch_version``, ``versions``)."""
    versions = {"selectseg": info.get("selectseg_version"), "torch": info.get("torch_version")}
    extra = info.get("versions")
    if isinstance(extra, dict):
        versions.update({str(k): v for k, v in extra.items() if str(k) not in versions or versions[str(k)] is None})
    text = ", ".join(f"{k} {v}" for k, v in versions.items() if v is not None)
    return text or "n/a"


def _ci(value: float | None, ci: tuple[float, float] | None, digits: int = 2) -> str:
    """``"5.12 [4.30, 6.00]"`` in percent; the value alone without an interval."""
    if ci is None:
        return _pct(value, digits)
    return f"{_pct(value, digits)} [{_pct(ci[0], digits)}, {_pct(ci[1], digits)}]"


AURC_DIGITS = 3
"""Decimals of AURC in percent: enough to tell runs apart (1.762 vs 1.758, not 1.76 vs 1.76)."""


def _summary(data: ReportData) -> str:
    """One line at the top: the run with the lowest AURC, and by how much it beats the reference (or the next)."""
    rows = [r for r in data.table1.rows if r.aurc == r.aurc]
    if len(rows) < 2:
        return ""
    best = min(rows, key=lambda r: r.aurc)
    ref = data.table1.rows[data.reference]
    other = ref if best is not ref else min((r for r in rows if r is not best), key=lambda r: r.aurc)
    ci = ""
    if best.aurc_ci is not None and other.aurc_ci is not None:
        ci = (
            f" (bootstrap intervals over images: {_ci(best.aurc, best.aurc_ci, AURC_DIGITS)} vs "
            f"{_ci(other.aurc, other.aurc_ci, AURC_DIGITS)}; one run per method is not a comparison over seeds: see "
            "the paired comparison where given)"
        )
    return (
        f'<p class="summary">Lowest AURC: <strong>{escape(best.label)}</strong>, '
        f"{_pct(best.aurc, AURC_DIGITS)} % against {_pct(other.aurc, AURC_DIGITS)} % for {escape(other.label)} "
        f"({_num(100 * (best.aurc - other.aurc), AURC_DIGITS, sign=True)} points){escape(ci)}.</p>"
    )


def _contents(body: Sequence[str]) -> str:
    """A table of contents of the sections in ``body`` (their ids and titles)."""
    import re

    items = []
    for part in body:
        match = re.match(r'<section id="([^"]+)"><h2>(.*?)</h2>', part)
        if match:
            items.append(f'<li><a href="#{match.group(1)}">{match.group(2)}</a></li>')
    return f'<nav class="contents"><h2>Contents</h2><ol>{"".join(items)}</ol></nav>' if items else ""


def _bootstrap_note(runs: Sequence[RunResults]) -> str:
    """How the intervals of Table 1 were made: the runs' bootstrap settings (one phrase when they agree)."""
    settings = {
        (b.get("confidence_level"), b.get("n_resamples"), b.get("seed")): None
        for b in (r.evaluation.bootstrap for r in runs)
        if b is not None
    }
    phrases = [
        f"{_num(100 * level, 0) if isinstance(level, (int, float)) else '?'} % percentile bootstrap interval over "
        f"images ({n} resamples, seed {seed})"
        for level, n, seed in settings
    ]
    return " or ".join(phrases)


def _table1(data: ReportData) -> str:
    t = data.table1
    with_ci = any(row.aurc_ci is not None for row in t.rows)
    dice_columns = ["mean [CI]", "std", "5th pct."] if with_ci else ["mean ± std", "5th pct."]
    split = t.has_decomposition
    head = '<tr><th class="text" rowspan="2">run</th>'
    head += f'<th rowspan="2">AURC (%){" [CI]" if with_ci else ""}</th>'
    head += "".join(f'<th colspan="{len(dice_columns)}">Dice (%) at coverage {_cov(c)}</th>' for c in t.coverages)
    if split:
        head += '<th colspan="2">AURC = oracle + excess (%)</th><th rowspan="2">AUGRC (%)</th>'
        head += '<th rowspan="2">error AUROC</th>'
    head += "</tr><tr>" + "".join("".join(f"<th>{escape(h)}</th>" for h in dice_columns) for _ in t.coverages)
    head += ("<th>oracle</th><th>excess</th>" if split else "") + "</tr>"
    body = []
    for i, row in enumerate(t.rows):
        cls = ' class="reference"' if i == data.reference and len(t.rows) > 1 else ""
        cells = [_cell(row.label, cls="text"), _cell(_ci(row.aurc, row.aurc_ci, AURC_DIGITS))]
        for p in row.points:
            if p is None:
                cells += [_cell("n/a")] * len(dice_columns)
                continue
            achieved = f"achieved coverage {_num(p.coverage, 4)}, threshold {_num(p.threshold, 4)}"
            if with_ci:
                cells.append(_cell(_ci(p.dice_mean, p.dice_ci), title=achieved))
                cells.append(_cell(_pct(p.dice_std), title=achieved))
            else:
                cells.append(_cell(f"{_pct(p.dice_mean)} ± {_pct(p.dice_std)}", title=achieved))
            cells.append(_cell(_pct(p.dice_p5), title=achieved))
        if split:
            cells += [
                _cell(_pct(row.oracle_aurc, AURC_DIGITS)),
                _cell(_pct(row.excess_aurc, AURC_DIGITS)),
                _cell(_pct(row.augrc, AURC_DIGITS)),
            ]
            cells.append(_cell(_num(row.error_auroc)))
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    caption = (
        "AURC: area under the risk-coverage curve, risk = 1 - Dice (lower is better). Dice: mean ± standard deviation "
        "and 5th percentile over images at the largest achievable coverage not above the target (one global "
        "uncertainty threshold; referred pixels take the ground truth). Hover a cell for the achieved coverage."
    )
    if split:
        caption += (
            " Oracle: the AURC of the same segmentation if every wrong pixel were referred first (segmentation "
            "quality); excess = AURC - oracle (how the uncertainty orders the pixels; can be negative). "
            "AUGRC: area under the generalized risk (kept and wrong pixels / all pixels) over coverage (lower is "
            "better). Error AUROC: how well the uncertainty ranks wrong above correct pixels (0.5 chance, 1 perfect). "
            "All over the pixels of all images pooled; n/a where undefined or not in a run's files."
        )
    if with_ci:
        caption += (
            f" [CI]: {_bootstrap_note(data.runs)}: images resampled with replacement, the whole curve recomputed; it "
            "reflects the test images, not the training (for that, compare runs over seeds)."
        )
    return (
        f'<table id="table1"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table>'
        f'<p class="caption">{escape(caption)}</p>'
    )


def _table4(data: ReportData) -> str:
    t = data.table4
    if t is None or not t.rows:
        return ""
    header = ["run", "vs", "cases", *[f"coverage {_cov(c)}" for c in t.coverages]]
    body = []
    for row in t.rows:
        cells = [
            _cell(row.label, cls="text"),
            _cell(row.reference_label),
            _cell(str(row.num_cases) if row.num_cases else "n/a"),
        ]
        for d in row.differences:
            cls = "" if not math.isfinite(d) or d == 0 else ("pos" if d > 0 else "neg")
            cells.append(_cell(_num(d, 2, scale=100.0, sign=True), cls=cls))
        body.append("<tr>" + "".join(cells) + "</tr>")
    head = "".join(_cell(h, header=True, cls="text" if i == 0 else "") for i, h in enumerate(header))
    caption = (
        "Dice difference in percentage points, run - reference, averaged over the cases both runs were evaluated on "
        "(positive: the run is better). Each run uses its own threshold for the coverage."
    )
    return (
        f'<table id="table4"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
        f'<p class="caption">{escape(caption)}</p>'
    )


def _paired(comparisons: Sequence[RunComparison]) -> str:
    out = []
    for i, comp in enumerate(comparisons):
        level = f"{_num(100 * comp.confidence_level, 0)} % CI"
        rows = []
        for m in comp.metrics:
            r = m.result
            scale, digits = (100.0, 2) if shown_in_percent(m.metric) else (1.0, 4)
            rows.append(
                [
                    m.metric,
                    "higher" if m.higher_is_better else "lower",
                    _num(sum(m.candidate) / len(m.candidate), digits, scale=scale),
                    _num(sum(m.reference) / len(m.reference), digits, scale=scale),
                    f"{_num(r.mean, digits, scale=scale, sign=True)} [{_num(r.ci[0], digits, scale=scale, sign=True)}, "
                    f"{_num(r.ci[1], digits, scale=scale, sign=True)}]",
                    _num(r.sd, digits, scale=scale),
                    _p(r.p_value),
                    _p(r.sign_p_value),
                    f"{r.better} / {r.worse} / {r.equal}",
                ]
            )
        header = [
            "metric",
            "better is",
            f"{comp.candidate_label} (mean)",
            f"{comp.reference_label} (mean)",
            f"difference [{level}]",
            "sd of differences",
            "p (paired t)",
            "p (sign test)",
            "better / worse / equal",
        ]
        seeds = ", ".join(str(s) for s in comp.seeds)
        title = (
            f"{comp.candidate_label} vs {comp.reference_label}: {len(comp.seeds)} seed"
            f"{'s' if len(comp.seeds) != 1 else ''} ({seeds}), {comp.num_cases} cases"
        )
        caption = (
            f"Each pair is a {comp.candidate_label} run and a {comp.reference_label} run trained with the same seed; "
            f"difference = {comp.candidate_label} - {comp.reference_label}, averaged over the pairs, with its t "
            "interval (AURC and Dice in percent, differences in percentage points). The paired t-test and the exact "
            "sign test (ties dropped) test a zero mean difference; better / worse / equal count the seeds by the "
            "metric's direction. The replication unit is the training run, so this covers the variation between "
            "trainings that the bootstrap over images of Table 1 does not."
        )
        notes = "".join(f'<p class="note">{escape(n)}</p>' for n in comp.notes)
        out.append(f"<h3>{escape(title)}</h3>" + _table(f"paired-{i}", header, rows, caption=caption) + notes)
    return "".join(out)


def _p(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.3g}"


def _scatter_tables(data: ReportData) -> str:
    rows = []
    for s in data.scatters:
        q = s.quadrants
        rows.append(
            [
                f"{s.label} vs {s.reference_label}",
                _cov(s.target_coverage),
                str(q.n),
                *[
                    _num(v, 1, scale=100.0)
                    for v in (q.upper_right, q.upper_left, q.lower_left, q.lower_right, q.on_axis)
                ],
            ]
        )
    if not rows:
        return ""
    header = ["runs", "coverage", "images", "upper right (%)", "upper left (%)", "lower left (%)", "lower right (%)"]
    return _table(
        "quadrants",
        [*header, "on an axis (%)"],
        rows,
        caption="Upper right: more of the image kept and higher Dice than the reference; upper left: more referred, "
        "higher Dice; lower left: more referred, lower Dice; lower right: more kept, lower Dice.",
    )


def _calibration(runs: Sequence[RunResults]) -> str:
    rows = [
        [
            r.label,
            _num(r.evaluation.calibration.nll, 4),
            _num(r.evaluation.calibration.brier, 4),
            _num(r.evaluation.calibration.ece_top_label, 4),
            _num(r.evaluation.calibration.ece_classwise, 4),
            str(r.evaluation.calibration.n_bins) if r.evaluation.calibration.n_bins is not None else "n/a",
        ]
        for r in runs
        if r.evaluation.calibration is not None
    ]
    if not rows:
        return ""
    header = ["run", "NLL (nats)", "Brier", "ECE top-label", "ECE class-wise", "bins"]
    return _table(
        "calibration", header, rows, caption="Calibration of the mean probabilities over all voxels (lower is better)."
    )


def _quality_control(runs: Sequence[RunResults]) -> str:
    rows = [
        [
            r.label,
            s.name,
            _num(r.evaluation.quality_control.tau, 2),
            _num(s.auc, 4),
            _num(s.auc_ideal, 4),
            _num(s.d_auc, 4),
        ]
        for r in runs
        if r.evaluation.quality_control is not None
        for s in r.evaluation.quality_control.scores
    ]
    if not rows:
        return ""
    header = ["run", "image score", "tau", "AUC", "ideal AUC", "d-AUC"]
    caption = "An image fails when its Dice at coverage 1 is below tau. d-AUC = AUC - ideal AUC (lower is better)."
    return _table("quality-control", header, rows, caption=caption)


def _disagreement(runs: Sequence[RunResults]) -> str:
    shown = [(r, r.evaluation.disagreement) for r in runs if r.evaluation.disagreement is not None]
    if not shown:
        return ""
    rows = [
        [
            r.label,
            d.uncertainty,
            _num(d.image_pearson),
            _num(d.image_spearman),
            _num(d.pixel_pearson),
            _num(d.ged) if d.ged is not None else "n/a",
            _num(d.hungarian_iou) if d.hungarian_iou is not None else "n/a",
        ]
        for r, d in shown
    ]
    header = ["run", "uncertainty", "image Pearson", "image Spearman", "pixel Pearson", "GED", "Hungarian IoU"]
    out = _table(
        "disagreement",
        header,
        rows,
        caption="Correlation of the uncertainty map with the annotators' variance (higher is better); GED: "
        "generalised energy distance (lower is better).",
    )
    thresholds = sorted({t for _, d in shown for t in d.soft_dice_thresholds})
    if thresholds:
        soft = []
        for r, d in shown:
            by_t = dict(zip(d.soft_dice_thresholds, d.soft_dice))
            soft.append([r.label, *[_num(by_t.get(t, math.nan)) for t in thresholds]])
        out += _table(
            "soft-dice",
            ["run", *[f"t = {t:g}" for t in thresholds]],
            soft,
            caption="Soft Dice of the foreground probability against the annotators' mean, both thresholded at t.",
        )
    return out


def _ood(runs: Sequence[RunResults]) -> str:
    shown = [(r, r.ood) for r in runs if r.ood is not None]
    if not shown:
        return ""
    fractions = sorted({f for _, o in shown for f in o.auroc if f > 0})
    rows = []
    for r, o in shown:
        names = list(o.score_names) or sorted({s for v in o.auroc.values() for s in v})
        for name in names:
            rows.append([r.label, name, *[_num(o.auroc.get(f, {}).get(name, math.nan)) for f in fractions]])
    settings = "; ".join(
        f"{r.label}: severity {o.severity if o.severity is not None else 'n/a'}, kinds {', '.join(o.kinds) or 'n/a'}"
        for r, o in shown
    )
    header = ["run", "image score", *[f"AUROC, {f:g} distorted" for f in fractions]]
    caption = f"AUROC of telling distorted images from clean ones by the image score (higher is better). {settings}."
    return _table("ood", header, rows, caption=caption)


def _operating_points(runs: Sequence[RunResults]) -> str:
    out: list[str] = []
    for r in runs:
        rows = [
            [
                _cov(p.target_coverage),
                _num(p.coverage, 4),
                _num(p.threshold, 4),
                _pct(p.dice_mean),
                _pct(p.dice_std),
                _pct(p.dice_p5),
                _num(p.gamma, 4),
                _num(p.psi_c, 4),
            ]
            for p in r.evaluation.points
        ]
        header = ["target coverage", "coverage", "threshold", "Dice (%)", "std (%)", "5th pct. (%)", "gamma", "psi_c"]
        out.append(
            f"<details><summary>{escape(r.label)}</summary>{_table(f'points-{len(out)}', header, rows)}</details>"
        )
    return "".join(out)


def _pre(summary: str, text: str) -> str:
    return f"<details><summary>{escape(summary)}</summary><pre>{escape(text)}</pre></details>"


def _configs(runs: Sequence[RunResults]) -> str:
    out = []
    for r in runs:
        parts = [f"<h3>{escape(r.label)}</h3>"]
        settings = {
            "uncertainty": r.evaluation.uncertainty,
            "estimator": r.evaluation.estimator,
            "estimator_options": dict(r.evaluation.estimator_options),
            "num_cases": r.evaluation.num_cases,
        }
        parts.append(_pre("evaluation settings", json.dumps(settings, indent=2, sort_keys=True, default=str)))
        if r.config_text is not None:
            parts.append(_pre(f"config.yaml ({r.config_path})", r.config_text))
        else:
            parts.append('<p class="caption">No config.yaml in the run folder.</p>')
        if r.run_info is not None:
            parts.append(_pre("run.json", json.dumps(r.run_info, indent=2, default=str)))
        if r.ensemble is not None:
            parts.append(_pre("ensemble.json", json.dumps(r.ensemble, indent=2, default=str)))
        out.append("".join(parts))
    return "".join(out)


def _training(runs: Sequence[RunResults]) -> str:
    """Per run: epochs, the last epoch's ranking weight and learning rate, and the mean gradient ratio over the first
    and the last tenth of the epochs that measured it."""
    rows = []
    for r in runs:
        h = r.training
        if h is None or len(h.epochs) == 0:
            continue
        ratio = h.get("grad_ratio")
        measured = ratio[np.isfinite(ratio)] if ratio is not None else np.array([])
        tenth = max(1, len(measured) // 10)
        weight, lr = h.get("ranking_weight"), h.get("lr")
        rows.append(
            [
                r.label,
                str(int(h.epochs[-1])),
                _sig(float(weight[-1]) if weight is not None else None),
                _sig(float(lr[-1]) if lr is not None else None),
                _sig(float(measured[:tenth].mean()) if measured.size else None),
                _sig(float(measured[-tenth:].mean()) if measured.size else None),
            ]
        )
    if not rows:
        return ""
    header = ["run", "epochs", "ranking weight (last)", "lr (last)", "gradient ratio (first 10 %)", "(last 10 %)"]
    caption = (
        "Gradient ratio = |weight x ranking gradient| / |segmentation gradient| "
        "(parameter-gradient norms, RUN/metrics.csv)."
    )
    return _table("training-summary", header, rows, caption=caption)


def render_html(
    data: ReportData,
    figures: Sequence[EmbeddedFigure],
    *,
    title: str = "selectseg report",
    generated: datetime | None = None,
) -> str:
    """The report page: the runs, Table 1, Table 4, the paired comparisons over seeds, the figures and the tables of
    every metric present, the run configurations and the software versions.

    Args:
        data: from :func:`selectseg.report.collect.collect_report`.
        figures: the rendered figures; each goes into the section its ``section`` names.
        title: the page title.
        generated: the time shown as the page's creation time (default: now, UTC).

    Returns:
        The HTML document.
    """
    when = (generated or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    versions = data.versions
    ref = data.runs[data.reference]
    body: list[str] = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">Generated {escape(when)} by selectseg {escape(versions.get("selectseg", "?"))} '
        f"from {len(data.runs)} evaluated run{'s' if len(data.runs) != 1 else ''}"
        + (f"; differences are against <strong>{escape(ref.label)}</strong>." if len(data.runs) > 1 else ".")
        + "</p>",
        _summary(data),
        _section("runs", "Runs", _runs_table(data)),
    ]
    if data.notes:
        body.append("".join(f'<p class="note">{escape(n)}</p>' for n in data.notes))
    body.append(_section("dice-at-coverage", "Dice at coverage (Table 1)", _table1(data)))
    if data.table4 is not None and data.table4.rows:
        body.append(_section("dice-difference", "Dice difference between runs (Table 4)", _table4(data)))
    if data.comparisons:
        body.append(_section("paired-comparison", "Paired comparison over seeds", _paired(data.comparisons)))
    body.append(_section("curves", "Dice-coverage and risk-coverage curves (Fig. 3)", _figures(figures, "curves")))
    if data.scatters:
        scatter = _figures(figures, "scatter") + _scatter_tables(data)
        body.append(_section("per-image", "Per-image differences (Fig. 2)", scatter))
    montage = _figures(figures, "montage")
    if montage:
        body.append(_section("qualitative", "Qualitative results (Fig. 4)", montage))
    calibration = _calibration(data.runs) + _figures(figures, "reliability")
    if calibration:
        body.append(_section("calibration", "Calibration", calibration))
    qc = _quality_control(data.runs) + _figures(figures, "quality_control")
    if qc:
        body.append(_section("quality-control", "Quality control", qc))
    disagreement = _disagreement(data.runs)
    if disagreement:
        body.append(_section("annotators", "Agreement with the annotators", disagreement))
    ood = _ood(data.runs) + _figures(figures, "ood")
    if ood:
        body.append(_section("ood", "Out-of-distribution detection", ood))
    scores = _figures(figures, "image_scores")
    if scores:
        body.append(_section("image-scores", "Image scores", scores))
    training = _training(data.runs) + _figures(figures, "training")
    if training:
        body.append(_section("training", "Training", training))
    body.append(_section("operating-points", "All operating points", _operating_points(data.runs)))
    body.append(_section("configurations", "Run configurations", _configs(data.runs)))
    body.append(
        _section(
            "software",
            "Software that made this report",
            _table(
                "versions", ["package", "version"], [[k, v] for k, v in sorted(versions.items(), key=_version_order)]
            ),
        )
    )
    body.insert(3, _contents(body))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )


_ORDER = ("python", "selectseg", "torch", "monai", "numpy", "matplotlib")


def _version_order(item: tuple[str, Any]) -> tuple[int, str]:
    name = item[0]
    return (_ORDER.index(name) if name in _ORDER else len(_ORDER), name)
