from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from selectseg.data.splits import kfold_split
from selectseg.evaluation.cv import evaluate_folds
from selectseg.runs.config import load_config
from selectseg.runs.data import load_cases
from selectseg.training.multirun import train_folds

from .test_loop import TINY


@pytest.fixture(scope="module")
def cv_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cv") / "cv"
    train_folds(load_config(overrides=[*TINY, "optim.epochs=1"]), out, 3)
    return out


def test_folds_train_on_disjoint_held_out_cases(cv_dir: Path) -> None:
    index = json.loads((cv_dir / "cv.json").read_text())
    assert index == {"folds": 3, "runs": ["fold_0", "fold_1", "fold_2"], "seed": 0}
    held_out = []
    for k in range(3):
        info = json.loads((cv_dir / f"fold_{k}" / "run.json").read_text())
        held_out.append(set(info["val_cases"]))
        assert not held_out[-1] & set(info["train_cases"])
    assert sum(len(h) for h in held_out) == len(set().union(*held_out)) == 6  # every training case held out once
    # Resume of a finished cross-validation trains nothing again (model files untouched).
    before = [(cv_dir / f"fold_{k}" / "model.pt").stat().st_mtime_ns for k in range(3)]
    train_folds(None, cv_dir, 3, resume=True)
    assert [(cv_dir / f"fold_{k}" / "model.pt").stat().st_mtime_ns for k in range(3)] == before


def test_evaluate_folds_aggregates_mean_and_spread(cv_dir: Path, tmp_path: Path) -> None:
    summary = evaluate_folds(cv_dir, tmp_path / "ev", coverages=[1.0, 0.9], device="cpu")
    per_fold = [json.loads((cv_dir / f"fold_{k}" / "evaluation" / "evaluation.json").read_text()) for k in range(3)]
    aurcs = [r["aurc"] for r in per_fold]
    assert summary["aurc"]["per_fold"] == pytest.approx(aurcs)
    assert summary["aurc"]["mean"] == pytest.approx(np.mean(aurcs)) and summary["aurc"]["std"] == pytest.approx(
        np.std(aurcs)
    )
    dice = [r["table"][1]["dice_mean"] for r in per_fold]
    assert summary["table"][1]["dice_mean"]["mean"] == pytest.approx(np.mean(dice))
    # Each fold was evaluated on its own held-out cases.
    for k in range(3):
        config = load_config(overrides=[*TINY, "optim.epochs=1", "data.folds=3", f"data.fold={k}"])
        held = kfold_split(load_cases(config.data, split="train").cases, 3, k)[1]
        assert per_fold[k]["num_cases"] == len(held)
        assert set(per_fold[k]["table"][0]["image_dice"]) == {c.case_id for c in held}
    rows = list(csv.DictReader((tmp_path / "ev" / "cv_curve.csv").open()))
    assert len(rows) == 101 and float(rows[-1]["coverage"]) == 1.0
    full = [r["table"][0]["dice_mean"] for r in per_fold]  # coverage 1: the curve's last point
    assert float(rows[-1]["dice_mean"]) == pytest.approx(np.mean(full))


def test_fold_errors_before_training(tmp_path: Path) -> None:
    config = load_config(overrides=[*TINY, "optim.epochs=1"])
    with pytest.raises(ValueError, match=r"number of subjects \(6\), but got 7"):
        train_folds(config, tmp_path / "cv", 7)
    assert not (tmp_path / "cv" / "fold_0").exists()
    with pytest.raises(ValueError, match="int >= 2"):
        train_folds(config, tmp_path / "cv1", 1)
    with pytest.raises(ValueError, match="not a cross-validation folder"):
        evaluate_folds(tmp_path)
