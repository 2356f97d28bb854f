"""Running a network on whole cases: intensity normalisation, whole-image (2D) or sliding-window (3D) inference.

:func:`case_logits` is the one predictor: the evaluation pipeline and every uncertainty estimator (its default
``whole_image`` and ``sliding_window_predictor``) run networks through it, so all of them pad to the network's size
divisor and crop back the same way and return the input's spatial shape.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._validation import look_up_option

__all__ = ["case_logits", "normalize_image", "predict_probabilities", "size_divisor_of"]


def normalize_image(image: np.ndarray | torch.Tensor, mode: str = "zscore") -> torch.Tensor:
    """Per-channel intensity normalisation of one case (the same in training and inference).

    Args:
        image: ``(C, *S)`` image.
        mode: ``"zscore"`` (each channel to mean 0, std 1; a constant channel becomes 0) or ``"none"``.

    Returns:
        ``(C, *S)`` float32 tensor.

    Raises:
        ValueError: on an unknown ``mode``.

    Example:
        >>> normalize_image(np.array([[1.0, 3.0]])).tolist()
        [[-1.0, 1.0]]
    """
    look_up_option("normalize", mode, ("zscore", "none"))
    x = torch.as_tensor(image, dtype=torch.float32)
    if mode == "none":
        return x
    flat = x.reshape(x.shape[0], -1).double()
    mean = flat.mean(dim=1)
    std = flat.std(dim=1, unbiased=False)
    std = torch.where(std > 0, std, torch.ones_like(std))
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    return ((x.double() - mean.reshape(shape)) / std.reshape(shape)).float()


def size_divisor_of(model: nn.Module) -> int:
    """The multiple a network's input sizes must be for a whole-image pass: ``model.spec.size_divisor`` for a
    :class:`~selectseg.models.SegmentationNet` (or a wrapper exposing its ``spec``), 1 for any other module.

    Example:
        >>> size_divisor_of(nn.Conv2d(1, 2, 1))
        1
    """
    spec = getattr(model, "spec", None)
    return int(getattr(spec, "size_divisor", 1))


def case_logits(
    model: nn.Module,
    x: torch.Tensor,
    *,
    size_divisor: int | None = None,
    roi_size: Sequence[int] | None = None,
    sw_batch_size: int = 4,
    overlap: float = 0.25,
) -> torch.Tensor:
    """Logits of whole cases, the one predictor: one pass (zero-padded at the end of each spatial axis to a multiple
    of ``size_divisor``, cropped back) for 2D and for 3D no larger than ``roi_size``; MONAI
    ``sliding_window_inference`` (Gaussian blending, ``overlap``, zero padding) for larger 3D.

    The model's mode is left as it is (estimators such as MC dropout set it). With ``functools.partial`` over the
    keyword options this is an estimator ``Predictor`` (see :mod:`selectseg.uncertainty.estimators`).

    Args:
        model: maps ``(B, C, *S')`` to logits ``(B, K, *S')`` for ``*S'`` multiples of ``size_divisor``.
        x: the image batch.
        size_divisor: the multiple the network needs; None = :func:`size_divisor_of` the model.
        roi_size: sliding-window size for 3D; None = always one pass.
        sw_batch_size: windows per forward pass.
        overlap: window overlap fraction.

    Shape:
        x ``(B, C, *S)`` -> logits ``(B, K, *S)``, whatever ``*S``.

    Example:
        >>> tuple(case_logits(nn.Conv2d(1, 2, 1), torch.zeros(1, 1, 15, 15), size_divisor=4).shape)
        (1, 2, 15, 15)
    """
    if size_divisor is None:
        size_divisor = size_divisor_of(model)
    spatial = tuple(x.shape[2:])
    if roi_size is not None and len(spatial) == 3 and any(s > r for s, r in zip(spatial, roi_size)):
        from monai.inferers import sliding_window_inference

        logits = sliding_window_inference(
            x,
            roi_size=tuple(roi_size),
            sw_batch_size=sw_batch_size,
            predictor=model,
            overlap=overlap,
            mode="gaussian",
            padding_mode="constant",
        )
        return typing.cast(torch.Tensor, logits)
    pad: list[int] = []
    for s in reversed(spatial):
        pad += [0, (-s) % size_divisor]
    logits = model(F.pad(x, pad)) if any(pad) else model(x)
    crop = (slice(None), slice(None), *(slice(0, s) for s in spatial))
    return typing.cast(torch.Tensor, logits[crop])


@torch.no_grad()
def predict_probabilities(
    model: nn.Module,
    image: torch.Tensor,
    *,
    size_divisor: int | None = None,
    roi_size: Sequence[int] | None = None,
    sw_batch_size: int = 4,
    overlap: float = 0.25,
) -> torch.Tensor:
    """Softmax probabilities of a whole case, the model in eval mode (see :func:`case_logits`).

    Args:
        model: maps ``(B, C, *S)`` to logits ``(B, K, *S)``.
        image: ``(C, *S)`` normalised image on the model's device.
        size_divisor: spatial sizes the model accepts are multiples of this; None = :func:`size_divisor_of` it.
        roi_size: sliding-window size for 3D (multiples of ``size_divisor``); None = always whole image.
        sw_batch_size: windows per forward pass.
        overlap: window overlap fraction.

    Shape:
        image ``(C, *S)`` -> probabilities ``(K, *S)`` float32.
    """
    model.eval()
    logits = case_logits(
        model,
        image.unsqueeze(0),
        size_divisor=size_divisor,
        roi_size=roi_size,
        sw_batch_size=sw_batch_size,
        overlap=overlap,
    )
    return logits.float().softmax(dim=1)[0]
