"""Train -> predict -> evaluate end to end on the 3D path (sliding windows) and on PNG inputs (PNG outputs)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
from PIL import Image

from selectseg.data import SegmentationDataset, make_synthetic_dataset, write_msd_dataset
from selectseg.evaluation import evaluate_cases, load_run, predict_cases
from selectseg.runs.data import load_cases
from selectseg.training import load_config, train

from .training.test_loop import TINY


def test_3d_train_then_sliding_window_predict_and_evaluate(tmp_path: Path) -> None:
    overrides = [o for o in TINY if not o.startswith("data.synthetic.size")]
    config = load_config(
        overrides=[
            *overrides,
            "data.synthetic.spatial_dims=3",
            "data.synthetic.size=16",
            "data.patch_size=[8,8,8]",
            "optim.epochs=1",
            "loss.ranking=exact",
        ]
    )
    result = train(config, tmp_path / "run")
    assert np.isfinite(result.history[0]["val_aurc"])  # validation went through sliding windows
    run = load_run(tmp_path / "run", device="cpu")
    assert run.patch_size == (8, 8, 8)
    cases = load_cases(run.config.data, split="test").cases
    assert cases[0].spatial_shape == (16, 16, 16)
    summary = predict_cases(run, cases, tmp_path / "pred", coverage=0.9)
    assert summary["cases"][0]["shape"] == [16, 16, 16]
    assert (tmp_path / "pred" / f"{cases[0].case_id}_referral.nii.gz").is_file()
    evaluation = evaluate_cases(run, cases, tmp_path / "ev")
    assert 0 <= evaluation.aurc <= 1


def test_png_dataset_gives_png_outputs(tmp_path: Path) -> None:
    def as_uint8(dataset: SegmentationDataset) -> SegmentationDataset:
        cases = []
        for case in dataset.cases:
            image = case.image
            scaled = np.round(255 * (image - image.min()) / (image.max() - image.min()))
            cases.append(dataclasses.replace(case, image=scaled.astype(np.float32)))
        return dataclasses.replace(dataset, cases=tuple(cases))

    train_set = as_uint8(make_synthetic_dataset(split="train", num_cases=4, size=16, seed=2))
    test_set = as_uint8(make_synthetic_dataset(split="test", num_cases=1, size=16, seed=2))
    root = write_msd_dataset(tmp_path / "ds", train_set, test=test_set, file_ending=".png")
    options = [o for o in TINY if not o.startswith("data.synthetic")]
    train(load_config(overrides=[*options, f"data.path={root}", "optim.epochs=1"]), tmp_path / "run")
    run = load_run(tmp_path / "run", device="cpu")
    cases = load_cases(run.config.data, split="test").cases
    assert cases[0].file_kind == "png"
    summary = predict_cases(run, cases, tmp_path / "pred", threshold=0.3)
    files = summary["cases"][0]["files"]
    seg = np.asarray(Image.open(tmp_path / "pred" / files["segmentation"]))
    unc = np.asarray(Image.open(tmp_path / "pred" / files["uncertainty"]))
    referral = np.asarray(Image.open(tmp_path / "pred" / files["referral"]))
    assert seg.shape == unc.shape == referral.shape == cases[0].spatial_shape
    assert set(np.unique(seg)) <= {0, 1} and unc.dtype == np.uint16
    # The 16-bit uncertainty map reproduces the referral decision up to its 1/65535 step.
    assert np.mean((unc / 65535 > 0.3) == referral.astype(bool)) > 0.99
    assert json.loads((tmp_path / "pred" / "predictions.json").read_text())["threshold"] == 0.3
