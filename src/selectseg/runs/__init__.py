"""A run: its configuration, its folder and its checkpoints, where training and evaluation both stand.

- :mod:`~selectseg.runs.config`: :class:`TrainConfig` (frozen dataclasses), :func:`load_config`, overrides.
- :mod:`~selectseg.runs.folder`: the run-folder contract (file names, the new-run check, reading what a run saved).
- :mod:`~selectseg.runs.checkpoint`: checkpoints (``weights_only``), RNG state, :func:`load_model`.
- :mod:`~selectseg.runs.data`: the data set a config names; :mod:`~selectseg.runs.device`: device resolution.

Importing this package loads nothing heavy: :mod:`~selectseg.runs.folder` is free of torch and MONAI, so that the
report and the sweep read run folders without them; ``TrainConfig`` and ``load_config`` are loaded on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TrainConfig", "load_config"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import config

        return getattr(config, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
