"""A finished training run, loaded for inference: the network, its config and the data facts it was trained on."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import Case
from ..models import SegmentationNet
from ..models.inference import case_logits, normalize_image
from ..runs import folder
from ..runs.checkpoint import load_model
from ..runs.config import TrainConfig
from ..runs.data import load_cases
from ..runs.device import resolve_device
from ..uncertainty import ESTIMATORS, MEMBER_MAPS, InferenceOptions, build_estimator, get_score

__all__ = ["DEFAULT_INFERENCE", "CaseOutput", "LoadedRun", "load_run"]

DEFAULT_INFERENCE = InferenceOptions()
"""The softmax of one network, uncertainty ``1 - max softmax`` (Ding et al.)."""


@dataclass(frozen=True)
class CaseOutput:
    """A model's output on one case.

    Attributes:
        case: the input case.
        probabilities: ``(K, *S)`` float32 mean softmax.
        segmentation: ``(*S)`` int64 argmax.
        uncertainty: ``(*S)`` float32, higher = less sure.
        members: ``(M, K, *S)`` float32, the members' probabilities (MC samples, ensemble members, TTA views, heads),
            None for a single deterministic model.
        layered: the members are the heads of a multi-head network, ordered by depth (layer ensembles, EDUE).
    """

    case: Case
    probabilities: np.ndarray
    segmentation: np.ndarray
    uncertainty: np.ndarray
    members: np.ndarray | None = None
    layered: bool = False


@dataclass(frozen=True)
class LoadedRun:
    """A trained run ready for inference (see :func:`load_run`)."""

    run_dir: Path
    model: SegmentationNet
    config: TrainConfig
    info: dict[str, Any]
    device: torch.device
    members: tuple[SegmentationNet, ...] = ()

    @property
    def is_ensemble(self) -> bool:
        """True for a deep-ensemble folder (``train --ensemble N``): ``members`` holds every member's network."""
        return len(self.members) > 1

    @property
    def num_classes(self) -> int:
        """K, the classes the network predicts."""
        return self.model.spec.num_classes

    @property
    def patch_size(self) -> tuple[int, ...]:
        """Training patch size, the 3D sliding-window size."""
        return tuple(self.info["patch_size"])

    def validation_cases(self) -> list[Case]:
        """The run's held-out validation cases (listed in ``run.json``; never trained on, and not the test set), read
        from the run's training data.

        Raises:
            ValueError: if the run kept no validation case.
        """
        held_out = set(self.info.get("val_cases", []))
        cases = [c for c in load_cases(self.config.data, split="train").cases if c.case_id in held_out]
        if not cases:
            raise ValueError(f"{str(self.run_dir)!r} has no validation cases (data.val_fraction was 0).")
        return cases

    def check_case(self, case: Case) -> None:
        """Raise ValueError if a case cannot go through this network (channels or dimensionality)."""
        spec = self.model.spec
        if case.image.ndim - 1 != spec.spatial_dims or case.image.shape[0] != spec.in_channels:
            raise ValueError(
                f"Case {case.case_id!r} has an image of shape {tuple(case.image.shape)} but the network of "
                f"{str(self.run_dir)!r} expects (C={spec.in_channels}, *S) with {spec.spatial_dims} spatial axes."
            )

    def outputs(
        self, cases: list[Case] | tuple[Case, ...], inference: InferenceOptions = DEFAULT_INFERENCE
    ) -> Iterator[CaseOutput]:
        """Run the network on each case in turn (one case in memory at a time).

        Args:
            cases: cases to predict.
            inference: the estimator, its options and the voxel uncertainty map (:class:`InferenceOptions`; the
                ``ensemble`` estimator needs an ensemble run, ``layer_ensemble`` and ``edue`` a multi-head run; the
                other estimators use member 0 of an ensemble).

        Raises:
            ValueError: on an estimator this run's model cannot serve (e.g. MC dropout without dropout, the
                ``ensemble`` estimator on one network), a map the estimator does not produce, or a case the network
                cannot take.
        """
        estimator, uncertainty = inference.estimator, inference.score
        predictor = functools.partial(
            case_logits,
            size_divisor=self.model.spec.size_divisor,
            roi_size=self.patch_size,
            sw_batch_size=self.config.inference.sw_batch_size,
            overlap=self.config.inference.overlap,
        )
        models = list(self.members) if estimator == "ensemble" else [self.model]
        if estimator == "ensemble" and not self.is_ensemble:
            raise ValueError(
                f"The 'ensemble' estimator needs an ensemble run (selectseg train --ensemble N); "
                f"{str(self.run_dir)!r} holds one network."
            )
        estimate_fn = build_estimator(estimator, models, predictor=predictor, **inference.estimator_options)
        for case in cases:
            self.check_case(case)
        layered = ESTIMATORS.entry(estimator).metadata.layered
        for case in cases:
            image = normalize_image(case.image, self.config.data.normalize).to(self.device)
            estimate = estimate_fn(image.unsqueeze(0))
            probs = estimate.probabilities[0]
            if uncertainty in estimate.maps:
                unc = estimate.maps[uncertainty][0]
            elif uncertainty in MEMBER_MAPS:
                raise ValueError(
                    f"The {estimator!r} estimator has no {uncertainty!r} map (it needs several members); "
                    f"use one of {sorted(estimate.maps)} or another estimator."
                )
            else:
                unc = get_score(uncertainty)(estimate.probabilities)[0]
            yield CaseOutput(
                case=case,
                probabilities=probs.cpu().numpy(),
                segmentation=probs.max(0).indices.cpu().numpy().astype(np.int64),
                uncertainty=unc.float().cpu().numpy(),
                members=None if estimate.members is None else estimate.members[:, 0].float().cpu().numpy(),
                layered=layered,
            )


def load_run(run_dir: str | Path, *, device: str = "auto", snapshot: int | None = None) -> LoadedRun:
    """Load a training run folder written by :func:`selectseg.training.train`, or an ensemble folder written by
    :func:`selectseg.training.multirun.train_ensemble` (every member loaded; ``model`` is member 0).

    Args:
        run_dir: the run (or ensemble) folder.
        device: ``"auto"``, ``"cpu"`` or ``"cuda[:N]"``.
        snapshot: load the weights saved after this epoch (``snapshot_epochs``: ``RUN/snapshots/epoch_NNNN.pt``)
            instead of the final ``model.pt``.

    Raises:
        ValueError: if the folder is not a finished run (no ``model.pt``, ``config.yaml`` or ``run.json``), the
            snapshot was not saved, or its checkpoint does not fit its architecture.
    """
    run_dir = Path(run_dir)
    index = folder.read_index(run_dir)
    if index is not None and index[0] == "ensemble":
        loaded = [load_run(run_dir / name, device=device, snapshot=snapshot) for name in index[1]["members"]]
        first = loaded[0]
        return dataclasses.replace(first, run_dir=run_dir, members=tuple(r.model for r in loaded))
    for name in (folder.MODEL, folder.CONFIG, folder.RUN_INFO):
        if not (run_dir / name).is_file():
            hint = " (training may not have finished: resume it)" if name == folder.MODEL else ""
            raise ValueError(f"{str(run_dir)!r} is not a finished selectseg run: {name} is missing{hint}.")
    config = folder.read_config(run_dir)
    info = folder.read_run_info(run_dir)
    resolved = resolve_device(device)
    weights = run_dir / folder.MODEL
    if snapshot is not None:
        weights = folder.snapshot_path(run_dir, snapshot)
        if not weights.is_file():
            saved = sorted(p.name for p in (run_dir / folder.SNAPSHOTS_DIR).glob("epoch_*.pt"))
            raise ValueError(
                f"Expected a snapshot after epoch {snapshot} in {str(run_dir)!r} ({weights.name}), but found "
                f"{saved or 'none'}; snapshots are saved for the epochs in the config's `snapshot_epochs`."
            )
    model = load_model(weights, device=resolved)
    return LoadedRun(run_dir=run_dir, model=model, config=config, info=info, device=resolved)
