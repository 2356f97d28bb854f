"""GlaS (Ding et al. 2020, Table 1): does uncertainty-aware training help selective segmentation? A paired-seed study.

    python experiments/glas.py --data ../shared/data/glas --out runs/glas            # every study, resumable
    python experiments/glas.py --data ../shared/data/glas --out runs/glas --phase train --studies main

A training run (a seed) is the unit of replication. Every method of a seed starts from the same initial weights and
sees the same data order and augmentation (both come from the seed alone; only the loss differs), so methods are
compared by the paired difference per seed. Studies (each a list of (method, seed) runs, trained in this order):

- ``main``: baseline, the authors' sampled ranking loss (weight 2000), the exact loss (weight 2000) and the exact loss
  with the gradient-balanced weight (``--balance``), seeds ``--seeds``;
- ``dose``: the exact loss at weight 0 (the baseline through the same code), 20 and 200 (2000 is ``main``'s), and
  the balanced weight at other fractions, seeds ``--dose-seeds``;
- ``twostage``: the exact loss switched on half-way (Ding et al. Appendix C); its first half is the baseline's.

Every run is trained for ``--epochs`` (x ``--samples-per-epoch`` / 8 steps) with ``--schedule`` and snapshots at
``--budgets`` steps, and evaluated at each budget on its own validation images (for choosing settings) and on the
test images (for reporting). Each evaluation adds one record to ``OUT/ledger.jsonl`` (the study's small, committable
result: headline figures, their bootstrap CIs, training facts); a run whose records are all in the ledger is never
trained or evaluated again, so a study can be finished later, on another machine, from a copied ledger
(``--ledger``). ``experiments/glas_analysis.py`` turns a ledger into the tables of docs/results.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from _common import load_resized, log, machine, prepare_data, training_seconds
from selectseg._io import atomic_write_text
from selectseg.data import SegmentationDataset
from selectseg.evaluation import DEFAULT_COVERAGES, evaluate_cases, load_run
from selectseg.results import EvaluationResult, _json
from selectseg.training import load_config, train

STEPS_PER_EPOCH_BATCH = 8
LEDGER_FIELDS = ("aurc", "oracle_aurc", "excess_aurc", "error_auroc", "augrc")
"""Top-level figures of ``evaluation.json`` copied into the ledger (missing ones as None)."""


def method_overrides(method: str, *, epochs: int, balance: float) -> list[str]:
    """The config overrides of a method name.

    ``baseline``; ``sampled`` / ``exact`` (weight 2000); ``exact_wW`` (weight W); ``balanced`` (exact loss, balanced
    weight at ``balance``); ``balanced_fF`` (at fraction F); ``exact_2stage`` (exact loss from epoch ``epochs // 2``).

    Raises:
        ValueError: on an unknown method name.
    """
    if method == "baseline":
        return ["loss.ranking=none"]
    if method in ("sampled", "exact"):
        return [f"loss.ranking={method}"]
    if method == "exact_2stage":
        return ["loss.ranking=exact", f"loss.ranking_start_epoch={epochs // 2}"]
    if method == "balanced":
        return ["loss.ranking=exact", f"loss.ranking_balance={balance}"]
    for prefix, key in (("exact_w", "loss.ranking_weight"), ("balanced_f", "loss.ranking_balance")):
        if method.startswith(prefix):
            try:
                value = float(method[len(prefix) :])
            except ValueError:
                break
            if value >= 0 and not (prefix == "balanced_f" and value == 0):
                return ["loss.ranking=exact", f"{key}={value:g}"]
    raise ValueError(
        f"Expected a method among baseline, sampled, exact, exact_w<weight>, balanced, balanced_f<fraction>, "
        f"exact_2stage, but got {method!r}."
    )


def study_jobs(args: argparse.Namespace) -> list[tuple[str, str, int]]:
    """``(study, method, seed)`` in training order: seed-major within a study, so that an unfinished study still
    has every method on its first seeds."""
    seeds = _ints(args.seeds)
    dose_seeds = _ints(args.dose_seeds)
    studies = {
        "main": [(m, s) for s in seeds for m in ("baseline", "exact", "balanced", "sampled")],
        "dose": [(m, s) for s in dose_seeds for m in _names(args.dose_methods)],
        "twostage": [("exact_2stage", s) for s in seeds],
    }
    out, seen = [], set()
    for study in _names(args.studies):
        if study not in studies:
            raise ValueError(f"Expected --studies from {sorted(studies)}, but got {study!r}.")
        for method, seed in studies[study]:
            method_overrides(method, epochs=args.epochs, balance=args.balance)  # names checked up front
            if (method, seed) not in seen:
                seen.add((method, seed))
                out.append((study, method, seed))
    return out


def _ints(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s.strip()]


def _names(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def read_ledger(path: Path) -> list[dict[str, Any]]:
    """Every record of a ledger file (none when it does not exist)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def append_ledger(path: Path, records: list[dict[str, Any]]) -> None:
    """Add records to the ledger, rewriting it atomically (a killed write leaves the previous ledger)."""
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in [*read_ledger(path), *records])
    atomic_write_text(path, text)


def evaluation_record(evaluation: EvaluationResult) -> dict[str, Any]:
    """The ledger's copy of one evaluation: headline figures, CIs, Dice at coverage, calibration (JSON types, NaN as
    null)."""
    content = _json.encode(evaluation.to_json())
    record: dict[str, Any] = {key: content.get(key) for key in LEDGER_FIELDS}
    record["aurc_ci"] = content.get("aurc_ci")
    record["bootstrap"] = content.get("bootstrap")
    for point in content["table"]:
        c = round(point["target_coverage"], 6)
        record[f"dice@{c:g}"] = point["dice_mean"]
        record[f"dice_ci@{c:g}"] = point.get("dice_ci")
        record[f"coverage@{c:g}"] = point["coverage"]
    calibration = content.get("calibration") or {}
    for key in ("ece_top_label", "nll", "brier"):
        record[key] = calibration.get(key)
    record["reference_sha256"] = content.get("reference_sha256")
    return record


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="GlaS folder: training cases train_* (and testA_*).")
    parser.add_argument("--test", type=Path, default=None, help="Test folder (default: the testA_*/testB_* of --data).")
    parser.add_argument("--out", type=Path, required=True, help="Output folder (created; resumes when it exists).")
    parser.add_argument("--ledger", type=Path, default=None, help="Ledger file (default OUT/ledger.jsonl).")
    parser.add_argument("--phase", choices=("train", "all"), default="all", help="train only, or train + evaluate.")
    parser.add_argument("--studies", default="main,dose,twostage", help="Comma-separated: main, dose, twostage.")
    parser.add_argument("--scale", type=float, default=0.25, help="Resize factor of the images (CPU budget).")
    parser.add_argument("--epochs", type=int, default=240, help="Epochs (of --samples-per-epoch / 8 steps).")
    parser.add_argument("--budgets", default="480,960", help="Earlier budgets (steps) also evaluated (snapshots).")
    parser.add_argument("--samples-per-epoch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=5e-4, help="Adam base learning rate (the paper: 2e-4).")
    parser.add_argument("--schedule", default="poly", help="Learning-rate schedule: constant, cosine, poly.")
    parser.add_argument("--segmentation", default="ce", help="Segmentation loss (the authors' code: CE).")
    parser.add_argument("--balance", type=float, default=0.25, help="Fraction of the 'balanced' method.")
    parser.add_argument("--channels", default="16,32,64,128", help="U-Net channels per level.")
    parser.add_argument("--seeds", default="0,1,2,3,4,5", help="Seeds of the main and two-stage studies.")
    parser.add_argument("--dose-seeds", default="0,1,2")
    parser.add_argument("--dose-methods", default="exact_w0,exact_w20,exact_w200,balanced_f0.05,balanced_f1")
    parser.add_argument("--bootstrap", type=int, default=1000, help="Bootstrap resamples of each evaluation's CIs.")
    parser.add_argument("--limit", type=int, default=0, help="Use only the first N train and test cases (smoke runs).")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse_args(argv)
    started = time.perf_counter()
    jobs = study_jobs(args)
    steps_per_epoch = max(1, args.samples_per_epoch // STEPS_PER_EPOCH_BATCH)
    budgets = sorted({int(b) for b in _ints(args.budgets)} | {args.epochs * steps_per_epoch})
    for b in budgets:
        if b % steps_per_epoch or not 0 < b <= args.epochs * steps_per_epoch:
            raise ValueError(f"Expected --budgets that are whole epochs within the run, but got {b} steps.")
    ledger_path = args.ledger or args.out / "ledger.jsonl"
    settings = {
        "data": str(args.data.resolve()),
        "test": str((args.test or args.data).resolve()),
        "scale": args.scale,
        "limit": args.limit,
    }
    data_dir = args.out / "data"
    train_set, test = prepare_data(
        data_dir, settings, lambda: load_resized(args.data, args.test or args.data, "glas", args.scale, args.limit)
    )
    common = [
        f"data.path={data_dir}",
        "data.val_fraction=0.15",
        f"data.samples_per_epoch={args.samples_per_epoch}",
        f"model.channels=[{args.channels}]",
        f"loss.segmentation={args.segmentation}",
        "loss.grad_norm_every=16",
        f"optim.epochs={args.epochs}",
        f"optim.lr={args.lr}",
        f"optim.schedule={args.schedule}",
        f"optim.batch_size={STEPS_PER_EPOCH_BATCH}",
        f"snapshot_epochs=[{','.join(str(b // steps_per_epoch) for b in budgets[:-1])}]",
        "val_every=10",
        "tensorboard=false",
    ]
    done = {(r["method"], r["seed"], r["steps"], r["split"]) for r in read_ledger(ledger_path)}
    for study, method, seed in jobs:
        name = f"{method}_s{seed}"
        wanted = [(method, seed, b, split) for b in budgets for split in ("validation", "test")]
        if all(key in done for key in wanted):
            continue
        run_dir = args.out / name
        config = load_config(
            None, [*common, *method_overrides(method, epochs=args.epochs, balance=args.balance), f"seed={seed}"]
        )
        log(f"train {name} ({study})")
        train(config, run_dir, resume=(run_dir / "config.yaml").is_file())
        if args.phase == "train":
            continue
        records = _evaluate(run_dir, study, method, seed, budgets, steps_per_epoch, train_set, test, args.bootstrap)
        append_ledger(ledger_path, [r for r in records if (r["method"], r["seed"], r["steps"], r["split"]) not in done])
        done |= {(r["method"], r["seed"], r["steps"], r["split"]) for r in records}
    log(f"finished in {(time.perf_counter() - started) / 60:.1f} min; ledger: {ledger_path}")
    return read_ledger(ledger_path)


def _evaluate(
    run_dir: Path,
    study: str,
    method: str,
    seed: int,
    budgets: list[int],
    steps_per_epoch: int,
    train_set: SegmentationDataset,
    test: SegmentationDataset,
    n_bootstrap: int,
) -> list[dict[str, Any]]:
    info = json.loads((run_dir / "run.json").read_text())
    by_id = {c.case_id: c for c in train_set.cases}
    splits = {"validation": [by_id[i] for i in info["val_cases"]], "test": list(test.cases)}
    records = []
    for steps in budgets:
        epoch = steps // steps_per_epoch
        final = epoch == budgets[-1] // steps_per_epoch
        run = load_run(run_dir, snapshot=None if final else epoch)
        for split, cases in splits.items():
            log(f"evaluate {run_dir.name} at {steps} steps on {split} ({len(cases)} images)")
            evaluation = evaluate_cases(
                run,
                cases,
                run_dir / f"evaluation_{split}_{steps}",
                coverages=DEFAULT_COVERAGES,
                n_resamples=n_bootstrap if len(cases) >= 2 else 0,  # one image: no interval
                bootstrap_seed=seed,
            )
            record = evaluation_record(evaluation)
            record.update(
                study=study,
                method=method,
                seed=seed,
                steps=steps,
                split=split,
                cases=[c.case_id for c in cases],
                train_seconds=training_seconds(run_dir, until_epoch=epoch),
                machine=machine()["platform"],
            )
            records.append(record)
    return records


if __name__ == "__main__":
    main()
