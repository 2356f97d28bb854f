"""Checkpoints and run-folder files, written atomically (temp file in the same folder, fsync, ``os.replace``).

A reader never sees a half-written file: a process killed mid-write leaves the previous version (or nothing) and its
``.<name>.<pid>.<n>.tmp`` file, which the next write of the same name removes (:mod:`selectseg._io`). Checkpoints
hold only tensors and plain Python data and are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from .._io import atomic_write_bytes
from ..models import ModelSpec, SegmentationNet, build_model

__all__ = [
    "capture_rng_state",
    "load_checkpoint",
    "load_model",
    "restore_rng_state",
    "save_checkpoint",
]


def atomic_save(path: str | Path, writer: Callable[[IO[bytes]], None]) -> Path:
    """Serialise with ``writer(file)`` into memory, then write the bytes atomically."""
    buffer = io.BytesIO()
    writer(buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def capture_rng_state() -> dict[str, Any]:
    """The state of Python's, numpy's and torch's (CPU and CUDA) global generators, as tensors and plain data."""
    np_state: tuple[Any, ...] = np.random.get_state(legacy=True)  # type: ignore[assignment]  # noqa: NPY002 - the legacy global state is what third-party code draws from
    state: dict[str, Any] = {
        "python": _to_plain(random.getstate()),
        "numpy": {
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    random.setstate(_to_tuple(state["python"]))
    np_state = state["numpy"]
    keys = np_state["keys"].numpy().astype(np.uint32)
    legacy = ("MT19937", keys, np_state["pos"], np_state["has_gauss"], np_state["cached_gaussian"])
    np.random.set_state(legacy)  # noqa: NPY002 - see capture_rng_state
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_plain(value: Any) -> Any:
    return [_to_plain(v) for v in value] if isinstance(value, (tuple, list)) else value


def _to_tuple(value: Any) -> Any:
    return tuple(_to_tuple(v) for v in value) if isinstance(value, list) else value


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Save a checkpoint dict (tensors, state dicts, plain data) atomically."""
    return atomic_save(path, lambda handle: torch.save(payload, handle))


def load_checkpoint(path: str | Path, *, spec: ModelSpec | None = None) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; check its architecture against ``spec`` when given.

    Raises:
        ValueError: if the file is missing or unreadable, is not a selectseg checkpoint, or was saved from a
            different architecture than ``spec`` (the differing fields are named).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Checkpoint {str(path)!r} not found.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a corrupt or foreign file
        raise ValueError(f"Checkpoint {str(path)!r} could not be read ({type(error).__name__}: {error}).") from None
    if not isinstance(payload, dict) or "model" not in payload or "spec" not in payload:
        raise ValueError(f"Checkpoint {str(path)!r} is not a selectseg checkpoint (expected keys 'model' and 'spec').")
    if spec is not None:
        saved = ModelSpec.from_dict(payload["spec"])
        if saved != spec:
            diff = {k: (v, getattr(spec, k)) for k, v in saved.to_dict().items() if v != spec.to_dict()[k]}
            detail = ", ".join(f"{k}: checkpoint {a!r} vs expected {b!r}" for k, (a, b) in diff.items())
            raise ValueError(f"Checkpoint {str(path)!r} is from another architecture ({detail}).")
    return dict(payload)


def load_model(path: str | Path, *, device: str | torch.device = "cpu") -> SegmentationNet:
    """Build the network a checkpoint (or final ``model.pt``) describes and load its weights, in eval mode.

    Raises:
        ValueError: if the checkpoint cannot be read or its weights do not fit its architecture.
    """
    payload = load_checkpoint(path)
    spec = ModelSpec.from_dict(payload["spec"])
    model = build_model(spec)
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise ValueError(f"Checkpoint {str(path)!r} does not fit its recorded architecture: {first}") from None
    return model.to(device).eval()
