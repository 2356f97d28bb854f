"""What the experiment scripts share: prepared data, resumable training and evaluation, timing, Markdown tables.

Every step is skipped when its result is already in the output folder, so an interrupted experiment resumes where it
stopped when the same command runs again (training runs resume from their last checkpoint).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from selectseg._io import atomic_write_text
from selectseg.data import SegmentationDataset, load_dataset, resize_dataset, write_msd_dataset
from selectseg.evaluation import DEFAULT_COVERAGES, evaluate_cases, load_run
from selectseg.evaluation.run import LoadedRun
from selectseg.results import EvaluationResult
from selectseg.runs import folder
from selectseg.training import TrainConfig, train
from selectseg.training.multirun import train_ensemble
from selectseg.uncertainty import InferenceOptions

TABLE1 = (1.0, 0.95, 0.9, 0.8, 0.7)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def machine() -> dict[str, Any]:
    """The hardware and software a result was measured on."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def prepare_data(
    folder: Path, settings: dict[str, Any], build: Callable[[], tuple[SegmentationDataset, SegmentationDataset]]
) -> tuple[SegmentationDataset, SegmentationDataset]:
    """The experiment's (train, test) data, written once to ``folder`` in the nnU-Net layout and read back from there.

    ``settings`` (sources, scale, split) are stored beside the data; a folder prepared with other settings is refused
    rather than silently reused.
    """
    stamp = folder / "prepared.json"
    if stamp.is_file():
        saved = json.loads(stamp.read_text())
        if saved != json.loads(json.dumps(settings)):
            raise ValueError(
                f"{folder} was prepared with other settings ({saved}); expected {settings}. Use another --out."
            )
        log(f"data: reusing {folder}")
    else:
        log("data: preparing")
        train_set, test_set = build()
        write_msd_dataset(folder, train_set, test=test_set)
        atomic_write_text(stamp, json.dumps(settings, indent=2))
    return load_dataset(folder, split="train"), load_dataset(folder, split="test")


def load_resized(
    train_path: Path, test_path: Path, format_: str, scale: float, limit: int = 0
) -> tuple[SegmentationDataset, SegmentationDataset]:
    """The ``train`` split of ``train_path`` and the ``test`` split of ``test_path`` in ``format_``, each cut to its
    first ``limit`` cases (0 = all) and resampled by ``scale`` (:func:`selectseg.data.resize_dataset`)."""
    out = []
    for path, split in ((train_path, "train"), (test_path, "test")):
        dataset = load_dataset(path, split=split, format=format_)
        if limit > 0:
            dataset = SegmentationDataset(dataset.info, dataset.cases[:limit])
        out.append(resize_dataset(dataset, scale))
    return out[0], out[1]


def train_run(config: TrainConfig, run_dir: Path, *, members: int = 1) -> float:
    """Train (or resume, or skip when finished) one run or a deep ensemble; return its training seconds."""
    if members > 1:
        resume = (run_dir / "ensemble.json").is_file()
        train_ensemble(config, run_dir, members, resume=resume)
        return sum(training_seconds(run_dir / f"member_{k}") for k in range(members))
    train(config, run_dir, resume=(run_dir / "config.yaml").is_file())
    return training_seconds(run_dir)


def training_seconds(run_dir: Path, until_epoch: int | None = None) -> float:
    """The summed epoch times of a run's ``metrics.csv`` (training and validation; resumed runs included), of the
    epochs up to ``until_epoch`` when given."""
    lines = (run_dir / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    epoch, seconds = header.index("epoch"), header.index("seconds")
    rows = [line.split(",") for line in lines[1:]]
    return float(sum(float(r[seconds]) for r in rows if until_epoch is None or int(r[epoch]) <= until_epoch))


def evaluate_run(
    run_dir: Path,
    cases: Sequence[Any],
    *,
    estimator: str = "softmax",
    uncertainty: str = "max_softmax",
    estimator_options: dict[str, Any] | None = None,
    sv_roi_radius: int | None = None,
) -> EvaluationResult:
    """``RUN/evaluation/`` (computed unless it is there for the same estimator, its options, the uncertainty and the
    SV region)."""
    out = run_dir / folder.EVALUATION_DIR
    if EvaluationResult.exists(out):
        saved = EvaluationResult.load(out)
        same = (saved.estimator, saved.uncertainty, dict(saved.estimator_options)) == (
            estimator,
            uncertainty,
            estimator_options or {},
        )
        radius = saved.disagreement.sv_roi_radius if saved.disagreement is not None else None
        if same and radius == sv_roi_radius:
            return saved
    run = load_run(run_dir)
    return evaluate_cases(
        run,
        list(cases),
        out,
        coverages=DEFAULT_COVERAGES,
        inference=InferenceOptions(uncertainty, estimator, estimator_options or {}),
        sv_roi_radius=sv_roi_radius,
    )


def inference_seconds(
    run_dir: Path,
    cases: Sequence[Any],
    *,
    estimator: str,
    estimator_options: dict[str, Any] | None = None,
    repeats: int = 3,
) -> dict[str, Any]:
    """Wall time of the estimator's inference per image: the median of ``repeats`` passes over ``cases`` (after one
    untimed warm-up case), cached in the run folder."""
    cache = run_dir / folder.EVALUATION_DIR / "inference_time.json"
    if cache.is_file():
        saved = json.loads(cache.read_text())
        if saved["estimator"] == estimator:
            return dict(saved)
    run: LoadedRun = load_run(run_dir)
    inference = InferenceOptions(estimator=estimator, estimator_options=estimator_options or {})
    cases = list(cases)
    for _ in run.outputs(cases[:1], inference):
        pass
    passes = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in run.outputs(cases, inference):
            pass
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        passes.append((time.perf_counter() - start) / len(cases))
    result = {
        "estimator": estimator,
        "images": len(cases),
        "repeats": repeats,
        "seconds_per_image": float(np.median(passes)),
        "passes": passes,
    }
    atomic_write_text(cache, json.dumps(result, indent=2))
    return result


def table_row(evaluation: EvaluationResult, coverages: Sequence[float] = TABLE1) -> dict[str, Any]:
    """AURC (%) and Dice mean / std / p5 at each of ``coverages`` of an evaluation."""
    row: dict[str, Any] = {"aurc_percent": 100.0 * evaluation.aurc}
    for c in coverages:
        p = evaluation.point(c)
        if p is None:
            raise KeyError(f"coverage {c} not evaluated")
        row[f"dice@{c}"] = p.dice_mean
        row[f"std@{c}"] = p.dice_std
        row[f"p5@{c}"] = p.dice_p5
        row[f"coverage@{c}"] = p.coverage
    return row


def image_dice(evaluation: EvaluationResult, coverage: float) -> np.ndarray:
    """Per-image Dice at a target coverage, in case-id order."""
    p = evaluation.point(coverage)
    if p is None:
        raise KeyError(f"coverage {coverage} not evaluated")
    return np.asarray([p.image_dice[k] for k in sorted(p.image_dice)], dtype=float)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "nan" if not np.isfinite(value) else f"{value:.4f}"
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_outputs(out: Path, summary: dict[str, Any], markdown: str, started: float) -> None:
    """Write ``summary.json`` and ``results.md``, both completed with the machine and the command's wall time since
    ``started`` (a ``time.perf_counter()`` value)."""
    elapsed = time.perf_counter() - started
    summary.update(machine=machine(), elapsed_seconds=elapsed)
    markdown += f"\nWhole command: {elapsed / 60:.1f} min (steps found finished were skipped). Machine: {machine()}\n"
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=str))
    atomic_write_text(out / "results.md", markdown)
    log(f"wrote {out / 'summary.json'} and {out / 'results.md'}")
