from __future__ import annotations

import numpy as np
import pytest
import torch

from selectseg.losses.guidance import annotator_variance_target, disagreement_guidance_loss


def test_guidance_matches_numpy_definition(rng: np.random.Generator) -> None:
    logits = rng.normal(size=(4, 2, 3, 5, 6))
    annotators = rng.integers(0, 2, size=(2, 3, 5, 6))  # B=2, A=3
    m = annotators.mean(axis=1)
    probs = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
    fg = 1 - probs[:, :, 0]
    expected = np.mean((fg.var(axis=0) - m * (1 - m)) ** 2)
    value = disagreement_guidance_loss(torch.from_numpy(logits), torch.from_numpy(m))
    assert float(value) == pytest.approx(expected, rel=1e-6)


def test_guidance_is_zero_when_heads_disagree_like_annotators() -> None:
    # Two heads with foreground probability 0 and 1 at a voxel: variance 1/4 = m(1-m) for m = 1/2.
    big = 50.0
    logits = torch.tensor([[[[big]], [[-big]]], [[[-big]], [[big]]]]).reshape(2, 1, 2, 1)
    assert float(disagreement_guidance_loss(logits, torch.tensor([[0.5]]))) == pytest.approx(0.0, abs=1e-12)
    assert float(annotator_variance_target(torch.tensor(0.5))) == 0.25


def test_guidance_gradient_flows_and_errors() -> None:
    logits = torch.randn(3, 1, 2, 4, requires_grad=True)
    disagreement_guidance_loss(logits, torch.rand(1, 4)).backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    with pytest.raises(ValueError, match="M >= 2"):
        disagreement_guidance_loss(torch.zeros(1, 1, 2, 4), torch.zeros(1, 4))
    with pytest.raises(ValueError, match="annotator_mean"):
        disagreement_guidance_loss(torch.zeros(2, 1, 2, 4), torch.zeros(1, 5))
