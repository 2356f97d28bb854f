from __future__ import annotations

import numpy as np
import pytest
import torch

from selectseg.models import ModelSpec, build_model, get_model, list_models, register_model
from selectseg.models.inference import normalize_image, predict_probabilities

# The contract every registered model keeps (2D and 3D, shapes, finite, gradients) is in tests/test_registries.py.


@pytest.mark.parametrize("name", list_models())
def test_registered_model_is_seeded(name: str) -> None:
    spec = ModelSpec(name=name, channels=(4, 8, 8))
    torch.manual_seed(3)
    a = build_model(spec).state_dict()
    torch.manual_seed(3)
    b = build_model(spec).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_dropout_is_in_the_network() -> None:
    spec = ModelSpec(channels=(4, 8), dropout=0.5)
    model = build_model(spec).train()
    x = torch.randn(1, 1, 16, 16)
    assert not torch.equal(model(x), model(x))  # dropout active in training mode
    model.eval()
    assert torch.equal(model(x), model(x))


def test_model_spec_round_trip() -> None:
    spec = ModelSpec(name="dynunet", spatial_dims=3, in_channels=4, num_classes=5, channels=(8, 16, 32))
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    assert spec.size_divisor == 4


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "unte"}, "Did you mean 'unet'"),
        ({"spatial_dims": 4}, "spatial_dims"),
        ({"num_classes": 1}, "num_classes"),
        ({"channels": (8,)}, "channels"),
        ({"name": "dynunet", "channels": (8, 16)}, "at least 3 levels"),
        ({"dropout": 1.0}, "dropout"),
        ({"num_res_units": -1}, "num_res_units"),
        ({"norm": "group"}, "norm"),
    ],
)
def test_model_spec_rejects_bad_values(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ModelSpec(**kwargs)


def test_model_spec_from_dict_rejects_unknown_key() -> None:
    with pytest.raises(ValueError, match="Unknown model spec key"):
        ModelSpec.from_dict({"name": "unet", "depth": 3})


def test_build_model_rejects_non_spec() -> None:
    with pytest.raises(TypeError, match="ModelSpec"):
        build_model({"name": "unet"})  # type: ignore[arg-type]


def test_register_model_rejects_duplicate_and_get_model_suggests() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_model("unet")(lambda spec: torch.nn.Identity())
    with pytest.raises(ValueError, match="Did you mean"):
        get_model("dynunt")


def test_normalize_image_zscore_per_channel() -> None:
    image = np.stack([np.arange(16.0).reshape(4, 4), np.full((4, 4), 7.0)])
    out = normalize_image(image)
    assert out.dtype == torch.float32
    assert torch.allclose(out[0].mean(), torch.tensor(0.0), atol=1e-6)
    assert torch.allclose(out[0].std(unbiased=False), torch.tensor(1.0), atol=1e-6)
    assert torch.equal(out[1], torch.zeros(4, 4))  # a constant channel becomes 0
    assert torch.equal(normalize_image(image, "none"), torch.as_tensor(image, dtype=torch.float32))
    with pytest.raises(ValueError, match="Did you mean 'zscore'"):
        normalize_image(image, "zscor")


def test_predict_probabilities_pads_2d_to_the_divisor() -> None:
    spec = ModelSpec(channels=(4, 8, 16))
    model = build_model(spec).eval()
    probs = predict_probabilities(model, torch.randn(1, 13, 10), size_divisor=spec.size_divisor)
    assert tuple(probs.shape) == (2, 13, 10)
    assert torch.allclose(probs.sum(0), torch.ones(13, 10))


def test_predict_probabilities_sliding_window_matches_whole_volume_when_one_window_fits() -> None:
    spec = ModelSpec(spatial_dims=3, channels=(4, 8))
    model = build_model(spec).eval()
    image = torch.randn(1, 12, 10, 8)
    whole = predict_probabilities(model, image, size_divisor=2, roi_size=None)
    windowed = predict_probabilities(model, image, size_divisor=2, roi_size=(8, 8, 8), overlap=0.5)
    assert tuple(windowed.shape) == (2, 12, 10, 8)
    assert torch.allclose(windowed.sum(0), torch.ones(12, 10, 8), atol=1e-5)
    # Windows see less context than the whole volume, but the instance-normalised network agrees closely.
    assert (windowed.argmax(0) == whole.argmax(0)).float().mean() > 0.7


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_multihead_unet_heads(spatial_dims: int) -> None:
    spec = ModelSpec(name="multihead_unet", spatial_dims=spatial_dims, channels=(4, 8, 16, 16), num_classes=3)
    model = build_model(spec)
    x = torch.randn(2, 1, *(16,) * spatial_dims)
    assert model.num_heads == 3
    model.train()
    heads_train = model.forward_heads(x)
    assert tuple(heads_train.shape) == (3, 2, 3, *(16,) * spatial_dims)
    assert torch.allclose(heads_train[-1], model(x))  # the last head is the full-resolution output
    model.eval()
    heads_eval = model.forward_heads(x)
    assert torch.allclose(heads_eval, heads_train, atol=1e-6)  # instance norm: same in both modes
    assert not torch.allclose(heads_eval[0], heads_eval[-1])  # the heads are different predictors
    heads_eval.sum().backward()


def test_single_head_model_refuses_forward_heads() -> None:
    model = build_model(ModelSpec(channels=(4, 8)))
    assert model.num_heads == 1
    with pytest.raises(ValueError, match="single output head"):
        model.forward_heads(torch.randn(1, 1, 8, 8))


def _raw_heads(model: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The coarse heads' own logits (MONAI DynUNet keeps them in ``heads`` after a forward pass), deepest first."""
    model(x)
    return list(reversed(model.net.net.heads))


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("train_mode", [True, False])
def test_multihead_unet_bilinear_heads_equal_interpolated_logits(spatial_dims: int, train_mode: bool) -> None:
    spec = ModelSpec(name="multihead_unet", spatial_dims=spatial_dims, channels=(4, 8, 16, 16), num_classes=3)
    assert spec.head_upsample == "bilinear"  # the default for new networks
    torch.manual_seed(0)
    model = build_model(spec).train(train_mode)
    x = torch.randn(2, 1, *(16,) * spatial_dims)
    heads = model.forward_heads(x)
    raw = _raw_heads(model, x)
    assert [tuple(h.shape[2:]) for h in raw] == [(4,) * spatial_dims, (8,) * spatial_dims]
    mode = "bilinear" if spatial_dims == 2 else "trilinear"
    for got, logits in zip(heads[:-1], raw):
        expected = torch.nn.functional.interpolate(logits, size=(16,) * spatial_dims, mode=mode, align_corners=False)
        torch.testing.assert_close(got, expected)
    torch.testing.assert_close(heads[-1], model(x))


def test_multihead_unet_nearest_heads_are_monais_deep_supervision_outputs() -> None:
    spec = ModelSpec(name="multihead_unet", channels=(4, 8, 16, 16), num_classes=2, head_upsample="nearest")
    torch.manual_seed(0)
    model = build_model(spec).train()
    x = torch.randn(2, 1, 16, 16)
    heads = model.forward_heads(x)
    stacked = model.net.net(x)  # MONAI in training mode: (B, 1 + heads, K, *S), nearest-upsampled, shallow first
    torch.testing.assert_close(heads, torch.cat([stacked.transpose(0, 1)[1:].flip(0), stacked.transpose(0, 1)[:1]]))
    coarse = heads[0, 0, 0]  # the 4x4 head: constant over each 4x4 block
    assert torch.equal(coarse, coarse[::4, ::4].repeat_interleave(4, 0).repeat_interleave(4, 1))


def test_head_upsample_saved_specs_without_the_field_load_as_nearest(tmp_path) -> None:
    from selectseg.runs.checkpoint import load_model, save_checkpoint

    new = ModelSpec(name="multihead_unet", channels=(4, 8, 16))
    assert ModelSpec.from_dict(new.to_dict()) == new and new.to_dict()["head_upsample"] == "bilinear"
    legacy = {k: v for k, v in new.to_dict().items() if k != "head_upsample"}
    assert ModelSpec.from_dict(legacy).head_upsample == "nearest"
    plain = {k: v for k, v in ModelSpec(channels=(4, 8)).to_dict().items() if k != "head_upsample"}
    assert ModelSpec.from_dict(plain) == ModelSpec(channels=(4, 8))  # single-head networks: the field is moot
    save_checkpoint(tmp_path / "old.pt", {"model": build_model(new).state_dict(), "spec": legacy})
    loaded = load_model(tmp_path / "old.pt")
    assert loaded.spec.head_upsample == "nearest" and loaded.net.mode == "nearest"
    with pytest.raises(ValueError, match="Did you mean 'bilinear'"):
        ModelSpec(name="multihead_unet", channels=(4, 8, 16), head_upsample="bilinar")
