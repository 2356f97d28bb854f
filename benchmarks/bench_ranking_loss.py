"""Exact vs sampled uncertainty ranking loss: forward + backward on one batch, ratios measured in one run.

    python benchmarks/bench_ranking_loss.py [--device cpu|cuda] [--repeats 9] [--floor PATH]

Batch 8 x 64^3 voxels (float32), uncertainty ~ U(0, 0.5) independent of correctness (the worst case for the
exact loss: every correct voxel sits among the wrong voxels' thresholds), wrong fractions 1, 5, 20, 50 and 90 %,
plus a "trained-like" batch at 5 % (correct voxels mostly sure: 0.5 * Beta(1, 20)). For each batch the exact
loss, the authors' sampled 300 x 6600 loss and, on the CPU, the reference floor (an outside implementation of the
same exact loss, ``/work/shared/tools/ranking_floor.py``, loaded by path and only here) run interleaved; the
ratios of their medians are printed. The machine's load average is printed at the start and the end.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import torch

from selectseg.losses import uncertainty_ranking_loss

FLOOR = Path("/work/shared/tools/ranking_floor.py")
FRACTIONS = (0.01, 0.05, 0.20, 0.50, 0.90)
Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def make_batch(wrong_fraction: float, regime: str, device: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shape = (8, 64, 64, 64)
    correct = torch.rand(shape, generator=g) >= wrong_fraction
    if regime == "unrelated":
        u = torch.rand(shape, generator=g) * 0.5
    else:
        sure = torch.distributions.Beta(1.0, 20.0).sample(shape) * 0.5
        u = torch.where(correct, sure, torch.rand(shape, generator=g) * 0.5)
    return u.to(device), correct.to(device)


def load_floor(path: Path) -> ModuleType | None:
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("ranking_floor", path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def step(fn: Loss, u0: torch.Tensor, correct: torch.Tensor) -> float:
    u = u0.detach().clone().requires_grad_(True)  # the copy is outside the timed region
    if u0.is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn(u, correct).backward()
    if u0.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--floor", type=Path, default=FLOOR, help="the reference floor script (CPU only)")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: CUDA is not available here; nothing measured.")
        return
    name = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or platform.machine()
    print(
        f"device: {args.device} ({name}), torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"nproc {os.cpu_count()}, python {sys.version.split()[0]}"
    )
    print(f"load average at start: {loadavg()}")
    floor = load_floor(args.floor) if args.device == "cpu" else None
    if floor is None:
        why = "CPU only" if args.device != "cpu" else f"{args.floor} is absent"
        print(f"exact / reference floor: skipped ({why})")
    g = torch.Generator(device=args.device).manual_seed(0)
    losses: dict[str, Loss] = {
        "exact": lambda u, ok: uncertainty_ranking_loss(u, ok, mode="exact"),
        "sampled": lambda u, ok: uncertainty_ranking_loss(u, ok, mode="sampled", generator=g),
    }
    if floor is not None:
        losses["floor"] = lambda u, ok: floor.exact_ranking_loss(u, ok, 0.1, "mean")
    print(f"forward + backward, medians of {args.repeats} interleaved repeats")
    batches = [(f, "unrelated") for f in FRACTIONS] + [(0.05, "trained-like")]
    for fraction, regime in batches:
        u, correct = make_batch(fraction, regime, args.device)
        for fn in losses.values():  # warm-up
            step(fn, u, correct)
        times: dict[str, list[float]] = {key: [] for key in losses}
        for _ in range(args.repeats):
            for key, fn in losses.items():
                times[key].append(step(fn, u, correct))
        med = {key: statistics.median(t) for key, t in times.items()}
        line = (
            f"{regime:>12} {fraction:4.0%} wrong: exact {med['exact'] * 1e3:6.1f} ms, sampled 300x6600 "
            f"{med['sampled'] * 1e3:6.1f} ms, exact / sampled = {med['exact'] / med['sampled']:.2f}x"
        )
        if "floor" in med:
            line += f" | floor {med['floor'] * 1e3:6.1f} ms, exact / floor = {med['exact'] / med['floor']:.2f}x"
        print(line, flush=True)
    print(f"load average at end: {loadavg()}")
    print("goals: exact / sampled <= 0.5x at 5 % and <= 1.0x at every fraction; exact / floor <= 1.3x")


if __name__ == "__main__":
    main()
