"""From a config to batches: load the cases, split off validation, choose the target annotator, draw patches."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.data import DataLoader, Dataset
from monai.transforms import Compose, MapTransform, Randomizable

from ..data import Case, train_transforms
from ..data.annotators import target_labels
from ..models.inference import normalize_image
from ..runs.config import DataConfig

__all__ = ["epoch_loader", "resolve_patch_size", "split_cases"]


def split_cases(cases: Sequence[Case], val_fraction: float, seed: int) -> tuple[list[Case], list[Case]]:
    """Seeded random split into (train, validation); at least one training case is kept."""
    n_val = min(len(cases) - 1, round(val_fraction * len(cases))) if val_fraction > 0 else 0
    order = np.random.default_rng([seed, 7]).permutation(len(cases))
    val = sorted(order[:n_val].tolist())
    train = sorted(order[n_val:].tolist())
    return [cases[i] for i in train], [cases[i] for i in val]


class SelectAnnotatord(Randomizable, MapTransform):
    """Replace ``label`` ``(A, *S)`` by one annotator's map ``(*S)``: random per call, or a fixed policy; add
    ``annotator_mean`` ``(*S)``, the fraction of annotators marking each voxel as foreground."""

    def __init__(self, policy: str, num_classes: int) -> None:
        MapTransform.__init__(self, keys=["label"])
        self.policy = policy
        self.num_classes = num_classes
        self._index = 0

    def randomize(self, data: Any = None) -> None:
        self._index = int(self.R.randint(0, int(data)))

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        out = dict(data)
        labels = torch.as_tensor(out["label"])
        out["annotator_mean"] = (labels > 0).float().mean(dim=0)  # for EDUE's guidance loss
        if self.policy == "random":
            self.randomize(labels.shape[0])
            out["label"] = labels[self._index].long()
        else:
            chosen = target_labels(labels.cpu().numpy(), self.policy, self.num_classes)
            out["label"] = torch.from_numpy(chosen)
        return out


def resolve_patch_size(
    configured: tuple[int, ...], shapes: Sequence[tuple[int, ...]], spatial_dims: int, divisor: int
) -> tuple[int, ...]:
    """The training patch (and 3D sliding-window) size.

    Empty ``configured``: per axis the smallest case size, capped at 256 (2D) or 96 (3D), rounded down to a
    multiple of ``divisor`` (at least ``divisor``). A configured size is rounded up to a multiple of ``divisor``.

    Raises:
        ValueError: if ``configured`` has the wrong number of axes.
    """
    if configured:
        if len(configured) != spatial_dims:
            raise ValueError(
                f"Expected `data.patch_size` to have {spatial_dims} values for {spatial_dims}-D images, "
                f"but got {list(configured)}."
            )
        return tuple(divisor * math.ceil(p / divisor) for p in configured)
    cap = 256 if spatial_dims == 2 else 96
    smallest = np.min(np.array(shapes), axis=0)
    return tuple(max(divisor, divisor * (min(int(s), cap) // divisor)) for s in smallest)


def training_items(cases: Sequence[Case], normalize: str) -> list[dict[str, Any]]:
    """Dict items for the MONAI pipeline: normalised image ``(C, *S)`` and all annotators' labels ``(A, *S)``,
    read-only so that no transform can change them in place (a resumed run must see the data a fresh one sees)."""
    items = []
    for case in cases:
        if case.labels is None:
            raise ValueError(f"Training case {case.case_id!r} has no label map.")
        image = normalize_image(case.image, normalize).numpy()
        labels = case.labels.copy()
        image.flags.writeable = labels.flags.writeable = False  # every epoch must start from the same data
        items.append({"image": image, "label": labels, "case_id": case.case_id})  # the id names a failing batch
    return items


def _fresh_copy(item: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
    """Writable tensor copies of a (read-only) item, for transforms that work in place."""
    return {**item, "image": torch.tensor(item["image"]), "label": torch.tensor(item["label"])}


def epoch_order(num_items: int, samples: int, world_size: int, rank: int, seed: int) -> list[int]:
    """This rank's item indices for one epoch: a seeded shuffle, repeated to ``samples`` and padded so that every
    rank gets the same number of items."""
    g = torch.Generator().manual_seed(seed)
    reps = math.ceil(samples / num_items)
    order = torch.cat([torch.randperm(num_items, generator=g) for _ in range(reps)])[:samples].tolist()
    per_rank = math.ceil(len(order) / world_size)
    order += order[: per_rank * world_size - len(order)]
    return order[rank::world_size]


def epoch_loader(
    items: list[dict[str, Any]],
    *,
    config: DataConfig,
    spatial_dims: int,
    patch_size: tuple[int, ...],
    num_classes: int,
    batch_size: int,
    epoch_seed: int,
    world_size: int = 1,
    rank: int = 0,
) -> DataLoader:
    """The batches of one epoch on one rank, deterministic in ``epoch_seed`` (order and augmentation).

    Batches are dicts with ``image`` ``(B, C, *P)`` float32 and ``label`` ``(B, *P)`` int64, ``*P`` the patch size.
    """
    transform = Compose(
        [
            _fresh_copy,
            *train_transforms(
                spatial_dims=spatial_dims, patch_size=patch_size, augment=config.augment, normalize=False
            ).transforms,
            SelectAnnotatord(config.annotator, num_classes),
        ]
    )
    samples = config.samples_per_epoch or len(items)
    order = epoch_order(len(items), samples, world_size, rank, epoch_seed)
    dataset = Dataset([items[i] for i in order], transform=transform)
    generator = torch.Generator().manual_seed(epoch_seed + 1)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=config.num_workers,
        generator=generator,
        persistent_workers=False,
    )
