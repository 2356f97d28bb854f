"""Where the shared real datasets are: ``$SELECTSEG_DATA``, else ``../shared/data`` beside the repository."""

from __future__ import annotations

import os
from pathlib import Path

SHARED_DATA = Path(os.environ.get("SELECTSEG_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def shared(name: str) -> Path:
    """The folder of one shared dataset (may not exist: tests skip with a reason then)."""
    return SHARED_DATA / name
