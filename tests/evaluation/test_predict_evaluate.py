from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from selectseg.data import make_synthetic_dataset, write_msd_dataset
from selectseg.evaluation import coverage_threshold, evaluate_cases, load_run, predict_cases, referral_mask
from selectseg.metrics import selective_dice_curve
from selectseg.runs.data import load_cases
from selectseg.training import load_config, train
from selectseg.uncertainty import InferenceOptions

from ..reference.annotators import roi_sum as reference_roi_sum
from ..reference.dice_curve import image_dice
from ..reference.distributions import generalized_energy_distance as reference_ged
from ..reference.distributions import hungarian_brute_force as reference_hungarian
from ..training.test_loop import TINY


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "run"
    train(load_config(overrides=[*TINY, "optim.epochs=2", "loss.ranking=exact"]), out)
    return out


def test_coverage_threshold_ties_and_bounds() -> None:
    u = np.array([0.1, 0.2, 0.2, 0.9])
    assert coverage_threshold(u, 1.0) == 0.9
    assert coverage_threshold(u, 0.75) == 0.2
    assert coverage_threshold(u, 0.5) == 0.1  # the tie at 0.2 is kept or referred as one
    assert coverage_threshold(u, 0.2) == -math.inf
    assert referral_mask(u, 0.2).tolist() == [False, False, False, True]
    with pytest.raises(ValueError, match="coverage"):
        coverage_threshold(u, 1.5)


def test_coverage_threshold_is_largest_achievable(rng: np.random.Generator) -> None:
    u = rng.integers(0, 20, size=200).astype(np.float32)
    for target in np.linspace(0, 1, 23):
        t = coverage_threshold(u, float(target))
        achieved = np.mean(u <= t)
        assert achieved <= target + 1e-12
        higher = np.unique(u[u > t])
        if higher.size:  # the next distinct threshold would exceed the target
            assert np.mean(u <= higher[0]) > target


def test_evaluate_writes_table_curve_and_per_image(run_dir: Path, tmp_path: Path) -> None:
    run = load_run(run_dir, device="cpu")
    cases = load_cases(run.config.data, split="test").cases
    result = evaluate_cases(run, cases, tmp_path / "ev")
    saved = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert saved["num_cases"] == len(cases) == 2
    assert [row["target_coverage"] for row in saved["table"]] == [1.0, 0.99, 0.98, 0.97, 0.96, 0.95, 0.9, 0.8, 0.7]
    # Same numbers as the library curve on the same outputs.
    outputs = list(run.outputs(cases))
    from selectseg.data.annotators import reference_labels

    refs = [reference_labels(c, run.config.data.annotator, 2) for c in cases]
    curve = selective_dice_curve(
        [o.segmentation for o in outputs], refs, [o.uncertainty for o in outputs], num_classes=2
    )
    assert saved["aurc"] == pytest.approx(curve.aurc, abs=1e-12)
    point = curve.at_coverage(0.9)
    row = result.point(0.9)
    assert row is not None and row.dice_mean == pytest.approx(point.dice_mean)
    assert row.dice_p5 == pytest.approx(point.dice_p5) and row.coverage <= 0.9
    from selectseg.metrics import selective_pixel_metrics

    flat = [
        np.concatenate([a.reshape(-1) for a in x])
        for x in ([o.segmentation for o in outputs], refs, [o.uncertainty for o in outputs])
    ]
    assert row.psi_c == selective_pixel_metrics(*flat, threshold=row.threshold).psi_c  # from the curve's counts
    curve_rows = list(csv.DictReader((tmp_path / "ev" / "curve.csv").open()))
    assert float(curve_rows[0]["coverage"]) == 0.0 and float(curve_rows[-1]["coverage"]) == 1.0
    per_image = list(csv.DictReader((tmp_path / "ev" / "per_image.csv").open()))
    assert [r["case_id"] for r in per_image] == [c.case_id for c in cases]
    assert float(per_image[0]["dice@1.0"]) == pytest.approx(row_1 := result.points[0].image_dice[cases[0].case_id])
    assert 0 <= row_1 <= 1


def test_evaluate_writes_the_aurc_split_error_auroc_and_augrc(run_dir: Path, tmp_path: Path) -> None:
    from selectseg.data.annotators import reference_labels
    from selectseg.metrics import pixel_augrc, pixel_error_auroc

    run = load_run(run_dir, device="cpu")
    cases = load_cases(run.config.data, split="test").cases
    evaluate_cases(run, cases, tmp_path / "ev")
    saved = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    outputs = list(run.outputs(cases))
    preds = [o.segmentation for o in outputs]
    refs = [reference_labels(c, run.config.data.annotator, 2) for c in cases]
    uncs = [o.uncertainty for o in outputs]
    curve = selective_dice_curve(preds, refs, uncs, num_classes=2)
    for key in ("oracle_aurc", "excess_aurc", "error_auroc", "augrc"):
        assert isinstance(saved[key], float), key  # top-level floats (the run comparison reads these keys)
    assert saved["oracle_aurc"] == pytest.approx(curve.oracle_aurc, abs=1e-12)
    assert saved["excess_aurc"] == pytest.approx(saved["aurc"] - saved["oracle_aurc"], abs=1e-12)
    assert saved["error_auroc"] == pytest.approx(pixel_error_auroc(preds, refs, uncs), abs=1e-12)
    assert saved["augrc"] == pytest.approx(pixel_augrc(preds, refs, uncs), abs=1e-12)
    assert 0 <= saved["oracle_aurc"] <= 0.5 and 0 <= saved["augrc"] <= 0.5 and 0 <= saved["error_auroc"] <= 1


def test_evaluate_writes_bootstrap_intervals_and_the_reference_fingerprint(run_dir: Path, tmp_path: Path) -> None:
    from selectseg.data.annotators import reference_labels
    from selectseg.metrics import bootstrap_dice_curve

    run = load_run(run_dir, device="cpu")
    cases = load_cases(run.config.data, split="test").cases
    result = evaluate_cases(run, cases, tmp_path / "ev", coverages=[1.0, 0.9], n_resamples=50, bootstrap_seed=3)
    saved = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert saved["bootstrap"] == {
        "n_resamples": 50,
        "seed": 3,
        "confidence_level": 0.95,
        "method": "percentile",
        "unit": "image",
    }
    outputs = list(run.outputs(cases))
    refs = [reference_labels(c, run.config.data.annotator, 2) for c in cases]
    curve = selective_dice_curve(
        [o.segmentation for o in outputs], refs, [o.uncertainty for o in outputs], num_classes=2
    )
    boot = bootstrap_dice_curve(curve, [1.0, 0.9], n_resamples=50, seed=3)
    assert saved["aurc_ci"] == pytest.approx(list(boot.aurc_ci), abs=1e-12)
    np.testing.assert_allclose([row["dice_ci"] for row in saved["table"]], boot.dice_ci, atol=1e-12)
    summary = list(csv.DictReader((tmp_path / "ev" / "summary.csv").open()))
    assert [r["metric"] for r in summary] == ["aurc", "dice@1.0", "dice@0.9"]
    assert float(summary[0]["value"]) == result.aurc and float(summary[2]["ci_high"]) == boot.dice_ci[1, 1]
    # The fingerprint depends on the reference labels only: the same cases in another order give the same one.
    again = evaluate_cases(run, cases[::-1], tmp_path / "ev2", coverages=[1.0], n_resamples=0)
    assert again.reference_sha256 == result.reference_sha256 and len(result.reference_sha256 or "") == 64
    assert again.bootstrap is None and again.aurc_ci is None and again.points[0].dice_ci is None
    again_saved = json.loads((tmp_path / "ev2" / "evaluation.json").read_text())
    assert "aurc_ci" not in again_saved and "dice_ci" not in again_saved["table"][0]
    assert next(csv.DictReader((tmp_path / "ev2" / "summary.csv").open()))["ci_low"] == ""


def test_evaluate_bootstrap_needs_two_cases_before_inference(run_dir: Path, tmp_path: Path) -> None:
    run = load_run(run_dir, device="cpu")
    one = load_cases(run.config.data, split="test").cases[:1]
    seen: list[str] = []
    with pytest.raises(ValueError, match=r"at least 2 images for a bootstrap over images \(`n_resamples` = 1000\)"):
        evaluate_cases(run, one, tmp_path / "ev", on_case=seen.append)
    assert seen == [] and not (tmp_path / "ev").exists()
    with pytest.raises(ValueError, match="`n_resamples` to be an int >= 0"):
        evaluate_cases(run, one, tmp_path / "ev", n_resamples=-1)
    with pytest.raises(ValueError, match="`confidence_level`"):
        evaluate_cases(run, list(load_cases(run.config.data, split="test").cases), tmp_path / "ev", confidence_level=2)
    result = evaluate_cases(run, one, tmp_path / "ev", n_resamples=0)
    assert result.num_cases == 1 and result.bootstrap is None


def test_predict_nifti_keeps_geometry_and_referral_matches_coverage(run_dir: Path, tmp_path: Path) -> None:
    run = load_run(run_dir, device="cpu")
    train_set = make_synthetic_dataset(split="train", num_cases=2, size=16, seed=5)
    test_set = make_synthetic_dataset(split="test", num_cases=2, size=16, seed=5)
    root = write_msd_dataset(tmp_path / "ds", train_set, test=test_set)
    cases = load_cases(run.config.data.__class__(path=str(root)), split="test").cases
    summary = predict_cases(run, cases, tmp_path / "pred", coverage=0.8)
    record = summary["cases"][0]
    seg = nib.load(tmp_path / "pred" / record["files"]["segmentation"])
    source = nib.load(cases[0].source)
    assert np.allclose(seg.affine, source.affine)
    assert seg.shape == source.shape
    unc = np.asarray(nib.load(tmp_path / "pred" / record["files"]["uncertainty"]).dataobj)
    ref = np.asarray(nib.load(tmp_path / "pred" / record["files"]["referral"]).dataobj)
    assert record["coverage"] <= 0.8
    assert np.array_equal(ref.astype(bool), unc.reshape(ref.shape) > record["threshold"])
    assert record["dice_after_referral"] >= record["dice"]
    from selectseg.data.annotators import reference_labels

    truth = reference_labels(cases[0], run.config.data.annotator, 2)
    predicted = np.asarray(seg.dataobj).reshape(truth.shape).astype(np.int64)
    assert record["dice"] == pytest.approx(image_dice(predicted, truth, 2))
    corrected = np.where(ref.reshape(truth.shape).astype(bool), truth, predicted)
    assert record["dice_after_referral"] == pytest.approx(image_dice(corrected, truth, 2))
    assert json.loads((tmp_path / "pred" / "predictions.json").read_text())["coverage"] == 0.8


def test_predict_threshold_and_errors(run_dir: Path, tmp_path: Path) -> None:
    run = load_run(run_dir, device="cpu")
    cases = load_cases(run.config.data, split="test").cases
    summary = predict_cases(run, cases, tmp_path / "p", threshold=0.0)
    assert all(r["threshold"] == 0.0 for r in summary["cases"])
    with pytest.raises(ValueError, match="either `threshold` or `coverage`"):
        predict_cases(run, cases, tmp_path / "p2", threshold=0.1, coverage=0.9)
    with pytest.raises(ValueError, match="coverage"):
        predict_cases(run, cases, tmp_path / "p3", coverage=2.0)
    with pytest.raises(ValueError, match="Did you mean 'entropy'"):
        predict_cases(run, cases, tmp_path / "p4", inference=InferenceOptions(score="entropi"))


def test_load_run_and_case_errors(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"model\.pt is missing"):
        load_run(tmp_path)
    run = load_run(run_dir, device="cpu")
    three_d = make_synthetic_dataset(split="test", num_cases=2, spatial_dims=3, size=16).cases
    with pytest.raises(ValueError, match="expects \\(C=1, \\*S\\) with 2 spatial axes"):
        evaluate_cases(run, three_d, tmp_path / "e")
    with pytest.raises(ValueError, match="at least one labelled case"):
        evaluate_cases(run, [], tmp_path / "e")
    with pytest.raises(ValueError, match=r"coverage in \[0, 1\]"):
        evaluate_cases(run, load_cases(run.config.data, split="test").cases, tmp_path / "e", coverages=[1.2])


def test_evaluate_adds_calibration_quality_control_and_disagreement(run_dir: Path, tmp_path: Path) -> None:
    from selectseg.metrics import (
        CalibrationStats,
        annotator_variance,
        image_level_correlation,
        pixel_level_correlation,
        quality_control_curve,
    )

    run = load_run(run_dir, device="cpu")
    cases = load_cases(run.config.data, split="test").cases  # synthetic: 3 annotators each
    result = evaluate_cases(run, cases, tmp_path / "ev", inference=InferenceOptions(score="entropy"))
    outputs = list(run.outputs(cases, InferenceOptions(score="entropy")))
    from selectseg.data.annotators import reference_labels

    refs = [reference_labels(c, run.config.data.annotator, 2) for c in cases]
    stats = CalibrationStats()
    for o, r in zip(outputs, refs):
        stats.update(o.probabilities[None], r[None])
    assert result.calibration.ece_top_label == pytest.approx(stats.compute().ece_top_label)
    assert result.calibration.nll == pytest.approx(stats.compute().nll)
    maps = [annotator_variance(c.labels > 0) for c in cases]
    pixel = pixel_level_correlation([o.uncertainty for o in outputs], maps)
    assert result.disagreement.pixel_pearson == pytest.approx(pixel)
    image = image_level_correlation([o.uncertainty.sum() for o in outputs], [m.sum() for m in maps])
    assert result.disagreement.image_pearson == pytest.approx(image.pearson)
    dice = list(result.points[0].image_dice.values())
    qc = quality_control_curve([o.uncertainty.mean() for o in outputs], dice)
    scores = {s.name: s for s in result.quality_control.scores}
    assert sorted(scores) == ["mean_entropy", "mean_uncertainty"]  # one deterministic model: no member scores
    assert scores["mean_uncertainty"].d_auc == pytest.approx(qc.d_auc)
    assert scores["mean_uncertainty"].fraction_failing.tolist() == pytest.approx(qc.fraction_failing.tolist())
    ids = [c.case_id for c in cases]
    assert dict(result.image_scores["mean_uncertainty"]) == pytest.approx(
        dict(zip(ids, [float(o.uncertainty.mean()) for o in outputs]))
    )
    assert len(result.disagreement.soft_dice) == 9
    # GED and Hungarian IoU between the one prediction and the annotators, per image then averaged (reference loops).
    ged = [reference_ged(o.segmentation[None] > 0, c.labels > 0, True) for o, c in zip(outputs, cases)]
    hm = [reference_hungarian(o.segmentation[None] > 0, c.labels > 0, "replicate") for o, c in zip(outputs, cases)]
    assert result.disagreement.ged == pytest.approx(np.mean(ged))
    assert result.disagreement.hungarian_iou == pytest.approx(np.mean(hm))
    per_image = list(csv.DictReader((tmp_path / "ev" / "per_image.csv").open()))
    assert float(per_image[1]["mean_entropy"]) == pytest.approx(result.image_scores["mean_entropy"][ids[1]])
    # The montage: 2-D views of the cases (2 here), referred = uncertainty above the coverage-0.9 threshold.
    with np.load(tmp_path / "ev" / "montage.npz") as montage:
        assert sorted(montage["case_ids"].tolist()) == sorted(ids)
        threshold = float(montage["threshold"])
        for j, case_id in enumerate(montage["case_ids"].tolist()):
            i = ids.index(case_id)
            assert np.array_equal(montage[f"prediction_{j}"], outputs[i].segmentation)
            assert np.array_equal(montage[f"reference_{j}"], refs[i])
            assert np.array_equal(montage[f"referred_{j}"], outputs[i].uncertainty > threshold)
            assert np.array_equal(montage[f"annotator_variance_{j}"], maps[i].astype(np.float32))
            assert f"model_variance_{j}" not in montage
        row = result.point(0.9)
        assert row is not None and threshold == row.threshold
    json.loads((tmp_path / "ev" / "evaluation.json").read_text())  # NaN written as null: valid JSON


def test_evaluate_sv_over_the_annotators_region_with_bootstrap_intervals(run_dir: Path, tmp_path: Path) -> None:
    from selectseg.metrics import (
        annotator_variance,
        image_level_correlation,
        image_level_correlation_ci,
        per_image_pixel_correlation,
        pixel_level_correlation_ci,
    )

    run = load_run(run_dir, device="cpu")
    cases = load_cases(run.config.data, split="test").cases
    result = evaluate_cases(run, cases, tmp_path / "ev", sv_roi_radius=2, inference=InferenceOptions(score="entropy"))
    outputs = list(run.outputs(cases, InferenceOptions(score="entropy")))
    d = result.disagreement
    assert d is not None
    assert d.sv_roi_radius == 2 and d.sv_roi == "annotators' union dilated by 2 px"
    model_sv, annotator_sv = [], []
    for o, c in zip(outputs, cases):  # the same region for both maps: the loop reference
        masks = c.labels > 0
        model_sv.append(reference_roi_sum(o.uncertainty, masks, 2))
        annotator_sv.append(reference_roi_sum(annotator_variance(masks), masks, 2))
        assert model_sv[-1] < float(o.uncertainty.sum())  # the synthetic blobs leave background out of the region
    ids = [c.case_id for c in cases]
    assert dict(d.image_sv) == pytest.approx(dict(zip(ids, model_sv)))
    assert dict(d.annotator_sv) == pytest.approx(dict(zip(ids, annotator_sv)))
    assert d.image_pearson == pytest.approx(image_level_correlation(model_sv, annotator_sv).pearson)
    ci = image_level_correlation_ci(model_sv, annotator_sv, seed=0)
    assert list(d.image_pearson_ci) == pytest.approx(list(ci.pearson)) and d.ci["seed"] == 0
    assert list(d.image_spearman_ci) == pytest.approx(list(ci.spearman))
    r = per_image_pixel_correlation([o.uncertainty for o in outputs], [annotator_variance(c.labels > 0) for c in cases])
    assert list(d.image_pixel_pearson.values()) == pytest.approx(r.tolist())
    assert list(d.pixel_pearson_ci) == pytest.approx(list(pixel_level_correlation_ci(r, seed=0)))
    assert d.pixel_pearson_ci[0] <= d.pixel_pearson <= d.pixel_pearson_ci[1]
    whole = evaluate_cases(run, cases, tmp_path / "whole", inference=InferenceOptions(score="entropy")).disagreement
    assert whole is not None
    assert whole.sv_roi == "image" and dict(whole.image_sv) == pytest.approx(
        {i: float(o.uncertainty.sum()) for i, o in zip(ids, outputs)}
    )
    evaluate_cases(run, cases[:1], tmp_path / "one", n_resamples=0, inference=InferenceOptions(score="entropy"))
    one = json.loads((tmp_path / "one" / "evaluation.json").read_text())["disagreement"]
    assert one["image_pearson_ci"] == [None, None] and one["pixel_pearson_ci"] == [None, None]  # < 2 images: null
    with pytest.raises(ValueError, match="`sv_roi_radius` to be None or an int >= 0"):
        evaluate_cases(run, cases, tmp_path / "bad", sv_roi_radius=-1)


def test_evaluate_edue_run_with_member_scores(tmp_path: Path) -> None:
    """A multi-head run evaluated with the EDUE estimator: SV, model and layer disagreement per image, GED over the
    heads' samples, and the model variance in the montage."""
    from selectseg.runs.config import METHODS

    run_dir = tmp_path / "edue"
    train(load_config(overrides=[*TINY, "optim.epochs=1", *METHODS["edue"], "model.channels=[4,8,8]"]), run_dir)
    run = load_run(run_dir, device="cpu")
    cases = load_cases(run.config.data, split="test").cases
    result = evaluate_cases(run, cases, tmp_path / "ev", inference=InferenceOptions(score="variance", estimator="edue"))
    outputs = list(run.outputs(cases, InferenceOptions(score="variance", estimator="edue")))
    assert outputs[0].members is not None and outputs[0].members.shape[0] == 2 and outputs[0].layered
    assert {s.name for s in result.quality_control.scores} == {
        "mean_uncertainty",
        "mean_entropy",
        "sv",
        "model_disagreement",
        "layer_disagreement",
    }
    ids = [c.case_id for c in cases]
    sv = [float(np.var(1.0 - o.members[:, 0].astype(np.float64), axis=0).sum()) for o in outputs]
    assert list(result.image_scores["sv"].values()) == pytest.approx(sv)
    ged = [reference_ged(o.members.argmax(1) > 0, c.labels > 0, True) for o, c in zip(outputs, cases)]
    assert result.disagreement.ged == pytest.approx(np.mean(ged))
    with np.load(tmp_path / "ev" / "montage.npz") as montage:
        j = montage["case_ids"].tolist().index(ids[0])
        expected = np.var(1.0 - outputs[0].members[:, 0].astype(np.float64), axis=0)
        assert np.allclose(montage[f"model_variance_{j}"], expected, atol=1e-6)
