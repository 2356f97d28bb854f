"""How a trained run's uncertainty is made at inference: one value instead of a bag of keyword arguments."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._validation import look_up_option
from .estimators import MEMBER_MAPS, estimator_options
from .scores import list_scores

__all__ = ["InferenceOptions"]


@dataclass(frozen=True)
class InferenceOptions:
    """The uncertainty estimator (with its options) and the voxel uncertainty map an inference reports; checked once,
    at construction.

    Attributes:
        score: the voxel uncertainty map: one an estimator produces (``max_softmax``, ``entropy``; with members also
            ``mutual_information``, ``variance``) or any registered score of the mean probabilities.
        estimator: a registered estimator (:func:`~selectseg.uncertainty.list_estimators`).
        estimator_options: its keyword options, e.g. ``{"n_samples": 20}`` for ``mc_dropout``.

    Raises:
        ValueError: on an unknown estimator or score name (with the closest one), or an option the estimator
            does not take (naming the ones it takes).

    Example:
        >>> InferenceOptions(estimator="mc_dropout", estimator_options={"n_samples": 5}).estimator_options
        {'n_samples': 5}
    """

    score: str = "max_softmax"
    estimator: str = "softmax"
    estimator_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.estimator_options, Mapping):
            raise TypeError(
                f"Expected `estimator_options` to be a mapping of option names to values, but got "
                f"{type(self.estimator_options).__name__}."
            )
        takes = estimator_options(self.estimator)  # unknown estimator: ValueError with a near match
        unknown = sorted(set(self.estimator_options) - set(takes))
        if unknown:
            raise ValueError(
                f"Estimator {self.estimator!r} takes no option {unknown[0]!r}; its options are {list(takes)}."
            )
        look_up_option("score", self.score, sorted({*MEMBER_MAPS, *list_scores()}))
        object.__setattr__(self, "estimator_options", dict(self.estimator_options))

    def describe(self) -> str:
        """``"estimator {options}, score"``, for messages."""
        options = f" {dict(self.estimator_options)}" if self.estimator_options else ""
        return f"estimator {self.estimator!r}{options}, score {self.score!r}"
