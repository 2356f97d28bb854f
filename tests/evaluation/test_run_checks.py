"""Issue 16: a run refuses data, checkpoints and run files that do not fit it, before any inference."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from selectseg.data import SegmentationDataset, make_synthetic_dataset, write_msd_dataset
from selectseg.evaluation import evaluate_cases, load_run, predict_cases
from selectseg.training import load_config, train

from ..training.test_loop import TINY


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("checks") / "run"
    train(load_config(overrides=[*TINY, "optim.epochs=1", "data.val_fraction=0"]), out)
    return out


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    return copy


@pytest.mark.parametrize("annotators", [1, 3])
def test_three_class_data_are_refused_naming_the_folder_the_run_and_the_classes(run_dir, tmp_path, annotators):
    data = make_synthetic_dataset(split="test", num_cases=2, size=16, num_classes=3, num_annotators=annotators)
    train_data = make_synthetic_dataset(split="train", num_cases=1, size=16, num_classes=3, num_annotators=annotators)
    folder = write_msd_dataset(tmp_path / "three", train_data, test=data)
    run = load_run(run_dir, device="cpu")
    match = (
        rf"The data '{folder}' do not fit the run '{run_dir}': 3 classes \['background', .*\] where the run "
        r"predicts 2 \['background', 'structure'\]"
    )
    with pytest.raises(ValueError, match=match):
        run.data_cases(folder, split="test")
    # the cases alone (library use): labels outside [0, K) are refused before inference, not mapped to class 1
    with pytest.raises(ValueError, match=r"labels in \[0, 2\] but the run .* predicts 2 classes"):
        evaluate_cases(run, list(data.cases), tmp_path / "e")
    with pytest.raises(ValueError, match=r"labels in \[0, 2\]"):
        predict_cases(run, list(data.cases), tmp_path / "p")
    assert not (tmp_path / "e").exists() and not (tmp_path / "p").exists()


def test_other_class_names_channels_and_dimensions_are_refused(run_dir, tmp_path):
    run = load_run(run_dir, device="cpu")
    data = make_synthetic_dataset(split="test", num_cases=1, size=16)
    renamed = SegmentationDataset(dataclasses.replace(data.info, class_names=("background", "tumour")), data.cases)
    with pytest.raises(ValueError, match=r"classes \['background', 'tumour'\] where the run has \['background', 'st"):
        run.check_dataset(renamed, "renamed")
    two = make_synthetic_dataset(split="test", num_cases=1, size=16, in_channels=2, spatial_dims=3)
    with pytest.raises(ValueError, match=r"'two' do not fit .*2 channel\(s\) .* takes 1; 3-D images where .* 2-D"):
        run.check_dataset(two, "two")
    run.check_dataset(data, "same")  # the run's own kind of data passes
    with pytest.raises(TypeError, match="`cases` to be a list of Case"):
        run.check_cases(data)  # type: ignore[arg-type]


def test_a_checkpoint_from_another_architecture_is_refused_naming_the_fields(run_dir, tmp_path):
    copy = _copy(run_dir, tmp_path)
    config = yaml.safe_load((copy / "config.yaml").read_text())
    config["model"]["channels"] = [8, 16]
    (copy / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match=r"does not match the run .*channels: checkpoint \[4, 8\] vs config/run\.json"):
        load_run(copy, device="cpu")
    info = json.loads((run_dir / "run.json").read_text())
    (copy / "config.yaml").write_text((run_dir / "config.yaml").read_text())
    (copy / "run.json").write_text(json.dumps({**info, "class_names": ["background", "a", "b"]}))
    with pytest.raises(ValueError, match=r"num_classes: checkpoint 2 vs config/run\.json 3"):
        load_run(copy, device="cpu")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"\xff\xfe{garbage", r"run\.json' could not be read \(UnicodeDecodeError"),
        (b'{"class_names": ["background", "structure"]', r"run\.json' is not valid JSON"),
        (b"[1, 2]", r"run\.json' to hold a JSON object"),
        (b'{"class_names": ["background", "structure"], "channel_names": ["gray"], "spatial_dims": 2}', "patch_size"),
        (b'{"class_names": "bg", "channel_names": ["gray"], "spatial_dims": 2, "patch_size": [16, 16]}', "class_names"),
    ],
)
def test_a_broken_run_json_names_the_file_and_the_run(run_dir, tmp_path, content, match):
    copy = _copy(run_dir, tmp_path)
    (copy / "run.json").write_bytes(content)
    with pytest.raises(ValueError, match=match) as error:
        load_run(copy, device="cpu")
    assert str(copy / "run.json") in str(error.value) and f"run '{copy}'" in str(error.value)


def test_a_damaged_config_yaml_names_the_file(run_dir, tmp_path):
    copy = _copy(run_dir, tmp_path)
    (copy / "config.yaml").write_text("model: {channels: [4, 8\n")
    with pytest.raises(ValueError, match=r"config\.yaml' is not valid YAML"):
        load_run(copy, device="cpu")
    (copy / "config.yaml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ValueError, match=r"config\.yaml'"):
        load_run(copy, device="cpu")


def test_labels_of_any_integer_dtype_evaluate_alike(run_dir, tmp_path):
    run = load_run(run_dir, device="cpu")
    data = make_synthetic_dataset(split="test", num_cases=2, size=16)
    narrow = [dataclasses.replace(c, labels=c.labels.astype(np.uint8)) for c in data.cases]
    a = evaluate_cases(run, list(data.cases), tmp_path / "a", n_resamples=0)
    b = evaluate_cases(run, narrow, tmp_path / "b", n_resamples=0)
    assert a.aurc == b.aurc
