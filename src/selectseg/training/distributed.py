"""Data-parallel training through PyTorch's own engine: ``torchrun`` + ``DistributedDataParallel``.

Launch ``torchrun --nproc_per_node N -m selectseg train ...`` (or ``--nnodes``/``--rdzv-endpoint`` for several
machines); ``torchrun`` sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` and :func:`init_distributed` joins the
process group: NCCL on CUDA, gloo on CPU. Without those variables training runs in one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from ..runs.device import is_main_process, resolve_device

__all__ = ["DistributedContext", "init_distributed", "is_main_process", "resolve_device"]


@dataclass(frozen=True)
class DistributedContext:
    """This process's place in the job: ``rank`` of ``world_size`` processes, and its device."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        """True on the process that writes files and logs (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when more than one process trains."""
        return self.world_size > 1

    def barrier(self) -> None:
        """Wait for every process (no-op in a single process)."""
        if self.distributed:
            dist.barrier()

    def mean(self, values: list[float]) -> list[float]:
        """Mean of each value over the processes (identity in a single process)."""
        if not self.distributed:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return (tensor / self.world_size).tolist()

    def close(self) -> None:
        """Leave the process group if this context joined it."""
        if self.initialized_here and dist.is_initialized():
            dist.destroy_process_group()


def init_distributed(device: str = "auto") -> DistributedContext:
    """Join the process group set up by ``torchrun`` (env ``WORLD_SIZE`` > 1), or return a single-process context.

    Raises:
        ValueError: if ``device`` is invalid.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    resolved = resolve_device(device, local_rank)
    if world_size <= 1:
        return DistributedContext(device=resolved)
    joined = False
    if not dist.is_initialized():
        if resolved.type == "cuda":
            torch.cuda.set_device(resolved)
        dist.init_process_group(backend="nccl" if resolved.type == "cuda" else "gloo")
        joined = True
    return DistributedContext(rank=rank, world_size=world_size, device=resolved, initialized_here=joined)
