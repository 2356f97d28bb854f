"""The GlaS study's analysis: a ledger (``experiments/glas.py``) -> the Markdown tables of docs/results.md.

    python experiments/glas_analysis.py experiments/results/glas/ledger.jsonl --out experiments/results/glas
    python experiments/glas_analysis.py LEDGER --docs docs/results.md     # also rewrite the study's section there

Reads nothing but the ledger, so anyone can rebuild the tables from the committed file. Settings are chosen on the
validation records only; the test records are reported for the chosen settings and never used to choose.

Tables (each at every evaluated budget where it matters):

1. Per method on the test images: mean ± SD over seeds of AURC, its decomposition (oracle AURC = segmentation
   quality, excess AURC = ordering), pixel error-detection AUROC, AUGRC and Dice at coverage 1 / 0.9.
2. Paired by seed against the baseline: the mean difference, its SE and 95 % t interval, the paired t-test and the
   exact sign test, the seeds better / worse, and how many seeds meet the target (AURC <= 0.85 x the baseline's with
   Dice@1 within 1 point).
3. The budget curve (480 / 960 / final steps): the paired AURC and Dice@1 differences at each budget.
4. Dose-response: the ranking weight (0, 20, 200, 2000) and the balanced fractions, paired with the baseline.
5. The choice on validation images, paired by seed: among the methods with at least 3 seeds whose Dice@1 stays
   within 1 point of the baseline's, the one with the lowest mean AURC change.
"""

from __future__ import annotations

import argparse
import json
import math
import warnings
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from selectseg._io import atomic_write_text
from selectseg._validation import UndefinedMetricWarning
from selectseg.metrics import paired_comparison

BEGIN, END = "<!-- glas-study:begin -->", "<!-- glas-study:end -->"
TARGET_RATIO = 0.85
MIN_SEEDS = 3
DICE_TOLERANCE = 0.01
HIGHER_IS_BETTER = {"dice@1", "dice@0.9", "error_auroc"}


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _value(record: dict[str, Any], key: str) -> float:
    value = record.get(key)
    return float("nan") if value is None else float(value)


def _index(records: Sequence[dict[str, Any]]) -> dict[tuple[str, int, str], dict[int, dict[str, Any]]]:
    """``(method, steps, split) -> {seed: record}``."""
    out: dict[tuple[str, int, str], dict[int, dict[str, Any]]] = defaultdict(dict)
    for r in records:
        out[(r["method"], r["steps"], r["split"])][r["seed"]] = r
    return out


def _fmt(x: float, digits: int = 3) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.{digits}f}"


def _pct(x: float, digits: int = 2) -> str:
    return "n/a" if not math.isfinite(x) else f"{100 * x:.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def method_order(records: Sequence[dict[str, Any]]) -> list[str]:
    first = ["baseline", "sampled", "exact", "balanced", "exact_2stage"]
    present = {r["method"] for r in records}
    rest = sorted(present - set(first), key=lambda m: (m.split("_")[0], _number(m)))
    return [m for m in first if m in present] + rest


def _number(method: str) -> float:
    tail = method.rsplit("_", 1)[-1].lstrip("wf")
    try:
        return float(tail)
    except ValueError:
        return math.inf


def summary_table(index: dict, methods: list[str], steps: int, split: str) -> str:
    keys = [
        ("aurc", "AURC %", True),
        ("oracle_aurc", "oracle %", True),
        ("excess_aurc", "excess %", True),
        ("error_auroc", "error-AUROC", False),
        ("augrc", "AUGRC %", True),
        ("dice@1", "Dice@1", False),
        ("dice@0.9", "Dice@0.9", False),
    ]
    rows = []
    for method in methods:
        runs = index.get((method, steps, split), {})
        if not runs:
            continue
        row = [method, str(len(runs))]
        for key, _, percent in keys:
            values = np.array([_value(r, key) for r in runs.values()])
            scale = 100.0 if percent else 1.0
            if np.all(np.isnan(values)):
                row.append("n/a")
                continue
            sd = float(np.nanstd(values, ddof=1)) if np.sum(~np.isnan(values)) > 1 else float("nan")
            digits = 2 if percent else 3
            row.append(f"{_fmt(scale * float(np.nanmean(values)), digits)} ± {_fmt(scale * sd, digits)}")
        ci = [r.get("aurc_ci") for r in runs.values()]
        widths = [100 * (c[1] - c[0]) for c in ci if c]
        row.append(_fmt(float(np.mean(widths)), 2) if widths else "n/a")
        rows.append(row)
    header = ["method", "seeds", *[label for _, label, _ in keys], "AURC 95 % CI width (images)"]
    return _table(header, rows)


def paired_rows(index: dict, methods: list[str], steps: int, split: str, keys: Sequence[str]) -> list[list[str]]:
    base = index.get(("baseline", steps, split), {})
    rows = []
    for method in methods:
        if method == "baseline":
            continue
        runs = index.get((method, steps, split), {})
        seeds = sorted(set(runs) & set(base))
        if not seeds:
            continue
        for key in keys:
            cand = [_value(runs[s], key) for s in seeds]
            ref = [_value(base[s], key) for s in seeds]
            if any(math.isnan(v) for v in cand + ref):
                continue
            result = paired_comparison(cand, ref, higher_is_better=key in HIGHER_IS_BETTER)
            scale = 100.0 if key in ("aurc", "oracle_aurc", "excess_aurc", "augrc") else 1.0
            lo, hi = result.ci
            rows.append(
                [
                    method,
                    key,
                    str(result.n),
                    f"{_fmt(scale * result.mean, 3)} ± {_fmt(scale * result.se, 3)}",
                    f"[{_fmt(scale * lo, 3)}, {_fmt(scale * hi, 3)}]",
                    f"{result.better}/{result.worse}/{result.equal}",
                    _fmt(result.p_value, 3),
                    _fmt(result.sign_p_value, 3),
                ]
            )
    return rows


def per_run_table(index: dict, methods: list[str], steps: int, split: str) -> str:
    """One row per run: AURC with its bootstrap interval over images, the split, error AUROC, Dice@1."""
    rows = []
    for method in methods:
        for seed, r in sorted(index.get((method, steps, split), {}).items()):
            ci = r.get("aurc_ci")
            interval = f" [{_pct(ci[0])}, {_pct(ci[1])}]" if ci else ""
            rows.append(
                [
                    f"{method}_s{seed}",
                    _pct(_value(r, "aurc")) + interval,
                    _pct(_value(r, "oracle_aurc")),
                    _pct(_value(r, "excess_aurc")),
                    _fmt(_value(r, "error_auroc")),
                    _fmt(_value(r, "dice@1")),
                    _fmt(_value(r, "ece_top_label")),
                    f"{_value(r, 'train_seconds') / 60:.1f}",
                ]
            )
    header = ["run", "AURC % [95 % CI, images]", "oracle %", "excess %", "error AUROC", "Dice@1", "ECE", "train min"]
    return _table(header, rows)


PAIRED_HEADER = ["method", "figure", "seeds", "mean diff ± SE", "95 % CI", "better/worse/equal", "t-test p", "sign p"]


def target_rows(index: dict, methods: list[str], steps: int, split: str) -> list[list[str]]:
    base = index.get(("baseline", steps, split), {})
    rows = []
    for method in methods:
        runs = index.get((method, steps, split), {})
        seeds = sorted(set(runs) & set(base))
        if method == "baseline" or not seeds:
            continue
        ratios = [_value(runs[s], "aurc") / _value(base[s], "aurc") for s in seeds]
        dice = [_value(runs[s], "dice@1") - _value(base[s], "dice@1") for s in seeds]
        met = sum(r <= TARGET_RATIO and d >= -DICE_TOLERANCE for r, d in zip(ratios, dice))
        rows.append(
            [
                method,
                " ".join(f"{r:.2f}" for r in ratios),
                " ".join(f"{100 * d:+.1f}" for d in dice),
                f"{met}/{len(seeds)}",
            ]
        )
    return rows


def dose_rows(index: dict, methods: list[str], steps: int, split: str) -> list[list[str]]:
    """The fixed weights (exact_wW; exact = 2000) and balanced fractions (balanced_fF; balanced = the main fraction)
    on the seeds the dose study has, each paired with the baseline on those seeds."""
    dose = [m for m in methods if m.startswith(("exact_w", "balanced_f"))]
    if not dose:
        return []
    seeds = sorted({s for m in dose for s in index.get((m, steps, split), {})})
    base = index.get(("baseline", steps, split), {})
    rows = []
    for method in [m for m in methods if m in ("exact", "balanced")] + dose:
        runs = index.get((method, steps, split), {})
        common = [s for s in seeds if s in runs and s in base]
        if not common:
            continue
        row = [method, ",".join(map(str, common))]
        for key, scale in (("aurc", 100.0), ("dice@1", 100.0), ("error_auroc", 1.0)):
            d = [_value(runs[s], key) - _value(base[s], key) for s in common]
            row.append(f"{scale * float(np.mean(d)):+.3f}")
        rows.append(row)
    return rows


def choose_on_validation(index: dict, methods: list[str], steps: int) -> tuple[str | None, list[list[str]]]:
    """The rule fixed before the study: paired with the baseline on the seeds each method has, a method is eligible
    when it has at least ``MIN_SEEDS`` seeds and its mean Dice@1 change is >= -1 point; the eligible method with the
    lowest mean AURC change is chosen (validation images only)."""
    base = index.get(("baseline", steps, "validation"), {})
    rows, best, best_change = [], None, math.inf
    for method in methods:
        runs = index.get((method, steps, "validation"), {})
        seeds = sorted(set(runs) & set(base))
        if method == "baseline" or not seeds:
            continue
        aurc = float(np.mean([_value(runs[s], "aurc") - _value(base[s], "aurc") for s in seeds]))
        dice = float(np.mean([_value(runs[s], "dice@1") - _value(base[s], "dice@1") for s in seeds]))
        eligible = len(seeds) >= MIN_SEEDS and dice >= -DICE_TOLERANCE
        verdict = "yes" if eligible else "no" if len(seeds) >= MIN_SEEDS else f"no (< {MIN_SEEDS} seeds)"
        rows.append([method, str(len(seeds)), f"{100 * aurc:+.3f}", f"{100 * dice:+.2f}", verdict])
        if eligible and aurc < best_change:
            best, best_change = method, aurc
    return best, rows


def analyse(records: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The Markdown of the study and a machine-readable summary."""
    index = _index(records)
    methods = method_order(records)
    budgets = sorted({r["steps"] for r in records})
    final = budgets[-1]
    seeds = sorted({r["seed"] for r in records})
    md = [f"Ledger: {len(records)} evaluations of {len({(r['method'], r['seed']) for r in records})} runs "]
    md.append(f"(methods {', '.join(methods)}; seeds {seeds}; budgets {budgets} steps).\n\n")
    choice, choice_rows = choose_on_validation(index, methods, final)
    md.append(f"#### Choice on the validation images (final budget, {final} steps)\n\n")
    md.append("Paired with the baseline on each method's seeds (method - baseline, points).\n\n")
    header = ["method", "seeds", "val AURC change", "val Dice@1 change", "eligible"]
    md.append(_table(header, choice_rows))
    md.append(f"\nChosen: **{choice or 'none (no eligible method)'}**.\n\n")
    md.append(f"#### Test images, final budget ({final} steps): mean ± SD over seeds\n\n")
    md.append(summary_table(index, methods, final, "test"))
    md.append(f"\n#### Every run on the test images ({final} steps)\n\n")
    md.append(per_run_table(index, methods, final, "test"))
    md.append("\n#### Paired by seed against the baseline (test images, final budget)\n\n")
    md.append("Differences are method - baseline (AURC-type figures in percentage points); 'better' counts seeds ")
    md.append("where the method is better (lower AURC, higher Dice or AUROC).\n\n")
    keys = ["aurc", "oracle_aurc", "excess_aurc", "error_auroc", "dice@1", "dice@0.9"]
    md.append(_table(PAIRED_HEADER, paired_rows(index, methods, final, "test", keys)))
    md.append(f"\n#### The target: AURC <= {TARGET_RATIO} x baseline with Dice@1 within 1 point, per seed (test)\n\n")
    md.append(
        _table(
            ["method", "AURC ratio per seed", "Dice@1 change per seed (points)", "seeds meeting it"],
            target_rows(index, methods, final, "test"),
        )
    )
    dose = dose_rows(index, methods, final, "test")
    if dose:
        md.append("\n#### Dose-response on the dose study's seeds: mean paired difference vs the baseline (test)\n\n")
        md.append("exact = weight 2000, balanced = fraction of the main study; AURC and Dice@1 in points.\n\n")
        md.append(_table(["method", "seeds", "AURC diff", "Dice@1 diff", "error AUROC diff"], dose))
    md.append("\n#### Budget curve: paired differences at each budget (test images)\n\n")
    rows = []
    for steps in budgets:
        for row in paired_rows(index, methods, steps, "test", ["aurc", "dice@1"]):
            rows.append([str(steps), *row])
    md.append(_table(["steps", *PAIRED_HEADER], rows))
    md.append("\n#### Validation images, final budget: mean ± SD over seeds\n\n")
    md.append(summary_table(index, methods, final, "validation"))
    summary = {"methods": methods, "budgets": budgets, "seeds": seeds, "chosen_on_validation": choice}
    return "".join(md), summary


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ledger", type=Path)
    parser.add_argument("--out", type=Path, default=None, help="Write analysis.md and analysis.json here.")
    parser.add_argument("--docs", type=Path, default=None, help="Rewrite the study's section of this Markdown file.")
    args = parser.parse_args(argv)
    with warnings.catch_warnings():  # t quantities with one seed are NaN by definition (shown as n/a)
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        text, summary = analyse(load(args.ledger))
    if args.out:
        atomic_write_text(args.out / "analysis.md", text)
        atomic_write_text(args.out / "analysis.json", json.dumps(summary, indent=2))
    if args.docs:
        doc = args.docs.read_text()
        if BEGIN not in doc or END not in doc:
            raise ValueError(f"Expected the markers {BEGIN} and {END} in {args.docs}.")
        head, rest = doc.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        atomic_write_text(args.docs, f"{head}{BEGIN}\n{text}{END}{tail}")
    print(text)
    return text


if __name__ == "__main__":
    main()
