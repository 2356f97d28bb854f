"""A finished training run, loaded for inference: the network, its config and the data facts it was trained on."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import Case, SegmentationDataset
from ..models import ModelSpec, SegmentationNet
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
    weights_sha256: str = ""
    """SHA-256 of the weights file(s) loaded (for an ensemble, of the members' digests in order): what a stored
    referral threshold is tied to."""

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
        dataset = load_cases(self.config.data, split="train")
        self.check_dataset(dataset, self.config.data.path)
        cases = [c for c in dataset.cases if c.case_id in held_out]
        if not cases:
            raise ValueError(f"{str(self.run_dir)!r} has no validation cases (data.val_fraction was 0).")
        return cases

    def data_cases(self, data: str | Path | None = None, *, split: str = "test", format_: str = "auto") -> list[Case]:
        """The cases of a data set, checked against this run (:meth:`check_dataset`) before any inference.

        Args:
            data: a dataset folder (or ``"synthetic"``); None = the data the run was trained on (its config's).
            split: ``"train"`` or ``"test"``.
            format_: the folder's format, or ``"auto"`` (ignored when ``data`` is None).

        Raises:
            ValueError: if the data cannot be read, or do not fit the run (see :meth:`check_dataset`).
        """
        config = self.config.data
        if data is not None:
            config = dataclasses.replace(config, path=str(data), format=format_)
        dataset = load_cases(config, split=split)
        self.check_dataset(dataset, config.path)
        return list(dataset.cases)

    def check_dataset(self, dataset: SegmentationDataset, where: str | Path) -> None:
        """Raise ValueError unless a data set has the run's classes (number and names, ``run.json``), channel count
        and spatial dimensions, naming the data folder ``where``, the run and every difference.

        Raises:
            ValueError: on any mismatch.
        """
        info, spec = dataset.info, self.model.spec
        run_classes = [str(c) for c in self.info.get("class_names", [])] or None
        problems = []
        if info.num_classes != spec.num_classes:
            problems.append(
                f"{info.num_classes} classes {list(info.class_names)} where the run predicts {spec.num_classes}"
                + (f" {run_classes}" if run_classes else "")
            )
        elif run_classes is not None and list(info.class_names) != run_classes:
            problems.append(f"classes {list(info.class_names)} where the run has {run_classes}")
        if info.num_channels != spec.in_channels:
            problems.append(
                f"{info.num_channels} channel(s) {list(info.channel_names)} where the network takes {spec.in_channels}"
            )
        if info.spatial_dims != spec.spatial_dims:
            problems.append(f"{info.spatial_dims}-D images where the network is {spec.spatial_dims}-D")
        if problems:
            raise ValueError(
                f"The data {str(where)!r} do not fit the run {str(self.run_dir)!r}: {'; '.join(problems)}. "
                "Evaluate a run on data with the classes, channels and dimensions it was trained on."
            )

    def check_case(self, case: Case) -> None:
        """Raise ValueError if a case cannot go through this network (channels or dimensionality) or holds a label
        outside the run's classes ``[0, K)``."""
        spec = self.model.spec
        where = "" if case.source is None else f" (file {str(case.source)!r})"
        if case.image.ndim - 1 != spec.spatial_dims or case.image.shape[0] != spec.in_channels:
            raise ValueError(
                f"Case {case.case_id!r}{where} has an image of shape {tuple(case.image.shape)} but the network of "
                f"{str(self.run_dir)!r} expects (C={spec.in_channels}, *S) with {spec.spatial_dims} spatial axes."
            )
        if case.labels is not None and case.labels.size:
            low, high = int(case.labels.min()), int(case.labels.max())
            if low < 0 or high >= spec.num_classes:
                names = self.info.get("class_names")
                classes = f" {list(names)}" if names else ""
                raise ValueError(
                    f"Case {case.case_id!r}{where} has labels in [{low}, {high}] but the run {str(self.run_dir)!r} "
                    f"predicts {spec.num_classes} classes{classes}: the data have other classes than the run."
                )

    def check_cases(self, cases: list[Case] | tuple[Case, ...]) -> None:
        """:meth:`check_case` on every case, before any inference.

        Raises:
            TypeError: if ``cases`` is not a list or tuple of :class:`~selectseg.data.Case`.
            ValueError: as :meth:`check_case`.
        """
        if not isinstance(cases, (list, tuple)):
            raise TypeError(f"Expected `cases` to be a list of Case, but got {type(cases).__name__}.")
        for case in cases:
            if not isinstance(case, Case):
                raise TypeError(f"Expected `cases` to hold Case objects, but got {type(case).__name__}.")
            self.check_case(case)

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
            TypeError: if ``cases`` is not a list of cases.
            ValueError: on an estimator this run's model cannot serve (e.g. MC dropout without dropout, the
                ``ensemble`` estimator on one network), a map the estimator does not produce, or a case the network
                cannot take or with labels outside the run's classes (checked for every case before inference).
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
        self.check_cases(cases)
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
        ValueError: if the folder is not a finished run (no ``model.pt``, ``config.yaml`` or ``run.json``), a file
            is damaged (naming the file and the run), the snapshot was not saved, its checkpoint does not fit its
            architecture, or the checkpoint's architecture is not the one ``config.yaml`` and ``run.json`` imply
            (naming the differing fields).
    """
    run_dir = Path(run_dir)
    try:
        index = folder.read_index(run_dir)
    except UnicodeDecodeError as error:  # the index's own errors name it; bytes that are not UTF-8 do not
        raise ValueError(
            f"The index file of {str(run_dir)!r} is not UTF-8 text ({error}); the folder is damaged."
        ) from None
    if index is not None and index[0] == "ensemble":
        loaded = [load_run(run_dir / name, device=device, snapshot=snapshot) for name in index[1]["members"]]
        first = loaded[0]
        combined = hashlib.sha256("".join(r.weights_sha256 for r in loaded).encode()).hexdigest()
        return dataclasses.replace(
            first, run_dir=run_dir, members=tuple(r.model for r in loaded), weights_sha256=combined
        )
    for name in (folder.MODEL, folder.CONFIG, folder.RUN_INFO):
        if not (run_dir / name).is_file():
            hint = " (training may not have finished: resume it)" if name == folder.MODEL else ""
            raise ValueError(f"{str(run_dir)!r} is not a finished selectseg run: {name} is missing{hint}.")
    config = folder.read_config(run_dir)
    info = _run_info(run_dir)
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
    _check_architecture(run_dir, weights, model.spec, _expected_spec(config, info))
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    return LoadedRun(run_dir=run_dir, model=model, config=config, info=info, device=resolved, weights_sha256=digest)


_RUN_INFO_FIELDS = {"class_names": "a list of class names", "channel_names": "a list of channel names"}


def _run_info(run_dir: Path) -> dict[str, Any]:
    """``run.json``, read and checked for the fields inference needs; every error names the file and the run."""
    path = run_dir / folder.RUN_INFO
    try:
        info = folder.read_run_info(run_dir)
    except ValueError as error:  # a JSON error, or bytes that are not UTF-8 (UnicodeDecodeError)
        message = str(error)
        if str(path) not in message:
            message = f"{str(path)!r} could not be read ({type(error).__name__}: {message})."
        raise ValueError(f"{message} The run {str(run_dir)!r} is damaged; train it again.") from None

    def bad(field: str, expected: str) -> ValueError:
        return ValueError(
            f"Expected {field!r} in {str(path)!r} to be {expected}, but got {info.get(field)!r}; the run "
            f"{str(run_dir)!r} is damaged (train it again)."
        )

    for field, expected in _RUN_INFO_FIELDS.items():
        names = info.get(field)
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise bad(field, expected)
    if len(info["class_names"]) < 2:
        raise bad("class_names", "at least 2 class names")
    dims = info.get("spatial_dims")
    if isinstance(dims, bool) or dims not in (2, 3):
        raise bad("spatial_dims", "2 or 3")
    patch = info.get("patch_size")
    if (
        not isinstance(patch, list)
        or len(patch) != dims
        or not all(isinstance(p, int) and not isinstance(p, bool) and p > 0 for p in patch)
    ):
        raise bad("patch_size", f"a list of {dims} positive ints")
    return info


def _expected_spec(config: TrainConfig, info: dict[str, Any]) -> ModelSpec:
    """The architecture a run's ``config.yaml`` and ``run.json`` imply (as training builds it)."""
    return ModelSpec(
        name=config.model.name,
        spatial_dims=int(info["spatial_dims"]),
        in_channels=len(info["channel_names"]),
        num_classes=len(info["class_names"]),
        channels=config.model.channels,
        num_res_units=config.model.num_res_units,
        dropout=config.model.dropout,
        norm=config.model.norm,
        head_upsample=config.model.head_upsample,
    )


def _check_architecture(run_dir: Path, weights: Path, saved: ModelSpec, expected: ModelSpec) -> None:
    """Raise ValueError naming the differing fields if the checkpoint's architecture is not the run's."""
    if saved == expected:
        return
    ours, theirs = saved.to_dict(), expected.to_dict()
    detail = ", ".join(
        f"{k}: checkpoint {ours[k]!r} vs config/run.json {theirs[k]!r}" for k in ours if ours[k] != theirs[k]
    )
    raise ValueError(
        f"The checkpoint {str(weights)!r} does not match the run {str(run_dir)!r} ({detail}): its weights come "
        f"from another run, or {folder.CONFIG} / {folder.RUN_INFO} were edited."
    )
