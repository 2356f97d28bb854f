"""RIGA (Abutalip et al. 2024, EDUE): EDUE vs layer ensembles vs a deep ensemble vs MC dropout, optic disc and cup.

    python experiments/riga.py --data ../shared/data/riga --out results/riga

RIGA has no official test split: the cases are split by case (seeded; ``--test-cases`` of them held out). One binary
network per structure (disc, cup) and method, all on the same backbone (``multihead_unet``: MONAI DynUNet with a
segmentation head at every decoder depth), trained with a random annotator as the target of each sample and iteration:

- ``edue``: the loss over every head + the guidance loss (heads' variance vs the annotators' variance); one pass.
- ``layer_ensemble``: the loss over every head; one pass.
- ``deep_ensemble``: 5 networks trained on the main output, seeds seed..seed+4; five passes.
- ``mc_dropout``: one network with dropout, trained on the main output; ``--mc-samples`` passes with dropout on.

Uncertainty for every method: the members' (heads', networks', samples') foreground variance, against the 6
annotators' variance m(1 - m). Writes OUT/<structure>/<method>/ (runs + evaluation), OUT/<structure>/report.html,
OUT/summary.json and OUT/results.md. GPU when there is one; an interrupted run resumes when run again.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from _common import (
    evaluate_run,
    inference_seconds,
    log,
    markdown_table,
    prepare_data,
    train_run,
    write_outputs,
)
from selectseg.data import Case, DatasetInfo, SegmentationDataset
from selectseg.data.riga import RIGA_CLASSES, load_riga
from selectseg.report import write_report
from selectseg.training import load_config

STRUCTURES = ("disc", "cup")
METHODS = ("edue", "layer_ensemble", "deep_ensemble", "mc_dropout")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="RIGA folder (BinRushed2 or a folder of cases).")
    parser.add_argument("--out", type=Path, required=True, help="Output folder (created; resumes when it exists).")
    parser.add_argument("--scale", type=float, default=0.125, help="Resize factor of the 2376x1584 photos.")
    parser.add_argument("--test-cases", type=int, default=10, help="Cases held out for testing.")
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--samples-per-epoch", type=int, default=48)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--channels", default="8,16,32,64", help="Network channels per level (CPU budget).")
    parser.add_argument("--members", type=int, default=5, help="Deep-ensemble size.")
    parser.add_argument("--dropout", type=float, default=0.2, help="Dropout of the MC-dropout network.")
    parser.add_argument("--mc-samples", type=int, default=10)
    parser.add_argument("--guidance-weight", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--structures", default=",".join(STRUCTURES))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--limit", type=int, default=0, help="Use only the first N cases (smoke runs).")
    return parser.parse_args(argv)


def _binary(dataset: SegmentationDataset, structure: str, ids: list[str]) -> SegmentationDataset:
    """disc = rim or cup, cup = cup, from the rim/cup label maps."""
    info = DatasetInfo("RIGA " + structure, RIGA_CLASSES[structure], dataset.info.channel_names, 2, "riga")
    chosen = []
    for case in dataset:
        if case.case_id in ids:
            labels = (case.labels > 0) if structure == "disc" else (case.labels == 2)
            chosen.append(
                Case(
                    case.case_id,
                    case.image,
                    labels.astype(np.int64),
                    case.affine,
                    case.source,
                    file_kind=case.file_kind,
                )
            )
    return SegmentationDataset(info, tuple(chosen))


def method_setup(method: str, args: argparse.Namespace) -> tuple[list[str], int, str, dict]:
    """(config overrides, ensemble members, estimator, estimator options) of a method."""
    if method == "edue":
        return ["loss.heads=all", f"loss.guidance_weight={args.guidance_weight}"], 1, "edue", {}
    if method == "layer_ensemble":
        return ["loss.heads=all"], 1, "layer_ensemble", {}
    if method == "deep_ensemble":
        return [], args.members, "ensemble", {}
    if method == "mc_dropout":
        return [f"model.dropout={args.dropout}"], 1, "mc_dropout", {"n_samples": args.mc_samples}
    raise ValueError(f"Expected --methods from {list(METHODS)}, but got {method!r}.")


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    started = time.perf_counter()
    structures = [s for s in args.structures.split(",") if s]
    methods = [m for m in args.methods.split(",") if m]
    for s in structures:
        if s not in STRUCTURES:
            raise ValueError(f"Expected --structures from {list(STRUCTURES)}, but got {s!r}.")
    for m in methods:
        method_setup(m, args)
    cache: dict[str, SegmentationDataset] = {}

    def full() -> SegmentationDataset:
        if "all" not in cache:
            log("data: reading RIGA outlines")
            data = load_riga(args.data, "all", classes="rim_cup", scale=args.scale)
            cache["all"] = data if args.limit <= 0 else SegmentationDataset(data.info, data.cases[: args.limit])
        return cache["all"]

    summary: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "results": {}}
    markdown = ""
    for structure in structures:
        settings = {
            "data": str(args.data.resolve()),
            "scale": args.scale,
            "test_cases": args.test_cases,
            "split_seed": args.split_seed,
            "limit": args.limit,
            "structure": structure,
        }

        def build(structure: str = structure) -> tuple[SegmentationDataset, SegmentationDataset]:
            ids = [c.case_id for c in full()]
            order = np.random.default_rng(args.split_seed).permutation(len(ids))
            test_ids = sorted(ids[i] for i in order[: args.test_cases])
            train_ids = sorted(ids[i] for i in order[args.test_cases :])
            return _binary(full(), structure, train_ids), _binary(full(), structure, test_ids)

        data_dir = args.out / structure / "data"
        train_set, test = prepare_data(data_dir, settings, build)
        base = [
            f"data.path={data_dir}",
            "data.annotator=random",
            "data.val_fraction=0",
            f"data.samples_per_epoch={args.samples_per_epoch}",
            "model.name=multihead_unet",
            f"model.channels=[{args.channels}]",
            f"optim.epochs={args.epochs}",
            f"optim.lr={args.lr}",
            "val_every=0",
            "tensorboard=false",
            f"seed={args.seed}",
        ]
        rows, run_dirs = [], []
        results: dict = {"train_cases": [c.case_id for c in train_set], "test_cases": [c.case_id for c in test]}
        for method in methods:
            extra, members, estimator, options = method_setup(method, args)
            run_dir = args.out / structure / method
            log(f"{structure}: train {method}")
            seconds = train_run(load_config(None, [*base, *extra]), run_dir, members=members)
            log(f"{structure}: evaluate {method}")
            ev = evaluate_run(
                run_dir, test.cases, estimator=estimator, uncertainty="variance", estimator_options=options
            )
            timing = inference_seconds(run_dir, test.cases, estimator=estimator, estimator_options=options)
            dis, cal = ev["disagreement"], ev["calibration"]
            qc = ev["quality_control"]["scores"]
            dice = next(p for p in ev["table"] if p["target_coverage"] == 1.0)["dice_mean"]
            result = {
                "image_pearson": dis["image_pearson"],
                "image_spearman": dis["image_spearman"],
                "pixel_pearson": dis["pixel_pearson"],
                "nll": cal["nll"],
                "ece": cal["ece_top_label"],
                "dice": dice,
                "d_auc": qc["mean_uncertainty"]["d_auc"],
                "ged": dis["ged"],
                "seconds_per_image": timing["seconds_per_image"],
                "training_seconds": seconds,
                "overrides": [*base, *extra],
                "members": members,
                "estimator": estimator,
                "options": options,
            }
            results[method] = result
            run_dirs.append(run_dir)
            rows.append(
                [
                    method,
                    f"{result['image_pearson']:.3f}",
                    f"{result['image_spearman']:.3f}",
                    f"{result['pixel_pearson']:.3f}",
                    f"{result['nll']:.4f}",
                    f"{result['ece']:.4f}",
                    f"{result['dice']:.4f}",
                    f"{result['d_auc']:.4f}",
                    f"{result['ged']:.4f}",
                    f"{1000 * result['seconds_per_image']:.0f}",
                    f"{seconds:.0f}",
                ]
            )
        if "deep_ensemble" in results:
            de = results["deep_ensemble"]
            for method in methods:
                if method != "deep_ensemble":
                    for key in ("image_pearson", "pixel_pearson"):
                        results[method][f"{key}_vs_de_percent"] = 100 * (results[method][key] - de[key]) / abs(de[key])
        write_report(run_dirs, args.out / structure / "report.html", labels=methods)
        summary["results"][structure] = results
        markdown += f"### {structure} ({len(test)} test images, {len(train_set)} training images)\n\n"
        markdown += markdown_table(
            [
                "method",
                "image r",
                "image rho",
                "pixel r",
                "NLL",
                "ECE",
                "Dice",
                "d-AUC",
                "GED",
                "ms/image",
                "training s",
            ],
            rows,
        )
        if "deep_ensemble" in results:
            markdown += "\nCorrelation change vs the deep ensemble (relative, %):\n\n"
            markdown += markdown_table(
                ["method", "image r", "pixel r"],
                [
                    [
                        m,
                        f"{results[m]['image_pearson_vs_de_percent']:+.1f}",
                        f"{results[m]['pixel_pearson_vs_de_percent']:+.1f}",
                    ]
                    for m in methods
                    if m != "deep_ensemble"
                ],
            )
        markdown += "\n"
    write_outputs(args.out, summary, markdown, started)
    return summary


if __name__ == "__main__":
    main()
