"""Contract tests generated from every registry: a newly registered entry is tested here without a line added.

Every model builds and runs in 2D and 3D with the documented shapes; every score maps probabilities to a finite map
in its documented range; every estimator returns an :class:`Estimate` of the documented shapes, finite, for images
of odd sizes (the predictor pads to the network's size divisor and crops back); every dataset format refuses an
empty folder and the other formats' folders and loads its own; every segmentation loss returns a finite scalar with
a gradient. The generic :class:`Registry` itself is tested at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

from selectseg._registry import Entry, NoMetadata, Registry
from selectseg.data import load_dataset
from selectseg.data.formats.registry import FORMATS, detection_order
from selectseg.losses.segmentation import SEGMENTATION_LOSSES, segmentation_loss
from selectseg.models import MODELS, ModelSpec, build_model
from selectseg.uncertainty import ESTIMATORS, SCORES, SINGLE_MAPS, build_estimator
from tests.data._files import msd_style_folder
from tests.data.test_brats import make_brats_folder
from tests.data.test_glas import official_folder
from tests.data.test_hecktor import make_hecktor_folder
from tests.data.test_mmwhs import make_mmwhs_folder
from tests.data.test_qubiq import make_qubiq_folder
from tests.data.test_riga import riga_folder

SPATIAL = {2: (8, 8), 3: (8, 8, 8)}
ODD_SPATIAL = {2: (15, 15), 3: (15, 13, 11)}


# ------------------------------------------------------------------------------------------------------------ models


def _tiny_spec(name: str, spatial_dims: int, **extra: object) -> ModelSpec:
    levels = max(3, MODELS.entry(name).metadata.min_levels)
    channels = (4, 8, 8, 8, 8, 8)[:levels]
    return ModelSpec(name=name, spatial_dims=spatial_dims, in_channels=2, num_classes=3, channels=channels, **extra)


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("name", MODELS.names())
def test_model_contract(name: str, spatial_dims: int) -> None:
    """Logits ``(B, K, *S)``, finite, in training and eval mode; gradients reach every parameter; a multi-head
    network's ``forward(x, heads=True)`` gives ``(M, B, K, *S)`` with the full-resolution head last."""
    model = build_model(_tiny_spec(name, spatial_dims, dropout=0.1))
    x = torch.randn(2, 2, *SPATIAL[spatial_dims])
    for train_mode in (True, False):
        model.train(train_mode)
        out = model(x)
        assert tuple(out.shape) == (2, 3, *SPATIAL[spatial_dims])
        assert torch.isfinite(out).all()
    model.train()
    model(x).sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    if model.num_heads > 1:
        model.eval()
        heads = model(x, heads=True)
        assert tuple(heads.shape) == (model.num_heads, 2, 3, *SPATIAL[spatial_dims])
        assert torch.isfinite(heads).all()
        torch.testing.assert_close(heads[-1], model(x))


# ------------------------------------------------------------------------------------------------------------ scores


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("name", SCORES.names())
def test_score_contract(name: str, spatial_dims: int) -> None:
    """``(B, K, *S) -> (B, *S)``, finite, in ``bounds(K)``, differentiable; a one-hot prediction scores the low end."""
    entry = SCORES.entry(name)
    k = 3
    spatial = SPATIAL[spatial_dims]
    logits = (3 * torch.randn(2, k, *spatial)).requires_grad_()
    u = entry.obj(logits.softmax(1))
    assert tuple(u.shape) == (2, *spatial)
    assert torch.isfinite(u).all()
    u.sum().backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    if entry.metadata.bounds is not None:
        low, high = entry.metadata.bounds(k)
        assert (u >= low - 1e-6).all() and (u <= high + 1e-6).all()
        one_hot = nn.functional.one_hot(torch.zeros(2, *spatial, dtype=torch.long), k).movedim(-1, 1).float()
        torch.testing.assert_close(entry.obj(one_hot), torch.full((2, *spatial), low))
        uniform = torch.full((2, k, *spatial), 1.0 / k)
        torch.testing.assert_close(entry.obj(uniform), torch.full((2, *spatial), high))


# -------------------------------------------------------------------------------------------------------- estimators


def _models_for(name: str, spatial_dims: int) -> list[nn.Module]:
    """Tiny networks an estimator can take, read from its metadata: a multi-head network for a layered one, else
    U-Nets with dropout (MC dropout needs it), as many as it takes at least."""
    info = ESTIMATORS.entry(name).metadata
    if info.layered:
        spec = ModelSpec(name="multihead_unet", spatial_dims=spatial_dims, num_classes=3, channels=(4, 8, 8))
    else:
        spec = ModelSpec(spatial_dims=spatial_dims, num_classes=3, channels=(4, 8, 8), dropout=0.2)
    return [build_model(spec) for _ in range(info.min_models)]


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("name", ESTIMATORS.names())
def test_estimator_contract_on_odd_sizes(name: str, spatial_dims: int) -> None:
    """An :class:`Estimate` with the input's spatial shape for sizes that are not multiples of the size divisor
    (15x15; 15x13x11): probabilities ``(B, K, *S)`` summing to 1, members ``(M, B, K, *S)`` averaging to them, the
    maps its metadata lists ``(B, *S)``, all finite."""
    spatial = ODD_SPATIAL[spatial_dims]
    info = ESTIMATORS.entry(name).metadata
    estimate = build_estimator(name, _models_for(name, spatial_dims))(torch.randn(2, 1, *spatial))
    assert tuple(estimate.probabilities.shape) == (2, 3, *spatial)
    assert torch.isfinite(estimate.probabilities).all()
    torch.testing.assert_close(estimate.probabilities.sum(1), torch.ones(2, *spatial))
    if estimate.members is None:
        assert set(estimate.maps) == set(SINGLE_MAPS)
    else:
        assert estimate.members.shape[0] >= 2 and estimate.members.shape[1:] == estimate.probabilities.shape
        torch.testing.assert_close(estimate.members.mean(0), estimate.probabilities)
        assert set(estimate.maps) == set(info.maps)
    for key, value in estimate.maps.items():
        assert tuple(value.shape) == (2, *spatial), key
        assert torch.isfinite(value).all() and (value >= 0).all(), key


# ----------------------------------------------------------------------------------------------------------- formats

# The fixture writers the data tests already have, by format; a format without one is still checked for refusals.
WRITERS: dict[str, Callable[[Path], Path]] = {
    "msd": msd_style_folder,
    "glas": official_folder,
    "riga": riga_folder,
    "qubiq": make_qubiq_folder,
    "brats": make_brats_folder,
    "mmwhs": make_mmwhs_folder,
    "hecktor": make_hecktor_folder,
}


@pytest.fixture(scope="module")
def format_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("formats")
    return {name: write(root / name) for name, write in WRITERS.items()}


@pytest.mark.parametrize("name", FORMATS.names())
def test_format_contract(name: str, format_folders: dict[str, Path], tmp_path: Path) -> None:
    """The detector refuses an empty folder and every other format's folder; the format loads its own fixture,
    by name and by ``format="auto"``."""
    detect = FORMATS.entry(name).metadata.detect
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not detect(empty)
    for other, folder in format_folders.items():
        if other != name:
            assert not detect(folder), f"{name!r} claims the {other!r} fixture"
    if name not in format_folders:
        pytest.skip(f"no fixture writer for {name!r} in the data tests")
    assert detect(format_folders[name])
    for fmt in (name, "auto"):
        dataset = load_dataset(format_folders[name], split="all", format=fmt)
        assert len(dataset) > 0 and dataset.info.format == name


def test_every_format_is_in_the_detection_order() -> None:
    assert sorted(detection_order()) == FORMATS.names()


# ------------------------------------------------------------------------------------------------ segmentation losses


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name", SEGMENTATION_LOSSES.names())
def test_segmentation_loss_contract(name: str, weighted: bool, spatial_dims: int) -> None:
    """A finite scalar for logits ``(B, K, *S)`` and labels ``(B, *S)``, with a finite gradient."""
    logits = torch.randn(2, 3, *SPATIAL[spatial_dims], requires_grad=True)
    labels = torch.randint(0, 3, (2, *SPATIAL[spatial_dims]))
    loss = segmentation_loss(name, class_weights=[1.0, 2.0, 0.5] if weighted else None)(logits, labels)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


# ------------------------------------------------------------------------------------------------ the registry itself


@dataclass(frozen=True)
class _Info:
    needed: int
    optional: str = "x"


def test_registry_registers_lists_sorted_and_gets() -> None:
    things: Registry[Callable[[], int], _Info] = Registry("thing", _Info)

    @things.register("zeta", needed=1)
    def zeta() -> int:
        return 1

    things.register("alpha", needed=2, optional="y")(lambda: 2)
    assert things.names() == ["alpha", "zeta"] == list(things) and len(things) == 2 and "zeta" in things
    assert things.get("zeta") is zeta and zeta() == 1
    assert things.entry("alpha").metadata == _Info(2, "y")
    assert [e.name for e in things.entries()] == ["alpha", "zeta"]
    assert isinstance(things.entry("zeta"), Entry)


def test_registry_errors_have_one_wording() -> None:
    things: Registry[int, NoMetadata] = Registry("thing", NoMetadata, reserved=("auto",))
    things.register("alpha")(1)
    with pytest.raises(ValueError, match=r"Expected `thing` to be one of \['alpha'\], but got 'alph'. Did you mean"):
        things.get("alph")
    with pytest.raises(ValueError, match=r"Expected `config.key` to be one of \['alpha'\], but got 'b'.$"):
        things.entry("b", argument="config.key")
    with pytest.raises(TypeError, match="Expected `thing` to be one of"):
        things.get(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="new, non-empty thing name, but got 'alpha', which is already registered"):
        things.register("alpha")
    with pytest.raises(ValueError, match="which is reserved"):
        things.register("auto")
    for bad in ("", "two words", "-dash"):
        with pytest.raises(ValueError, match="new, non-empty thing name"):
            things.register(bad)
    with pytest.raises(TypeError, match="new, non-empty thing name, but got 3 of type int"):
        things.register(3)  # type: ignore[arg-type]
    assert things.names() == ["alpha"]


def test_registry_checks_metadata() -> None:
    things: Registry[int, _Info] = Registry("thing", _Info)
    with pytest.raises(TypeError, match=r"metadata of thing 'a' .*\(required: \['needed'\]\), but got no \['needed'\]"):
        things.register("a")
    with pytest.raises(TypeError, match=r"but got the unknown field\(s\) \['extra'\]"):
        things.register("a", needed=1, extra=2)
    with pytest.raises(TypeError, match="`metadata` to be a dataclass type"):
        Registry("thing", dict)  # type: ignore[arg-type]
    assert things.names() == []


def test_registered_models_scores_estimators_formats_and_losses_share_the_wording() -> None:
    from selectseg.data import get_format
    from selectseg.models import get_model
    from selectseg.uncertainty import get_score

    for lookup, kind, typo in [
        (get_model, "model", "unte"),
        (get_score, "uncertainty", "entrpy"),
        (ESTIMATORS.get, "estimator", "ensembel"),
        (get_format, "format", "msdd"),
        (SEGMENTATION_LOSSES.get, "segmentation loss", "dice_c"),
    ]:
        with pytest.raises(
            ValueError, match=rf"^Expected `{kind}` to be one of \[.*\], but got '{typo}'. Did you mean"
        ):
            lookup(typo)
