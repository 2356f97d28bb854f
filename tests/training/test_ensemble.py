from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from selectseg.evaluation import evaluate_cases, load_run
from selectseg.runs.data import load_cases
from selectseg.training.multirun import train_ensemble
from selectseg.uncertainty import InferenceOptions

from .test_loop import tiny, weights_equal


def test_ensemble_members_differ_by_seed_and_evaluate_as_one(tmp_path: Path) -> None:
    results = train_ensemble(tiny("optim.epochs=1", "seed=5"), tmp_path / "ens", 3)
    assert json.loads((tmp_path / "ens" / "ensemble.json").read_text())["seeds"] == [5, 6, 7]
    assert not weights_equal(results[0].model.state_dict(), results[1].model.state_dict())
    run = load_run(tmp_path / "ens", device="cpu")
    assert run.is_ensemble and len(run.members) == 3
    cases = load_cases(run.config.data, split="test").cases
    outputs = list(run.outputs(cases, InferenceOptions(score="mutual_information", estimator="ensemble")))
    image = torch.as_tensor(outputs[0].probabilities)
    assert torch.allclose(image.sum(0), torch.ones(image.shape[1:]), atol=1e-5)
    result = evaluate_cases(
        run, cases, tmp_path / "ev", inference=InferenceOptions(score="variance", estimator="ensemble")
    )
    assert result.estimator == "ensemble"


def test_ensemble_resume_and_errors(tmp_path: Path) -> None:
    train_ensemble(tiny("optim.epochs=1"), tmp_path / "ens", 2)
    again = train_ensemble(None, tmp_path / "ens", 2, resume=True)  # finished: nothing redone
    assert len(again) == 2
    with pytest.raises(ValueError, match="ensemble of 2"):
        train_ensemble(None, tmp_path / "ens", 3, resume=True)
    with pytest.raises(ValueError, match="int >= 2"):
        train_ensemble(tiny(), tmp_path / "x", 1)
    with pytest.raises(ValueError, match="is not empty"):
        train_ensemble(tiny(), tmp_path / "ens", 2)
    with pytest.raises(ValueError, match="Cannot resume"):
        train_ensemble(None, tmp_path / "none", 2, resume=True)
    single = tmp_path / "single"
    from selectseg.training import train

    train(tiny("optim.epochs=1"), single)
    with pytest.raises(ValueError, match="needs an ensemble run"):
        list(load_run(single, device="cpu").outputs([], InferenceOptions(estimator="ensemble")))
