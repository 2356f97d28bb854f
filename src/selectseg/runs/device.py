"""Device resolution shared by training and inference."""

from __future__ import annotations

import os

import torch

__all__ = ["is_main_process", "resolve_device"]


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``"auto"`` -> CUDA (this process's local GPU) when available, else CPU; otherwise ``torch.device(name)``.

    Raises:
        ValueError: if the name is not a device or names CUDA where there is none.
    """
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"Expected `device` to be 'auto', 'cpu' or 'cuda[:N]', but got {name!r}.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"`device` is {name!r} but CUDA is not available on this machine; use 'cpu' or 'auto'.")
    if device.type == "cuda" and device.index is None:
        device = torch.device(f"cuda:{local_rank}")
    return device


def is_main_process() -> bool:
    """Whether this process speaks for the job: rank 0 under ``torchrun`` (env ``RANK``), or a single process."""
    return os.environ.get("RANK", "0") == "0"
