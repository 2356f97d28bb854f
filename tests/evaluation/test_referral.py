from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from selectseg.data import Case, make_synthetic_dataset
from selectseg.data.annotators import reference_labels
from selectseg.evaluation import CaseOutput, load_run
from selectseg.evaluation.referral import REFERRAL_FILE, choose_referral_threshold, load_referral
from selectseg.metrics import selective_dice_curve
from selectseg.selection import dice_risk_threshold, selective_guaranteed_risk, threshold_for_coverage
from selectseg.training import load_config, train

from ..training.test_loop import TINY


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "run"
    train(load_config(overrides=[*TINY, "optim.epochs=2", "loss.ranking=exact"]), out)
    return out


@pytest.fixture(scope="module")
def calibration_cases() -> list[Case]:
    return list(make_synthetic_dataset(split="test", num_cases=12, size=16, seed=7).cases)


@pytest.fixture(scope="module")
def recorded(run_dir: Path, calibration_cases: list[Case]) -> list[CaseOutput]:
    """The run's outputs on the calibration cases, computed once (CPU inference dominates these tests' time)."""
    return list(load_run(run_dir, device="cpu").outputs(calibration_cases))


def _library_inputs(run, outputs):
    refs = [reference_labels(o.case, run.config.data.annotator, run.num_classes) for o in outputs]
    return [o.segmentation for o in outputs], refs, [o.uncertainty for o in outputs]


def _replay(run, outputs: list[CaseOutput], tmp_path: Path):
    """A stand-in for ``run`` that yields the recorded outputs and writes into ``tmp_path``."""
    return SimpleNamespace(
        run_dir=tmp_path,
        weights_sha256=run.weights_sha256,
        num_classes=run.num_classes,
        config=run.config,
        outputs=lambda cases, inference=None: iter(outputs),
    )


def test_calibrate_coverage_writes_referral_json(
    run_dir: Path, calibration_cases: list[Case], recorded: list[CaseOutput]
) -> None:
    run = load_run(run_dir, device="cpu")
    seen: list[str] = []
    result = choose_referral_threshold(run, calibration_cases, coverage=0.9, on_case=seen.append)
    ids = [c.case_id for c in calibration_cases]
    assert seen == ids
    preds, refs, uncs = _library_inputs(run, recorded)
    want = threshold_for_coverage(uncs, 0.9)
    assert result.threshold == want.threshold and result.coverage == want.coverage >= 0.9
    curve = selective_dice_curve(preds, refs, uncs, num_classes=2)
    assert result.risk == pytest.approx(1 - curve.at_threshold(want.threshold).dice_mean, abs=1e-12)
    assert math.isnan(result.bound) and result.method == "coverage" and dict(result.target) == {"coverage": 0.9}
    saved = json.loads((run_dir / REFERRAL_FILE).read_text())
    assert saved["bound"] is None and saved["calibration_cases"] == ids and saved["num_cases"] == 12
    assert saved["num_voxels"] == 12 * 16 * 16 and saved["risk_measure"] == "dice"
    assert saved["uncertainty"] == "max_softmax" and saved["estimator"] == "softmax"
    loaded = load_referral(run_dir)
    assert loaded is not None and loaded.threshold == want.threshold and math.isnan(loaded.bound)


def test_calibrate_max_risk_dice_equals_the_library(run_dir: Path, recorded, tmp_path: Path) -> None:
    run = load_run(run_dir, device="cpu")
    result = choose_referral_threshold(
        _replay(run, recorded, tmp_path), [o.case for o in recorded], max_risk=0.2, delta=0.2
    )
    want = dice_risk_threshold(*_library_inputs(run, recorded), num_classes=2, max_risk=0.2, delta=0.2)
    assert {k: getattr(result, k) for k in want._fields} == want._asdict()
    assert result.method == "ltt" and result.coverage > 0 and result.bound <= 0.2
    loaded = load_referral(tmp_path)
    assert loaded is not None and loaded.method == "ltt" and loaded.threshold == want.threshold
    assert dict(loaded.target) == {"max_risk": 0.2, "delta": 0.2} and loaded.risk_measure == "dice"


def test_calibrate_crc_and_pixel_targets_equal_the_library(run_dir: Path, recorded, tmp_path: Path) -> None:
    run = load_run(run_dir, device="cpu")
    cases = [o.case for o in recorded]
    replay = _replay(run, recorded, tmp_path)
    preds, refs, uncs = _library_inputs(run, recorded)
    crc = choose_referral_threshold(replay, cases, max_risk=0.2, method="crc")
    want = dice_risk_threshold(preds, refs, uncs, num_classes=2, max_risk=0.2, delta=0.1, method="crc")
    assert {k: getattr(crc, k) for k in want._fields} == want._asdict() and crc.target["delta"] is None
    flat_unc = np.concatenate([u.reshape(-1) for u in uncs])
    wrong = np.concatenate([(p != r).reshape(-1) for p, r in zip(preds, refs)])
    pixel = choose_referral_threshold(replay, cases, coverage=0.9, risk="pixel")
    assert pixel.risk == pytest.approx(wrong[flat_unc <= pixel.threshold].mean()) and math.isnan(pixel.bound)
    assert pixel.risk_measure == "pixel"
    max_risk = float(np.clip(wrong.mean() + 0.1, 0.1, 0.9))  # reachable whatever the tiny model's quality
    sgr = choose_referral_threshold(replay, cases, max_risk=max_risk, risk="pixel")
    want = selective_guaranteed_risk(flat_unc, wrong, max_risk=max_risk, delta=0.1)
    assert {k: getattr(sgr, k) for k in want._fields} == want._asdict() and sgr.method == "sgr"
    assert load_referral(tmp_path).method == "sgr"


# --- errors, with a fake run: nothing is written on failure -------------------------------------------------------


def _fake_run(tmp_path: Path, cases: list[Case], segmentations, uncertainties, *, forbid_inference: bool = False):
    def outputs(cases_in, inference: object = None):
        if forbid_inference:
            raise AssertionError("inference ran before the input checks")
        for case, seg, unc in zip(cases_in, segmentations, uncertainties):
            yield CaseOutput(case, np.zeros((2, *seg.shape), np.float32), seg, unc)

    config = SimpleNamespace(data=SimpleNamespace(annotator="first"))
    return SimpleNamespace(run_dir=tmp_path, num_classes=2, config=config, outputs=outputs, weights_sha256="")


def _tiny_cases(count: int) -> tuple[list[Case], list[np.ndarray], list[np.ndarray]]:
    """Images of 16 voxels, 8 of them foreground; the prediction misses voxel 0, the most confident one."""
    label = np.r_[np.ones(8, np.int64), np.zeros(8, np.int64)].reshape(1, 4, 4)
    cases = [Case(f"c{i}", np.zeros((1, 4, 4), np.float32), label, np.eye(4), None) for i in range(count)]
    seg = label[0].copy()
    seg.flat[0] = 0
    unc = np.full((4, 4), 0.5, np.float32)
    unc.flat[0] = 0.0
    return cases, [seg] * count, [unc] * count


def test_calibrate_unreachable_target_writes_nothing(tmp_path: Path) -> None:
    cases, segs, uncs = _tiny_cases(40)
    (tmp_path / REFERRAL_FILE).write_text('{"threshold": 0.3}')
    run = _fake_run(tmp_path, cases, segs, uncs)
    # Keeping anything keeps the wrong voxel: risk 1 - 14/15 = 0.067 > 0.05 at every coverage > 0.
    with pytest.raises(ValueError, match=r"max_risk=0.05 is unreachable with delta=0.2 .* best achievable bound"):
        choose_referral_threshold(run, cases, max_risk=0.05, delta=0.2)
    assert (tmp_path / REFERRAL_FILE).read_text() == '{"threshold": 0.3}'
    assert choose_referral_threshold(run, cases, max_risk=0.3, delta=0.2).coverage == 1.0


def test_calibrate_checks_the_calibration_size_before_inference(tmp_path: Path) -> None:
    cases, segs, uncs = _tiny_cases(10)
    run = _fake_run(tmp_path, cases, segs, uncs, forbid_inference=True)
    with pytest.raises(ValueError, match=r"needs at least 45 calibration images for max_risk=0.05, delta=0.1; got 10"):
        choose_referral_threshold(run, cases, max_risk=0.05)
    with pytest.raises(ValueError, match=r"'crc' needs at least 19 calibration images for max_risk=0.05; got 10"):
        choose_referral_threshold(run, cases, max_risk=0.05, method="crc")
    with pytest.raises(ValueError, match=r"needs at least \d+ calibration voxels .*; got 160"):
        choose_referral_threshold(run, cases, max_risk=0.01, risk="pixel")
    assert not (tmp_path / REFERRAL_FILE).exists()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "exactly one of `coverage` .* and `max_risk` .* but got neither"),
        ({"coverage": 0.9, "max_risk": 0.1}, "exactly one of .* but got both"),
        ({"coverage": 1.5}, r"`coverage` to be a float in \[0, 1\]"),
        ({"max_risk": 1.5}, r"`max_risk` to be a float in \(0, 1\)"),
        ({"max_risk": 0.1, "delta": 0.0}, r"`delta` to be a float in \(0, 1\)"),
        ({"coverage": 0.9, "risk": "dcie"}, "Did you mean 'dice'"),
        ({"max_risk": 0.1, "method": "sgr"}, r"`method` to be one of \['ltt', 'crc'\] for risk='dice'"),
        ({"max_risk": 0.1, "risk": "pixel", "method": "ltt"}, r"one of \['sgr'\] for risk='pixel'"),
        ({"max_risk": 0.1, "method": "lt"}, "Did you mean 'ltt'"),
    ],
)
def test_calibrate_rejects_bad_arguments(tmp_path: Path, kwargs: dict, match: str) -> None:
    cases, segs, uncs = _tiny_cases(3)
    with pytest.raises(ValueError, match=match):
        choose_referral_threshold(_fake_run(tmp_path, cases, segs, uncs, forbid_inference=True), cases, **kwargs)
    assert not (tmp_path / REFERRAL_FILE).exists()


def test_calibrate_rejects_a_non_number_target(tmp_path: Path) -> None:
    cases, segs, uncs = _tiny_cases(3)
    with pytest.raises(TypeError, match="`max_risk` to be a float"):
        choose_referral_threshold(_fake_run(tmp_path, cases, segs, uncs, forbid_inference=True), cases, max_risk="0.1")


def test_calibrate_rejects_cases_the_network_cannot_take(run_dir: Path) -> None:
    run = load_run(run_dir, device="cpu")
    three_d = list(make_synthetic_dataset(split="test", num_cases=1, spatial_dims=3, size=16).cases)
    with pytest.raises(ValueError, match="with 2 spatial axes"):
        choose_referral_threshold(run, three_d, coverage=0.9)


def test_calibrate_rejects_no_cases_and_unlabelled_cases(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one labelled calibration case"):
        choose_referral_threshold(_fake_run(tmp_path, [], [], [], forbid_inference=True), [], coverage=0.9)
    unlabelled = [Case("u0", np.zeros((1, 4, 4), np.float32), None, np.eye(4), None)]
    with pytest.raises(ValueError, match="has no label map"):
        choose_referral_threshold(
            _fake_run(tmp_path, unlabelled, [], [], forbid_inference=True), unlabelled, coverage=0.9
        )


def test_calibrate_coverage_zero_refers_everything_and_round_trips(tmp_path: Path) -> None:
    cases, segs, uncs = _tiny_cases(3)
    result = choose_referral_threshold(_fake_run(tmp_path, cases, segs, uncs), cases, coverage=0.0, risk="pixel")
    assert result.threshold == -math.inf and math.isnan(result.risk)  # nothing kept: no error rate
    saved = json.loads((tmp_path / REFERRAL_FILE).read_text())
    assert saved["threshold"] == "-inf" and saved["risk"] is None
    loaded = load_referral(tmp_path)
    assert loaded is not None and loaded.threshold == -math.inf and math.isnan(loaded.risk)


def test_load_referral_absent_and_corrupt(tmp_path: Path) -> None:
    assert load_referral(tmp_path) is None
    (tmp_path / REFERRAL_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="is not valid JSON"):
        load_referral(tmp_path)
    (tmp_path / REFERRAL_FILE).write_text('{"coverage": 0.9}')
    with pytest.raises(ValueError, match="holds no `threshold`"):
        load_referral(tmp_path)
