from __future__ import annotations

import subprocess
import sys

COMPUTING_MODULES = (
    "selectseg.metrics",
    "selectseg.results",
    "selectseg.runs.folder",
    "selectseg.report.results",
    "selectseg.report.collect",
    "selectseg.report.html",
    "selectseg.report.compare",
    "selectseg.report",
)


def test_only_the_plotting_layer_imports_matplotlib() -> None:
    # A fresh interpreter (in this one another test may have loaded matplotlib); sys.modules only grows, so checking
    # after importing them all shows that none imports it. MONAI imports pyplot when matplotlib is installed, so
    # these modules must not import MONAI either. The plotting layer then loads matplotlib, but not pyplot.
    code = (
        f"import sys, {', '.join(COMPUTING_MODULES)}; print('matplotlib' in sys.modules, 'monai' in sys.modules); "
        "import selectseg.report.figures; print('matplotlib' in sys.modules, 'matplotlib.pyplot' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.split() == ["False", "False", "True", "False"]
