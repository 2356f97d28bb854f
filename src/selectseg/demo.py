"""A scripted example of the core metrics and loss on built-in synthetic data (no network is trained yet).

It simulates a segmentation model's softmax output on synthetic 2D images with noisy, ambiguous boundaries,
then compares uncertainty scores by the Dice risk-coverage curve (AURC, Dice at coverage) and evaluates the
uncertainty ranking loss exactly and as the authors' subsample. Used by ``make demo`` / ``selectseg demo``.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from .losses import uncertainty_ranking_loss
from .metrics import selective_dice_curve
from .uncertainty import get_score

__all__ = ["COVERAGES", "run_demo", "simulate_predictions"]

COVERAGES = (1.0, 0.95, 0.9, 0.8, 0.7)


def simulate_predictions(
    num_images: int = 12, size: int = 96, num_classes: int = 3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic labels and a simulated model's softmax probabilities, deterministic from ``seed``.

    Each image holds ``num_classes - 1`` blobs with smoothly perturbed outlines; the simulated model sees a
    blurred, noisy version of the labels, so its errors and its doubt concentrate on the boundaries.

    Shape:
        Returns labels ``(N, H, W)`` int64 and probabilities ``(N, K, H, W)`` float32, ``H = W = size``.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    labels = np.zeros((num_images, size, size), dtype=np.int64)
    for i in range(num_images):
        for c in range(1, num_classes):
            cy, cx = rng.uniform(0.25, 0.75, 2)
            ry, rx = rng.uniform(0.1, 0.25, 2)
            wobble = gaussian_filter(rng.normal(0, 1, (size, size)), sigma=size / 10) * 4
            inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 + wobble < 1
            labels[i][inside] = c
    one_hot = np.eye(num_classes, dtype=np.float64)[labels].transpose(0, 3, 1, 2)
    logits = np.stack([[gaussian_filter(ch, sigma=2.0) for ch in img] for img in one_hot]) * 6.0
    logits += rng.normal(0, 2.5, logits.shape)
    probs = torch.from_numpy(logits).float().softmax(dim=1).numpy()
    return labels, probs


def run_demo(out_dir: str | Path, *, seed: int = 0, num_images: int = 12, size: int = 96) -> dict[str, Any]:
    """Run the scripted example, write ``summary.json`` and ``curves.csv`` into ``out_dir``, return the summary."""
    labels, probs = simulate_predictions(num_images=num_images, size=size, seed=seed)
    num_classes = probs.shape[1]
    preds = probs.argmax(axis=1)
    probs_t = torch.from_numpy(probs)
    rng = np.random.default_rng(seed + 1)
    scores = {
        "max_softmax": get_score("max_softmax")(probs_t).numpy(),
        "entropy": get_score("entropy")(probs_t).numpy(),
        "random (control)": rng.random(preds.shape).astype(np.float32),
        "oracle (errors last)": (preds != labels).astype(np.float32) + rng.random(preds.shape).astype(np.float32) * 0.5,
    }
    rows, curves = [], {}
    for name, unc in scores.items():
        curve = selective_dice_curve(list(preds), list(labels), list(unc), num_classes=num_classes)
        points = {c: curve.at_coverage(c) for c in COVERAGES}
        rows.append(
            {
                "uncertainty": name,
                "aurc": curve.aurc,
                **{f"dice@{c}": points[c].dice_mean for c in COVERAGES},
                **{f"dice_std@{c}": points[c].dice_std for c in COVERAGES},
                **{f"dice_p5@{c}": points[c].dice_p5 for c in COVERAGES},
            }
        )
        curves[name] = curve

    u = torch.from_numpy(scores["max_softmax"])
    correct = torch.from_numpy(preds == labels)
    timings = {}
    losses = {}
    for mode in ("exact", "sampled"):
        start = time.perf_counter()
        value = uncertainty_ranking_loss(u, correct, mode=mode, generator=torch.Generator().manual_seed(seed))
        timings[mode] = time.perf_counter() - start
        losses[mode] = float(value)
    summary = {
        "data": {"images": num_images, "size": [size, size], "classes": num_classes, "seed": seed},
        "pixel_accuracy": float(correct.float().mean()),
        "table": rows,
        "ranking_loss": {
            "exact": losses["exact"],
            "sampled_300x6600": losses["sampled"],
            "pairs_exact": int((~correct).sum()) * int(correct.sum()),
            "seconds": timings,
        },
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_atomic(out / "summary.json", json.dumps(summary, indent=2))
    lines = [["uncertainty", "threshold", "coverage", "dice"]]
    for name, curve in curves.items():
        step = max(1, curve.coverage.size // 500)
        idx = np.unique(np.r_[np.arange(0, curve.coverage.size, step), curve.coverage.size - 1])
        lines += [[name, f"{curve.thresholds[i]:.9g}", f"{curve.coverage[i]:.9g}", f"{curve.dice[i]:.9g}"] for i in idx]
    with tempfile.NamedTemporaryFile("w", dir=out, delete=False, newline="", suffix=".tmp") as handle:
        csv.writer(handle).writerows(lines)
    os.replace(handle.name, out / "curves.csv")
    return summary


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename, so a killed run never leaves half a file."""
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
        handle.write(text)
    os.replace(handle.name, path)
