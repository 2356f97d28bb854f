"""Stateful selective metrics: ``update`` with each batch, ``compute`` at the end, ``reset``; gathered across ranks.

:class:`SelectiveDiceMetric` and :class:`ErrorDetectionMetric` accumulate batches ``(B, *S)`` (or lists of images)
and compute exactly what :func:`~selectseg.metrics.selective_dice_curve` and
:func:`~selectseg.metrics.pixel_error_auroc` / :func:`~selectseg.metrics.pixel_augrc` give on all the images at once:
``compute()`` after any split into batches is bit-identical to one call of the function on the images in the order
they were added (rank 0's images first, then rank 1's, ... under ``torch.distributed``).

State. The exact curve has a point at every distinct uncertainty, so no fixed-size statistic holds it: each image is
kept as its exact reduction (its flattened uncertainties, its wrong pixels' positions and labels, its reference
class counts; the labels of correct pixels are dropped), O(pixels) in the uncertainty dtype. ``compute`` calls the
same private core as the functions.

Base class. The metrics follow MONAI's ``Cumulative`` (per-item buffers, gathered lazily at aggregation with
``monai.utils.evenly_divisible_all_gather``) but do not subclass it: ``Cumulative`` stacks the items of a buffer, so
every image would need one shape, while images here may differ in shape, and its ``extend`` splits a batch into
rows, which for flat per-pixel buffers would make one tensor per pixel. Here each field of every image is
concatenated into one flat buffer with a table of lengths, gathered with MONAI's ragged-aware
``evenly_divisible_all_gather`` (which pads unequal ranks, and uses ignite where installed), and split back.
torchmetrics' ``Metric`` would give the same service but is not a dependency. See ``docs/metrics.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

import numpy as np
import torch
import torch.distributed as dist

from .._validation import check_num_classes
from .dice_curve import DiceParts, ImageBatch, SelectiveDiceCurve, check_selective_images, dice_curve_from_parts
from .dice_curve import dice_parts as _dice_parts
from .dice_curve import image_lists as _image_lists
from .error_detection import ErrorDetectionScores, ErrorParts, error_parts, error_scores_from_parts

__all__ = ["ErrorDetectionMetric", "SelectiveDiceMetric"]

P = TypeVar("P", DiceParts, ErrorParts)

_GATHER_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int64))
"""The dtypes a field may have when gathered (uncertainties: floating; positions, labels, counts: int64)."""


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_parts(parts: Sequence[P], kind: type[P]) -> list[P]:
    """Every rank's per-image parts, rank 0's first, on every rank (a collective: every rank must call it).

    Each field is concatenated over the local images and gathered with ``evenly_divisible_all_gather`` (ranks may
    hold different numbers of images and pixels), with a ``(N_rank, F)`` table of lengths to split it back. A field
    whose dtype differs between ranks (float32 uncertainties on one, float64 on another) is gathered in the promoted
    dtype, which is exact and what the function does with the same images. Without an initialized process group of
    more than one rank the parts are returned as they are.

    Shape:
        ``parts``: N_rank tuples of F 1-D arrays -> N = sum over ranks of N_rank tuples.

    Raises:
        TypeError: if a field's dtype cannot be gathered (not float16/32/64 or int64).
    """
    from monai.utils import evenly_divisible_all_gather  # MONAI only when gathering across ranks

    local = list(parts)
    if not _distributed():
        return local
    n_fields = len(kind._fields)
    codes = torch.full((n_fields,), -1, dtype=torch.int64)
    for f in range(n_fields):
        if local:
            dtype = np.result_type(*(q[f] for q in local))
            if dtype not in _GATHER_DTYPES:
                raise TypeError(
                    f"Expected `{kind._fields[f]}` to be one of {[str(d) for d in _GATHER_DTYPES]} to be gathered "
                    f"across ranks, but got {dtype}."
                )
            codes[f] = _GATHER_DTYPES.index(dtype)
    all_codes = evenly_divisible_all_gather(codes, concat=True).reshape(-1, n_fields)
    lengths = torch.tensor([[q[f].size for f in range(n_fields)] for q in local], dtype=torch.int64)
    all_lengths = evenly_divisible_all_gather(lengths.reshape(-1, n_fields), concat=True).numpy()
    if all_lengths.shape[0] == 0:
        return []
    fields = []
    for f in range(n_fields):
        dtype = np.result_type(*(_GATHER_DTYPES[c] for c in all_codes[:, f].tolist() if c >= 0))
        flat = np.concatenate([q[f] for q in local]).astype(dtype, copy=False) if local else np.zeros(0, dtype)
        gathered = evenly_divisible_all_gather(torch.from_numpy(np.ascontiguousarray(flat)), concat=True).numpy()
        fields.append(np.split(gathered, np.cumsum(all_lengths[:-1, f])))
    return [kind(*values) for values in zip(*fields)]


class _PerImageMetric(Generic[P]):
    """The state shared by the streaming metrics: a list of per-image parts, added by ``update``."""

    def __init__(self, *, sync_on_compute: bool = True) -> None:
        if not isinstance(sync_on_compute, bool):
            raise TypeError(f"Expected `sync_on_compute` to be a bool, but got {type(sync_on_compute).__name__}.")
        self.sync_on_compute = sync_on_compute
        self._parts: list[P] = []

    def reset(self) -> None:
        """Forget every image added so far (this rank's)."""
        self._parts = []

    @property
    def num_images(self) -> int:
        """The images added on this rank since the last reset."""
        return len(self._parts)

    def _all_parts(self, kind: type[P]) -> list[P]:
        parts = gather_parts(self._parts, kind) if self.sync_on_compute else list(self._parts)
        if not parts:
            raise ValueError("Expected at least one image before `compute()`, but `update()` added none.")
        return parts


class SelectiveDiceMetric(_PerImageMetric[DiceParts]):
    """Streaming :func:`~selectseg.metrics.selective_dice_curve`: add batches, compute the exact curve of them all.

    Args:
        num_classes: K >= 2; labels lie in [0, K) and class 0 is background.
        sync_on_compute: under ``torch.distributed`` (more than one rank), gather every rank's images in
            ``compute`` (a collective: call it on every rank); False computes this rank's images only.

    Shape:
        ``update(predictions, targets, uncertainties)``: each a batch ``(B, *S)`` (integer label maps, label maps,
        uncertainty maps), a MONAI channel-first batch ``(B, 1, *S)``, or a list of images ``(*S_i)``, checked as
        the function checks them. ``compute()`` -> :class:`~selectseg.metrics.SelectiveDiceCurve` over all N
        images added (``.aurc``, ``.oracle_aurc``, ``.excess_aurc``, ``.at_coverage(c)``).

    Raises:
        TypeError, ValueError: ``update`` as :func:`~selectseg.metrics.selective_dice_curve`; the constructor if
            ``num_classes`` is not an int >= 2 or ``sync_on_compute`` not a bool; ``compute`` (ValueError) if no
            image was added on any rank.

    Example:
        >>> metric = SelectiveDiceMetric(num_classes=2)
        >>> label = np.array([[1, 1, 1, 0, 0, 0, 0, 0, 1, 0]])  # one batch of one image (B=1, W=10)
        >>> pred = np.array([[1, 1, 0, 0, 1, 0, 0, 0, 1, 1]])
        >>> conf = np.array([[0.99, 0.95, 0.55, 0.9, 0.6, 0.97, 0.98, 0.96, 0.7, 0.52]])
        >>> metric.update(pred, label, 1 - conf)
        >>> round(metric.compute().aurc, 6)  # selective_dice_curve's own example
        0.052778
        >>> metric.reset(); metric.num_images
        0
    """

    def __init__(self, *, num_classes: int, sync_on_compute: bool = True) -> None:
        super().__init__(sync_on_compute=sync_on_compute)
        self.num_classes = check_num_classes(num_classes)

    def update(self, predictions: ImageBatch, targets: ImageBatch, uncertainties: ImageBatch) -> None:
        """Add a batch of images (see the class's Shape)."""
        k = self.num_classes
        preds, tgts, uncs = check_selective_images(*_image_lists(predictions, targets, uncertainties), k)
        self._parts.extend(_dice_parts(p, t, u, k) for p, t, u in zip(preds, tgts, uncs))

    def compute(self) -> SelectiveDiceCurve:
        """The curve of every image added (on every rank with ``sync_on_compute``)."""
        return dice_curve_from_parts(self._all_parts(DiceParts))


class ErrorDetectionMetric(_PerImageMetric[ErrorParts]):
    """Streaming :func:`~selectseg.metrics.pixel_error_auroc` and :func:`~selectseg.metrics.pixel_augrc`, pooled
    over every image added (AUROC higher is better, AUGRC lower is better).

    Args:
        sync_on_compute: as :class:`SelectiveDiceMetric`.

    Shape:
        ``update(predictions, targets, uncertainties)``: each a batch ``(B, *S)``, ``(B, 1, *S)`` or a list of
        images ``(*S_i)``. ``compute()`` -> :class:`~selectseg.metrics.ErrorDetectionScores` (auroc, augrc,
        error_rate, num_pixels).

    Raises:
        TypeError, ValueError: ``update`` as :func:`~selectseg.metrics.pixel_error_auroc`; the constructor if
            ``sync_on_compute`` is not a bool; ``compute`` (ValueError) if no image was added on any rank.

    Example:
        >>> metric = ErrorDetectionMetric()
        >>> pred, label = np.array([[1, 0, 0, 1, 0]]), np.array([[1, 1, 0, 0, 0]])  # (B=1, W=5)
        >>> metric.update(pred, label, np.array([[0.1, 0.4, 0.2, 0.2, 0.0]]))
        >>> scores = metric.compute()
        >>> scores.auroc, scores.augrc  # pixel_error_auroc's and pixel_augrc's examples
        (0.9166666666666666, 0.1)
    """

    def update(self, predictions: ImageBatch, targets: ImageBatch, uncertainties: ImageBatch) -> None:
        """Add a batch of images (see the class's Shape)."""
        preds, tgts, uncs = check_selective_images(*_image_lists(predictions, targets, uncertainties), None)
        self._parts.extend(error_parts(p, t, u) for p, t, u in zip(preds, tgts, uncs))

    def compute(self) -> ErrorDetectionScores:
        """The scores of every image added (on every rank with ``sync_on_compute``); the AUROC is NaN with an
        :class:`~selectseg.UndefinedMetricWarning` when no pixel, or every pixel, is wrong."""
        return error_scores_from_parts(self._all_parts(ErrorParts))
