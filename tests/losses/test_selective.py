from __future__ import annotations

import pytest
import torch

from selectseg.losses import SelectiveSegmentationLoss, UncertaintyRankingLoss, uncertainty_ranking_loss
from selectseg.uncertainty import entropy


def _batch(k: int = 3, spatial=(6, 7)):
    logits = torch.randn(2, k, *spatial, requires_grad=True)
    labels = torch.randint(0, k, (2, *spatial))
    return logits, labels


@pytest.mark.parametrize("spatial", [(6, 7), (3, 4, 5)])
def test_selective_segmentation_loss_is_segmentation_plus_weighted_ranking(spatial):
    logits, labels = _batch(spatial=spatial)
    ce = torch.nn.CrossEntropyLoss()
    loss = SelectiveSegmentationLoss(ce, UncertaintyRankingLoss(), ranking_weight=3.0)
    total = loss(logits, labels)
    with torch.no_grad():
        probs = logits.softmax(1)
        ranking = uncertainty_ranking_loss(1 - probs.amax(1), probs.argmax(1) == labels)
        segmentation = ce(logits, labels)
    assert float(total.detach()) == pytest.approx(float(segmentation + 3.0 * ranking), rel=1e-6)
    parts = loss.last_parts
    assert float(parts.segmentation) == pytest.approx(float(segmentation), rel=1e-6)
    assert float(parts.ranking) == pytest.approx(float(ranking), rel=1e-6)
    assert not parts.total.requires_grad
    total.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_selective_segmentation_loss_defaults_reproduce_the_released_code():
    loss = SelectiveSegmentationLoss(torch.nn.CrossEntropyLoss(), UncertaintyRankingLoss())
    assert loss.ranking_weight == 2000.0
    assert loss.ranking_loss.margin == 0.1 and loss.ranking_loss.reduction == "mean"


def test_selective_segmentation_loss_accepts_a_score_name_or_a_callable():
    logits, labels = _batch()
    ce = torch.nn.CrossEntropyLoss()
    by_name = SelectiveSegmentationLoss(ce, UncertaintyRankingLoss(), uncertainty="entropy")
    by_callable = SelectiveSegmentationLoss(ce, UncertaintyRankingLoss(), uncertainty=lambda z: entropy(z.softmax(1)))
    assert float(by_name(logits, labels).detach()) == pytest.approx(
        float(by_callable(logits, labels).detach()), rel=1e-6
    )


def test_ranking_gradient_pushes_wrong_pixels_to_be_less_sure():
    # One wrong, confident pixel and one correct, unsure pixel: the ranking term alone must raise the wrong
    # pixel's uncertainty and lower the correct one's after a gradient step.
    logits = torch.tensor([[[[4.0, 0.2]], [[0.0, 0.0]]]], requires_grad=True)  # (B=1, K=2, 1, 2)
    labels = torch.tensor([[[1, 0]]])  # pixel 0 wrong, pixel 1 correct
    loss = SelectiveSegmentationLoss(lambda z, y: z.sum() * 0, UncertaintyRankingLoss(reduction="sum"), 1.0)
    loss(logits, labels).backward()
    with torch.no_grad():
        stepped = logits - 0.1 * logits.grad
    before = 1 - logits.softmax(1).amax(1)
    after = 1 - stepped.softmax(1).amax(1)
    assert after[0, 0, 0] > before[0, 0, 0] and after[0, 0, 1] < before[0, 0, 1]


@pytest.mark.parametrize(
    ("logits", "labels", "error", "match"),
    [
        (torch.zeros(2, 3, 4, 4, dtype=torch.long), torch.zeros(2, 4, 4, dtype=torch.long), TypeError, "`logits`"),
        (torch.zeros(2, 3, 4, 4), torch.zeros(2, 4, 4), TypeError, "`labels` to hold integer labels"),
        (torch.zeros(2, 3, 4, 4), torch.zeros(2, 4, 5, dtype=torch.long), ValueError, r"\(B, \*S\) = \(2, 4, 4\)"),
        (torch.zeros(2, 3, 4, 4), torch.full((2, 4, 4), 3), ValueError, r"labels in \[0, 3\)"),
        (torch.zeros(2, 1, 4, 4), torch.zeros(2, 4, 4, dtype=torch.long), ValueError, "K >= 2"),
        (
            torch.full((2, 3, 4, 4), float("nan")),
            torch.zeros(2, 4, 4, dtype=torch.long),
            ValueError,
            "`logits` to be finite",
        ),
    ],
)
def test_selective_segmentation_loss_rejects_bad_input(logits, labels, error, match):
    loss = SelectiveSegmentationLoss(torch.nn.CrossEntropyLoss(), UncertaintyRankingLoss())
    with pytest.raises(error, match=match):
        loss(logits, labels)


def test_selective_segmentation_loss_rejects_bad_construction():
    ce = torch.nn.CrossEntropyLoss()
    with pytest.raises(TypeError, match="`segmentation_loss` to be callable"):
        SelectiveSegmentationLoss("ce", UncertaintyRankingLoss())
    with pytest.raises(TypeError, match="`ranking_loss` to be an UncertaintyRankingLoss"):
        SelectiveSegmentationLoss(ce, uncertainty_ranking_loss)
    with pytest.raises(ValueError, match="`ranking_weight` to be a non-negative float"):
        SelectiveSegmentationLoss(ce, UncertaintyRankingLoss(), -1.0)
    with pytest.raises(ValueError, match="Did you mean 'entropy'"):
        SelectiveSegmentationLoss(ce, UncertaintyRankingLoss(), uncertainty="entropie")
    with pytest.raises(TypeError, match="`uncertainty` to be a score name or a callable"):
        SelectiveSegmentationLoss(ce, UncertaintyRankingLoss(), uncertainty=3)
    bad = SelectiveSegmentationLoss(ce, UncertaintyRankingLoss(), uncertainty=lambda z: z)
    with pytest.raises(ValueError, match="uncertainty function to return shape"):
        bad(*_batch())
