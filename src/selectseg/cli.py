"""Command-line interface: thin, parse the options and make one library call."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Uncertainty-aware selective segmentation.")


@app.callback()
def main() -> None:
    """selectseg: exact selective-segmentation metrics and uncertainty-aware training."""


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for summary.json and curves.csv.")] = Path("demo_output"),
    seed: Annotated[int, typer.Option(help="Seed of the synthetic data.")] = 0,
    quick: Annotated[bool, typer.Option(help="Smaller data, for tests.")] = False,
) -> None:
    """Scripted example of the metrics and the ranking loss on built-in synthetic data."""
    from .demo import COVERAGES, run_demo

    summary = run_demo(out, seed=seed, num_images=4 if quick else 12, size=48 if quick else 96)
    console = Console(width=max(Console().width, 130))
    table = Table(title=f"Dice risk-coverage on synthetic data (pixel accuracy {summary['pixel_accuracy']:.3f})")
    table.add_column("uncertainty", no_wrap=True)
    table.add_column("AURC (%)", justify="right")
    for c in COVERAGES:
        table.add_column(f"Dice@{c}", justify="right", no_wrap=True)
    for row in summary["table"]:
        table.add_row(
            row["uncertainty"],
            f"{100 * row['aurc']:.3f}",
            *(f"{row[f'dice@{c}']:.4f} ± {row[f'dice_std@{c}']:.3f}" for c in COVERAGES),
        )
    console.print(table)
    rl = summary["ranking_loss"]
    console.print(
        f"Ranking loss (max-softmax): exact {rl['exact']:.5f} over {rl['pairs_exact']:,} pairs "
        f"({rl['seconds']['exact'] * 1e3:.1f} ms), sampled 300x6600 {rl['sampled_300x6600']:.5f} "
        f"({rl['seconds']['sampled'] * 1e3:.1f} ms)"
    )
    console.print(f"Outputs written to {out}/ (summary.json, curves.csv)")
