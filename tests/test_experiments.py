"""The experiment scripts (experiments/*.py) end to end on a few real cases with a tiny budget: outputs, tables,
resuming without retraining, refusing a folder prepared with other settings, NIfTI geometry of 3-D predictions."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from tests._shared_data import shared

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def _run(script: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXPERIMENTS / script), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "OMP_NUM_THREADS": "2"},
    )


def _ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def _mtimes(folder: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in sorted(folder.rglob("model.pt"))}


@pytest.mark.skipif(not shared("glas").is_dir(), reason=f"shared GlaS data not found at {shared('glas')}")
def test_glas_study(tmp_path):
    """Paired runs on 4 real cases, 2 one-step epochs, snapshots at 1 step: one ledger record per run x budget x split;
    the exact loss at weight 0 reproduces the baseline bit for bit (same weights, data order, only the loss code
    differs); a rerun, or a rerun with the run folders gone but the ledger kept, trains nothing; the analysis reads
    the ledger alone."""
    out = tmp_path / "out"
    args = (
        "--data", shared("glas"), "--out", out, "--scale", "0.1", "--epochs", "2", "--samples-per-epoch", "8",
        "--budgets", "1", "--seeds", "0", "--dose-seeds", "0", "--dose-methods", "exact_w0",
        "--studies", "main,dose", "--limit", "4", "--channels", "8,16", "--bootstrap", "20",
    )  # fmt: skip
    _ok(_run("glas.py", *args))
    ledger = [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines()]
    methods = ("baseline", "exact", "balanced", "sampled", "exact_w0")
    assert sorted((r["method"], r["steps"], r["split"]) for r in ledger) == sorted(
        (m, b, s) for m in methods for b in (1, 2) for s in ("test", "validation")
    )
    for r in ledger:
        assert 0 <= r["aurc"] <= 1 and 0 <= r["dice@1"] <= 1 and r["coverage@0.9"] <= 0.9 + 1e-9
        assert r["excess_aurc"] == pytest.approx(r["aurc"] - r["oracle_aurc"])
        assert len(r["cases"]) == (4 if r["split"] == "test" else 1)
        if r["split"] == "test":  # the one validation image has no bootstrap interval
            assert r["aurc_ci"][0] <= r["aurc"] <= r["aurc_ci"][1] and r["bootstrap"]["n_resamples"] == 20
        else:
            assert r["aurc_ci"] is None and r["bootstrap"] is None
    by_key = {(r["method"], r["steps"], r["split"]): r for r in ledger}
    for b in (1, 2):
        for split in ("test", "validation"):
            assert by_key["exact_w0", b, split]["aurc"] == by_key["baseline", b, split]["aurc"]
            assert by_key["exact", b, split]["aurc"] != by_key["baseline", b, split]["aurc"]
    before = _mtimes(out)
    assert len(before) == 5
    _ok(_run("glas.py", *args))  # everything finished: nothing retrains, the ledger is unchanged
    assert _mtimes(out) == before
    assert len((out / "ledger.jsonl").read_text().splitlines()) == len(ledger)
    shutil.rmtree(out / "exact_s0")
    _ok(_run("glas.py", *args))  # the ledger alone says the run is done
    assert not (out / "exact_s0").exists()
    analysis = _run("glas_analysis.py", out / "ledger.jsonl", "--out", out)
    _ok(analysis)
    text = (out / "analysis.md").read_text()
    assert "Paired by seed against the baseline" in text and "| exact_w0 | aurc | 1 |" in text
    changed = list(args)
    changed[changed.index("--scale") + 1] = "0.2"
    other = _run("glas.py", *changed)
    assert other.returncode != 0 and "prepared with other settings" in other.stderr


@pytest.mark.skipif(not shared("riga").is_dir(), reason=f"shared RIGA data not found at {shared('riga')}")
def test_riga_experiment(tmp_path):
    """4 real cases, 2 folds, 1 epoch: every case is a test image once, the pooled numbers are the folds' ones
    recombined, and a second run retrains nothing."""
    from selectseg.metrics import image_level_correlation

    data = tmp_path / "riga" / "BinRushed2"  # links to 4 cases: the shared folder is only read
    data.mkdir(parents=True)
    for n in range(1, 5):
        for name in [f"image{n}prime.jpg", *(f"image{n}-{k}.jpg" for k in range(1, 7))]:
            (data / name).symlink_to(shared("riga") / "BinRushed2" / name)
    out = tmp_path / "out"
    args = (
        *("--data", data.parent, "--out", out, "--crop-size", "32", "--folds", "2", "--epochs", "1"),
        *("--samples-per-epoch", "4", "--members", "2", "--mc-samples", "2", "--channels", "8,16,32"),
        *("--guidance-weights", "1,10", "--sv-roi-radius", "2", "--no-report", "--threads", "1"),
    )
    _ok(_run("riga.py", *args))
    summary = json.loads((out / "summary.json").read_text())
    methods = ("edue_lg1", "edue_lg10", "layer_ensemble", "deep_ensemble", "mc_dropout")
    per_case = list(csv.DictReader((out / "per_case.csv").open()))
    for structure in ("disc", "cup"):
        results = summary["results"][structure]
        folds = results["folds"]
        tested = [c for f in folds for c in f["test_cases"]]
        assert sorted(tested) == [f"BinRushed2_image{n}" for n in range(1, 5)]  # each case tested exactly once
        assert all(not set(f["train_cases"]) & set(f["test_cases"]) for f in folds)
        for method in methods:
            r = results[method]
            assert r["images"] == 4 and r["seconds_per_image"] > 0 and r["seconds_per_epoch"] > 0
            assert 0 <= r["ece"] <= 1 and r["nll"] > 0 and 0 <= r["dice"] <= 1
            for key in ("image_pearson", "image_spearman", "pixel_pearson"):
                low, high = r[f"{key}_ci"]
                assert -1 <= low <= high <= 1
            rows = [row for row in per_case if row["structure"] == structure and row["method"] == method]
            assert sorted(row["case_id"] for row in rows) == sorted(tested)
            pooled = image_level_correlation(
                [float(x["model_sv"]) for x in rows], [float(x["annotator_sv"]) for x in rows]
            )
            assert r["image_pearson"] == pytest.approx(pooled.pearson)
        assert results["layer_ensemble"]["head_upsample"] == "bilinear"
        assert (
            results["deep_ensemble"]["members"] == 2 and "loss.guidance_weight=10" in results["edue_lg10"]["overrides"]
        )
        assert "image_pearson_vs_de_percent" in results["edue_lg1"]
    # the same folds for both structures
    assert summary["results"]["disc"]["folds"] == summary["results"]["cup"]["folds"]
    # pooling one fold gives that fold's own evaluation back (ECE from the summed bins, NLL, correlations)
    riga = _script("riga")
    evaluation = json.loads((out / "cup" / "edue_lg1" / "fold_0" / "evaluation" / "evaluation.json").read_text())
    from selectseg.results import EvaluationResult

    one = riga._pooled([EvaluationResult.load(out / "cup" / "edue_lg1" / "fold_0" / "evaluation")])
    assert one["ece"] == pytest.approx(evaluation["calibration"]["ece_top_label"])
    assert one["nll"] == pytest.approx(evaluation["calibration"]["nll"])
    assert one["pixel_pearson"] == pytest.approx(evaluation["disagreement"]["pixel_pearson"])
    assert evaluation["disagreement"]["sv_roi_radius"] == 2
    assert "| edue_lg10 |" in (out / "results.md").read_text()
    before = _mtimes(out)
    assert len(before) == 2 * 2 * (len(methods) + 1)  # structures x folds x networks (2 deep-ensemble members)
    _ok(_run("riga.py", *args))  # everything finished: nothing retrains
    assert _mtimes(out) == before


@pytest.mark.skipif(not shared("brats").is_dir(), reason=f"shared BraTS data not found at {shared('brats')}")
def test_brats_experiment(tmp_path):
    _ok(
        _run(
            "brats.py",
            "--data",
            shared("brats"),
            "--out",
            tmp_path,
            "--scale",
            "0.2",
            "--patch",
            "16",
            "--epochs",
            "1",
            "--samples-per-epoch",
            "2",
            "--channels",
            "4,8",
        )
    )
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert sorted(summary["table"]) == ["baseline", "exact"]
    case = summary["test_cases"][0]
    image = nib.load(next((tmp_path / "data" / "imagesTs").glob(f"{case}_0000.nii.gz")))
    seg = nib.load(tmp_path / "exact" / "predictions" / f"{case}_seg.nii.gz")
    assert seg.shape == image.shape
    np.testing.assert_allclose(seg.affine, image.affine, atol=1e-4)
    # the resampled grid covers the same extent: voxel size x shape equals the source's (240 x 1 mm at scale 0.2)
    assert seg.header.get_zooms()[0] * seg.shape[0] == pytest.approx(240.0, rel=1e-3)


def _script(name: str):
    import importlib.util

    sys.path.insert(0, str(EXPERIMENTS))
    try:
        spec = importlib.util.spec_from_file_location(f"experiment_{name}", EXPERIMENTS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(EXPERIMENTS))
    return module


def test_glas_method_names():
    glas = _script("glas")
    assert glas.method_overrides("baseline", epochs=30, balance=0.25) == ["loss.ranking=none"]
    assert glas.method_overrides("exact_2stage", epochs=24, balance=0.25) == [
        "loss.ranking=exact",
        "loss.ranking_start_epoch=12",
    ]
    assert glas.method_overrides("exact_w200", epochs=2, balance=0.25) == [
        "loss.ranking=exact",
        "loss.ranking_weight=200",
    ]
    assert glas.method_overrides("balanced", epochs=2, balance=0.25)[1] == "loss.ranking_balance=0.25"
    assert glas.method_overrides("balanced_f0.05", epochs=2, balance=0.25)[1] == "loss.ranking_balance=0.05"
    for bad in ("baseline_2stage", "exact_w", "exact_w-1", "balanced_f0", "exakt"):
        with pytest.raises(ValueError, match="Expected a method among"):
            glas.method_overrides(bad, epochs=30, balance=0.25)
    args = glas.parse_args(["--data", "x", "--out", "y", "--seeds", "0,1", "--dose-seeds", "0"])
    jobs = glas.study_jobs(args)
    assert jobs[:4] == [("main", m, 0) for m in ("baseline", "exact", "balanced", "sampled")]
    assert ("twostage", "exact_2stage", 1) in jobs and len(jobs) == len(set(jobs)) == 8 + 5 + 2
    with pytest.raises(ValueError, match="--studies"):
        glas.study_jobs(glas.parse_args(["--data", "x", "--out", "y", "--studies", "mane"]))


def test_riga_method_setups():
    riga = _script("riga")
    args = riga.parse_args(["--data", "x", "--out", "y", "--members", "3", "--mc-samples", "4", "--skip-first", "1"])
    setups = riga.method_setups(["edue", "layer_ensemble", "deep_ensemble", "mc_dropout"], args)
    assert [s.name for s in setups] == [
        "edue_lg1",
        "edue_lg10",
        "edue_lg100",
        "layer_ensemble",
        "deep_ensemble",
        "mc_dropout",
    ]
    assert setups[2].overrides == ["loss.heads=all", "loss.guidance_weight=100"] and setups[2].estimator == "edue"
    assert setups[0].options == setups[3].options == {"skip_first": 1}
    assert setups[4] == ("deep_ensemble", [], 3, "ensemble", {})
    assert setups[5][3:] == ("mc_dropout", {"n_samples": 4})
    with pytest.raises(ValueError, match="--methods"):
        riga.method_setups(["bayes"], args)
    with pytest.raises(ValueError, match="--guidance-weights"):
        riga.method_setups(["edue"], riga.parse_args(["--data", "x", "--out", "y", "--guidance-weights", "1,-2"]))
