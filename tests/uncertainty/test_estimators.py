from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from selectseg.models import ModelSpec, build_model
from selectseg.uncertainty import (
    build_estimator,
    member_variance,
    mutual_information,
    register_estimator,
    sliding_window_predictor,
    whole_image,
)


def _net(spatial_dims: int, dropout: float = 0.0, channels: tuple[int, ...] = (4, 8)) -> nn.Module:
    return build_model(ModelSpec(spatial_dims=spatial_dims, num_classes=3, channels=channels, dropout=dropout))


# The contract every registered estimator keeps (2D and 3D, odd sizes, shapes, finite maps) is in
# tests/test_registries.py.


def test_whole_image_pads_to_the_size_divisor_and_crops_back() -> None:
    """The default predictor returns the input's spatial shape (it used to give 16x16 logits for a 15x15 image)."""
    model = _net(2, channels=(4, 8, 8)).eval()  # size divisor 4
    image = torch.randn(1, 1, 15, 13)
    expected = model(torch.nn.functional.pad(image, [0, 3, 0, 1]))[:, :, :15, :13]
    torch.testing.assert_close(whole_image(model, image), expected)
    probs = build_estimator("softmax", model)(image).probabilities
    torch.testing.assert_close(probs, expected.softmax(1))
    assert sliding_window_predictor((8, 8))(model, image).shape == (1, 3, 15, 13)  # 2D: one padded pass


def test_member_maps_match_numpy_definitions(rng: np.random.Generator) -> None:
    logits = rng.normal(size=(5, 2, 3, 4, 4))
    probs = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
    members = torch.from_numpy(probs)
    mean = probs.mean(0)
    h_mean = -(mean * np.log(mean)).sum(1)
    h_members = -(probs * np.log(probs)).sum(2).mean(0)
    assert np.allclose(mutual_information(members).numpy(), h_mean - h_members)
    assert np.allclose(member_variance(members).numpy(), probs.var(axis=0).mean(axis=1))


def test_mc_dropout_is_seeded_keeps_norm_in_eval_and_needs_dropout() -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Dropout2d(0.5), nn.Conv2d(4, 2, 1))
    model.train()
    image = torch.randn(2, 1, 8, 8)
    running = model[1].running_mean.clone()
    before = torch.get_rng_state()
    a = build_estimator("mc_dropout", model, n_samples=4, seed=1)(image)
    assert torch.equal(torch.get_rng_state(), before)  # the global RNG is untouched
    b = build_estimator("mc_dropout", model, n_samples=4, seed=1)(image)
    c = build_estimator("mc_dropout", model, n_samples=4, seed=2)(image)
    assert torch.equal(a.members, b.members) and not torch.equal(a.members, c.members)
    assert not torch.equal(a.members[0], a.members[1])  # dropout sampled
    assert torch.equal(model[1].running_mean, running)  # batch norm in eval mode: statistics untouched
    assert model.training  # mode restored
    with pytest.raises(ValueError, match="needs a model with dropout"):
        build_estimator("mc_dropout", _net(2))
    with pytest.raises(ValueError, match="n_samples"):
        build_estimator("mc_dropout", _net(2, dropout=0.2), n_samples=1)


def test_ensemble_mean_and_errors() -> None:
    members = [_net(2) for _ in range(3)]
    image = torch.randn(1, 1, 8, 8)
    estimate = build_estimator("ensemble", members)(image)
    manual = torch.stack([m.eval()(image).softmax(1) for m in members]).mean(0)
    assert torch.allclose(estimate.probabilities, manual, atol=1e-6)
    with pytest.raises(ValueError, match="at least 2 ensemble members"):
        build_estimator("ensemble", members[:1])
    with pytest.raises(ValueError, match="member 1 differs"):
        build_estimator("ensemble", [_net(2), _net(2, channels=(8, 16))])


def test_tta_flips_back_and_checks_axes() -> None:
    pointwise = nn.Conv2d(1, 2, 1)  # flip-equivariant: every view agrees after flipping back
    estimate = build_estimator("tta", pointwise)(torch.randn(1, 1, 5, 6))
    assert estimate.members.shape[0] == 4
    assert torch.allclose(estimate.maps["mutual_information"], torch.zeros(1, 5, 6), atol=1e-6)
    model = _net(2)
    image = torch.randn(1, 1, 8, 8)
    one_axis = build_estimator("tta", model, axes=[1])(image)
    manual = (model.eval()(image).softmax(1) + model(image.flip(3)).softmax(1).flip(3)) / 2
    assert torch.allclose(one_axis.probabilities, manual, atol=1e-6)
    with pytest.raises(ValueError, match="spatial axes"):
        build_estimator("tta", model, axes=[2])(image)


def test_sliding_window_predictor_matches_whole_image_when_one_window_covers_it() -> None:
    model = _net(3)
    image = torch.randn(1, 1, 8, 8, 8)
    whole = build_estimator("softmax", model)(image).probabilities
    windowed = build_estimator("softmax", model, predictor=sliding_window_predictor((8, 8, 8)))(image).probabilities
    assert torch.allclose(whole, windowed, atol=1e-5)


def test_bad_inputs_are_named_errors() -> None:
    with pytest.raises(ValueError, match="Did you mean 'ensemble'"):
        build_estimator("ensembel", _net(2))
    with pytest.raises(TypeError, match=r"nn\.Module"):
        build_estimator("softmax", ["not a model"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="at least one model"):
        build_estimator("ensemble", [])
    with pytest.raises(ValueError, match="one model"):
        build_estimator("softmax", [_net(2), _net(2)])
    nan_model = nn.Conv2d(1, 2, 1)
    with torch.no_grad():
        nan_model.weight.fill_(float("nan"))
    with pytest.raises(ValueError, match="NaN or infinite probabilities"):
        build_estimator("softmax", nan_model)(torch.randn(1, 1, 4, 4))
    with pytest.raises(ValueError, match="already registered"):
        register_estimator("softmax")(lambda models: None)
    with pytest.raises(ValueError, match=r"Estimator 'softmax' takes no option 'skip_first'; its options are \[\]"):
        build_estimator("softmax", _net(2), skip_first=1)
    with pytest.raises(
        ValueError, match=r"'mc_dropout' takes no option 'n_sample'; its options are \['n_samples', 'seed'\]"
    ):
        build_estimator("mc_dropout", _net(2), n_sample=3)


def test_estimator_options_lists_keyword_options() -> None:
    from selectseg.uncertainty import estimator_options

    assert estimator_options("edue") == estimator_options("layer_ensemble") == ("skip_first",)
    assert estimator_options("mc_dropout") == ("n_samples", "seed")
    assert estimator_options("softmax") == () and estimator_options("ensemble") == ()
    with pytest.raises(ValueError, match="Did you mean 'edue'"):
        estimator_options("edeu")


def test_layer_ensemble_members_are_the_heads_and_errors() -> None:
    model = build_model(ModelSpec(name="multihead_unet", num_classes=2, channels=(4, 8, 8, 8)))
    image = torch.randn(1, 1, 10, 12)  # not a multiple of the divisor 8: padded and cropped back
    estimate = build_estimator("layer_ensemble", model)(image)
    assert estimate.members.shape == (3, 1, 2, 10, 12)
    padded = torch.nn.functional.pad(image, [0, 4, 0, 6])
    heads = model.eval().forward_heads(padded)[:, :, :, :10, :12].softmax(2)
    assert torch.allclose(estimate.members, heads, atol=1e-6)
    skipped = build_estimator("layer_ensemble", model, skip_first=1)(image)
    assert torch.allclose(skipped.members, heads[1:], atol=1e-6)
    with pytest.raises(ValueError, match="skip_first"):
        build_estimator("layer_ensemble", model, skip_first=2)
    with pytest.raises(ValueError, match="multi-head network"):
        build_estimator("layer_ensemble", _net(2))


def test_layer_ensemble_through_sliding_windows() -> None:
    """Heads go through any predictor: a window as large as the volume gives the whole-volume heads; smaller
    windows blend each head separately (shapes kept, members average to the mean)."""
    model = build_model(ModelSpec(name="multihead_unet", spatial_dims=3, num_classes=2, channels=(4, 8, 8)))
    image = torch.randn(1, 1, 16, 16, 12)
    whole = build_estimator("layer_ensemble", model)(image)
    one_window = build_estimator("layer_ensemble", model, predictor=sliding_window_predictor((16, 16, 12)))(image)
    assert torch.allclose(one_window.members, whole.members, atol=1e-5)
    windows = build_estimator("edue", model, predictor=sliding_window_predictor((8, 8, 8), overlap=0.5))(image)
    assert windows.members.shape == (2, 1, 2, 16, 16, 12)
    assert torch.allclose(windows.members.mean(0), windows.probabilities, atol=1e-6)
    # Each member is that head alone through the same sliding windows (the stacking keeps heads and classes apart).
    from monai.inferers import sliding_window_inference

    for h in range(2):
        alone = sliding_window_inference(
            image, (8, 8, 8), 4, lambda x, h=h: model.forward_heads(x)[h], overlap=0.5, mode="gaussian"
        )
        assert torch.allclose(windows.members[h], alone.softmax(1), atol=1e-5)


def _multi_head() -> nn.Module:
    return build_model(ModelSpec(name="multihead_unet", spatial_dims=2, num_classes=3, channels=(4, 8, 8)))


@pytest.mark.parametrize(
    ("name", "models", "options"),
    [
        ("softmax", lambda: _net(2), {}),
        ("mc_dropout", lambda: _net(2, dropout=0.2), {"n_samples": 2}),
        ("ensemble", lambda: [_net(2), _net(2)], {}),
        ("tta", lambda: _net(2), {}),
        ("layer_ensemble", _multi_head, {}),
        ("edue", _multi_head, {}),
    ],
)
def test_every_estimator_checks_the_image_against_the_network(name, models, options) -> None:
    estimate = build_estimator(name, models(), **options)
    # issue 16: an image without its batch axis gave a softmax over a spatial axis
    with pytest.raises(ValueError, match=r"\(B, C=1, \*S\) with 2 spatial axes .* but got shape \(1, 16, 16\)"):
        estimate(torch.randn(1, 16, 16))
    with pytest.raises(ValueError, match=r"C=1.*but got shape \(1, 2, 16, 16\)"):
        estimate(torch.randn(1, 2, 16, 16))  # two channels for a one-channel network
    with pytest.raises(ValueError, match=r"2 spatial axes .* but got shape \(1, 1, 8, 16, 16\)"):
        estimate(torch.randn(1, 1, 8, 16, 16))  # a volume for a 2-D network
    with pytest.raises(TypeError, match=r"floating-point torch\.Tensor"):
        estimate(np.zeros((1, 1, 16, 16), np.float32))
    with pytest.raises(ValueError, match="non-empty `image` batch"):
        estimate(torch.randn(0, 1, 16, 16))
    assert estimate(torch.randn(1, 1, 16, 16)).probabilities.shape == (1, 3, 16, 16)


def test_a_plain_module_without_a_spec_needs_a_batch_axis() -> None:
    estimate = build_estimator("softmax", nn.Conv2d(1, 2, 1))
    with pytest.raises(ValueError, match=r"2 or 3 spatial axes .* but got shape \(1, 4, 4\)"):
        estimate(torch.randn(1, 4, 4))  # Conv2d takes it unbatched; the softmax would run over H
    assert estimate(torch.randn(1, 1, 4, 4)).probabilities.shape == (1, 2, 4, 4)
