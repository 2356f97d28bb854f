from __future__ import annotations

import pytest
import torch

from selectseg.losses import (
    LossParts,
    MultiHeadSelectiveLoss,
    SelectiveSegmentationLoss,
    UncertaintyRankingLoss,
    disagreement_guidance_loss,
    multi_head_selective_loss,
    selective_segmentation_loss,
    uncertainty_ranking_loss,
)
from selectseg.losses import ranking as ranking_module
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
    with pytest.raises(error, match=match):
        selective_segmentation_loss(logits, labels, **_options())


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


def _options(**changes):
    options = {
        "segmentation_loss": torch.nn.CrossEntropyLoss(),
        "ranking_loss": changes.pop("ranking_loss") if "ranking_loss" in changes else UncertaintyRankingLoss(),
        "ranking_weight": 3.0,
        "uncertainty": "max_softmax",
    }
    return {**options, **changes}


def _module(**changes):
    options = _options(**changes)
    return SelectiveSegmentationLoss(
        options.pop("segmentation_loss"), options.pop("ranking_loss"), options.pop("ranking_weight"), **options
    )


def _assert_parts_equal(a: LossParts, b: LossParts) -> None:
    assert a._fields == b._fields == ("total", "segmentation", "ranking", "guidance")
    for x, y in zip(a, b):
        assert torch.equal(x.detach(), y.detach())


@pytest.mark.parametrize("spatial", [(6, 7), (3, 4, 5)])
@pytest.mark.parametrize("ranking", [UncertaintyRankingLoss(), UncertaintyRankingLoss(reduction="sum"), None])
def test_functional_selective_loss_equals_the_module(spatial, ranking):
    logits, labels = _batch(spatial=spatial)
    functional = selective_segmentation_loss(logits, labels, **_options(ranking_loss=ranking))
    module = _module(ranking_loss=ranking)
    _assert_parts_equal(functional, module.parts(logits, labels))
    assert torch.equal(module(logits, labels).detach(), functional.total.detach())
    _assert_parts_equal(module.last_parts, functional)


@pytest.mark.parametrize("weight", [0.0, 0.5, 2000.0])
def test_loss_parts_total_is_segmentation_plus_weighted_ranking_plus_guidance(weight):
    logits, labels = _batch()
    logits = logits.detach()
    parts = selective_segmentation_loss(logits, labels, **_options(ranking_weight=weight))
    assert float(parts.guidance) == 0.0 and float(parts.ranking) > 0
    assert float(parts.total) == pytest.approx(float(parts.segmentation + weight * parts.ranking), rel=1e-6)
    heads = torch.randn(3, 2, 3, 6, 7)
    multi = multi_head_selective_loss(
        heads, labels, torch.rand(2, 6, 7), **_options(ranking_weight=weight), guidance_weight=0.7
    )
    assert float(multi.guidance) > 0
    expected = multi.segmentation + weight * multi.ranking + multi.guidance
    assert float(multi.total) == pytest.approx(float(expected), rel=1e-6)
    reweighted = parts.reweighted(weight + 1.0)
    assert float(reweighted.total) == pytest.approx(float(parts.total + parts.ranking), rel=1e-6)


def test_ranking_weight_is_settable_between_calls():
    logits, labels = _batch()
    loss = _module(ranking_weight=0.0)
    assert float(loss(logits, labels).detach()) == pytest.approx(float(loss.last_parts.segmentation), rel=1e-6)
    loss.ranking_weight = 5
    assert loss.ranking_weight == 5.0 and "ranking_weight=5.0" in repr(loss)
    parts = loss.parts(logits.detach(), labels)
    assert float(parts.total) == pytest.approx(float(parts.segmentation + 5.0 * parts.ranking), rel=1e-6)
    with pytest.raises(ValueError, match="`ranking_weight` to be a non-negative float, but got -1"):
        loss.ranking_weight = -1.0


def test_without_a_ranking_loss_the_ranking_part_is_zero():
    logits, labels = _batch()
    parts = selective_segmentation_loss(logits, labels, **_options(ranking_loss=None))
    assert float(parts.ranking) == 0.0 and float(parts.guidance) == 0.0
    assert torch.equal(parts.total, parts.segmentation + 3.0 * parts.ranking + parts.guidance)


def test_validate_args_false_skips_the_per_step_checks():
    logits = torch.full((2, 3, 4, 4), float("nan"))
    labels = torch.zeros(2, 4, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="`logits` to be finite"):
        selective_segmentation_loss(logits, labels, **_options())
    with pytest.raises(ValueError, match="`logits` to be finite"):
        _module()(logits, labels)
    parts = selective_segmentation_loss(logits, labels, **_options(), validate_args=False)
    assert not torch.isfinite(parts.total)  # undefined, but no error
    assert not torch.isfinite(_module(validate_args=False)(logits, labels))
    out_of_range = torch.full((2, 4, 4), 2)
    with pytest.raises(ValueError, match=r"labels in \[0, 2\)"):
        selective_segmentation_loss(torch.zeros(2, 2, 4, 4), out_of_range, **_options())
    with pytest.raises(ValueError, match="uncertainty function to return shape"):
        selective_segmentation_loss(*_batch(), **_options(uncertainty=lambda z: z))
    heads = torch.full((2, 2, 3, 4, 4), float("nan"))
    multi = MultiHeadSelectiveLoss(_module(validate_args=False), guidance_weight=1.0)
    assert not torch.isfinite(multi(heads, labels, torch.rand(2, 4, 4)))
    with pytest.raises(ValueError, match="`logits` to be finite"):
        MultiHeadSelectiveLoss(_module(), guidance_weight=1.0)(heads, labels, torch.rand(2, 4, 4))


def test_options_are_checked_once_at_construction(monkeypatch):
    with pytest.raises(ValueError, match="Did you mean 'exact'"):
        _module(ranking_loss=UncertaintyRankingLoss(mode="exakt"))
    calls = []
    check = ranking_module._check_options
    monkeypatch.setattr(ranking_module, "_check_options", lambda *a: calls.append(a) or check(*a))
    loss = _module(ranking_loss=UncertaintyRankingLoss(margin=0.2))
    for _ in range(3):
        loss(*_batch())
    assert len(calls) == 1


def test_multi_head_loss_sums_the_heads_and_adds_weighted_guidance():
    heads = torch.randn(3, 2, 3, 6, 7, requires_grad=True)
    labels = torch.randint(0, 3, (2, 6, 7))
    mean = torch.rand(2, 6, 7)
    loss = MultiHeadSelectiveLoss(_module(ranking_weight=2.0), guidance_weight=0.5)
    loss.ranking_weight = 4.0
    assert loss.head_loss.ranking_weight == 4.0 and "guidance_weight=0.5" in repr(loss)
    parts = loss.parts(heads, labels, mean).detach()
    per_head = [selective_segmentation_loss(h, labels, **_options(ranking_weight=4.0)) for h in heads.detach()]
    assert float(parts.segmentation) == pytest.approx(sum(float(p.segmentation) for p in per_head), rel=1e-6)
    assert float(parts.ranking) == pytest.approx(sum(float(p.ranking) for p in per_head), rel=1e-6)
    guidance = disagreement_guidance_loss(heads.detach(), mean)
    assert float(parts.guidance) == pytest.approx(0.5 * float(guidance), rel=1e-6)
    functional = multi_head_selective_loss(heads, labels, mean, **_options(ranking_weight=4.0), guidance_weight=0.5)
    _assert_parts_equal(functional, parts)
    total = loss(heads, labels, mean)
    _assert_parts_equal(loss.last_parts, parts)
    total.backward()
    assert heads.grad is not None and torch.isfinite(heads.grad).all()
    no_guidance = MultiHeadSelectiveLoss(_module())(heads, labels)  # layer ensembles: no annotator mean needed
    assert torch.isfinite(no_guidance)


def test_multi_head_loss_rejects_bad_input():
    labels = torch.zeros(2, 4, 4, dtype=torch.long)
    with pytest.raises(TypeError, match="`head_loss` to be a SelectiveSegmentationLoss, but got str"):
        MultiHeadSelectiveLoss("ce")
    with pytest.raises(ValueError, match="`guidance_weight` to be a non-negative float, but got -1"):
        MultiHeadSelectiveLoss(_module(), guidance_weight=-1.0)
    with pytest.raises(ValueError, match="`guidance_weight` to be a non-negative float"):
        multi_head_selective_loss(torch.zeros(2, 2, 3, 4, 4), labels, **_options(), guidance_weight=-1.0)
    with pytest.raises(ValueError, match="`annotator_mean`"):
        MultiHeadSelectiveLoss(_module(), guidance_weight=1.0)(torch.zeros(2, 2, 3, 4, 4), labels)
    with pytest.raises(ValueError, match="M >= 2"):
        MultiHeadSelectiveLoss(_module(), guidance_weight=1.0)(torch.zeros(1, 2, 3, 4, 4), labels, labels.float())
    with pytest.raises(ValueError, match=r"`head_logits` of shape \(M, B, K, \*S\), but got \(2, 3, 4\)"):
        MultiHeadSelectiveLoss(_module())(torch.zeros(2, 3, 4), labels)
    with pytest.raises(TypeError, match="`ranking_loss` to be an UncertaintyRankingLoss or None"):
        multi_head_selective_loss(torch.zeros(2, 2, 3, 4, 4), labels, **_options(ranking_loss="exact"))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int32])
def test_selective_loss_takes_labels_of_any_integer_dtype(dtype):
    logits, labels = _batch()
    loss = SelectiveSegmentationLoss(torch.nn.CrossEntropyLoss(), UncertaintyRankingLoss())
    assert torch.equal(loss(logits, labels.to(dtype)), loss(logits, labels))  # was a dtype error deep in torch


@pytest.mark.parametrize("dims", [2, 3])
def test_monai_losses_plug_in_and_both_label_layouts_are_accepted(dims: int) -> None:
    """MONAI's losses get the target they expect ((B, 1, *S) with to_onehot_y, one-hot without); labels may come
    as (B, *S) or MONAI's (B, 1, *S)."""
    from monai.losses import DiceCELoss, DiceLoss

    torch.manual_seed(0)
    shape = (2, 3, *([6] * dims))
    logits = torch.randn(*shape)
    labels = torch.randint(0, 3, (2, *([6] * dims)))
    one_hot = torch.nn.functional.one_hot(labels, 3).movedim(-1, 1).float()
    cases = [
        (DiceCELoss(to_onehot_y=True, softmax=True), labels[:, None]),
        (DiceLoss(to_onehot_y=True, softmax=True), labels[:, None]),
        (DiceLoss(softmax=True), one_hot),
        (torch.nn.CrossEntropyLoss(), labels),
    ]
    for seg, target in cases:
        loss = SelectiveSegmentationLoss(seg, UncertaintyRankingLoss(mode="exact"), ranking_weight=0.0)
        expected = float(seg(logits, target))
        assert float(loss(logits, labels)) == pytest.approx(expected, rel=1e-6), type(seg).__name__
        assert float(loss(logits, labels[:, None])) == pytest.approx(expected, rel=1e-6), type(seg).__name__
