"""Typed results: every file format has one writer and one reader, and a round trip gives back the same value."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from selectseg._validation import UndefinedMetricWarning
from selectseg.metrics import selective_dice_curve, selective_pixel_metrics
from selectseg.results import (
    Calibration,
    DiceCurve,
    Disagreement,
    EvaluationResult,
    Montage,
    MontageCase,
    OODResult,
    OperatingPoint,
    QCScore,
    QualityControl,
    ReferralResult,
    Reliability,
    TrainingHistory,
    _json,
)


def _result(disagreement: bool = True) -> EvaluationResult:
    ids = ("b", "a")
    points = tuple(
        OperatingPoint(
            target_coverage=c,
            coverage=c - 0.01,
            threshold=0.3 * c,
            dice_mean=0.8,
            dice_std=0.1,
            dice_p5=0.6,
            gamma=math.nan if c == 1.0 else 0.4,
            psi_c=0.97,
            image_coverage=dict(zip(ids, (c, c - 0.02))),
            image_dice=dict(zip(ids, (0.7, 0.9))),
            dice_ci=(0.75, 0.85),
        )
        for c in (1.0, 0.9)
    )
    return EvaluationResult(
        run="runs/x",
        uncertainty="max_softmax",
        estimator="softmax",
        estimator_options={},
        num_cases=2,
        num_classes=2,
        class_names=("background", "gland"),
        aurc=0.05,
        points=points,
        curve=DiceCurve(
            threshold=np.array([-np.inf, 0.1, 0.5]), coverage=np.array([0.0, 0.5, 1.0]), dice=np.array([1.0, 0.9, 0.8])
        ),
        oracle_aurc=0.01,
        excess_aurc=0.04,
        error_auroc=math.nan,
        augrc=0.02,
        reference_sha256="ab" * 32,
        aurc_ci=(0.04, 0.06),
        bootstrap={"n_resamples": 10, "seed": 0, "confidence_level": 0.95},
        calibration=Calibration(
            0.3,
            0.1,
            0.05,
            0.04,
            2,
            Reliability(
                np.array([0.5, 0.75, 1.0]), np.array([3.0, 0.0]), np.array([0.6, np.nan]), np.array([0.7, np.nan])
            ),
        ),
        quality_control=QualityControl(
            0.8,
            (
                QCScore(
                    "mean_uncertainty",
                    0.2,
                    0.1,
                    0.1,
                    np.array([0.0, 0.5, 1.0]),
                    np.array([0.5, 0.5, 0.0]),
                    np.array([0.5, 0.0, 0.0]),
                ),
            ),
        ),
        image_scores={"mean_uncertainty": {"b": 0.2, "a": 0.1}},
        disagreement=Disagreement(
            uncertainty="max_softmax",
            image_pearson=0.5,
            image_spearman=math.nan,
            pixel_pearson=0.2,
            soft_dice_thresholds=(0.1, 0.5),
            soft_dice=(0.7, 0.8),
            ged=0.3,
            hungarian_iou=0.6,
            sv_roi_radius=4,
            sv_roi="annotators' union dilated by 4 px",
            image_sv={"b": 1.0, "a": 2.0},
            annotator_sv={"b": 1.5, "a": 2.5},
            image_pixel_pearson={"b": math.nan, "a": 0.3},
        )
        if disagreement
        else None,
    )


def _same(a: object, b: object) -> bool:
    """Equality through the JSON form (NaN == NaN there, as null)."""
    return json.dumps(_json.encode(a), sort_keys=True) == json.dumps(_json.encode(b), sort_keys=True)


@pytest.mark.parametrize("disagreement", [True, False])
def test_evaluation_round_trip(tmp_path: Path, disagreement: bool) -> None:
    result = _result(disagreement)
    path = result.save(tmp_path)
    assert path.name == "evaluation.json" and EvaluationResult.exists(tmp_path)
    back = EvaluationResult.load(tmp_path)
    assert _same(back.to_json(), result.to_json())
    np.testing.assert_array_equal(back.curve.threshold, result.curve.threshold)
    np.testing.assert_array_equal(back.curve.risk, 1.0 - result.curve.dice)
    assert back.point(0.9) == result.point(0.9) and back.point(0.5) is None
    assert back.case_ids == ("b", "a")
    assert math.isnan(back.error_auroc) and back.headline()["augrc"] == 0.02
    # the one NaN/inf convention: null for NaN, strings for infinities
    text = (tmp_path / "evaluation.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text)["error_auroc"] is None
    assert (tmp_path / "curve.csv").read_text().splitlines()[1].startswith("-inf,0.0,1.0,0.0")
    summary = (tmp_path / "summary.csv").read_text().splitlines()
    assert summary[1] == "aurc,0.05,0.04,0.06" and summary[2].startswith("dice@1.0,0.8,0.75,0.85")
    per_image = (tmp_path / "per_image.csv").read_text().splitlines()
    assert per_image[0] == "case_id,coverage@1.0,dice@1.0,coverage@0.9,dice@0.9,mean_uncertainty"
    assert per_image[1].startswith("b,1.0,0.7,0.9,0.7,0.2")


def test_old_evaluation_files_read_with_absent_figures(tmp_path: Path) -> None:
    """Files written before the AURC split, the CIs and the per-image maps in the JSON existed."""
    (tmp_path / "evaluation.json").write_text(
        json.dumps(
            {
                "uncertainty": "entropy",
                "estimator": "softmax",
                "num_cases": 1,
                "aurc": 0.1,
                "table": [{"target_coverage": 1.0, "coverage": 1.0, "dice_mean": 0.8}],
                "quality_control": {
                    "image_score": "mean entropy",
                    "tau": 0.8,
                    "auc": 0.1,
                    "auc_ideal": 0.0,
                    "d_auc": 0.1,
                },
            }
        )
    )
    (tmp_path / "curve.csv").write_text("coverage,dice\n0.0,1.0\n1.0,0.8\n")
    (tmp_path / "per_image.csv").write_text("case_id,coverage@1.0,dice@1.0\nc1,1.0,0.8\n")
    back = EvaluationResult.load(tmp_path)
    assert back.oracle_aurc is None and back.error_auroc is None and back.headline() == {"aurc": 0.1}
    assert back.aurc_ci is None and back.bootstrap is None and back.reference_sha256 is None
    assert dict(back.points[0].image_dice) == {"c1": 0.8} and math.isnan(back.points[0].psi_c)
    assert back.quality_control is not None and back.quality_control.scores[0].name == "mean entropy"
    assert not back.quality_control.scores[0].has_curve
    assert np.isnan(back.curve.threshold).all()


def test_evaluation_load_names_the_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"evaluation\.json.*is missing"):
        EvaluationResult.load(tmp_path)
    (tmp_path / "evaluation.json").write_text("{not json")
    (tmp_path / "curve.csv").write_text("coverage,dice\n")
    with pytest.raises(ValueError, match=r"evaluation\.json.*not valid JSON"):
        EvaluationResult.load(tmp_path)
    (tmp_path / "evaluation.json").write_text('{"aurc": 1}')
    with pytest.raises(ValueError, match="Expected key 'table'"):
        EvaluationResult.load(tmp_path)


def test_montage_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    cases = tuple(
        MontageCase(
            case_id=f"c{i}",
            image=rng.random((4, 5)),
            reference=rng.integers(0, 3, (4, 5)),
            prediction=rng.integers(0, 3, (4, 5)),
            uncertainty=rng.random((4, 5)),
            referred=rng.random((4, 5)) > 0.5,
            annotator_variance=rng.random((4, 5)) if i else None,
        )
        for i in range(2)
    )
    Montage(coverage=0.9, cases=cases, threshold=0.25).save(tmp_path / "montage.npz")
    back = Montage.load(tmp_path / "montage.npz")
    assert back.coverage == 0.9 and back.threshold == 0.25 and [c.case_id for c in back.cases] == ["c0", "c1"]
    for a, b in zip(cases, back.cases):
        np.testing.assert_allclose(b.image, a.image.astype(np.float32))
        np.testing.assert_array_equal(b.reference, a.reference)
        np.testing.assert_array_equal(b.referred, a.referred)
    assert back.cases[0].annotator_variance is None and back.cases[1].model_variance is None


def test_montage_slice_index_and_range_round_trip(tmp_path: Path) -> None:
    maps = {"image": np.zeros((3, 3)), "reference": np.zeros((3, 3), np.int64)}
    maps |= {"prediction": np.zeros((3, 3), np.int64)}
    maps |= {"uncertainty": np.zeros((3, 3)), "referred": np.zeros((3, 3), bool)}
    cases = (MontageCase("v", slice_index=12, **maps), MontageCase("p", **maps))
    Montage(0.9, cases, uncertainty_range=(0.0, 0.5)).save(tmp_path / "montage.npz")
    back = Montage.load(tmp_path / "montage.npz")
    assert [c.slice_index for c in back.cases] == [12, None] and back.uncertainty_range == (0.0, 0.5)
    assert back.case("p") is back.cases[1] and back.case("x") is None
    Montage(0.9, cases[1:]).save(tmp_path / "none.npz")
    assert Montage.load(tmp_path / "none.npz").uncertainty_range is None


def test_montage_old_file_without_slice_index(tmp_path: Path) -> None:
    volume = np.zeros((4, 3, 3))
    np.savez(tmp_path / "old.npz", case_ids=np.array(["a"]), coverage=np.array(0.9), image_0=volume,
             reference_0=volume.astype(np.int64), prediction_0=volume.astype(np.int64), uncertainty_0=volume,
             referred_0=volume > 0)  # fmt: skip
    back = Montage.load(tmp_path / "old.npz")
    assert back.cases[0].slice_index is None and back.cases[0].image.shape == (3, 3)
    assert back.uncertainty_range is None and np.isnan(back.threshold)


def test_montage_slice_index_count_mismatch_raises(tmp_path: Path) -> None:
    m = np.zeros((2, 2))
    np.savez(tmp_path / "bad.npz", case_ids=np.array(["a"]), slice_index=np.array([1, 2]), image_0=m, reference_0=m,
             prediction_0=m, uncertainty_0=m, referred_0=m)  # fmt: skip
    with pytest.raises(ValueError, match="one `slice_index` per case"):
        Montage.load(tmp_path / "bad.npz")


def test_ood_round_trip(tmp_path: Path) -> None:
    result = OODResult(
        severity=0.5,
        kinds=("noise",),
        fractions=(0.5,),
        score_names=("sv",),
        auroc={0.5: {"sv": 0.75}},
        fraction=np.array([0.0, 0.0, 0.5, 0.5]),
        case_ids=("a", "b", "a", "b"),
        distorted=np.array([False, False, True, False]),
        kind=("", "", "noise", ""),
        dice=np.array([0.9, 0.8, 0.5, 0.8]),
        image_scores={"sv": np.array([1.0, 2.0, 3.0, 2.0])},
        run="r",
        num_cases=2,
        seed=3,
        mean_dice={0.0: 0.85, 0.5: 0.65},
        notes=("a note",),
    )
    result.save(tmp_path)
    back = OODResult.load(tmp_path)
    assert _same(back.to_json(), result.to_json())
    assert back.case_ids == result.case_ids and back.kind == result.kind
    np.testing.assert_array_equal(back.distorted, result.distorted)
    np.testing.assert_array_equal(back.image_scores["sv"], result.image_scores["sv"])
    assert json.loads((tmp_path / "ood.json").read_text())["auroc"] == {"0.5": {"sv": 0.75}}


def test_referral_round_trip_and_errors(tmp_path: Path) -> None:
    assert ReferralResult.find(tmp_path) is None
    result = ReferralResult(
        threshold=-math.inf,
        coverage=0.0,
        risk=math.nan,
        bound=0.1,
        method="ltt",
        target={"max_risk": 0.05, "delta": 0.1},
        risk_measure="dice",
        uncertainty="entropy",
        estimator="softmax",
        calibration_cases=("a", "b"),
        num_cases=2,
        num_voxels=50,
    )
    result.save(tmp_path)
    assert json.loads((tmp_path / "referral.json").read_text())["threshold"] == "-inf"
    back = ReferralResult.find(tmp_path)
    assert back is not None and _same(back.to_json(), result.to_json())
    assert back.made_for == ("entropy", "softmax", {})
    (tmp_path / "referral.json").write_text('{"coverage": 1}')
    with pytest.raises(ValueError, match=r"no `threshold`.*calibrate"):
        ReferralResult.find(tmp_path)


def test_training_history_reads_metrics_csv(tmp_path: Path) -> None:
    assert TrainingHistory.load(tmp_path / "metrics.csv") is None
    (tmp_path / "metrics.csv").write_text("epoch,loss,val_dice\n1,0.5,\n2,0.25,0.8\n")
    history = TrainingHistory.load(tmp_path / "metrics.csv")
    assert history is not None and history.epochs.tolist() == [1, 2]
    np.testing.assert_array_equal(history.get("loss"), [0.5, 0.25])
    assert math.isnan(history.columns["val_dice"][0]) and history.get("lr") is None


def test_curve_psi_c_equals_the_pixel_metric() -> None:
    """psi_c comes from the curve's own counts: equal to selective_pixel_metrics at the chosen threshold."""
    rng = np.random.default_rng(1)
    preds = [rng.integers(0, 3, (9, 7)) for _ in range(3)]
    refs = [rng.integers(0, 3, (9, 7)) for _ in range(3)]
    uncs = [rng.integers(0, 5, (9, 7)).astype(np.float32) / 4 for _ in range(3)]  # heavy ties
    curve = selective_dice_curve(preds, refs, uncs, num_classes=3)
    flat = [np.concatenate([a.reshape(-1) for a in x]) for x in (preds, refs, uncs)]
    for c in (1.0, 0.9, 0.5, 0.2, 0.0):
        point = curve.at_coverage(c)
        if point.coverage == 0:
            assert math.isnan(point.psi_c)
            continue
        with warnings.catch_warnings():  # gamma is undefined at coverage 1
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            expected = selective_pixel_metrics(*flat, threshold=point.threshold).psi_c
        assert point.psi_c == expected
