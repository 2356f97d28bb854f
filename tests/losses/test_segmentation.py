from __future__ import annotations

import pytest
import torch

from selectseg.losses.segmentation import segmentation_loss

from ..reference.segmentation import weighted_cross_entropy, weighted_soft_dice_loss


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(2, 3, 5, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (2, 5, 4), generator=g)


def test_class_weighted_losses_match_references(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    logits, labels = batch
    w = [1.0, 2.0, 0.5]
    ce = float(segmentation_loss("ce", class_weights=w)(logits, labels))
    assert ce == pytest.approx(weighted_cross_entropy(logits, labels, w), rel=1e-10)
    dice = float(segmentation_loss("dice", class_weights=w)(logits, labels))
    assert dice == pytest.approx(weighted_soft_dice_loss(logits, labels, w), rel=1e-6)
    both = float(segmentation_loss("dice_ce", class_weights=w)(logits, labels))
    assert both == pytest.approx(ce + dice, rel=1e-6)
    # Outside check: PyTorch's own weighted cross-entropy module.
    module = torch.nn.CrossEntropyLoss(weight=torch.tensor(w, dtype=torch.float64))
    assert ce == pytest.approx(float(module(logits, labels)), rel=1e-12)


def test_unit_weights_change_nothing(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    logits, labels = batch
    for name in ("ce", "dice", "dice_ce"):
        plain = segmentation_loss(name)(logits, labels)
        ones = segmentation_loss(name, class_weights=[1.0, 1.0, 1.0])(logits, labels)
        assert torch.allclose(plain, ones), name
    assert float(segmentation_loss("dice")(logits, labels)) == pytest.approx(
        weighted_soft_dice_loss(logits, labels, [1.0, 1.0, 1.0]), rel=1e-6
    )


def test_bad_class_weights() -> None:
    for bad in ([], [1.0, 0.0], [1.0, float("nan")], [-1.0, 1.0]):
        with pytest.raises(ValueError, match="class_weights"):
            segmentation_loss("ce", class_weights=bad)


@pytest.mark.parametrize("name", ["ce", "dice", "dice_ce"])
def test_class_weights_of_the_wrong_length_are_refused_at_construction_or_first_call(name: str) -> None:
    with pytest.raises(ValueError, match=r"one weight per class \(K = 3\), but got 2"):
        segmentation_loss(name, class_weights=[1.0, 2.0], num_classes=3)
    loss = segmentation_loss(name, class_weights=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"logits with K = 2 classes \(one per class weight\), but got shape \(1, 3"):
        loss(torch.randn(1, 3, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long))


def test_class_weights_of_a_wrong_type_are_a_type_error() -> None:
    with pytest.raises(TypeError, match="`class_weights` to be a list"):
        segmentation_loss("ce", class_weights=2.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`class_weights` to hold numbers"):
        segmentation_loss("ce", class_weights=["heavy", 1.0])  # type: ignore[list-item]


@pytest.mark.parametrize("name", ["ce", "dice", "dice_ce"])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.int16, torch.int32])
def test_integer_labels_of_any_width_give_the_int64_loss(name: str, dtype: torch.dtype) -> None:
    logits, labels = torch.randn(2, 3, 4, 5), torch.randint(0, 3, (2, 4, 5))
    for weights in (None, [1.0, 2.0, 0.5]):
        loss = segmentation_loss(name, class_weights=weights)
        assert torch.equal(loss(logits, labels.to(dtype)), loss(logits, labels))
