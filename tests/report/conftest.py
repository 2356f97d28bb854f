from __future__ import annotations

from pathlib import Path

import pytest

from selectseg.report import write_report

from ._fixtures import BETTER_COVERAGE, BETTER_DICE, make_run


@pytest.fixture(scope="session")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A reference run and a better one (an ensemble folder), each with every optional part."""
    root = tmp_path_factory.mktemp("runs")
    return make_run(root / "base"), make_run(root / "better", BETTER_DICE, BETTER_COVERAGE, ensemble=True)


@pytest.fixture(scope="session")
def full_report(two_runs: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of the two runs, with PNG and SVG figures (rendered once: it takes a few seconds)."""
    return write_report(list(two_runs), tmp_path_factory.mktemp("report") / "report.html")
