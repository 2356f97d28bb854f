"""InferenceOptions: the estimator, its options and the uncertainty map, checked once at construction."""

from __future__ import annotations

import pytest

from selectseg.uncertainty import MEMBER_MAPS, InferenceOptions, list_estimators, list_scores


def test_defaults_and_every_valid_name() -> None:
    assert InferenceOptions() == InferenceOptions("max_softmax", "softmax", {})
    for estimator in list_estimators():
        for uncertainty in sorted({*MEMBER_MAPS, *list_scores()}):
            assert InferenceOptions(uncertainty, estimator).estimator == estimator


def test_options_are_copied_and_compared_by_value() -> None:
    given = {"n_samples": 3}
    options = InferenceOptions(estimator="mc_dropout", estimator_options=given)
    given["n_samples"] = 99
    assert options.estimator_options == {"n_samples": 3}
    assert options == InferenceOptions(estimator="mc_dropout", estimator_options={"n_samples": 3})
    assert "mc_dropout" in options.describe() and "n_samples" in options.describe()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"estimator": "mc_dropot"}, ValueError, r"`estimator`.*Did you mean 'mc_dropout'"),
        ({"score": "varience"}, ValueError, r"`score`.*Did you mean 'variance'"),
        ({"estimator_options": {"n_samples": 3}}, ValueError, r"'softmax' takes no option 'n_samples'"),
        ({"estimator_options": [("n_samples", 3)]}, TypeError, r"`estimator_options` to be a mapping"),
    ],
)
def test_bad_values_are_refused_at_construction(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        InferenceOptions(**kwargs)
