from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from selectseg.metrics.calibration import nll
from selectseg.uncertainty.calibrators import apply_temperature, fit_temperature


def random_labels(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """Labels drawn from the (N, K) rows, so the probabilities are calibrated in expectation."""
    return (rng.random((len(probs), 1)) > probs.cumsum(axis=1)).sum(axis=1).clip(max=probs.shape[1] - 1)


# ------------------------------------------------------------------------------------------------------------
# Temperature scaling.


def test_fit_temperature_recovers_a_known_overconfidence(rng):
    true_logits = rng.normal(size=(20000, 4))
    labels = random_labels(rng, random_probs_from_logits(true_logits))
    logits = 3.0 * true_logits
    temperature = fit_temperature(logits, labels)
    assert temperature == pytest.approx(3.0, abs=0.1)
    before = nll(random_probs_from_logits(logits), labels)
    after = nll(random_probs_from_logits(apply_temperature(logits, temperature)), labels)
    assert after <= before
    assert fit_temperature(true_logits, labels) == pytest.approx(1.0, abs=0.05)


def random_probs_from_logits(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_fit_temperature_subsample_is_seeded_and_layout_free(rng):
    true_logits = rng.normal(size=(2, 3, 40, 40))
    probs = random_probs_from_logits(true_logits)
    labels = random_labels(rng, np.moveaxis(probs, 1, -1).reshape(-1, 3)).reshape(2, 40, 40)
    logits = torch.from_numpy(2.0 * true_logits)
    full = fit_temperature(logits, torch.from_numpy(labels))
    rows = np.moveaxis(2.0 * true_logits, 1, -1).reshape(-1, 3)
    assert full == pytest.approx(fit_temperature(rows, labels.reshape(-1)), rel=1e-6)
    a = fit_temperature(logits, torch.from_numpy(labels), max_voxels=1000, seed=1)
    assert a == fit_temperature(logits, torch.from_numpy(labels), max_voxels=1000, seed=1)
    assert a != fit_temperature(logits, torch.from_numpy(labels), max_voxels=1000, seed=2)
    assert a == pytest.approx(2.0, abs=0.5)


def test_fit_temperature_warns_at_a_bound_on_separable_data():
    logits = np.array([[2.0, -2.0], [-2.0, 2.0]])
    with pytest.warns(UserWarning, match=r"smallest at the bound T = 0\.01"):
        assert fit_temperature(logits, np.array([0, 1])) == 0.01
    with pytest.warns(UserWarning, match="constant logits"):
        fit_temperature(np.zeros((3, 2)), np.array([0, 1, 1]))


def test_apply_temperature_keeps_the_input_type():
    t = torch.tensor([[3.0, -3.0]], dtype=torch.float64)
    assert torch.equal(apply_temperature(t, 3.0), torch.tensor([[1.0, -1.0]], dtype=torch.float64))
    np.testing.assert_array_equal(apply_temperature(np.array([2.0, 4.0]), 2), np.array([1.0, 2.0]))


# ------------------------------------------------------------------------------------------------------------
# Errors: one per documented Raises.

LOGITS = np.array([[1.0, -1.0], [0.5, 0.2], [0.1, 0.3]])
LOGIT_LABELS = np.array([0, 1, 1])


@pytest.mark.parametrize(
    ("logits", "labels", "kwargs", "error", "match"),
    [
        (LOGITS.astype(np.int64), LOGIT_LABELS, {}, TypeError, "`logits` to be floating point"),
        (LOGITS, LOGIT_LABELS.astype(np.float32), {}, TypeError, "`labels` to hold integer"),
        (LOGITS, LOGIT_LABELS[:2], {}, ValueError, "`labels` to have shape"),
        (np.zeros((0, 2)), np.zeros(0, dtype=np.int64), {}, ValueError, "at least one sample"),
        (LOGITS, np.array([0, 1, 5]), {}, ValueError, r"labels in \[0, 2\)"),
        (np.array([[np.nan, 0.0]]), np.array([0]), {}, ValueError, "`logits` to be finite"),
        (LOGITS, LOGIT_LABELS, {"max_voxels": 0}, ValueError, "`max_voxels` to be an int >= 1"),
        (LOGITS, LOGIT_LABELS, {"max_voxels": 1.5}, TypeError, "`max_voxels`"),
        (LOGITS, LOGIT_LABELS, {"bounds": (2.0, 1.0)}, ValueError, "T_min < T_max"),
        (LOGITS, LOGIT_LABELS, {"bounds": (0.1, 1.0, 10.0)}, TypeError, r"`bounds` to be a pair \(T_min, T_max\)"),
        (LOGITS, LOGIT_LABELS, {"bounds": ("0.1", 1.0)}, TypeError, "`bounds` to be a positive float"),
        (LOGITS, LOGIT_LABELS, {"bounds": (0.0, 1.0)}, ValueError, "`bounds` to be a positive finite float"),
    ],
)
def test_fit_temperature_rejects_bad_input(logits, labels, kwargs, error, match):
    with pytest.raises(error, match=match):
        fit_temperature(logits, labels, **kwargs)


@pytest.mark.parametrize(
    ("logits", "temperature", "error", "match"),
    [
        ([1.0, 2.0], 1.0, TypeError, "`logits` to be a torch.Tensor or numpy array"),
        (np.ones(2), "2", TypeError, "`temperature` to be a positive float"),
        (np.ones(2), 0.0, ValueError, "`temperature` to be a positive finite float"),
        (np.ones(2), math.inf, ValueError, "`temperature` to be a positive finite float"),
    ],
)
def test_apply_temperature_rejects_bad_input(logits, temperature, error, match):
    with pytest.raises(error, match=match):
        apply_temperature(logits, temperature)
