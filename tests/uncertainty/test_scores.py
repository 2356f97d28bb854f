"""Scores on hand values and registry errors; the contract every registered score keeps is in
tests/test_registries.py."""

from __future__ import annotations

import math

import pytest
import torch

from selectseg.uncertainty import entropy, get_score, max_softmax_uncertainty, register_score


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
