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
