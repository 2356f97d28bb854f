"""GlaS (Ding et al. 2020, Table 1 / Fig. 3): baseline vs uncertainty-aware training, sampled and exact.

    python experiments/glas.py --data ../shared/data/glas --out results/glas

Trains a 2D U-Net on ``train_*`` and evaluates on ``testA_*`` (or on ``--test`` when given), three methods (baseline,
the authors' sampled ranking loss, the exact all-pairs loss) x the seeds, same network, data, budget and seeds; only
the loss differs. Writes OUT/<method>_s<seed>/ (training run + evaluation), OUT/report.html (every run, baseline seed 0
the reference), OUT/summary.json and OUT/results.md (the tables of docs/results.md). Runs on the GPU when there is one
(device "auto"); an interrupted run resumes when the same command is run again.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy import stats

from _common import (
    TABLE1,
    evaluate_run,
    image_dice,
    load_resized,
    log,
    markdown_table,
    prepare_data,
    table_row,
    train_run,
    write_outputs,
)
from selectseg.report import write_report
from selectseg.training import load_config

METHODS = {"baseline": "none", "sampled": "sampled", "exact": "exact"}
"""The compared methods: name -> ``loss.ranking``. Each also exists as ``<name>_2stage`` (ranking loss added after
``--ranking-start-epoch`` epochs of segmentation loss alone; Ding et al. Appendix C), run when asked for."""
DEFAULT_METHODS = ("baseline", "sampled", "exact")


def method_overrides(method: str, start_epoch: int) -> list[str]:
    """The config overrides of a method name (``baseline``, ``sampled``, ``exact``, ``sampled_2stage``, ...)."""
    base, _, variant = method.partition("_")
    if base not in METHODS or variant not in ("", "2stage") or (base == "baseline" and variant):
        names = [*METHODS, "sampled_2stage", "exact_2stage"]
        raise ValueError(f"Expected --methods from {names}, but got {method!r}.")
    overrides = [f"loss.ranking={METHODS[base]}"]
    if variant == "2stage":
        overrides.append(f"loss.ranking_start_epoch={start_epoch}")
    return overrides


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="GlaS folder: training cases train_* (and testA_*).")
    parser.add_argument("--test", type=Path, default=None, help="Test folder (default: the testA_*/testB_* of --data).")
    parser.add_argument("--out", type=Path, required=True, help="Output folder (created; resumes when it exists).")
    parser.add_argument("--scale", type=float, default=0.5, help="Resize factor of the images (CPU budget: 0.5).")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--samples-per-epoch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (the paper: 2e-4).")
    parser.add_argument("--channels", default="16,32,64,128", help="U-Net channels per level.")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        help="Comma-separated: baseline, sampled, exact, sampled_2stage, exact_2stage.",
    )
    parser.add_argument(
        "--ranking-start-epoch", type=int, default=30, help="Epochs of segmentation loss alone for *_2stage methods."
    )
    parser.add_argument("--limit", type=int, default=0, help="Use only the first N train and test cases (smoke runs).")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    started = time.perf_counter()
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = [m for m in args.methods.split(",") if m]
    for m in methods:
        method_overrides(m, args.ranking_start_epoch)
    settings = {
        "data": str(args.data.resolve()),
        "test": str((args.test or args.data).resolve()),
        "scale": args.scale,
        "limit": args.limit,
    }

    data_dir = args.out / "data"
    _, test = prepare_data(
        data_dir, settings, lambda: load_resized(args.data, args.test or args.data, "glas", args.scale, args.limit)
    )
    overrides = [
        f"data.path={data_dir}",
        "data.val_fraction=0.15",
        f"data.samples_per_epoch={args.samples_per_epoch}",
        f"model.channels=[{args.channels}]",
        f"optim.epochs={args.epochs}",
        f"optim.lr={args.lr}",
        "optim.batch_size=8",
        "val_every=5",
        "tensorboard=false",
    ]
    runs: list[tuple[str, int, Path]] = []
    train_seconds: dict[str, float] = {}
    evaluations: dict[str, dict] = {}
    for seed in seeds:
        for method in methods:
            name = f"{method}_s{seed}"
            run_dir = args.out / name
            config = load_config(
                None, [*overrides, *method_overrides(method, args.ranking_start_epoch), f"seed={seed}"]
            )
            log(f"train {name}")
            train_seconds[name] = train_run(config, run_dir)
            log(f"evaluate {name}")
            evaluations[name] = evaluate_run(run_dir, test.cases)
            runs.append((method, seed, run_dir))
    reference = next((i for i, (m, _, _) in enumerate(runs) if m == "baseline"), 0)
    log("report")
    write_report(
        [r for _, _, r in runs], args.out / "report.html", labels=[r.name for _, _, r in runs], reference=reference
    )

    # Table 1: one row per run, then the method means over seeds
    header = ["run", "AURC %"] + [f"Dice@{c} (± std, p5)" for c in TABLE1]
    rows, per_method = [], {}
    for method, _seed, run_dir in runs:
        row = table_row(evaluations[run_dir.name])
        per_method.setdefault(method, []).append(row)
        rows.append(
            [run_dir.name, f"{row['aurc_percent']:.3f}"]
            + [f"{row[f'dice@{c}']:.4f} ± {row[f'std@{c}']:.4f} ({row[f'p5@{c}']:.4f})" for c in TABLE1]
        )
    base = per_method.get("baseline")
    mean_rows = []
    for method, mrows in per_method.items():
        aurc = np.array([r["aurc_percent"] for r in mrows])
        change = ""
        if base and method != "baseline":
            b = np.mean([r["aurc_percent"] for r in base])
            change = f"{100 * (aurc.mean() - b) / b:+.1f}%"
        mean_rows.append(
            [method, len(mrows), f"{aurc.mean():.3f} ± {aurc.std(ddof=1) if len(aurc) > 1 else 0:.3f}", change]
            + [f"{np.mean([r[f'dice@{c}'] for r in mrows]):.4f}" for c in TABLE1]
        )

    # per-image comparison against the baseline of the same seed
    comparison = []
    for method, seed, run_dir in runs:
        if method == "baseline" or f"baseline_s{seed}" not in evaluations:
            continue
        for c in (1.0, 0.95, 0.9):
            d = image_dice(evaluations[run_dir.name], c) - image_dice(evaluations[f"baseline_s{seed}"], c)
            p = float(stats.wilcoxon(d).pvalue) if np.any(d != 0) and len(d) >= 2 else float("nan")
            comparison.append(
                [
                    run_dir.name,
                    c,
                    f"{d.mean():+.4f}",
                    int((d > 0).sum()),
                    int((d < 0).sum()),
                    int((d == 0).sum()),
                    f"{p:.3g}",
                ]
            )

    markdown = "### Table 1 (per run; Dice mean ± std over test images, 5th percentile in brackets)\n\n"
    markdown += markdown_table(header, rows)
    markdown += "\n### Means over seeds (AURC mean ± std over seeds; change of the mean vs the baseline)\n\n"
    markdown += markdown_table(["method", "seeds", "AURC %", "vs baseline"] + [f"Dice@{c}" for c in TABLE1], mean_rows)
    markdown += "\n### Per-image Dice against the baseline of the same seed (Wilcoxon signed-rank p)\n\n"
    markdown += markdown_table(["run", "coverage", "mean diff", "better", "worse", "equal", "p"], comparison)
    markdown += "\n### Calibration of the mean probabilities and compute\n\n"
    markdown += markdown_table(
        ["run", "ECE (top-label)", "NLL", "Brier", "training s"],
        [
            [
                name,
                f"{evaluations[name]['calibration']['ece_top_label']:.4f}",
                f"{evaluations[name]['calibration']['nll']:.4f}",
                f"{evaluations[name]['calibration']['brier']:.4f}",
                f"{seconds:.0f}",
            ]
            for name, seconds in train_seconds.items()
        ],
    )
    summary = {
        "settings": settings,
        "args": {k: str(v) for k, v in vars(args).items()},
        "overrides": overrides,
        "test_cases": [c.case_id for c in test.cases],
        "train_seconds": train_seconds,
        "table": {name: table_row(e) for name, e in evaluations.items()},
    }
    write_outputs(args.out, summary, markdown, started)
    return summary


if __name__ == "__main__":
    main()
