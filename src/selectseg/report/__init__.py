"""``selectseg report``: one self-contained HTML page comparing evaluated runs, the way the papers present results.

- :mod:`~selectseg.report.results` reads each run folder's result files into dataclasses and
  :mod:`~selectseg.report.collect` computes the comparisons: Table 1, Table 4, the per-image scatter (no matplotlib);
- :mod:`~selectseg.report.compare` compares runs with reference runs over seeds (``selectseg compare``,
  ``compare.json``), which the page can include;
- :mod:`~selectseg.report.figures` draws them with matplotlib (Agg canvas; the only module importing matplotlib);
- :mod:`~selectseg.report.html` assembles the page.

:func:`write_report` runs the three. Importing this package does not import matplotlib (the plotting layer is loaded
by :func:`write_report`). See ``docs/report.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .._io import atomic_write_bytes, atomic_write_text, staged_output
from .._validation import look_up_option
from .collect import (
    SCATTER_COVERAGE,
    TABLE1_COVERAGES,
    TABLE4_COVERAGES,
    ReportData,
    collect_report,
    quadrant_fractions,
)
from .compare import RunComparison, compare_runs, load_comparison, write_comparison
from .results import RunResults, default_labels, load_run_results

__all__ = [
    "SCATTER_COVERAGE",
    "TABLE1_COVERAGES",
    "TABLE4_COVERAGES",
    "ReportData",
    "RunComparison",
    "RunResults",
    "collect_report",
    "compare_runs",
    "default_labels",
    "figures_dir",
    "load_comparison",
    "load_run_results",
    "quadrant_fractions",
    "write_comparison",
    "write_progress",
    "write_report",
]


def figures_dir(out: str | Path) -> Path:
    """The folder :func:`write_report` saves the figures in: ``<out's folder>/<out's stem>_figures``."""
    out = Path(out)
    return out.parent / f"{out.stem}_figures"


def write_report(
    run_dirs: Sequence[str | Path],
    out: str | Path,
    *,
    labels: Sequence[str] | None = None,
    reference: int = 0,
    figure_formats: Sequence[str] = ("png", "svg"),
    comparisons: Sequence[str | Path] = (),
) -> Path:
    """Write one self-contained HTML report comparing evaluated runs, and its figures as separate files.

    The page holds Table 1 (AURC, Dice at coverage), Table 4 (Dice difference against the reference run), the
    Dice- and risk-coverage curves, per-image scatters against the reference, qualitative montages, calibration,
    quality control, agreement with annotators, OOD detection (each where the runs' result files hold it), the paired
    comparisons over seeds of ``comparisons`` (``selectseg compare``), the run configurations and the software
    versions. Figures are embedded as PNG; the same figures are saved in
    :func:`figures_dir` ``(out)`` in each of ``figure_formats``. The page and its figures are written complete or
    absent (:func:`selectseg._io.staged_output`): a kill leaves the previous report whole, or no page; the PNG and
    SVG files of an earlier report in the figures folder are replaced or removed, other files there are left alone.

    Args:
        run_dirs: run folders evaluated by ``selectseg evaluate`` (``RUN/evaluation/evaluation.json``).
        out: the HTML file to write.
        labels: the runs' names in the report (default: folder names; relative paths where names repeat).
        reference: index of the run the others are compared with (Table 4, Fig. 2).
        figure_formats: formats of the saved figure files, any of ``png`` and ``svg`` (empty: none saved).
        comparisons: ``compare.json`` files (or the folders holding them) to show in the section "Paired comparison
            over seeds".

    Returns:
        The path of the HTML file.

    Raises:
        ValueError: if no run is given, a run folder has no evaluation results (the message names the missing file),
            ``labels`` or ``reference`` do not fit the runs, two compared runs share no case, ``out`` is a folder,
            a figure format is unknown, or a comparison file is missing or malformed.
        TypeError: if a figure format is not a string.

    Example:
        >>> write_report(["runs/baseline", "runs/ranking"], "report.html")  # doctest: +SKIP
        PosixPath('report.html')
    """
    out = Path(out)
    formats = list(dict.fromkeys(look_up_option("figure_formats", f, ("png", "svg")) for f in figure_formats))
    if out.is_dir():
        raise ValueError(f"Expected `out` to be an HTML file path, but {str(out)!r} is a folder.")
    data = collect_report(run_dirs, labels=labels, reference=reference, comparisons=comparisons)

    # The plotting layer is loaded here only: importing the package stays free of matplotlib.
    from .figures import figure_bytes, report_figures
    from .html import EmbeddedFigure, render_html

    embedded = []
    figures = figures_dir(out).name
    old_figures = [f"{figures}/{f.name}" for f in figures_dir(out).glob("*") if f.suffix[1:] in ("png", "svg")]
    # The page and its figures complete or absent: staged, then published with the page removed first and moved in
    # last; the figures of an earlier report that this one does not redraw are removed with it.
    with staged_output(out.parent, out.name, replaces=old_figures) as stage:
        for fig in report_figures(data):
            png = figure_bytes(fig.figure, "png")
            for fmt in formats:
                data_ = png if fmt == "png" else figure_bytes(fig.figure, fmt)
                atomic_write_bytes(stage / figures / f"{fig.name}.{fmt}", data_)
            embedded.append(
                EmbeddedFigure(name=fig.name, section=fig.section, title=fig.title, caption=fig.caption, png=png)
            )
            fig.figure.clear()
        atomic_write_text(stage / out.name, render_html(data, embedded))
    return out


def write_progress(run_dir: str | Path) -> Path | None:
    """Draw a run's training curves (``RUN/metrics.csv``) into ``RUN/progress.png`` (nnU-Net's progress.png),
    atomically; None when the run has no history yet. Loads matplotlib (the plotting layer) on demand."""
    from ..results import TrainingHistory
    from ..runs import folder
    from .figures import figure_bytes, plot_histories

    run_dir = Path(run_dir)
    history = TrainingHistory.load(run_dir / folder.METRICS)
    if history is None:
        return None
    return atomic_write_bytes(run_dir / folder.PROGRESS, figure_bytes(plot_histories([(run_dir.name, history)])))
