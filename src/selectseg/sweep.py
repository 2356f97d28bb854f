"""``selectseg sweep``: a grid of training runs (and seeds), resumable, collected into one table.

A sweep folder holds::

    OUT/sweep.json                 the base config, the grid and the seeds (a folder belongs to one base config)
    OUT/runs/<name>/               one ordinary run per (grid point, seed), evaluated into <name>/evaluation
    OUT/sweep.csv                  one row per finished run: the swept values, seed, AURC, oracle and excess AURC,
                                   error AUROC, AUGRC (NaN for a run evaluated before these existed), Dice,
                                   training time
    OUT/summary.json               per swept key and value: AURC mean and std over the runs with that value,
                                   training time (the data of Ding et al.'s Fig. 5); with a reference grid point,
                                   ``comparisons``: each other point against it, paired by seed
    OUT/figures/<key>.png|svg      that figure per swept key
    OUT/compare/<point>/           with a reference point: ``compare.json`` and ``compare.csv`` of that grid point
                                   against the reference (as ``selectseg compare`` writes them)

A finished run (``model.pt`` and a complete ``evaluation/``, whose ``evaluation.json`` is published last) is never
repeated; an interrupted one resumes from its last checkpoint, and one killed while evaluating is evaluated again. A
step holds its run folder's lock (:func:`selectseg.runs.folder.lock`) while it trains and evaluates. Runs execute
one after another (``workers=1``), in ``workers`` local processes (round-robin over the visible GPUs when there are
any), or are handed to an existing scheduler through a submit command template (one job per run, e.g.
``sbatch --wrap {command}``; see :data:`SUBMIT_FIELDS` for the template's contract); after the jobs have finished,
``collect_only`` gathers the table without running anything.

With ``reference`` (one grid point, e.g. ``ranking_weight=0``), every other grid point is compared with it over the
seeds finished on both (:func:`selectseg.report.compare_runs`: the training run is the unit of replication); a point
that cannot be compared (no common finished seed, or evaluated differently) gets its reason instead.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import json
import math
import os
import shlex
import shutil
import string
import subprocess
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._io import atomic_write_bytes, atomic_write_text
from .results import EvaluationResult, TrainingHistory
from .runs import folder
from .runs.config import TrainConfig, apply_overrides, config_diff, config_from_dict, config_to_dict, save_config

__all__ = ["SweepRun", "collect_sweep", "parse_grid", "parse_reference", "plan_sweep", "run_sweep"]

SWEEP_FILE = "sweep.json"

SUBMIT_FIELDS = ("command", "name", "run_dir")
"""The fields of a submit template. The template is run by ``/bin/sh`` once per unfinished run, with each field
replaced by one shell-quoted word (:func:`shlex.quote`), so a path with spaces, quotes, ``$`` or ``;`` arrives intact
and runs nothing:

- ``{command}``: the job, as one word holding a shell command line (train, then evaluate); hand it to something that
  runs a command line, e.g. ``sbatch --wrap {command}``, ``bash -c {command}``, ``ray job submit -- {command}``;
- ``{name}``: the run's name (``ranking_weight=0.5__seed=0``), e.g. ``sbatch -J {name} --wrap {command}``;
- ``{run_dir}``: the run folder, e.g. ``sbatch -o {run_dir}/slurm.log --wrap {command}``.

So a field must stand outside quotes (``"{command}"`` is refused: the shell would keep the quoting characters); write
``{{`` and ``}}`` for literal braces. ``{command}`` is required; no other field, format spec or conversion is allowed.
"""


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep: its folder name, the swept values (full config keys) and the resolved config."""

    name: str
    params: dict[str, Any]
    seed: int
    config: TrainConfig


def _config_keys() -> list[str]:
    def walk(data: dict[str, Any], prefix: str) -> list[str]:
        out = []
        for key, value in data.items():
            if isinstance(value, dict):
                out += walk(value, f"{prefix}{key}.")
            else:
                out.append(f"{prefix}{key}")
        return out

    return walk(config_to_dict(TrainConfig()), "")


def _resolve_key(key: str, keys: list[str]) -> str:
    if key in keys:
        return key
    matches = [k for k in keys if k.split(".")[-1] == key]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ValueError(f"Grid key {key!r} is ambiguous: use one of {matches}.")
    near = difflib.get_close_matches(key, keys + [k.split(".")[-1] for k in keys], n=1)
    hint = f" Did you mean {near[0]!r}?" if near else ""
    raise ValueError(f"Unknown grid key {key!r}.{hint}")


def _split_values(text: str) -> list[str]:
    """Split on commas outside brackets: ``"[8,16],[16,32]"`` -> ``["[8,16]", "[16,32]"]``."""
    values, depth, current = [], 0, ""
    for ch in text:
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            values.append(current.strip())
            current = ""
        else:
            current += ch
    values.append(current.strip())
    return [v for v in values if v]


def parse_grid(specs: Sequence[str]) -> dict[str, list[str]]:
    """Parse ``--grid key=v1,v2,...`` options into ``{full config key: [values as text]}``.

    A key is a full config key (``loss.ranking_weight``) or a field name that names exactly one key
    (``ranking_weight``). Values are checked against the field types in :func:`plan_sweep`.

    Raises:
        ValueError: on a malformed option, an unknown or ambiguous key (with a near match), a key given twice, or no
            values.

    Example:
        >>> parse_grid(["ranking_weight=0.5,1", "model.channels=[8,16],[16,32]"])
        {'loss.ranking_weight': ['0.5', '1'], 'model.channels': ['[8,16]', '[16,32]']}
    """
    keys = _config_keys()
    grid: dict[str, list[str]] = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"Expected `--grid key=v1,v2,...`, but got {spec!r}.")
        full = _resolve_key(key.strip(), keys)
        if full in grid:
            raise ValueError(f"Grid key {full!r} is given twice.")
        if full == "seed":
            raise ValueError("Sweep seeds with `--seeds`, not as a grid key.")
        parsed = _split_values(values)
        if not parsed:
            raise ValueError(f"Expected at least one value for grid key {full!r}, but got {spec!r}.")
        grid[full] = parsed
    return grid


def _name(params: dict[str, str], seed: int) -> str:
    """A folder name from the swept values: ``ranking_weight=0.5__n_correct=2200__seed=0`` (unsafe characters
    replaced by ``-``)."""
    text = "__".join([f"{k.split('.')[-1]}={v}" for k, v in params.items()] + [f"seed={seed}"])
    return "".join(c if c.isalnum() or c in "=._-" else "-" for c in text)


def _point_name(params: dict[str, str]) -> str:
    """The grid point's part of :func:`_name` (``ranking_weight=0.5__n_correct=2200``; ``base`` for an empty grid)."""
    return _name(params, 0).removesuffix("seed=0").removesuffix("__") or "base"


def _point_of(run: SweepRun) -> str:
    return run.name.removesuffix(f"seed={run.seed}").removesuffix("__") or "base"


def parse_reference(grid: dict[str, list[str]], specs: Sequence[str]) -> dict[str, str]:
    """Parse ``key=value`` options naming one grid point (the reference of the comparisons) into ``{full key:
    value}``; a key with one value in the grid may be left out.

    Raises:
        ValueError: on a malformed option, a key that is not swept (or unknown, with a near match) or given twice, a
            value not in the grid (the message lists the grid's), or a swept key with several values left out.

    Example:
        >>> parse_reference({"loss.ranking_weight": ["0", "2"], "loss.n_correct": ["2200"]}, ["ranking_weight=0"])
        {'loss.ranking_weight': '0', 'loss.n_correct': '2200'}
    """
    keys = _config_keys()
    chosen: dict[str, str] = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"Expected the reference as `key=value` (one grid point), but got {spec!r}.")
        full = _resolve_key(key.strip(), keys)
        if full not in grid:
            raise ValueError(f"Reference key {full!r} is not swept; the grid's keys are {list(grid)}.")
        if full in chosen:
            raise ValueError(f"Reference key {full!r} is given twice.")
        if value.strip() not in grid[full]:
            raise ValueError(
                f"Expected the reference's {full!r} to be one of the grid's {grid[full]}, but got {value!r}."
            )
        chosen[full] = value.strip()
    for full, values in grid.items():
        if full not in chosen:
            if len(values) > 1:
                raise ValueError(
                    f"Expected the reference to give {full!r} (one of {values}), since the grid sweeps it."
                )
            chosen[full] = values[0]
    return {k: chosen[k] for k in grid}


_INERT: dict[str, tuple[str, Callable[[TrainConfig], bool]]] = {
    "loss.ranking_weight": (
        "loss.ranking is none or loss.ranking_balance > 0 (the balanced weight replaces it)",
        lambda c: c.loss.ranking == "none" or c.loss.ranking_balance > 0,
    ),
    "loss.margin": ("loss.ranking is none", lambda c: c.loss.ranking == "none"),
    "loss.reduction": ("loss.ranking is none", lambda c: c.loss.ranking == "none"),
    "loss.uncertainty": ("loss.ranking is none", lambda c: c.loss.ranking == "none"),
    "loss.ranking_start_epoch": ("loss.ranking is none", lambda c: c.loss.ranking == "none"),
    "loss.ranking_warmup_epochs": ("loss.ranking is none", lambda c: c.loss.ranking == "none"),
    "loss.n_wrong": ("loss.ranking is not sampled", lambda c: c.loss.ranking != "sampled"),
    "loss.n_correct": ("loss.ranking is not sampled", lambda c: c.loss.ranking != "sampled"),
    "loss.ranking_balance": ("loss.ranking is none", lambda c: c.loss.ranking == "none"),
    "loss.balance_momentum": (
        "loss.ranking_balance is 0",
        lambda c: c.loss.ranking == "none" or c.loss.ranking_balance == 0,
    ),
    "loss.guidance_weight": (
        "loss.heads is main (guidance needs the heads: loss.heads=all)",
        lambda c: c.loss.heads == "main",
    ),
}
"""Config keys that change nothing in some configs: key -> (when, predicate on a run's config)."""


def plan_sweep(base: TrainConfig, grid: dict[str, list[str]], seeds: Sequence[int]) -> list[SweepRun]:
    """Every (grid point, seed) run, each config built and validated now (a bad value fails before anything runs).

    Raises:
        ValueError: naming the key and value when a grid value does not fit its field (type or range), with no
            seeds, or when a grid key changes nothing in any of the planned configs (e.g. ``loss.ranking_weight``
            while ``loss.ranking`` is none): such a sweep would train identical runs under different names.
    """
    if not seeds:
        raise ValueError("Expected at least one seed.")
    base_dict = config_to_dict(base)
    runs = []
    keys = list(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        params = dict(zip(keys, values))
        for seed in seeds:
            overrides = [f"{k}={v}" for k, v in params.items()] + [f"seed={seed}"]
            try:
                config = _config_with(base_dict, overrides)
            except ValueError as error:
                raise ValueError(f"Grid point {params}: {error}") from None
            typed = {k: _typed(config, k) for k in keys}
            runs.append(SweepRun(_name(params, seed), typed, int(seed), config))
    for key in keys:
        if key in _INERT and len(set(map(str, grid[key]))) > 1:
            when, inert = _INERT[key]
            if all(inert(r.config) for r in runs):
                raise ValueError(
                    f"Grid key {key!r} has no effect in these runs: {when}. Set what makes it matter (e.g. "
                    f"--set loss.ranking=exact), or sweep that key too."
                )
    return runs


def _config_with(base: dict[str, Any], overrides: list[str]) -> TrainConfig:
    return config_from_dict(apply_overrides(base, overrides))


def _typed(config: TrainConfig, key: str) -> Any:
    value: Any = config
    for part in key.split("."):
        value = getattr(value, part)
    return list(value) if isinstance(value, tuple) else value


def _finished(run_dir: Path) -> bool:
    """A step is finished when the run is trained and its evaluation is complete: ``evaluation.json`` is published
    last, after every other evaluation file (:meth:`EvaluationResult.save`), so a step killed while writing its
    evaluation is not finished and runs again."""
    return (run_dir / folder.MODEL).is_file() and EvaluationResult.exists(run_dir / folder.EVALUATION_DIR)


def _execute(run_dir: str, config: dict[str, Any], split: str, device: str | None, threads: int) -> str:
    """Train (or resume) and evaluate one run, holding its folder's lock throughout; module-level so worker
    processes can import it."""
    import torch

    from .evaluation import evaluate_cases, load_run
    from .runs.data import load_cases
    from .training import train

    if threads > 0:
        torch.set_num_threads(threads)
    path = Path(run_dir)
    resolved = config_from_dict(config)
    if device is not None:
        resolved = dataclasses.replace(resolved, device=device)
    with folder.lock(path, purpose="sweep step"):  # the whole step, train then evaluate, owns the run folder
        if not (path / folder.MODEL).is_file():
            train(resolved, path, resume=folder.has_config(path))
        run = load_run(path, device=resolved.device)
        evaluate_cases(run, list(load_cases(run.config.data, split=split).cases), path / folder.EVALUATION_DIR)
    return run_dir


def run_sweep(
    base: TrainConfig,
    grid: dict[str, list[str]],
    out: str | Path,
    *,
    seeds: Sequence[int] = (0,),
    workers: int = 1,
    submit: str | None = None,
    collect_only: bool = False,
    split: str = "test",
    on_run: Callable[[str, str], None] | None = None,
    reference: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Run (or resume, or submit) every run of the sweep, then collect the finished ones (module docstring).

    Args:
        base: the config every run starts from (the grid and seed override it).
        grid: ``{config key: [values]}`` from :func:`parse_grid`.
        out: the sweep folder; a folder of another base config is refused.
        seeds: seeds of every grid point.
        workers: local processes running at once (1 = one after another in this process).
        submit: a shell command template with ``{command}`` (and optionally ``{name}``, ``{run_dir}``), each
            substituted as one shell-quoted word (:data:`SUBMIT_FIELDS`): each unfinished run is submitted as one job
            and not waited for; collect later with ``collect_only``.
        collect_only: run nothing, only collect the finished runs.
        split: the test split each run is evaluated on.
        on_run: called with (run name, "done" | "skipped" | "submitted") for progress.
        reference: ``key=value`` options naming the grid point the others are compared with, paired by seed
            (:func:`parse_reference`); None: no comparison.

    Returns:
        The rows of ``sweep.csv`` (finished runs only).

    Raises:
        ValueError: before anything runs, if the folder belongs to another base config, a grid value is invalid,
            ``workers < 1``, ``submit`` lacks ``{command}``, holds another field, a field inside quotes or unbalanced
            braces or quotes (:data:`SUBMIT_FIELDS`), or ``reference`` does not name one grid point.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"Expected `workers` to be an int >= 1, but got {workers!r}.")
    if submit is not None:
        _check_submit_template(submit)
    out = Path(out)
    runs = plan_sweep(base, grid, seeds)
    reference_point = parse_reference(grid, reference) if reference is not None else None
    index = out / SWEEP_FILE
    base_dict = config_to_dict(base)
    if index.is_file():
        changed = [
            key for key, _, _ in config_diff(json.loads(index.read_text())["base"], json.loads(json.dumps(base_dict)))
        ]
        if changed:
            raise ValueError(
                f"Sweep folder {str(out)!r} belongs to a different base config (differs in {changed}); "
                "use a new folder or the same config."
            )
    if not collect_only:
        entry = {"base": base_dict, "grid": grid, "seeds": list(seeds), "runs": [r.name for r in runs]}
        if index.is_file():  # a grown grid adds runs; finished ones are kept
            previous = json.loads(index.read_text())
            entry["runs"] = list(dict.fromkeys(previous.get("runs", []) + entry["runs"]))
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(index, json.dumps(entry, indent=2))
        todo = [r for r in runs if not _finished(out / "runs" / r.name)]
        for r in runs:
            if r not in todo and on_run is not None:
                on_run(r.name, "skipped")
        if submit is not None:
            _submit(todo, out, submit, split, on_run)
        elif workers == 1:
            for r in todo:
                _execute(str(out / "runs" / r.name), config_to_dict(r.config), split, None, 0)
                if on_run is not None:
                    on_run(r.name, "done")
        else:
            _parallel(todo, out, workers, split, on_run)
    return collect_sweep(out, runs, reference=reference_point)


def _check_submit_template(template: str) -> None:
    """Refuse a submit template that breaks the contract of :data:`SUBMIT_FIELDS` (before anything runs)."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as err:
        raise ValueError(
            f"Expected the submit template to have balanced braces (write {{{{ and }}}} for literal ones), but got "
            f"{template!r}: {err}."
        ) from None
    quote = ""  # the shell's quoting state before each field: "", "'" or '"'
    fields = []
    for literal, field, spec, conversion in parts:
        escaped = False
        for ch in literal:
            if escaped:
                escaped = False
            elif ch == "\\" and quote != "'":
                escaped = True
            elif quote and ch == quote:
                quote = ""
            elif not quote and ch in "'\"":
                quote = ch
        if field is None:
            continue
        if field not in SUBMIT_FIELDS or spec or conversion:
            shown = "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            raise ValueError(
                f"Expected the submit template's fields to be among {['{' + f + '}' for f in SUBMIT_FIELDS]} with no "
                f"format spec or conversion (write {{{{ and }}}} for literal braces), but got {shown} in {template!r}."
            )
        if quote or escaped:
            raise ValueError(
                f"Expected {{{field}}} to stand outside quotes in the submit template (each field is substituted as "
                f"one shell-quoted word: write e.g. sbatch --wrap {{command}}), but got {template!r}."
            )
        fields.append(field)
    if "command" not in fields:
        raise ValueError(f"Expected the submit template to contain {{command}}, but got {template!r}.")
    if quote:
        raise ValueError(f"Expected the submit template to close its {quote} quote, but got {template!r}.")


def _submit(
    todo: list[SweepRun], out: Path, template: str, split: str, on_run: Callable[[str, str], None] | None
) -> None:
    configs = out / "configs"
    configs.mkdir(parents=True, exist_ok=True)
    for r in todo:
        config_file = configs / f"{r.name}.yaml"
        atomic_write_text(config_file, save_config(r.config))
        run_dir = out / "runs" / r.name
        resume = " --resume" if folder.has_config(run_dir) else ""
        exe = shlex.quote(sys.executable)
        command = (
            f"{exe} -m selectseg train {shlex.quote(str(config_file))} --out {shlex.quote(str(run_dir))}{resume} && "
            f"{exe} -m selectseg evaluate {shlex.quote(str(run_dir))} --split {shlex.quote(split)}"
        )
        line = template.format(
            command=shlex.quote(command), name=shlex.quote(r.name), run_dir=shlex.quote(str(run_dir))
        )
        subprocess.run(line, shell=True, check=True)
        if on_run is not None:
            on_run(r.name, "submitted")


def _parallel(
    todo: list[SweepRun], out: Path, workers: int, split: str, on_run: Callable[[str, str], None] | None
) -> None:
    import multiprocessing

    import torch

    gpus = torch.cuda.device_count()
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {
            pool.submit(
                _execute,
                str(out / "runs" / r.name),
                config_to_dict(r.config),
                split,
                f"cuda:{i % gpus}" if gpus else None,
                threads,
            ): r.name
            for i, r in enumerate(todo)
        }
        for future, name in futures.items():
            future.result()
            if on_run is not None:
                on_run(name, "done")


_AURC_PARTS = ("oracle_aurc", "excess_aurc", "error_auroc", "augrc")
"""The ``evaluation.json`` floats written beside AURC in ``sweep.csv`` (see ``docs/metrics.md``)."""


def collect_sweep(
    out: str | Path, runs: list[SweepRun], *, reference: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Gather the finished runs into ``sweep.csv`` and ``summary.json`` (see the module docstring); with
    ``reference`` (a grid point from :func:`parse_reference`), compare every other point with it over the seeds
    finished on both, into ``OUT/compare/<point>/`` and ``summary.json``'s ``comparisons``.

    Returns:
        One row per finished run: the swept values, ``seed``, ``aurc``, ``oracle_aurc``, ``excess_aurc``,
        ``error_auroc``, ``augrc`` (NaN where ``evaluation.json`` holds null or lacks them), ``dice`` (mean Dice at
        coverage 1) and ``train_seconds`` (sum of the epochs' times in ``metrics.csv``).
    """
    import csv
    import io

    out = Path(out)
    rows = []
    for r in runs:
        run_dir = out / "runs" / r.name
        if not _finished(run_dir):
            continue
        result = EvaluationResult.load(run_dir / folder.EVALUATION_DIR)
        history = TrainingHistory.load(run_dir / folder.METRICS)
        seconds = float(np.nansum(history.columns["seconds"])) if history is not None else math.nan
        full = result.point(1.0)
        rows.append(
            {
                "name": r.name,
                **r.params,
                "seed": r.seed,
                "aurc": result.aurc,
                **{key: result.headline().get(key, math.nan) for key in _AURC_PARTS},
                "dice": full.dice_mean if full is not None else math.nan,
                "train_seconds": seconds,
            }
        )
    keys = list(runs[0].params) if runs else []
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["name", *keys, "seed", "aurc", *_AURC_PARTS, "dice", "train_seconds"])
    for row in rows:
        writer.writerow(
            [
                row["name"],
                *(row[k] for k in keys),
                row["seed"],
                repr(row["aurc"]),
                *(repr(row[k]) for k in _AURC_PARTS),
                repr(row["dice"]),
                repr(row["train_seconds"]),
            ]
        )
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "sweep.csv", buffer.getvalue())
    summary: dict[str, Any] = {"runs": len(runs), "finished": len(rows), "parameters": {}}
    for key in keys:
        per_value = []
        for value in dict.fromkeys(json.dumps(r.params[key]) for r in runs):
            chosen = [row for row in rows if json.dumps(row[key]) == value]
            aurc = np.array([row["aurc"] for row in chosen], dtype=np.float64)
            time = np.array([row["train_seconds"] for row in chosen], dtype=np.float64)
            per_value.append(
                {
                    "value": json.loads(value),
                    "runs": len(chosen),
                    "aurc_mean": float(aurc.mean()) if chosen else None,
                    "aurc_std": float(aurc.std()) if chosen else None,
                    "train_seconds_mean": float(time.mean()) if chosen else None,
                }
            )
        summary["parameters"][key] = per_value
    if reference is not None:
        summary["comparisons"] = _compare_points(out, runs, _point_name(reference))
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
    if rows:
        from .report.figures import figure_bytes, plot_sweep_parameter

        for key, points in summary["parameters"].items():
            figure = plot_sweep_parameter(key, points)
            for fmt in ("png", "svg"):
                atomic_write_bytes(out / "figures" / f"{key}.{fmt}", figure_bytes(figure, fmt))
    return rows


def _compare_points(out: Path, runs: list[SweepRun], reference: str) -> dict[str, Any]:
    """Each grid point against ``reference`` over their common finished seeds: ``OUT/compare/<point>/`` files and
    the ``comparisons`` entry of ``summary.json`` (per point its folder and notes, or why it was not compared)."""
    import warnings

    from ._validation import UndefinedMetricWarning
    from .report.compare import compare_runs, write_comparison

    finished: dict[str, dict[int, Path]] = {}
    for r in runs:
        finished.setdefault(_point_of(r), {})
        if _finished(out / "runs" / r.name):
            finished[_point_of(r)][r.seed] = out / "runs" / r.name
    reference_runs = finished.get(reference, {})
    points = []
    for point, by_seed in finished.items():
        if point == reference:
            continue
        entry: dict[str, Any] = {"point": point}
        seeds = sorted(set(by_seed) & set(reference_runs))
        if not seeds:
            entry["error"] = "no seed finished for both this point and the reference"
        else:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UndefinedMetricWarning)  # one seed: the notes say it
                    comparison = compare_runs(
                        [by_seed[s] for s in seeds],
                        [reference_runs[s] for s in seeds],
                        candidate_label=point,
                        reference_label=reference,
                    )
            except ValueError as error:
                entry["error"] = str(error)
            else:
                folder = write_comparison(comparison, out / "compare" / point)
                aurc = comparison.metric("aurc")
                entry.update(
                    folder=str(folder.relative_to(out)),
                    seeds=seeds,
                    aurc_difference=aurc.result.mean if aurc is not None else None,
                    notes=list(comparison.notes),
                )
        if "error" in entry:  # no stale files of an earlier collection
            shutil.rmtree(out / "compare" / point, ignore_errors=True)
        points.append(entry)
    return {"reference": reference, "unit": "training run (paired by seed)", "points": points}
