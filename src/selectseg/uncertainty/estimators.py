"""Uncertainty estimators behind one registry: one interface for single models, MC dropout, deep ensembles and
test-time augmentation, in 2D and 3D, with any predictor (whole image or MONAI sliding windows).

An estimator is built from a list of models and options and maps an image batch ``(B, C, *S)`` (checked at every
call against the network's spatial dims and input channels) to an :class:`Estimate`: mean probabilities
``(B, K, *S)``, the member outputs ``(M, B, K, *S)`` where there are members, and named voxel uncertainty maps
``(B, *S)``. Every predictor goes through :func:`selectseg.models.inference.case_logits`, which pads to the
network's size divisor and crops back, so an estimate has the image's spatial shape whatever it is. A new estimator
is one decorated factory, registered in :data:`ESTIMATORS` with what it is (:class:`EstimatorInfo`)::

    @register_estimator("my_method", maps=MEMBER_MAPS)
    def my_method(models: Sequence[nn.Module], *, predictor: Predictor = whole_image) -> Estimator: ...
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import product

import torch
from torch import nn

from .._registry import Registry
from .._validation import check_non_negative, check_positive_int
from ..models.inference import case_logits
from .members import member_variance, mutual_information
from .scores import entropy, max_softmax_uncertainty

__all__ = [
    "ESTIMATORS",
    "MEMBER_MAPS",
    "SINGLE_MAPS",
    "Estimate",
    "Estimator",
    "EstimatorInfo",
    "Predictor",
    "build_estimator",
    "estimator_options",
    "list_estimators",
    "register_estimator",
    "sliding_window_predictor",
    "whole_image",
]

Predictor = Callable[[nn.Module, torch.Tensor], torch.Tensor]
"""``predictor(model, image (B, C, *S)) -> logits (B, K, *S)``."""
Estimator = Callable[[torch.Tensor], "Estimate"]
EstimatorFactory = Callable[..., Estimator]

SINGLE_MAPS: tuple[str, ...] = ("max_softmax", "entropy")
"""The maps every estimate holds (scores of the mean probabilities)."""
MEMBER_MAPS: tuple[str, ...] = (*SINGLE_MAPS, "mutual_information", "variance")
"""The maps an estimate with several members holds."""


@dataclass(frozen=True)
class EstimatorInfo:
    """What the estimator registry knows of an estimator besides its factory.

    Attributes:
        maps: the uncertainty maps its estimates can hold (:data:`SINGLE_MAPS`, or :data:`MEMBER_MAPS` for an
            estimator with members; an estimate with a single member, e.g. TTA over no axis, holds only the first).
        layered: its members are the heads of one multi-head network, ordered by depth (layer ensembles, EDUE).
        min_models: the fewest models it takes (2 for a deep ensemble); the others take exactly one.
    """

    maps: tuple[str, ...] = SINGLE_MAPS
    layered: bool = False
    min_models: int = 1


ESTIMATORS: Registry[EstimatorFactory, EstimatorInfo] = Registry("estimator", EstimatorInfo)
"""The uncertainty estimators by name: ``factory(models, **options) -> estimator``, with :class:`EstimatorInfo`."""


@dataclass(frozen=True)
class Estimate:
    """What an estimator returns for an image batch.

    Attributes:
        probabilities: ``(B, K, *S)`` mean softmax probabilities.
        members: ``(M, B, K, *S)`` the members' probabilities (None for a single deterministic model).
        maps: voxel uncertainty maps ``(B, *S)`` by name: always ``max_softmax`` and ``entropy`` (of the mean); with
            members also ``mutual_information`` and ``variance``.
    """

    probabilities: torch.Tensor
    members: torch.Tensor | None = None
    maps: dict[str, torch.Tensor] = field(default_factory=dict)


def _estimate(members: torch.Tensor) -> Estimate:
    mean = members.mean(dim=0)
    maps = {"max_softmax": max_softmax_uncertainty(mean), "entropy": entropy(mean)}
    if members.shape[0] > 1:
        maps["mutual_information"] = mutual_information(members)
        maps["variance"] = member_variance(members)
        return Estimate(mean, members, maps)
    return Estimate(mean, None, maps)


def whole_image(model: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """The default predictor: one forward pass over the whole batch, zero-padded to the network's size divisor
    (``model.spec.size_divisor``; 1 for a module without a spec) and cropped back (see
    :func:`selectseg.models.inference.case_logits`).

    Shape:
        image ``(B, C, *S)`` -> logits ``(B, K, *S)``, whatever ``*S``.
    """
    return case_logits(model, image)


def sliding_window_predictor(roi_size: Sequence[int], *, sw_batch_size: int = 4, overlap: float = 0.25) -> Predictor:
    """A predictor running 3D volumes larger than ``roi_size`` through MONAI's ``sliding_window_inference``
    (Gaussian blending, zero padding); 2D images and smaller volumes go through :func:`whole_image` (see
    :func:`selectseg.models.inference.case_logits`, the one predictor behind both).

    Raises:
        ValueError: if ``roi_size`` is not positive ints, ``sw_batch_size`` < 1 or ``overlap`` not in [0, 1).
    """
    roi = tuple(check_positive_int("roi_size", r) for r in roi_size)
    check_positive_int("sw_batch_size", sw_batch_size)
    if check_non_negative("overlap", overlap) >= 1:
        raise ValueError(f"Expected `overlap` to be a float in [0, 1), but got {overlap}.")
    return functools.partial(case_logits, roi_size=roi, sw_batch_size=sw_batch_size, overlap=overlap)


def register_estimator(
    name: str, *, maps: tuple[str, ...] = SINGLE_MAPS, layered: bool = False, min_models: int = 1
) -> Callable[[EstimatorFactory], EstimatorFactory]:
    """Register ``factory(models, **options) -> estimator`` under ``name`` in :data:`ESTIMATORS`.

    Args:
        name: the estimator's name.
        maps: the uncertainty maps its estimates can hold (see :class:`EstimatorInfo`).
        layered: its members are the heads of one network, ordered by depth.
        min_models: the fewest models it takes.

    Raises:
        TypeError: if ``name`` is not a string.
        ValueError: if ``name`` is invalid or already registered.
    """
    return ESTIMATORS.register(name, maps=tuple(maps), layered=bool(layered), min_models=min_models)


def list_estimators() -> list[str]:
    """Names of the registered estimators, sorted."""
    return ESTIMATORS.names()


def estimator_options(name: str) -> tuple[str, ...]:
    """The keyword options the estimator called ``name`` takes (``predictor`` aside), sorted.

    Raises:
        ValueError: on an unknown name (with a near match).

    Example:
        >>> estimator_options("layer_ensemble"), estimator_options("softmax")
        (('skip_first',), ())
    """
    factory = ESTIMATORS.get(name)
    parameters = inspect.signature(factory).parameters.values()
    return tuple(sorted(p.name for p in parameters if p.kind is p.KEYWORD_ONLY and p.name != "predictor"))


def build_estimator(name: str, models: nn.Module | Sequence[nn.Module], **options: object) -> Estimator:
    """The estimator called ``name`` over ``models`` (one model, or a list for ensembles).

    Raises:
        TypeError: if ``models`` holds something other than ``nn.Module``.
        ValueError: on an unknown name (with a near match), an option the estimator does not take (the message
            lists the ones it takes), or options/models the estimator cannot use.

    Example:
        >>> net = nn.Conv2d(1, 2, 1)
        >>> est = build_estimator("tta", net)(torch.randn(1, 1, 4, 4))
        >>> tuple(est.probabilities.shape), tuple(est.members.shape), sorted(est.maps)
        ((1, 2, 4, 4), (4, 1, 2, 4, 4), ['entropy', 'max_softmax', 'mutual_information', 'variance'])
    """
    factory = ESTIMATORS.get(name)
    takes = estimator_options(name)
    unknown = sorted(set(options) - {*takes, "predictor"})
    if unknown:
        raise ValueError(
            f"Estimator {name!r} takes no option {unknown[0]!r}; its options are {list(takes)} (and `predictor`)."
        )
    listed = [models] if isinstance(models, nn.Module) else list(models)
    for m in listed:
        if not isinstance(m, nn.Module):
            raise TypeError(f"Expected `models` to be nn.Module(s), but got {type(m).__name__}.")
    if not listed:
        raise ValueError("Expected at least one model, but got none.")
    return factory(listed, **options)


def _check_image(image: object, model: nn.Module) -> None:
    """An image batch ``(B, C, *S)`` the model can take: a floating-point tensor with a batch axis, 2 or 3 spatial
    axes and, for a network with a ``spec``, its spatial dims and input channels (a ``(C, *S)`` image without the
    batch axis would otherwise give a softmax over a spatial axis)."""
    if not isinstance(image, torch.Tensor) or not image.is_floating_point():
        got = image.dtype if isinstance(image, torch.Tensor) else type(image).__name__
        raise TypeError(f"Expected `image` to be a floating-point torch.Tensor of shape (B, C, *S), but got {got}.")
    spec = getattr(model, "spec", None)
    dims, channels = getattr(spec, "spatial_dims", None), getattr(spec, "in_channels", None)
    if dims is not None and channels is not None:
        if image.ndim != dims + 2 or image.shape[1] != channels:
            raise ValueError(
                f"Expected `image` of shape (B, C={channels}, *S) with {dims} spatial axes (a batch axis first: "
                f"image[None] for one image), but got shape {tuple(image.shape)}."
            )
    elif image.ndim not in (4, 5):
        raise ValueError(
            f"Expected `image` of shape (B, C, *S) with 2 or 3 spatial axes (a batch axis first: image[None] for one "
            f"image), but got shape {tuple(image.shape)}."
        )
    if image.shape[0] == 0 or any(n == 0 for n in image.shape[2:]):
        raise ValueError(f"Expected a non-empty `image` batch, but got shape {tuple(image.shape)}.")


def _one(models: Sequence[nn.Module], name: str) -> nn.Module:
    if len(models) != 1:
        raise ValueError(f"Expected one model for the {name!r} estimator, but got {len(models)}.")
    return models[0]


def _softmax(logits: torch.Tensor) -> torch.Tensor:
    probs = logits.float().softmax(dim=1)
    if not torch.isfinite(probs).all():
        raise ValueError("The model produced NaN or infinite probabilities (check the input and the weights).")
    return probs


@register_estimator("softmax")
def softmax_estimator(models: Sequence[nn.Module], *, predictor: Predictor = whole_image) -> Estimator:
    """A single model's softmax in eval mode (Ding et al.: uncertainty = 1 - max softmax, or entropy)."""
    model = _one(models, "softmax")

    @torch.no_grad()
    def estimate(image: torch.Tensor) -> Estimate:
        _check_image(image, model)
        model.eval()
        return _estimate(_softmax(predictor(model, image)).unsqueeze(0))

    return estimate


@contextmanager
def _dropout_on(model: nn.Module) -> Iterator[None]:
    """Eval mode everywhere (normalisation uses its eval behaviour) except dropout layers, which sample."""
    was = model.training
    model.eval()
    dropouts = [m for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]
    for m in dropouts:
        m.train()
    try:
        yield
    finally:
        model.train(was)


@register_estimator("mc_dropout", maps=MEMBER_MAPS)
def mc_dropout(
    models: Sequence[nn.Module], *, n_samples: int = 10, seed: int = 0, predictor: Predictor = whole_image
) -> Estimator:
    """Monte Carlo dropout (Gal & Ghahramani 2016): N stochastic passes with dropout on, normalisation in eval mode.

    The passes draw from a generator seeded with ``seed`` (the global torch RNG state is saved and restored), so
    the estimate is reproducible.

    Raises:
        ValueError: if the model has no dropout layer with p > 0, or ``n_samples < 2``.
    """
    model = _one(models, "mc_dropout")
    check_positive_int("n_samples", n_samples, minimum=2)
    if not any(isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0 for m in model.modules()):
        raise ValueError(
            "MC dropout needs a model with dropout (p > 0), but this one has none; train with model.dropout > 0."
        )

    @torch.no_grad()
    def estimate(image: torch.Tensor) -> Estimate:
        _check_image(image, model)
        with torch.random.fork_rng(devices=[image.device] if image.is_cuda else []), _dropout_on(model):
            torch.manual_seed(seed)
            members = torch.stack([_softmax(predictor(model, image)) for _ in range(n_samples)])
        return _estimate(members)

    return estimate


def _architecture(model: nn.Module) -> object:
    spec = getattr(model, "spec", None)
    if spec is not None:
        return spec
    return tuple((k, tuple(v.shape)) for k, v in model.state_dict().items())


@register_estimator("ensemble", maps=MEMBER_MAPS, min_models=2)
def deep_ensemble(models: Sequence[nn.Module], *, predictor: Predictor = whole_image) -> Estimator:
    """Deep ensemble (Lakshminarayanan et al. 2017): the members' softmax outputs, each model in eval mode.

    Raises:
        ValueError: with fewer than 2 members, or members of different architectures.
    """
    if len(models) < 2:
        raise ValueError(f"Expected at least 2 ensemble members, but got {len(models)}.")
    first = _architecture(models[0])
    for i, m in enumerate(models[1:], start=1):
        if _architecture(m) != first:
            raise ValueError(f"Expected ensemble members of one architecture, but member {i} differs from member 0.")

    @torch.no_grad()
    def estimate(image: torch.Tensor) -> Estimate:
        _check_image(image, models[0])
        outputs = []
        for m in models:
            m.eval()
            outputs.append(_softmax(predictor(m, image)))
        return _estimate(torch.stack(outputs))

    return estimate


@register_estimator("tta", maps=MEMBER_MAPS)
def test_time_augmentation(
    models: Sequence[nn.Module], *, axes: Sequence[int] | None = None, predictor: Predictor = whole_image
) -> Estimator:
    """Test-time augmentation by flips: every combination of flips along ``axes`` (spatial axes, 0-based; default
    all), each output flipped back before averaging; the unflipped view is one member.

    Raises:
        ValueError: if an axis is not a spatial axis of the image.
    """
    model = _one(models, "tta")

    @torch.no_grad()
    def estimate(image: torch.Tensor) -> Estimate:
        _check_image(image, model)
        spatial = image.ndim - 2
        chosen = list(range(spatial)) if axes is None else list(axes)
        if any(not 0 <= a < spatial for a in chosen):
            raise ValueError(f"Expected TTA `axes` among the {spatial} spatial axes [0, {spatial}), but got {chosen}.")
        model.eval()
        outputs = []
        for flags in product((False, True), repeat=len(chosen)):
            dims = [2 + a for a, f in zip(chosen, flags) if f]
            view = image.flip(dims) if dims else image
            probs = _softmax(predictor(model, view))
            outputs.append(probs.flip(dims) if dims else probs)
        return _estimate(torch.stack(outputs))

    return estimate


class _StackedHeads(nn.Module):
    """Wraps a multi-head network so that its heads (members, M) look like one output:
    ``(B, C, *S) -> (B, M * K, *S)``, which any predictor (padding, MONAI sliding windows) can run;
    :func:`layer_ensemble` unfolds it again. It shows the network's ``spec`` (its size divisor) to the predictor."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    @property
    def spec(self) -> object:
        return getattr(self.model, "spec", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        forward_heads = typing.cast(Callable[[torch.Tensor], torch.Tensor], self.model.forward_heads)
        heads = forward_heads(x)  # (M, B, K, *S)
        return heads.movedim(0, 1).flatten(1, 2)


@register_estimator("layer_ensemble", maps=MEMBER_MAPS, layered=True)
def layer_ensemble(
    models: Sequence[nn.Module], *, skip_first: int = 0, predictor: Predictor = whole_image
) -> Estimator:
    """Layer ensembles (Kushibar et al. 2022): the segmentation heads at several decoder depths of one multi-head
    network are the members, in one forward pass; ``skip_first`` drops the T deepest (coarsest) heads.

    The model must offer ``forward_heads(image) -> (M, B, K, *S)`` (``model.name = 'multihead_unet'``). The heads
    run through ``predictor`` stacked as one ``(B, M * K, *S)`` output, so sliding-window inference (each head's
    logits blended over windows) works for large 3D volumes as for a single-head network; the default predictor
    zero-pads to the network's size divisor and crops back.

    Raises:
        ValueError: if the model has fewer than 2 heads, or ``skip_first`` leaves fewer than 2.
    """
    model = _one(models, "layer_ensemble")
    heads = int(getattr(model, "num_heads", 1))
    if heads < 2 or not hasattr(model, "forward_heads"):
        raise ValueError(
            "Layer ensembles need a multi-head network (model.name = 'multihead_unet'), but this model has one head."
        )
    if isinstance(skip_first, bool) or not isinstance(skip_first, int) or not 0 <= skip_first <= heads - 2:
        raise ValueError(
            f"Expected `skip_first` to be an int in [0, {heads - 2}] for {heads} heads, but got {skip_first!r}."
        )
    stacked = _StackedHeads(model)

    @torch.no_grad()
    def estimate(image: torch.Tensor) -> Estimate:
        _check_image(image, model)
        model.eval()
        out = predictor(stacked, image)  # (B, M * K, *S)
        logits = out.reshape(out.shape[0], heads, -1, *out.shape[2:]).movedim(1, 0)[skip_first:]
        return _estimate(torch.stack([_softmax(h) for h in logits]))

    return estimate


@register_estimator("edue", maps=MEMBER_MAPS, layered=True)
def edue(models: Sequence[nn.Module], *, skip_first: int = 0, predictor: Predictor = whole_image) -> Estimator:
    """EDUE at inference (Abutalip et al. 2024): one pass of a multi-head network trained with ``--method edue``;
    the heads are the members (their variance gives the ``variance`` map and the SV image score). The computation
    is that of :func:`layer_ensemble`; the name records which training the run had.

    Raises:
        ValueError: as :func:`layer_ensemble`.
    """
    return layer_ensemble(models, skip_first=skip_first, predictor=predictor)
