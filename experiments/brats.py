"""BraTS 3D: baseline vs uncertainty-aware (exact ranking loss) training, sliding-window inference, NIfTI out.

    python experiments/brats.py --data ../shared/data/brats --out results/brats

Trains a 3D U-Net on the ``train`` cases and evaluates on the ``validation`` (test) cases of a BraTS folder (or on
``--test``), all modalities present in every case as channels, labels 0-4 as classes. Volumes are resampled by
``--scale`` (the affine follows) and inference runs MONAI sliding windows of the training patch size. Writes
OUT/<method>/ (run, evaluation, predictions/ as NIfTI with the resampled geometry and a referral mask at coverage
0.9), OUT/report.html, OUT/summary.json and OUT/results.md. GPU when there is one; resumes when run again.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _common import (
    TABLE1,
    evaluate_run,
    load_resized,
    log,
    markdown_table,
    prepare_data,
    table_row,
    train_run,
    write_outputs,
)
from selectseg.evaluation import load_run
from selectseg.evaluation.predict import predict_cases
from selectseg.report import write_report
from selectseg.training import load_config

METHODS = {"baseline": "none", "exact": "exact", "sampled": "sampled"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="BraTS folder (train/ and validation/ cases).")
    parser.add_argument("--test", type=Path, default=None, help="Test folder (default: the test split of --data).")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--scale", type=float, default=0.5, help="Resampling factor of the 240x240x155 volumes.")
    parser.add_argument("--patch", type=int, default=64, help="Cubic training patch = sliding window size.")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--samples-per-epoch", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--channels", default="8,16,32,64")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", default="baseline,exact")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    started = time.perf_counter()
    methods = [m for m in args.methods.split(",") if m]
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"Expected --methods from {list(METHODS)}, but got {m!r}.")
    settings = {"data": str(args.data.resolve()), "test": str((args.test or args.data).resolve()), "scale": args.scale}

    data_dir = args.out / "data"
    train_set, test = prepare_data(
        data_dir, settings, lambda: load_resized(args.data, args.test or args.data, "brats", args.scale)
    )
    overrides = [
        f"data.path={data_dir}",
        "data.val_fraction=0",
        f"data.patch_size=[{args.patch},{args.patch},{args.patch}]",
        f"data.samples_per_epoch={args.samples_per_epoch}",
        f"model.channels=[{args.channels}]",
        "model.num_res_units=1",
        f"optim.epochs={args.epochs}",
        f"optim.lr={args.lr}",
        f"optim.batch_size={args.batch_size}",
        "val_every=0",
        "tensorboard=false",
        f"seed={args.seed}",
    ]
    rows, run_dirs, train_seconds, table = [], [], {}, {}
    for method in methods:
        run_dir = args.out / method
        log(f"train {method}")
        train_seconds[method] = train_run(load_config(None, [*overrides, f"loss.ranking={METHODS[method]}"]), run_dir)
        log(f"evaluate {method}")
        evaluation = evaluate_run(run_dir, test.cases)
        if not (run_dir / "predictions" / "predictions.json").is_file():
            log(f"predict {method}")
            predict_cases(load_run(run_dir), list(test.cases), run_dir / "predictions", coverage=0.9)
        row = table_row(evaluation)
        table[method] = row
        run_dirs.append(run_dir)
        rows.append(
            [method, f"{row['aurc_percent']:.3f}"]
            + [f"{row[f'dice@{c}']:.4f} ({row[f'coverage@{c}']:.3f})" for c in TABLE1]
            + [f"{train_seconds[method]:.0f}"]
        )
    write_report(run_dirs, args.out / "report.html", labels=methods)
    markdown = (
        f"{len(train_set)} training and {len(test)} test volumes of shape "
        f"{test.cases[0].spatial_shape}, spacing {tuple(round(s, 3) for s in test.cases[0].spacing)}.\n\n"
    )
    markdown += markdown_table(["method", "AURC %"] + [f"Dice@{c} (coverage)" for c in TABLE1] + ["training s"], rows)
    summary = {
        "settings": settings,
        "overrides": overrides,
        "train_seconds": train_seconds,
        "table": table,
        "test_cases": [c.case_id for c in test.cases],
    }
    write_outputs(args.out, summary, markdown, started)
    return summary


if __name__ == "__main__":
    main()
