"""Contract tests generated from the score registry: every score, 2D and 3D."""

from __future__ import annotations

import math

import pytest
import torch

from selectseg.uncertainty import entropy, get_score, list_scores, max_softmax_uncertainty, register_score


@pytest.mark.parametrize("name", list_scores())
@pytest.mark.parametrize("spatial", [(5, 6), (3, 4, 5)])
def test_every_score_maps_probabilities_to_an_uncertainty_map(name, spatial):
    logits = torch.randn(2, 3, *spatial, requires_grad=True)
    u = get_score(name)(logits.softmax(1))
    assert u.shape == (2, *spatial)
    assert torch.isfinite(u).all() and (u >= -1e-6).all()
    u.sum().backward()
    assert torch.isfinite(logits.grad).all()
    one_hot = torch.nn.functional.one_hot(torch.zeros(2, *spatial, dtype=torch.long), 3).movedim(-1, 1).float()
    assert torch.allclose(get_score(name)(one_hot), torch.zeros(2, *spatial), atol=1e-6)  # sure -> 0


def test_scores_on_hand_values():
    p = torch.tensor([[0.5, 0.25, 0.25]]).reshape(1, 3, 1)
    assert float(max_softmax_uncertainty(p)) == pytest.approx(0.5)
    assert float(entropy(p)) == pytest.approx(-(0.5 * math.log(0.5) + 0.5 * math.log(0.25)))
    uniform = torch.full((1, 4, 1), 0.25)
    assert float(get_score("normalized_entropy")(uniform)) == pytest.approx(1.0)


def test_registry_rejects_duplicates_and_suggests_names():
    with pytest.raises(ValueError, match="already registered"):
        register_score("entropy")(entropy)
    with pytest.raises(ValueError, match="Did you mean 'max_softmax'"):
        get_score("max_softmx")
