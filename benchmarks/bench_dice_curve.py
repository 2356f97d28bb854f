"""Exact Dice risk-coverage curve (every distinct threshold) vs a 100-threshold loop, ratio measured in one run.

    python benchmarks/bench_dice_curve.py [--repeats 3]

20 images of 775 x 522 pixels, 3 classes, about 8% wrong pixels near the structures' boundaries, float32
uncertainties with no ties. The loop keeps pixels below each of 100 thresholds (uncertainty quantiles),
substitutes the reference for the referred ones and recomputes every image's Dice: what one writes without the
library. Both are timed in alternation; the printed ratio is loop time / exact time (goal >= 20), with the load
average at start and end (a busy machine slows both, not by the same factor). The script also checks that the
exact curve gives the loop's Dice at its thresholds.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
from scipy.ndimage import gaussian_filter

from selectseg.metrics import selective_dice_curve

NUM_CLASSES = 3


def make_data(seed: int = 0, n: int = 20, shape: tuple[int, int] = (522, 775)):
    rng = np.random.default_rng(seed)
    preds, targets, uncs = [], [], []
    for _ in range(n):
        field = gaussian_filter(rng.normal(size=shape), sigma=20)
        field /= field.std()
        edges = np.quantile(field, [0.6, 0.85])
        target = np.digitize(field, edges).astype(np.int64)
        noisy = field + gaussian_filter(rng.normal(size=shape), sigma=2) * 0.6
        pred = np.digitize(noisy, edges).astype(np.int64)
        margin = np.abs(noisy[..., None] - edges).min(-1)
        unc = (np.exp(-margin * 5) * 0.6 + rng.random(shape) * 0.05).astype(np.float32)
        preds.append(pred)
        targets.append(target)
        uncs.append(unc)
    return preds, targets, uncs


def loop_curve(preds, targets, uncs, thresholds):
    out = []
    for t in thresholds:
        dice = []
        for p, y, u in zip(preds, targets, uncs):
            sub = np.where(u <= t, p, y)
            scores = []
            for c in range(1, NUM_CLASSES):
                a, b = sub == c, y == c
                denominator = a.sum() + b.sum()
                scores.append(1.0 if denominator == 0 else 2.0 * (a & b).sum() / denominator)
            dice.append(np.mean(scores))
        out.append(np.mean(dice))
    return np.array(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    preds, targets, uncs = make_data()
    all_u = np.concatenate([u.ravel() for u in uncs])
    thresholds = np.quantile(all_u, np.linspace(0, 1, 100))
    wrong = np.mean(np.concatenate([(p != y).ravel() for p, y in zip(preds, targets)]))
    print(f"machine: {platform.machine()} {platform.processor()}, numpy {np.__version__}, {os.cpu_count()} CPUs")
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    distinct = np.unique(all_u).size
    print(f"data: 20 images 775x522, {all_u.size:,} pixels, {wrong:.1%} wrong, {distinct:,} distinct thresholds")
    times: dict[str, list[float]] = {"loop": [], "exact": []}
    for _ in range(args.repeats):
        start = time.perf_counter()
        loop = loop_curve(preds, targets, uncs, thresholds)
        times["loop"].append(time.perf_counter() - start)
        start = time.perf_counter()
        curve = selective_dice_curve(preds, targets, uncs, num_classes=NUM_CLASSES)
        times["exact"].append(time.perf_counter() - start)
    exact_at_loop = np.array([curve.at_threshold(float(t)).dice_mean for t in thresholds])
    error = np.max(np.abs(exact_at_loop - loop))
    loop_s, exact_s = statistics.median(times["loop"]), statistics.median(times["exact"])
    print(f"exact curve: {curve.coverage.size:,} stored points, AURC {curve.aurc:.6f}")
    print(f"max |exact Dice - loop Dice| at the loop's thresholds = {error:.2e}")
    print(
        f"100-threshold loop {loop_s:.2f} s, exact curve {exact_s:.3f} s | loop / exact = {loop_s / exact_s:.1f}x "
        "(goal >= 20)"
    )
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
