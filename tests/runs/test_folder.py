"""The run-folder contract: the new-run check, the saved config read back through the config parser, the index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selectseg.runs import folder
from selectseg.runs.config import TrainConfig, save_config, with_overrides


def test_check_new_run_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    folder.check_new_run(tmp_path / "new")  # missing: fine
    (tmp_path / "empty").mkdir()
    folder.check_new_run(tmp_path / "empty")
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("")
    with pytest.raises(ValueError, match=r"'.*used' is not empty; resume it \(--resume on the command line"):
        folder.check_new_run(tmp_path / "used")
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="is not empty"):
        folder.check_new_run(tmp_path / "file")


def test_read_config_parses_and_names_the_file(tmp_path: Path) -> None:
    config = with_overrides(TrainConfig(), {"optim.epochs": 3, "loss.ranking": "exact"})
    (tmp_path / folder.CONFIG).write_text(save_config(config))
    assert folder.has_config(tmp_path) and folder.read_config(tmp_path) == config
    (tmp_path / folder.CONFIG).write_text("optim:\n  epoch: 3\n")
    with pytest.raises(ValueError, match=r"config\.yaml.*Unknown config key 'optim\.epoch'.*Did you mean"):
        folder.read_config(tmp_path)
    (tmp_path / folder.CONFIG).write_text("optim: [\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        folder.read_config(tmp_path)
    with pytest.raises(ValueError, match="is not a selectseg run folder"):
        folder.read_config(tmp_path / "nowhere")


def test_read_index_and_first_member(tmp_path: Path) -> None:
    assert folder.read_index(tmp_path) is None and folder.first_member(tmp_path) == tmp_path
    (tmp_path / folder.CV_INDEX).write_text(json.dumps({"folds": 2, "runs": ["fold_0", "fold_1"], "seed": 0}))
    kind, index = folder.read_index(tmp_path) or ("", {})
    assert kind == "cv" and index["members"] == index["runs"] == ["fold_0", "fold_1"]
    assert folder.first_member(tmp_path) == tmp_path / "fold_0"
    (tmp_path / folder.CV_INDEX).write_text(json.dumps({"runs": []}))
    with pytest.raises(ValueError, match="lists none"):
        folder.read_index(tmp_path)


def test_with_overrides_is_typed_and_checked() -> None:
    config = with_overrides(TrainConfig(), {"optim.lr": 1e-3, "model.channels": [8, 16], "seed": None})
    assert config.optim.lr == 1e-3 and config.model.channels == (8, 16) and config.seed == 0
    with pytest.raises(ValueError, match=r"Unknown config key 'optim\.lrr'.*Did you mean 'optim\.lr'"):
        with_overrides(config, {"optim.lrr": 1.0})
    with pytest.raises(ValueError, match="is a section"):
        with_overrides(config, {"optim": 1})
    with pytest.raises(ValueError, match="is a value, not a section"):
        with_overrides(config, {"seed.x": 1})
    with pytest.raises(ValueError, match=r"`optim\.epochs` to be an integer"):
        with_overrides(config, {"optim.epochs": 1.5})
    with pytest.raises(ValueError, match=r"`loss\.ranking` to be one of"):
        with_overrides(config, {"loss.ranking": "exac"})
