"""Exact vs sampled uncertainty ranking loss: forward + backward on one batch, ratio measured in one run.

    python benchmarks/bench_ranking_loss.py [--device cpu|cuda] [--repeats 15]

Batch 8 x 64^3 voxels, 5% wrong. Two uncertainty regimes:
- "unrelated": uncertainty ~ U(0, 0.5) for every voxel, independent of correctness (the worst case: almost every
  correct voxel sits between the wrong voxels' thresholds, so all of them are sorted);
- "trained-like": correct voxels mostly sure (0.5 * Beta(1, 20)), wrong ones spread over U(0, 0.5).
Exact and sampled runs are interleaved and the ratio of their medians is printed (the machine is noisy).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from selectseg.losses import uncertainty_ranking_loss


def make_batch(regime: str, device: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shape = (8, 64, 64, 64)
    correct = torch.rand(shape, generator=g) >= 0.05
    if regime == "unrelated":
        u = torch.rand(shape, generator=g) * 0.5
    else:
        sure = torch.distributions.Beta(1.0, 20.0).sample(shape) * 0.5
        u = torch.where(correct, sure, torch.rand(shape, generator=g) * 0.5)
    return u.to(device), correct.to(device)


def step(u0: torch.Tensor, correct: torch.Tensor, mode: str, generator: torch.Generator) -> float:
    if u0.is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    u = u0.detach().requires_grad_(True)
    loss = uncertainty_ranking_loss(u, correct, mode=mode, generator=generator)
    loss.backward()
    if u0.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    name = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or platform.machine()
    print(f"device: {args.device} ({name}), torch {torch.__version__}, threads {torch.get_num_threads()}")
    for regime in ("unrelated", "trained-like"):
        u, correct = make_batch(regime, args.device)
        n_w = int((~correct).sum())
        n_c = correct.numel() - n_w
        g = torch.Generator(device=args.device).manual_seed(0)
        for mode in ("exact", "sampled"):  # warm-up
            step(u, correct, mode, g)
        times: dict[str, list[float]] = {"exact": [], "sampled": []}
        for _ in range(args.repeats):
            for mode in ("exact", "sampled"):
                times[mode].append(step(u, correct, mode, g))
        exact, sampled = statistics.median(times["exact"]), statistics.median(times["sampled"])
        print(
            f"{regime:>12}: {correct.numel():,} voxels, {n_w:,} wrong, {n_w * n_c:.3g} pairs | "
            f"exact {exact * 1e3:.1f} ms, sampled 300x6600 {sampled * 1e3:.1f} ms | "
            f"exact / sampled = {exact / sampled:.2f}x (goal <= 1.0)"
        )


if __name__ == "__main__":
    main()
