"""RIGA (Abutalip et al. 2024, EDUE): EDUE vs layer ensembles vs a deep ensemble vs MC dropout, optic disc and cup,
on optic-disc crops with 5-fold cross-validation.

    python experiments/riga.py --data ../shared/data/riga --out results/riga

Protocol (every budget is an option):

- **Data**: every RIGA case of ``--data`` (the 25 BinRushed2 cases, 6 annotators each), cut to the **optic-disc
  region** at full resolution: a square centred on the centroid of the annotators' mean disc, of side
  ``--crop-factor`` x its equivalent diameter, resampled to ``--crop-size`` pixels (``load_riga(crop_size=...)``).
- **Split**: ``--folds``-fold cross-validation over the cases (subject = case; ``kfold_split`` seeded by
  ``--split-seed``, the same folds for both structures and every method), so that every case is a test image once.
  The split is written into each fold's data folder, so a deep ensemble's members (seeds seed..seed+4) share it.
- **Methods**, one binary network per structure (disc = rim + cup; cup), method and fold, all ``multihead_unet``
  (MONAI DynUNet with a head at every decoder depth, heads upsampled bilinearly), trained with a random annotator
  per sample and iteration:

  - ``edue``: loss over every head + guidance ``λ_g`` x MSE(heads' foreground variance, annotators' m(1-m)), one run
    per ``--guidance-weights`` value (``edue_lg1``, ``edue_lg10``, ...); one pass.
  - ``layer_ensemble``: loss over every head; one pass.
  - ``deep_ensemble``: ``--members`` networks on the main output; one pass each.
  - ``mc_dropout``: one network with ``--dropout``, main output; ``--mc-samples`` passes with dropout on.

- **Evaluation**, pooled over the out-of-fold test images (each image scored by the networks that did not see it):
  uncertainty = the members' foreground variance; correlation with the annotators' variance m(1 - m) at image level
  (Pearson / Spearman of the summed maps, SV, over the annotators' disc or cup union dilated by ``--sv-roi-radius``
  px) and pixel level (mean per-image Pearson over the crop), each with a 95 % percentile-bootstrap interval over
  images; NLL and top-label ECE (15 bins) of the mean probabilities over all test pixels; Dice at coverage 1 against
  the annotators' majority; d-AUC of quality control by mean variance (failing: Dice < 0.8); GED; inference time per
  image (fold 0's test images, median of 3 passes).

Writes OUT/<structure>/fold_<k>/data (the prepared folds), OUT/<structure>/<method>/fold_<k>/ (runs, evaluation),
OUT/<structure>/report.html (fold 0), and the small files to keep: OUT/summary.json, OUT/per_case.csv, OUT/results.md.
GPU when there is one; an interrupted run resumes when run again (finished steps are skipped).
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import time
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from _common import (
    evaluate_run,
    inference_seconds,
    log,
    markdown_table,
    prepare_data,
    train_run,
    training_seconds,
    write_outputs,
)
from selectseg._io import atomic_write_text
from selectseg.data import Case, DatasetInfo, SegmentationDataset
from selectseg.data.crop import DEFAULT_CROP_FACTOR
from selectseg.data.formats.riga import RIGA_CLASSES, load_riga
from selectseg.data.splits import kfold_split
from selectseg.evaluation import load_run
from selectseg.metrics import (
    UndefinedMetricWarning,
    image_level_correlation,
    image_level_correlation_ci,
    pixel_level_correlation_ci,
    quality_control_curve,
)
from selectseg.metrics.quality import DEFAULT_TAU
from selectseg.report import write_report
from selectseg.results import EvaluationResult, _json
from selectseg.training import load_config

STRUCTURES = ("disc", "cup")
METHODS = ("edue", "layer_ensemble", "deep_ensemble", "mc_dropout")


class MethodSetup(NamedTuple):
    """One trained configuration: its name, config overrides, ensemble size, estimator and estimator options."""

    name: str
    overrides: list[str]
    members: int
    estimator: str
    options: dict[str, Any]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="RIGA folder (BinRushed2 or a folder of cases).")
    parser.add_argument("--out", type=Path, required=True, help="Output folder (created; resumes when it exists).")
    parser.add_argument("--crop-size", type=int, default=128, help="Side in pixels of the resampled disc crop.")
    parser.add_argument(
        "--crop-factor", type=float, default=DEFAULT_CROP_FACTOR, help="Crop side / mean disc diameter."
    )
    parser.add_argument("--folds", type=int, default=5, help="Cross-validation folds over the cases.")
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--samples-per-epoch", type=int, default=40, help="Crops per epoch (20 training cases x 2).")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--channels", default="16,32,64,128", help="Network channels per level.")
    parser.add_argument("--members", type=int, default=5, help="Deep-ensemble size.")
    parser.add_argument("--dropout", type=float, default=0.2, help="Dropout of the MC-dropout network.")
    parser.add_argument("--mc-samples", type=int, default=10)
    parser.add_argument("--guidance-weights", default="1,10,100", help="EDUE's λ_g values: one EDUE run each.")
    parser.add_argument("--skip-first", type=int, default=0, help="Layer ensembles / EDUE: deepest heads left out.")
    parser.add_argument(
        "--sv-roi-radius",
        type=int,
        default=8,
        help="Image-level SV over the annotators' union dilated by R px (-1 = the whole crop).",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--structures", default=",".join(STRUCTURES))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--limit", type=int, default=0, help="Use only the first N cases (smoke runs).")
    parser.add_argument("--no-report", action="store_true", help="Skip the HTML reports (fold 0).")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch CPU threads (0 = torch's default). On a shared 2-core machine use 1: two OpenMP threads competing "
        "with another process for the cores made epochs 10x slower.",
    )
    return parser.parse_args(argv)


def _weights(text: str) -> list[float]:
    try:
        values = [float(w) for w in text.split(",") if w.strip()]
    except ValueError:
        raise ValueError(f"Expected --guidance-weights to be comma-separated numbers, but got {text!r}.") from None
    if not values or any(not math.isfinite(w) or w < 0 for w in values):
        raise ValueError(f"Expected --guidance-weights to be non-negative numbers, but got {text!r}.")
    return values


def method_setups(methods: list[str], args: argparse.Namespace) -> list[MethodSetup]:
    """The runs of the chosen methods (``edue`` gives one per guidance weight)."""
    heads = {"skip_first": args.skip_first} if args.skip_first else {}
    out = []
    for method in methods:
        if method == "edue":
            for w in _weights(args.guidance_weights):
                out.append(
                    MethodSetup(f"edue_lg{w:g}", ["loss.heads=all", f"loss.guidance_weight={w:g}"], 1, "edue", heads)
                )
        elif method == "layer_ensemble":
            out.append(MethodSetup(method, ["loss.heads=all"], 1, "layer_ensemble", heads))
        elif method == "deep_ensemble":
            out.append(MethodSetup(method, [], args.members, "ensemble", {}))
        elif method == "mc_dropout":
            out.append(
                MethodSetup(method, [f"model.dropout={args.dropout}"], 1, "mc_dropout", {"n_samples": args.mc_samples})
            )
        else:
            raise ValueError(f"Expected --methods from {list(METHODS)}, but got {method!r}.")
    return out


def _binary(cases: list[Case], structure: str, info: DatasetInfo) -> SegmentationDataset:
    """disc = rim or cup, cup = cup, from the rim/cup label maps."""
    binary = DatasetInfo("RIGA " + structure, RIGA_CLASSES[structure], info.channel_names, 2, "riga")
    chosen = []
    for case in cases:
        if case.labels is None:
            raise ValueError(f"Expected RIGA case {case.case_id!r} to have the annotators' labels, but got None.")
        labels = (case.labels > 0) if structure == "disc" else (case.labels == 2)
        chosen.append(
            Case(case.case_id, case.image, labels.astype(np.int64), case.affine, case.source, file_kind="png")
        )
    return SegmentationDataset(binary, tuple(chosen))


def _pooled(results: list[EvaluationResult]) -> dict[str, Any]:
    """The metrics over the union of the folds' test images, from each fold's ``evaluation.json``.

    Exact pooling: correlations and d-AUC from the per-image values; NLL and GED as image-weighted means of the
    folds' means (every crop has the same number of pixels); top-label ECE from the summed reliability bins.
    """
    model_sv: list[float] = []
    annotator_sv: list[float] = []
    pixel_r: list[float] = []
    dice: list[float] = []
    qc_score: list[float] = []
    counts = np.zeros(0)
    confidence_sum = np.zeros(0)
    correct_sum = np.zeros(0)
    nll = ged = 0.0
    images = 0
    for ev in (_json.encode(r.to_json()) for r in results):
        d = ev["disagreement"]
        ids = sorted(d["image_sv"])
        model_sv += [d["image_sv"][i] for i in ids]
        annotator_sv += [d["annotator_sv"][i] for i in ids]
        pixel_r += [math.nan if d["image_pixel_pearson"][i] is None else d["image_pixel_pearson"][i] for i in ids]
        full = next(p for p in ev["table"] if p["target_coverage"] == 1.0)
        dice += [full["image_dice"][i] for i in ids]
        qc_score += [ev["image_scores"]["mean_uncertainty"][i] for i in ids]
        bins = ev["calibration"]["reliability_top_label"]
        n = np.asarray(bins["counts"], dtype=np.float64)
        conf = np.nan_to_num(np.asarray(bins["confidence"], dtype=np.float64))
        acc = np.nan_to_num(np.asarray(bins["accuracy"], dtype=np.float64))
        counts = n if counts.size == 0 else counts + n
        confidence_sum = n * conf if confidence_sum.size == 0 else confidence_sum + n * conf
        correct_sum = n * acc if correct_sum.size == 0 else correct_sum + n * acc
        nll += ev["calibration"]["nll"] * ev["num_cases"]
        ged += d["ged"] * ev["num_cases"]
        images += ev["num_cases"]
    r = np.asarray(pixel_r)
    counted = r[~np.isnan(r)]
    with warnings.catch_warnings():  # constant inputs give documented NaN values
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        image = image_level_correlation(model_sv, annotator_sv)
        image_ci = image_level_correlation_ci(model_sv, annotator_sv)
        pixel_ci = pixel_level_correlation_ci(counted) if counted.size >= 2 else (math.nan, math.nan)
        qc = quality_control_curve(np.asarray(qc_score), np.asarray(dice))
    return {
        "images": images,
        "image_pearson": image.pearson,
        "image_pearson_ci": list(image_ci.pearson),
        "image_spearman": image.spearman,
        "image_spearman_ci": list(image_ci.spearman),
        "pixel_pearson": float(counted.mean()) if counted.size else math.nan,
        "pixel_pearson_ci": list(pixel_ci),
        "pixel_pearson_images": int(counted.size),
        "nll": nll / images,
        "ece": float(np.abs(correct_sum - confidence_sum).sum() / counts.sum()),
        "dice": float(np.mean(dice)),
        "d_auc": qc.d_auc,
        "failing_images": int(np.sum(np.asarray(dice) < DEFAULT_TAU)),
        "ged": ged / images,
    }


def _per_case_rows(structure: str, method: str, fold: int, result: EvaluationResult) -> list[dict[str, Any]]:
    ev = _json.encode(result.to_json())
    d = ev["disagreement"]
    full = next(p for p in ev["table"] if p["target_coverage"] == 1.0)
    scores = ev["image_scores"]
    return [
        {
            "structure": structure,
            "method": method,
            "fold": fold,
            "case_id": i,
            "dice": full["image_dice"][i],
            "model_sv": d["image_sv"][i],
            "annotator_sv": d["annotator_sv"][i],
            "pixel_pearson": d["image_pixel_pearson"][i],
            "mean_uncertainty": scores["mean_uncertainty"][i],
            "sv_whole_crop": scores.get("sv", {}).get(i),
        }
        for i in sorted(d["image_sv"])
    ]


def _csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buffer.getvalue()


def _ci(value: float, interval: list[float]) -> str:
    if not math.isfinite(value):
        return "nan"
    low, high = interval
    return f"{value:.3f} [{low:.2f}, {high:.2f}]" if math.isfinite(low) else f"{value:.3f}"


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    started = time.perf_counter()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    structures = [s for s in args.structures.split(",") if s]
    for s in structures:
        if s not in STRUCTURES:
            raise ValueError(f"Expected --structures from {list(STRUCTURES)}, but got {s!r}.")
    setups = method_setups([m for m in args.methods.split(",") if m], args)
    if args.folds < 2:
        raise ValueError(f"Expected --folds >= 2, but got {args.folds}.")
    sv_roi_radius = None if args.sv_roi_radius < 0 else args.sv_roi_radius
    cache: dict[str, SegmentationDataset] = {}

    def crops() -> SegmentationDataset:
        if "all" not in cache:
            log(f"data: reading RIGA outlines, cutting {args.crop_size} px disc crops")
            data = load_riga(
                args.data, "all", classes="rim_cup", crop_size=args.crop_size, crop_factor=args.crop_factor
            )
            cache["all"] = data if args.limit <= 0 else SegmentationDataset(data.info, data.cases[: args.limit])
        return cache["all"]

    summary: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}, "results": {}}
    per_case: list[dict[str, Any]] = []
    markdown = ""
    for structure in structures:
        fold_data = []
        for k in range(args.folds):
            settings = {
                "data": str(args.data.resolve()),
                "crop_size": args.crop_size,
                "crop_factor": args.crop_factor,
                "folds": args.folds,
                "fold": k,
                "split_seed": args.split_seed,
                "limit": args.limit,
                "structure": structure,
            }

            def build(k: int = k, structure: str = structure) -> tuple[SegmentationDataset, SegmentationDataset]:
                data = crops()
                train, test = kfold_split(list(data.cases), args.folds, k, seed=args.split_seed)
                return _binary(train, structure, data.info), _binary(test, structure, data.info)

            folder = args.out / structure / f"fold_{k}" / "data"
            fold_data.append((folder, *prepare_data(folder, settings, build)))
        results: dict[str, Any] = {
            "folds": [
                {"train_cases": [c.case_id for c in tr], "test_cases": [c.case_id for c in te]}
                for _, tr, te in fold_data
            ]
        }
        rows, report_runs = [], []
        for setup in setups:
            evaluations, seconds, epoch_seconds = [], 0.0, []
            overrides: list[str] = []
            for k, (folder, _, test) in enumerate(fold_data):
                overrides = [
                    f"data.path={folder}",
                    "data.annotator=random",
                    "data.val_fraction=0",
                    f"data.samples_per_epoch={args.samples_per_epoch}",
                    "model.name=multihead_unet",
                    f"model.channels=[{args.channels}]",
                    f"optim.epochs={args.epochs}",
                    f"optim.batch_size={args.batch_size}",
                    f"optim.lr={args.lr}",
                    "val_every=0",
                    "tensorboard=false",
                    f"seed={args.seed}",
                    *setup.overrides,
                ]
                run_dir = args.out / structure / setup.name / f"fold_{k}"
                log(f"{structure} fold {k}: train {setup.name}")
                seconds += train_run(load_config(None, overrides), run_dir, members=setup.members)
                networks = [run_dir / f"member_{j}" for j in range(setup.members)] if setup.members > 1 else [run_dir]
                for net in networks:
                    lines = (net / "metrics.csv").read_text().splitlines()[1:]
                    epoch_seconds.append(training_seconds(net) / max(1, len(lines)))
                log(f"{structure} fold {k}: evaluate {setup.name}")
                evaluations.append(
                    evaluate_run(
                        run_dir,
                        test.cases,
                        estimator=setup.estimator,
                        uncertainty="variance",
                        estimator_options=setup.options,
                        sv_roi_radius=sv_roi_radius,
                    )
                )
                per_case += _per_case_rows(structure, setup.name, k, evaluations[-1])
            first = args.out / structure / setup.name / "fold_0"
            timing = inference_seconds(
                first, fold_data[0][2].cases, estimator=setup.estimator, estimator_options=setup.options
            )
            result = _pooled(evaluations)
            result.update(
                seconds_per_image=timing["seconds_per_image"],
                training_seconds=seconds,
                seconds_per_epoch=float(np.mean(epoch_seconds)),
                head_upsample=load_run(first, device="cpu").model.spec.head_upsample,
                overrides=[o for o in overrides if not o.startswith("data.path=")],
                members=setup.members,
                estimator=setup.estimator,
                options=setup.options,
            )
            results[setup.name] = result
            report_runs.append(first)
            rows.append(
                [
                    setup.name,
                    _ci(result["image_pearson"], result["image_pearson_ci"]),
                    _ci(result["image_spearman"], result["image_spearman_ci"]),
                    _ci(result["pixel_pearson"], result["pixel_pearson_ci"]),
                    f"{result['nll']:.4f}",
                    f"{result['ece']:.4f}",
                    f"{result['dice']:.4f}",
                    f"{result['d_auc']:.4f} ({result['failing_images']})",
                    f"{result['ged']:.4f}",
                    f"{1000 * result['seconds_per_image']:.0f}",
                    f"{result['seconds_per_epoch']:.2f}",
                    f"{seconds:.0f}",
                ]
            )
        names = [s.name for s in setups]
        if "deep_ensemble" in results:
            de = results["deep_ensemble"]
            for name in names:
                if name != "deep_ensemble":
                    for key in ("image_pearson", "pixel_pearson"):
                        change = 100 * (results[name][key] - de[key]) / abs(de[key]) if de[key] else math.nan
                        results[name][f"{key}_vs_de_percent"] = change
        if not args.no_report:
            write_report(report_runs, args.out / structure / "report.html", labels=names)
        summary["results"][structure] = results
        images = sum(len(te) for _, _, te in fold_data)
        markdown += (
            f"### {structure} ({images} out-of-fold test images, {args.folds} folds, {args.crop_size} px crops)\n\n"
        )
        markdown += markdown_table(
            [
                "method",
                "image r [95% CI]",
                "image rho [95% CI]",
                "pixel r [95% CI]",
                "NLL",
                "ECE",
                "Dice",
                "d-AUC (failing)",
                "GED",
                "ms/image",
                "s/epoch",
                "training s",
            ],
            rows,
        )
        if "deep_ensemble" in results and len(names) > 1:
            markdown += "\nCorrelation change vs the deep ensemble (relative, %):\n\n"
            markdown += markdown_table(
                ["method", "image r", "pixel r"],
                [
                    [
                        m,
                        f"{results[m]['image_pearson_vs_de_percent']:+.1f}",
                        f"{results[m]['pixel_pearson_vs_de_percent']:+.1f}",
                    ]
                    for m in names
                    if m != "deep_ensemble"
                ],
            )
        markdown += "\n"
    atomic_write_text(args.out / "per_case.csv", _csv(per_case))
    write_outputs(args.out, summary, markdown, started)
    return summary


if __name__ == "__main__":
    main()
