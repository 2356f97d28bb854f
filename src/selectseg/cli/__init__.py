"""Command-line interface: thin, parse the options and make one library call.

Every user error (bad option value, bad data, foreign checkpoint) ends as one line ``Error: ...`` and exit code 2,
before any training time is spent.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from ..metrics.bootstrap import DEFAULT_CONFIDENCE_LEVEL, DEFAULT_N_RESAMPLES
from ..results.evaluation import DEFAULT_COVERAGES
from ..runs.device import is_main_process
from . import render
from .render import console

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Uncertainty-aware selective segmentation.")
F = TypeVar("F", bound=Callable[..., Any])


def _user_errors(func: F) -> F:
    """Turn ValueError/TypeError from the library into a one-line message and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (ValueError, TypeError) as error:
            console.print(f"[bold red]Error:[/] {error}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=2) from None

    return wrapper  # type: ignore[return-value]


# Options shared by predict and evaluate.
UncertaintyOption = Annotated[
    str,
    typer.Option(
        "--score",
        "--uncertainty",
        help="Voxel uncertainty score: max_softmax | entropy | mutual_information | variance | ...",
    ),
]
EstimatorOption = Annotated[
    str, typer.Option(help="Uncertainty estimator: softmax | mc_dropout | tta | layer_ensemble | edue | ensemble.")
]
McSamplesOption = Annotated[int, typer.Option(help="Stochastic passes for --estimator mc_dropout.")]
SkipFirstOption = Annotated[
    int | None,
    typer.Option(help="Layer ensembles / EDUE: leave out the T deepest (coarsest) heads (0 = all heads)."),
]
DeviceOption = Annotated[str, typer.Option(help="auto | cpu | cuda[:N].")]
DataOption = Annotated[str | None, typer.Option(help="Dataset folder or 'synthetic' (default: the run's data).")]
SplitOption = Annotated[str, typer.Option(help="train | test | all.")]
FormatOption = Annotated[str, typer.Option("--format", help="Dataset format or auto.")]


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"selectseg {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """selectseg: uncertainty-aware training, selective prediction and Dice risk-coverage evaluation."""


@app.command("train")
@_user_errors
def train_command(
    config: Annotated[
        Path | None, typer.Argument(help="YAML config file (optional; defaults + options otherwise).")
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Run folder (new, or an existing one with --resume).")
    ] = Path("runs/run"),
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a config key: section.key=value.")] = None,
    data: Annotated[str | None, typer.Option(help="Dataset folder, or 'synthetic' (= data.path).")] = None,
    ranking: Annotated[str | None, typer.Option(help="none | exact | sampled (= loss.ranking).")] = None,
    epochs: Annotated[int | None, typer.Option(help="= optim.epochs.")] = None,
    seed: Annotated[int | None, typer.Option(help="= seed.")] = None,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda[:N] (= device).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its last checkpoint.")] = False,
    ensemble: Annotated[int, typer.Option(help="Train a deep ensemble of N members (seeds seed..seed+N-1).")] = 1,
    folds: Annotated[
        int, typer.Option(help="Cross-validation: one run per fold of a subject-level K-fold split (RUN/fold_k).")
    ] = 0,
    ranking_start_epoch: Annotated[
        int | None, typer.Option(help="Segmentation loss alone for E epochs, then the combined loss.")
    ] = None,
    ranking_warmup: Annotated[
        int | None, typer.Option(help="Ramp the ranking weight linearly over W epochs (= loss.ranking_warmup_epochs).")
    ] = None,
    method: Annotated[
        str | None, typer.Option(help="Preset: standard | layer_ensemble | edue (multi-head U-Net, heads' loss...).")
    ] = None,
) -> None:
    """Train a segmentation network, baseline or uncertainty-aware (multi-GPU: launch with torchrun -m selectseg)."""
    from .._validation import look_up_option
    from ..runs import folder
    from ..runs.config import METHODS, with_overrides
    from ..training import load_config, train

    if ensemble < 1:
        raise ValueError(f"Expected `--ensemble` to be a number of members >= 1 (1 = one network), but got {ensemble}.")
    if folds < 0 or folds == 1:
        raise ValueError(
            f"Expected `--folds` to be 0 (no cross-validation) or a number of folds >= 2, but got {folds}."
        )
    overrides = list(METHODS[look_up_option("method", method, METHODS)]) if method is not None else []
    overrides += list(set_ or [])
    typed = {
        "data.path": data,
        "loss.ranking": ranking,
        "optim.epochs": epochs,
        "seed": seed,
        "device": device,
        "loss.ranking_start_epoch": ranking_start_epoch,
        "loss.ranking_warmup_epochs": ranking_warmup,
    }
    given = config is not None or bool(overrides) or any(v is not None for v in typed.values())
    if resume and config is None and not overrides and folder.has_config(folder.first_member(out)):
        # `--resume --epochs N`: the saved config with the typed options on top (train longer)
        resolved = with_overrides(folder.read_config(folder.first_member(out)), typed) if given else None
    else:
        resolved = with_overrides(load_config(config, overrides), typed) if given or not resume else None
    if folds and ensemble > 1:
        raise ValueError("Choose one of `--folds` and `--ensemble`: cross-validated ensembles are not supported.")
    if folds:
        from ..training.multirun import train_folds

        with render.progress() as progress:
            displays = [render.TrainDisplay(progress, label=f"fold {k}") for k in range(folds)]
            results = train_folds(resolved, out, folds, resume=resume, progress=lambda k, event: displays[k](event))
        _progress_figures([r.run_dir for r in results])
        console.print(f"Trained {len(results)} folds in {out}; `selectseg evaluate {out}` aggregates them")
        return
    if ensemble > 1:
        from ..training.multirun import train_ensemble

        with render.progress() as progress:
            displays = [render.TrainDisplay(progress, label=f"member {k}") for k in range(ensemble)]
            results = train_ensemble(
                resolved, out, ensemble, resume=resume, progress=lambda k, event: displays[k](event)
            )
        if is_main_process():
            _progress_figures([r.run_dir for r in results])
            console.print(f"Trained an ensemble of {len(results)} members in {out}")
        return
    with render.progress() as progress:
        result = train(resolved, out, resume=resume, progress=render.TrainDisplay(progress))
    if is_main_process():  # under torchrun, rank 0 speaks for all
        _progress_figures([result.run_dir])
        epochs = len(result.history)
        best = result.run_dir / folder.BEST
        console.print(
            f"Trained {epochs} epoch{'s' if epochs != 1 else ''}; weights in {result.model_path}"
            + (f" (best epoch by {folder.read_config(result.run_dir).best_metric}: {best})" if best.is_file() else "")
            + f"; curves in {result.run_dir / folder.PROGRESS}"
        )


def _progress_figures(run_dirs: list[Path]) -> None:
    """``progress.png`` in each trained run folder (the training curves)."""
    from ..report import write_progress

    for run_dir in run_dirs:
        write_progress(run_dir)


def _plain_image_folder(path: Path) -> bool:
    """A folder of nnU-Net-named images without a dataset description (nnU-Net's ``-i``)."""
    return (
        path.is_dir()
        and not (path / "dataset.json").is_file()
        and not (path / "imagesTr").is_dir()
        and any(p.name.split(".")[0].endswith("_0000") for p in path.iterdir())
    )


def _inference(uncertainty: str, estimator: str, mc_samples: int, skip_first: int | None = None) -> Any:
    """The :class:`~selectseg.uncertainty.InferenceOptions` of the CLI flags; ``--skip-first`` only where the
    estimator takes it (0, the library default, is left out so that it matches a referral threshold chosen without
    the flag)."""
    from ..uncertainty import InferenceOptions, estimator_options, list_estimators

    options: dict[str, Any] = {"n_samples": mc_samples} if estimator == "mc_dropout" else {}
    if skip_first is None:
        return InferenceOptions(uncertainty, estimator, options)

    if "skip_first" not in estimator_options(estimator):
        takers = [name for name in list_estimators() if "skip_first" in estimator_options(name)]
        raise ValueError(
            f"`--skip-first` applies to the estimators {takers} (heads of a multi-head network), but --estimator is "
            f"{estimator!r}."
        )
    if skip_first < 0:
        raise ValueError(f"Expected `--skip-first` to be >= 0 (heads left out), but got {skip_first}.")
    if skip_first > 0:
        options["skip_first"] = skip_first
    return InferenceOptions(uncertainty, estimator, options)


def _over_cases(label: str, cases: Any, call: Callable[[Callable[[str], None]], Any]) -> Any:
    """Run ``call(on_case)`` under a progress bar that advances by one case per ``on_case(case_id)``."""
    with render.progress() as progress:
        task = progress.add_task(label, total=len(cases), info="")
        return call(lambda case_id: progress.update(task, advance=1, info=case_id))


def _cases(run: Any, data: str | None, split: str, format_: str) -> Any:
    return run.data_cases(data, split=split, format_=format_)  # checked against the run before any inference


@app.command("predict")
@_user_errors
def predict_command(
    run_dir: Annotated[Path, typer.Argument(help="A finished training run folder.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder for the maps and predictions.json.")],
    data: DataOption = None,
    split: SplitOption = "test",
    format_: FormatOption = "auto",
    threshold: Annotated[float | None, typer.Option(help="Refer voxels with uncertainty above this.")] = None,
    coverage: Annotated[
        float | None,
        typer.Option(
            "--case-coverage",
            "--coverage",
            help="Per case: keep this fraction of each case's voxels (largest achievable <=), one threshold per case.",
        ),
    ] = None,
    uncertainty: UncertaintyOption = "max_softmax",
    estimator: EstimatorOption = "softmax",
    mc_samples: McSamplesOption = 10,
    skip_first: SkipFirstOption = None,
    device: DeviceOption = "auto",
    calibrated: Annotated[
        bool,
        typer.Option(
            "--referral/--no-referral",
            "--calibrated/--no-calibrated",
            help="Without --threshold/--coverage, use the run's stored threshold (`selectseg threshold`).",
        ),
    ] = True,
    naming: Annotated[
        str, typer.Option(help="selectseg (<case>_seg.nii.gz) | nnunet (<case>.nii.gz, as nnU-Net and MONAI write).")
    ] = "selectseg",
    save_probabilities: Annotated[
        bool, typer.Option(help="Also write <case>.npz with the softmax probabilities (K, *S), as nnU-Net does.")
    ] = False,
) -> None:
    """Segment cases and write uncertainty maps and referral masks (NIfTI with source geometry, or PNG).

    --data may also be a plain folder of nnU-Net-named images (<case>_0000.nii.gz, ...: nnU-Net's -i), without a
    dataset.json."""
    from ..evaluation import load_run, predict_cases

    inference = _inference(uncertainty, estimator, mc_samples, skip_first)  # option errors before loading
    run = load_run(run_dir, device=device)
    if data is not None and _plain_image_folder(Path(data)):
        from ..data.formats.msd import read_image_folder

        cases = read_image_folder(data, num_channels=run.model.spec.in_channels)
    else:
        cases = _cases(run, data, split, format_)
    summary = _over_cases(
        "predict",
        cases,
        lambda on_case: predict_cases(
            run,
            cases,
            out,
            threshold=threshold,
            coverage=coverage,
            inference=inference,
            use_referral=calibrated,
            naming=naming,
            save_probabilities=save_probabilities,
            on_case=on_case,
        ),
    )
    if summary["threshold_source"] == "referral.json":
        console.print(
            f"Referral threshold {summary['threshold']:.6g} from {run_dir}/referral.json (selectseg threshold)"
        )
    elif summary["threshold_source"] == "none":
        console.print(
            "[bold yellow]Note:[/] nothing was referred (no --threshold or --case-coverage, and no stored threshold: "
            f"`selectseg threshold {run_dir}` chooses one); the referral maps are empty.",
            highlight=False,
        )
    console.print(f"Wrote {len(summary['cases'])} cases to {out}/ (predictions.json)")


@app.command("threshold")
@app.command("calibrate", hidden=True, deprecated=True)
@_user_errors
def threshold_command(
    run_dir: Annotated[Path, typer.Argument(help="A finished training run folder.")],
    data: Annotated[
        str | None, typer.Option(help="Calibration set folder (default: the run's validation cases).")
    ] = None,
    split: Annotated[str, typer.Option(help="Split of --data: train | test | all.")] = "train",
    format_: FormatOption = "auto",
    coverage: Annotated[
        float | None,
        typer.Option(
            "--pooled-coverage",
            "--coverage",
            help="Pooled: one threshold keeping at least this fraction of all calibration voxels (smallest >=).",
        ),
    ] = None,
    max_risk: Annotated[
        float | None, typer.Option(help="Target risk, guaranteed with probability >= 1 - delta on new images.")
    ] = None,
    delta: Annotated[float, typer.Option(help="Allowed probability that the risk guarantee fails.")] = 0.1,
    risk: Annotated[str, typer.Option(help="dice (per-image 1 - Dice after referral) | pixel (error rate).")] = "dice",
    method: Annotated[
        str | None, typer.Option(help="ltt (default for dice) | crc (in expectation) | sgr (pixel).")
    ] = None,
    uncertainty: UncertaintyOption = "max_softmax",
    estimator: EstimatorOption = "softmax",
    mc_samples: McSamplesOption = 10,
    skip_first: SkipFirstOption = None,
    device: DeviceOption = "auto",
) -> None:
    """Pick the referral threshold on a calibration set (target coverage, or target risk with a guarantee) and
    store it in the run (RUN/referral.json); `predict` then uses it by default."""
    from ..evaluation import load_run
    from ..evaluation.referral import choose_referral_threshold

    inference = _inference(uncertainty, estimator, mc_samples, skip_first)  # option errors before loading
    run = load_run(run_dir, device=device)
    if data is None:  # the run's held-out validation cases: never trained on, and not the test set
        try:
            cases = run.validation_cases()
        except ValueError as error:
            raise ValueError(f"{error} Pass --data CAL_SET to choose it on other cases.") from None
    else:
        cases = _cases(run, data, split, format_)
    result = _over_cases(
        "threshold",
        cases,
        lambda on_case: choose_referral_threshold(
            run,
            cases,
            coverage=coverage,
            max_risk=max_risk,
            delta=delta,
            risk=risk,
            method=method,
            inference=inference,
            on_case=on_case,
        ),
    )
    bound = "" if math.isnan(result.bound) else f", certified bound {result.bound:.4f}"
    console.print(
        f"Threshold {result.threshold} ({result.method}): calibration coverage {result.coverage:.4f}, "
        f"risk {result.risk:.4f}{bound}; stored in {run_dir}/referral.json"
    )


@app.command("evaluate")
@_user_errors
def evaluate_command(
    run_dir: Annotated[Path, typer.Argument(help="A finished training run folder.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output folder (default RUN/evaluation).")] = None,
    data: DataOption = None,
    split: SplitOption = "test",
    format_: FormatOption = "auto",
    coverages: Annotated[
        str,
        typer.Option(
            help="Comma-separated target coverages, each one global threshold over all test voxels (Table 4's "
            "1.00..0.95 and Table 1's 0.9..0.7)."
        ),
    ] = ",".join(map(str, DEFAULT_COVERAGES)),
    uncertainty: UncertaintyOption = "max_softmax",
    estimator: EstimatorOption = "softmax",
    mc_samples: McSamplesOption = 10,
    skip_first: SkipFirstOption = None,
    device: DeviceOption = "auto",
    report: Annotated[bool, typer.Option(help="Also write RUN/report.html (with the default --out).")] = True,
    bootstrap: Annotated[
        int, typer.Option(help="Bootstrap resamples over images for the intervals of AURC and Dice (0: none).")
    ] = DEFAULT_N_RESAMPLES,
    bootstrap_seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    confidence_level: Annotated[
        float, typer.Option(help="Level of the bootstrap intervals.")
    ] = DEFAULT_CONFIDENCE_LEVEL,
    sv_roi_radius: Annotated[
        int | None,
        typer.Option(help="Image-level SV over the annotators' union dilated by R px (default: the whole image)."),
    ] = None,
) -> None:
    """Dice risk-coverage evaluation on a labelled test set: curve, AURC, Dice at coverage with bootstrap intervals
    over images (JSON and CSV).

    A cross-validation folder (train --folds K) is evaluated fold by fold, each on its held-out cases (or on --data),
    and aggregated as mean and std over folds."""
    from ..evaluation import evaluate_cases, load_run
    from ..evaluation.cv import evaluate_folds, is_cv_folder

    inference = _inference(uncertainty, estimator, mc_samples, skip_first)  # option errors before loading
    try:
        targets = [float(c) for c in coverages.split(",") if c.strip()]
    except ValueError:
        raise ValueError(f"Expected `--coverages` to be comma-separated numbers, but got {coverages!r}.") from None
    if not targets or not all(0 <= c <= 1 for c in targets):
        raise ValueError(f"Expected `--coverages` to list one or more coverages in [0, 1], but got {coverages!r}.")
    if is_cv_folder(run_dir):
        with render.progress() as progress:
            task = progress.add_task("folds", total=None, info="")
            summary = evaluate_folds(
                run_dir,
                out,
                data=data,
                split=split,
                format_=format_,
                coverages=targets,
                inference=inference,
                sv_roi_radius=sv_roi_radius,
                device=device,
                on_fold=lambda k, n: progress.update(task, completed=k + 1, total=n, info=f"fold {k}"),
            )
        render.cv_table(summary, run_dir)
        console.print(f"Wrote {out or run_dir / 'evaluation'}/cv.json, cv_curve.csv (per fold: RUN/fold_k/evaluation)")
        return
    run = load_run(run_dir, device=device)
    cases = _cases(run, data, split, format_)
    out = out or run_dir / "evaluation"
    destination = out
    result = _over_cases(
        "evaluate",
        cases,
        lambda on_case: evaluate_cases(
            run,
            cases,
            destination,
            coverages=targets,
            inference=inference,
            sv_roi_radius=sv_roi_radius,
            on_case=on_case,
            n_resamples=bootstrap,
            bootstrap_seed=bootstrap_seed,
            confidence_level=confidence_level,
        ),
    )
    render.evaluation_table(result, run_dir, confidence_level)
    console.print(f"Wrote {out}/evaluation.json, summary.csv, curve.csv, per_image.csv, montage.npz")
    if report and Path(out).resolve() == (run_dir / "evaluation").resolve():
        from ..report import write_report

        page = write_report([run_dir], run_dir / "report.html")
        console.print(f"Report: {page}")


@app.command("ood")
@_user_errors
def ood_command(
    run_dir: Annotated[Path, typer.Argument(help="A finished training run folder.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output folder (default RUN/ood).")] = None,
    data: DataOption = None,
    split: SplitOption = "test",
    format_: FormatOption = "auto",
    fractions: Annotated[str, typer.Option(help="Comma-separated shares of distorted images.")] = "0.5,1.0",
    kinds: Annotated[
        str | None, typer.Option(help="Comma-separated distortions: noise, blur, contrast (default: see docs).")
    ] = None,
    severity: Annotated[float, typer.Option(help="Distortion strength in [0, 1].")] = 0.5,
    seed: Annotated[int, typer.Option(help="Seed of the distorted images, kinds and noise.")] = 0,
    uncertainty: UncertaintyOption = "max_softmax",
    estimator: EstimatorOption = "softmax",
    mc_samples: McSamplesOption = 10,
    skip_first: SkipFirstOption = None,
    device: DeviceOption = "auto",
) -> None:
    """Out-of-distribution detection: distort a share of the test images, AUROC of each image-level score."""
    from ..evaluation import evaluate_ood, load_run

    inference = _inference(uncertainty, estimator, mc_samples, skip_first)  # option errors before loading
    try:
        levels = [float(f) for f in fractions.split(",") if f.strip()]
    except ValueError:
        raise ValueError(f"Expected `--fractions` to be comma-separated numbers, but got {fractions!r}.") from None
    chosen = None if kinds is None else [k.strip() for k in kinds.split(",") if k.strip()]
    run = load_run(run_dir, device=device)
    cases = _cases(run, data, split, format_)
    destination = out or run_dir / "ood"
    total = len(cases) + sum(math.floor(f * len(cases) + 0.5) for f in levels if 0 < f <= 1)
    with render.progress() as progress:
        task = progress.add_task("ood", total=total, info="")
        result = evaluate_ood(
            run,
            cases,
            destination,
            fractions=levels,
            kinds=chosen,
            severity=severity,
            seed=seed,
            inference=inference,
            on_case=lambda case_id: progress.update(task, advance=1, info=case_id),
        )
    render.ood_table(result, run_dir)
    console.print(f"Wrote {destination}/ood.json, ood.csv")


@app.command("sweep")
@_user_errors
def sweep_command(
    config: Annotated[Path | None, typer.Argument(help="Base YAML config (optional).")] = None,
    grid: Annotated[
        list[str] | None, typer.Option("--grid", help="key=v1,v2,... (repeat for a grid; short keys allowed).")
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Sweep folder (resumable).")] = Path("runs/sweep"),
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a base config key: section.key=value.")
    ] = None,
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds of every grid point.")] = "0",
    workers: Annotated[int, typer.Option(help="Local processes at once (round-robin over GPUs when present).")] = 1,
    submit: Annotated[
        str | None, typer.Option(help="Hand each run to a scheduler: a shell template with {command}.")
    ] = None,
    collect_only: Annotated[bool, typer.Option(help="Run nothing; collect the finished runs.")] = False,
    split: SplitOption = "test",
    reference: Annotated[
        list[str] | None,
        typer.Option(
            "--reference", help="key=value naming the grid point the others are compared with, by seed (repeat)."
        ),
    ] = None,
) -> None:
    """Run a grid of trainings (and seeds), resumably; collect AURC, Dice and time per run and per swept value; with
    --reference, compare each grid point with that one over the seeds (paired by seed)."""
    from ..report.compare import load_comparison
    from ..sweep import parse_grid, run_sweep
    from ..training import load_config

    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"Expected `--seeds` to be comma-separated integers, but got {seeds!r}.") from None
    if not grid:
        raise ValueError("Expected at least one `--grid key=v1,v2,...`.")
    parsed = parse_grid(grid)
    base = load_config(config, list(set_ or []))
    with render.progress() as progress:
        task = progress.add_task("sweep", total=None, info="")
        done = [0]

        def on_run(name: str, status: str) -> None:
            done[0] += 1
            progress.update(task, completed=done[0], info=f"{status}: {name}")

        rows = run_sweep(
            base,
            parsed,
            out,
            seeds=seed_list,
            workers=workers,
            submit=submit,
            collect_only=collect_only,
            split=split,
            on_run=on_run,
            reference=reference,
        )
    comparisons = [load_comparison(path) for path in sorted((out / "compare").glob("*/compare.json"))]
    render.sweep_tables(rows, list(parsed), out, comparisons if reference else [])
    console.print(f"Wrote {out}/sweep.csv, summary.json")
    if reference:
        console.print(f"Wrote {out}/compare/<point>/compare.json, compare.csv (points not compared: summary.json)")


@app.command("compare")
@_user_errors
def compare_command(
    run_dirs: Annotated[list[Path], typer.Argument(help="The candidate's evaluated runs, one per seed.")],
    reference: Annotated[
        list[Path], typer.Option("--reference", "-r", help="A reference run; repeat the option, one run per seed.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for compare.json and compare.csv.")] = Path(
        "compare"
    ),
    labels: Annotated[
        str | None, typer.Option(help="Names of the candidate and the reference: NAME,NAME.")
    ] = "candidate,reference",
    confidence_level: Annotated[float, typer.Option(help="Level of the t intervals.")] = DEFAULT_CONFIDENCE_LEVEL,
) -> None:
    """Compare runs with reference runs over training seeds (paired by the seed in each config.yaml): mean difference,
    t interval, paired t-test and sign test for AURC and Dice at every evaluated coverage."""
    import warnings

    from .._validation import UndefinedMetricWarning
    from ..report.compare import compare_runs, write_comparison

    names = [n.strip() for n in (labels or "").split(",")]
    if len(names) != 2 or not all(names):
        raise ValueError(f"Expected `--labels` to be two names, NAME,NAME, but got {labels!r}.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)  # the notes say it
        comparison = compare_runs(
            run_dirs,
            reference,
            candidate_label=names[0],
            reference_label=names[1],
            confidence_level=confidence_level,
        )
    write_comparison(comparison, out)
    render.comparison_table(comparison, names, confidence_level)
    console.print(f"Wrote {out}/compare.json, compare.csv")


@app.command("report")
@_user_errors
def report_command(
    run_dirs: Annotated[
        list[Path], typer.Argument(help="Evaluated run folders to compare (the first is the reference).")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="The HTML file (figures also saved beside it).")] = Path(
        "report.html"
    ),
    labels: Annotated[
        str | None, typer.Option(help="Comma-separated names of the runs (default: folder names).")
    ] = None,
    reference: Annotated[int, typer.Option(help="Index of the run the others are compared with.")] = 0,
    comparison: Annotated[
        list[Path] | None,
        typer.Option("--comparison", help="A compare.json (or its folder) of `selectseg compare` to include; repeat."),
    ] = None,
) -> None:
    """One self-contained HTML page comparing evaluated runs: Table 1 and 4, paired comparisons over seeds, curves,
    per-image scatter, montages, calibration, quality control, OOD, configs and versions."""
    from ..report import figures_dir, write_report

    names = None if labels is None else [n.strip() for n in labels.split(",")]
    page = write_report(run_dirs, out, labels=names, reference=reference, comparisons=list(comparison or []))
    console.print(f"Wrote {page} (figures as PNG and SVG in {figures_dir(page)})")


@app.command("synth")
@_user_errors
def synth_command(
    out: Annotated[Path, typer.Argument(help="Folder for the data set (nnU-Net / MSD layout).")],
    dims: Annotated[int, typer.Option(help="2 or 3.")] = 2,
    cases: Annotated[int, typer.Option(help="Training cases.")] = 24,
    test_cases: Annotated[int, typer.Option(help="Test cases (with labelsTs).")] = 12,
    size: Annotated[int, typer.Option(help="Image size per axis.")] = 64,
    classes: Annotated[int, typer.Option(help="Classes K (2 or 3).")] = 2,
    annotators: Annotated[int, typer.Option(help="Simulated annotators.")] = 3,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
) -> None:
    """Write the built-in synthetic data set to disk, in the layout `train --data` reads."""
    from ..data import make_synthetic_dataset, write_msd_dataset

    options = {"num_classes": classes, "num_annotators": annotators, "seed": seed, "spatial_dims": dims, "size": size}
    train = make_synthetic_dataset(split="train", num_cases=cases, **options)
    test = make_synthetic_dataset(split="test", num_cases=test_cases, **options)
    path = write_msd_dataset(out, train, test=test)
    console.print(f"Wrote {len(train)} training and {len(test)} test cases to {path}")


@app.command("inspect")
@_user_errors
def inspect_command(
    path: Annotated[Path, typer.Argument(help="Dataset folder.")],
    format_: Annotated[
        str, typer.Option("--format", help="auto | msd | glas | riga | qubiq | brats | mmwhs | hecktor.")
    ] = "auto",
    split: Annotated[str, typer.Option(help="train | test | all.")] = "all",
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the summary as JSON here.")] = None,
    scale: Annotated[
        float, typer.Option(help="Resample every case by this factor in (0, 1] first, as `data.scale` does.")
    ] = 1.0,
) -> None:
    """Summarise a dataset: format, cases, shapes, spacings, class shares, annotators and their agreement."""
    import json

    from .._io import atomic_write_text
    from ..data import load_dataset
    from ..data.summary import summarize_dataset

    if not 0.0 < scale <= 1.0:  # before reading: a full-size set can take minutes
        raise ValueError(f"Expected `--scale` in (0, 1] (1 = as read), but got {scale}.")
    dataset = load_dataset(path, split=split, format=format_)
    if scale != 1.0:
        from ..data.resize import resize_dataset

        dataset = resize_dataset(dataset, scale)
    s = summarize_dataset(dataset)
    render.dataset_summary(path, s)
    if json_out is not None:
        atomic_write_text(json_out, json.dumps({"path": str(path), "scale": scale, **s}, indent=2))
        console.print(f"Wrote {json_out}")


@app.command()
@_user_errors
def demo(
    out: Annotated[Path, typer.Option(help="Folder for both runs and the comparison.")] = Path("demo_output"),
    seed: Annotated[int, typer.Option(help="Seed of data, weights and training.")] = 0,
    quick: Annotated[bool, typer.Option(help="Tiny data and 2 epochs, for tests.")] = False,
    device: Annotated[str, typer.Option(help="cpu (the figures the docs quote) | auto | cuda[:N].")] = "cpu",
) -> None:
    """Train a baseline and an uncertainty-aware U-Net on synthetic data, evaluate both, compare."""
    from ..demo import COVERAGES, run_demo

    console.print(
        f"selectseg demo: two U-Nets on synthetic 2-D images ({'quick' if quick else 'about 2 minutes on 2 idle cores'}"
        f"; {device}), both evaluated; a rerun reuses what is finished. Output: {out}/",
        highlight=False,
    )
    displays: dict[str, render.TrainDisplay] = {}
    with render.progress() as progress:

        def on_event(name: str, event: Any) -> None:
            if name not in displays:
                displays[name] = render.TrainDisplay(progress, label=name)
            displays[name](event)

        summary = run_demo(
            out,
            seed=seed,
            quick=quick,
            device=device,
            progress=on_event,
            notify=lambda line: progress.console.print(line, highlight=False),
        )
    render.demo_table(summary, COVERAGES)
    console.print(f"Outputs written to {out}/ (summary.json, comparison.csv, baseline/, uncertainty_aware/)")
    console.print(f"Report: {summary['report']}")
