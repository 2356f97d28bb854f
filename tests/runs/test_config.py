from __future__ import annotations

from pathlib import Path

import pytest

from selectseg.runs.config import (
    TrainConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
    save_config,
)


def test_defaults_follow_ding_et_al() -> None:
    config = TrainConfig()
    assert config.optim.lr == 2e-4 and config.optim.batch_size == 8
    assert config.loss.ranking_weight == 2000.0 and config.loss.margin == 0.1
    assert (config.loss.n_wrong, config.loss.n_correct) == (300, 6600)


def test_yaml_round_trip(tmp_path: Path) -> None:
    config = load_config(overrides=["loss.ranking=sampled", "data.patch_size=[32, 48]", "optim.lr=1e-3"])
    path = tmp_path / "c.yaml"
    path.write_text(save_config(config))
    assert load_config(path) == config
    assert config.data.patch_size == (32, 48)
    assert config.optim.lr == 1e-3  # "1e-3" is a string to YAML 1.1, parsed against the field type


def test_file_plus_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("loss:\n  ranking: exact\noptim:\n  epochs: 3\n")
    config = load_config(path, ["optim.epochs=5", "deterministic=false"])
    assert config.loss.ranking == "exact"
    assert config.optim.epochs == 5
    assert config.deterministic is False


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("loss.rankng=exact", "Unknown config key 'loss.rankng'.*Did you mean 'loss.ranking'"),
        ("optim.lerning_rate=1", "Unknown config key 'optim.lerning_rate'"),
        ("loss.ranking=exat", "Did you mean 'exact'"),
        ("optim.epochs=ten", "`optim.epochs` to be an integer"),
        ("optim.epochs=0", "`optim.epochs` >= 1"),
        ("optim.lr=fast", "`optim.lr` to be a number"),
        ("deterministic=maybe", "true or false"),
        ("data.val_fraction=0.95", "data.val_fraction"),
        ("data.patch_size=[32, x]", "list of ints"),
        ("model.channels=[8]", "model.channels"),
        ("loss.segmentation=dicece", "Did you mean 'dice_ce'"),
        ("data.synthetic.spatial_dims=4", "spatial_dims"),
        ("data=3", "`data` to be a mapping"),
        ("nonsense", "section.key=value"),
        ("seed.x=1", "`seed` to be an integer"),
        ("loss.class_weights=[1, heavy]", "`loss.class_weights` to be a list of numbers"),
        ("loss.class_weights=[1, 0]", "`loss.class_weights` to be positive"),
        ("loss.ranking_start_epoch=-1", "`loss.ranking_start_epoch` >= 0"),
        ("loss.ranking_start_epoch=2", "`loss.ranking` is 'none'"),
        ("loss.ranking_warmup_epochs=3", "`loss.ranking` is 'none'"),
        ("loss.class_weights=[1, 2, 3]", r"one weight per class \(2, `data.synthetic.num_classes`\), but got 3"),
        ("optim.lr=[1, 2", r"override 'optim.lr=\[1, 2' to be valid YAML"),  # issue 16: was a YAML traceback
        ("model.channels={a: [1", r"override 'model.channels=\{a: \[1' to be valid YAML"),
        ("optim..lr=1", r"`section.key=value`, but got the key 'optim..lr'"),
        (".seed=1", "`section.key=value`"),
    ],
)
def test_bad_overrides_name_the_key(override: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        load_config(overrides=[override])


def test_load_config_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("loss: [unclosed\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_config(bad)
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="to hold a mapping"):
        load_config(listed)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00loss")
    with pytest.raises(ValueError, match=r"binary\.yaml' could not be read as UTF-8 text"):
        load_config(binary)


def test_to_dict_from_dict_inverse() -> None:
    config = load_config(overrides=["model.channels=[8,16,32]", "seed=7"])
    assert config_from_dict(config_to_dict(config)) == config


def test_apply_overrides_does_not_mutate_input() -> None:
    data = {"loss": {"ranking": "none"}}
    out = apply_overrides(data, ["loss.ranking=exact"])
    assert data == {"loss": {"ranking": "none"}}
    assert out == {"loss": {"ranking": "exact"}}


def test_schedule_and_class_weight_keys() -> None:
    from selectseg.runs.config import ranking_weight_at

    cfg = load_config(overrides=["loss.ranking=exact", "loss.class_weights=[1, 2.5]", "loss.ranking_start_epoch=3"])
    assert cfg.loss.class_weights == (1.0, 2.5)
    assert [ranking_weight_at(cfg.loss, e) for e in range(5)] == [0.0, 0.0, 0.0, 2000.0, 2000.0]
    warm = load_config(overrides=["loss.ranking=sampled", "loss.ranking_warmup_epochs=4", "loss.ranking_weight=8"])
    assert [ranking_weight_at(warm.loss, e) for e in range(6)] == [2.0, 4.0, 6.0, 8.0, 8.0, 8.0]
    baseline = load_config()
    assert ranking_weight_at(baseline.loss, 0) == 0.0  # no ranking loss at all
    with pytest.raises(ValueError, match=r"ranking_start_epoch` < `optim.epochs`"):
        load_config(overrides=["loss.ranking=exact", "optim.epochs=3", "loss.ranking_start_epoch=3"])


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("scale", 0.0, r"`data.scale` in \(0, 1\]"),
        ("scale", 1.5, r"`data.scale` in \(0, 1\]"),
        ("crop_size", -1, "`data.crop_size` >= 0"),
    ],
)
def test_data_scale_and_crop_size_checked(key: str, value: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        config_from_dict({"data": {key: value}})


def test_data_scale_and_crop_size_from_overrides() -> None:
    data = apply_overrides({}, ["data.scale=0.25", "data.crop_size=128"])
    config = config_from_dict(data)
    assert config.data.scale == 0.25 and config.data.crop_size == 128
    assert TrainConfig().data.scale == 1.0 and TrainConfig().data.crop_size == 0
