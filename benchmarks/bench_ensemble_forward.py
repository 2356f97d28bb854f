"""One layer-ensemble / EDUE forward pass (all heads of one multi-head U-Net) vs a 5-member deep ensemble.

    python benchmarks/bench_ensemble_forward.py [--device cpu|cuda] [--repeats 11] [--dims 2|3]

Same batch for both: 2D batch 8 x 256x256 (or 3D batch 2 x 96^3), 2 classes, channels 16-32-64-128. The deep
ensemble is 5 MONAI DynUNets (`dynunet`) run one after another; the layer ensemble is one `multihead_unet` (the same
DynUNet plus a 1x1-conv head at each decoder depth) returning all heads. Inference only (no_grad, eval mode), both
through selectseg's estimators; interleaved; the ratio of medians is printed.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from selectseg.models import ModelSpec, build_model
from selectseg.uncertainty import build_estimator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--dims", type=int, default=2, choices=[2, 3])
    args = parser.parse_args()
    device = torch.device(args.device)
    shape = (8, 1, 256, 256) if args.dims == 2 else (2, 1, 96, 96, 96)
    image = torch.randn(shape, device=device)
    spec = {"spatial_dims": args.dims, "channels": (16, 32, 64, 128), "num_classes": 2}
    torch.manual_seed(0)
    members = [build_model(ModelSpec(name="dynunet", **spec)).to(device) for _ in range(5)]
    heads = build_model(ModelSpec(name="multihead_unet", **spec)).to(device)
    estimators = {
        "deep ensemble (5 members)": build_estimator("ensemble", members),
        "layer ensemble / EDUE (1 pass)": build_estimator("layer_ensemble", heads),
    }

    def run(name: str) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        estimators[name](image)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    for name in estimators:
        run(name)
    times: dict[str, list[float]] = {name: [] for name in estimators}
    for _ in range(args.repeats):
        for name in estimators:
            times[name].append(run(name))
    print(f"machine: {platform.machine()} threads={torch.get_num_threads()} device={device}; batch {tuple(shape)}")
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, value in medians.items():
        print(f"{name:32s} median {value * 1e3:8.1f} ms  (min {min(times[name]) * 1e3:.1f})")
    de, le = medians["deep ensemble (5 members)"], medians["layer ensemble / EDUE (1 pass)"]
    print(f"ratio deep ensemble / layer ensemble = {de / le:.2f}x")


if __name__ == "__main__":
    main()
