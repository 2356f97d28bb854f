from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from selectseg.data.annotators import reference_labels
from selectseg.data.distortions import distort_fraction
from selectseg.evaluation import evaluate_ood, image_scores, load_run
from selectseg.evaluation.ood import default_kinds
from selectseg.metrics import mean_dice
from selectseg.runs.data import load_cases
from selectseg.training import load_config, train

from ..reference.quality import all_pairs_auroc
from ..training.test_loop import TINY


@pytest.fixture(scope="module")
def run_and_cases(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("ood") / "run"
    train(load_config(overrides=[*TINY, "optim.epochs=2", "data.synthetic.num_test=5"]), out)
    run = load_run(out, device="cpu")
    return run, load_cases(run.config.data, split="test").cases


def _rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open()))


def test_ood_protocol_matches_a_hand_run(run_and_cases, tmp_path: Path) -> None:
    run, cases = run_and_cases
    result = evaluate_ood(run, cases, tmp_path, fractions=[0.4, 1.0], kinds=["noise", "blur"], severity=0.8, seed=3)
    saved = json.loads((tmp_path / "ood.json").read_text())
    assert saved["fractions"] == [0.4, 1.0] and saved["kinds"] == ["noise", "blur"] and saved["notes"] == []
    rows = _rows(tmp_path / "ood.csv")
    assert len(rows) == 3 * len(cases)
    names = list(result.score_names)
    assert names == ["mean_uncertainty", "mean_entropy"]

    def by_hand(batch):
        out = {}
        for o in run.outputs(batch):
            ref = reference_labels(o.case, run.config.data.annotator, run.num_classes)
            out[o.case.case_id] = (
                mean_dice(o.segmentation, ref, num_classes=2),
                image_scores(o.probabilities, o.uncertainty),
            )
        return out

    clean = by_hand(cases)
    for row in rows[: len(cases)]:
        assert row["fraction"] == "0.0" and row["distorted"] == "0"
        assert float(row["mean_entropy"]) == pytest.approx(clean[row["case_id"]][1]["mean_entropy"])
    for f in (0.4, 1.0):
        d = distort_fraction([c.image for c in cases], f, kinds=["noise", "blur"], severity=0.8, seed=3)
        assert int(d.distorted.sum()) == round(f * len(cases))
        changed = [dataclasses.replace(c, image=im) for c, im, flag in zip(cases, d.images, d.distorted) if flag]
        again = by_hand(changed)
        level = [r for r in rows if float(r["fraction"]) == f]
        assert [r["distorted"] == "1" for r in level] == d.distorted.tolist()
        for r, kind in zip(level, d.kinds):
            expected = again[r["case_id"]] if r["distorted"] == "1" else clean[r["case_id"]]
            assert r["kind"] == (kind or "")
            assert float(r["dice"]) == pytest.approx(expected[0])
            assert float(r["mean_uncertainty"]) == pytest.approx(expected[1]["mean_uncertainty"])
        # AUROC: distorted vs the images of the same set left clean; at fraction 1 vs the clean set.
        negatives = [r for r in level if r["distorted"] == "0"] or rows[: len(cases)]
        positives = [r for r in level if r["distorted"] == "1"]
        for name in names:
            want = all_pairs_auroc([float(r[name]) for r in negatives], [float(r[name]) for r in positives])
            assert result.auroc[f][name] == pytest.approx(want)
        assert result.mean_dice[f] == pytest.approx(np.mean([float(r["dice"]) for r in level]))


def test_ood_defaults_and_bad_input(run_and_cases, tmp_path: Path) -> None:
    run, cases = run_and_cases
    assert run.config.data.normalize == "zscore" and default_kinds(run) == ("noise", "blur")
    result = evaluate_ood(run, cases[:2], tmp_path, fractions=[1.0], kinds=["contrast"])
    assert "undoes" in result.notes[0]
    # z-scoring undoes a linear contrast change: the model sees the same input, so the scores do not move.
    rows = _rows(tmp_path / "ood.csv")
    clean = {r["case_id"]: float(r["mean_uncertainty"]) for r in rows if r["fraction"] == "0.0"}
    for r in rows[2:]:
        assert r["kind"] == "contrast" and float(r["mean_uncertainty"]) == pytest.approx(clean[r["case_id"]], rel=1e-4)
    with pytest.raises(ValueError, match="at least 2 test cases"):
        evaluate_ood(run, cases[:1], tmp_path)
    with pytest.raises(ValueError, match=r"fraction in \(0, 1\]"):
        evaluate_ood(run, cases, tmp_path, fractions=[0.0])
    with pytest.raises(ValueError, match="distorts no image"):
        evaluate_ood(run, cases, tmp_path, fractions=[0.05])
    with pytest.raises(ValueError, match="Did you mean 'blur'"):
        evaluate_ood(run, cases, tmp_path, kinds=["blurr"])
