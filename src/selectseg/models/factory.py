"""Segmentation networks by name: thin factories over MONAI's U-Nets, one registry, 2D and 3D.

Every registered network maps an image ``(B, C, *S)`` to logits ``(B, K, *S)`` (K-class softmax everywhere, binary
is K = 2) and is built from a :class:`ModelSpec`, the complete description of the architecture. The spec is saved
in every checkpoint, so a checkpoint is only ever loaded into the network it came from.

Adding a network is one decorated function::

    @register_model("my_net")
    def my_net(spec: ModelSpec) -> nn.Module: ...
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .._registry import Registry
from .._validation import check_positive_int, look_up_option

__all__ = [
    "HEAD_UPSAMPLING",
    "MODELS",
    "ModelInfo",
    "ModelSpec",
    "SegmentationNet",
    "build_model",
    "get_model",
    "list_models",
    "register_model",
]

ModelFactory = Callable[["ModelSpec"], nn.Module]


@dataclass(frozen=True)
class ModelInfo:
    """What the model registry knows of a network besides its factory.

    Attributes:
        min_levels: the fewest resolution levels (``len(spec.channels)``) the network can be built with.
    """

    min_levels: int = 2


MODELS: Registry[ModelFactory, ModelInfo] = Registry("model", ModelInfo)
"""The segmentation networks by name: ``factory(spec) -> nn.Module``, with :class:`ModelInfo`."""
HEAD_UPSAMPLING = ("bilinear", "nearest")
"""How ``multihead_unet`` brings its coarser heads' logits to full resolution (:attr:`ModelSpec.head_upsample`)."""
_LEGACY_HEAD_UPSAMPLE = {"multihead_unet": "nearest"}  # what a saved spec without the field was built with


@dataclass(frozen=True)
class ModelSpec:
    """The full description of a segmentation network (saved with every checkpoint).

    Attributes:
        name: a registered model name (see :func:`list_models`).
        spatial_dims: 2 or 3.
        in_channels: image channels C.
        num_classes: output classes K >= 2 (background included).
        channels: feature channels per resolution level, coarsest last; ``len(channels) - 1`` downsamplings by 2.
        num_res_units: residual units per block (MONAI ``UNet``); ignored by ``dynunet``.
        dropout: dropout probability in [0, 1) (0 = none); kept in the network for MC dropout.
        norm: normalisation layer, ``"instance"`` or ``"batch"``.
        head_upsample: how ``multihead_unet`` upsamples its coarser heads' logits to full resolution:
            ``"bilinear"`` (default: bilinear in 2D, trilinear in 3D, ``align_corners=False``) or ``"nearest"``
            (MONAI's deep-supervision default: each coarse logit copied over its block, whose edges then add
            between-head variance that no annotator put there). Layer Ensembles' code also upsamples its heads
            bilinearly, with ``nn.UpsamplingBilinear2d`` (``align_corners=True``); ``align_corners=False`` is kept
            here because with stride-2 downsampling a coarse voxel's centre lies at the centre of the block it covers,
            which is where ``align_corners=False`` puts it (``True`` shifts the heads by up to ``(s - 1) / 2`` voxels
            towards the borders, for an upsampling factor ``s``). Other networks ignore the field. A saved
            ``multihead_unet`` spec without this field (checkpoints written before it existed) loads as
            ``"nearest"``, what those networks were trained with.
    """

    name: str = "unet"
    spatial_dims: int = 2
    in_channels: int = 1
    num_classes: int = 2
    channels: tuple[int, ...] = (16, 32, 64, 128)
    num_res_units: int = 2
    dropout: float = 0.0
    norm: str = "instance"
    head_upsample: str = "bilinear"

    def __post_init__(self) -> None:
        min_levels = MODELS.entry(self.name, argument="model.name").metadata.min_levels
        if self.spatial_dims not in (2, 3):
            raise ValueError(f"Expected `spatial_dims` to be 2 or 3, but got {self.spatial_dims!r}.")
        check_positive_int("in_channels", self.in_channels)
        check_positive_int("num_classes", self.num_classes, minimum=2)
        if not isinstance(self.channels, tuple) or len(self.channels) < 2:
            raise ValueError(
                f"Expected `channels` to be a tuple of at least 2 positive ints, but got {self.channels!r}."
            )
        for c in self.channels:
            check_positive_int("channels", c)
        if len(self.channels) < min_levels:
            raise ValueError(
                f"Expected `channels` to have at least {min_levels} levels for model {self.name!r}, "
                f"but got {self.channels!r}."
            )
        if isinstance(self.num_res_units, bool) or not isinstance(self.num_res_units, int) or self.num_res_units < 0:
            raise ValueError(f"Expected `num_res_units` to be a non-negative int, but got {self.num_res_units!r}.")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ValueError(f"Expected `dropout` to be a float in [0, 1), but got {self.dropout!r}.")
        look_up_option("model.norm", self.norm, ("instance", "batch"))
        look_up_option("model.head_upsample", self.head_upsample, HEAD_UPSAMPLING)

    @property
    def size_divisor(self) -> int:
        """Spatial sizes must be multiples of this (``2 ** downsamplings``) for a whole-image forward pass."""
        return 2 ** (len(self.channels) - 1)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (lists for tuples), for checkpoints and JSON."""
        out = dataclasses.asdict(self)
        out["channels"] = list(self.channels)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        """Inverse of :meth:`to_dict`. A ``multihead_unet`` spec without ``head_upsample`` (saved before the field
        existed) gets ``"nearest"``, the upsampling it was built with.

        Raises:
            ValueError: on unknown keys or invalid values.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Unknown model spec key(s) {unknown}; expected a subset of {sorted(known)}.")
        values = dict(data)
        if "channels" in values:
            values["channels"] = tuple(values["channels"])
        if "head_upsample" not in values and values.get("name") in _LEGACY_HEAD_UPSAMPLE:
            values["head_upsample"] = _LEGACY_HEAD_UPSAMPLE[values["name"]]
        return cls(**values)


class SegmentationNet(nn.Module):
    """A registered network with its :class:`ModelSpec` attached.

    Shape:
        forward(image ``(B, C, *S)``) -> logits ``(B, K, *S)``; ``*S`` multiples of ``spec.size_divisor``.
    """

    def __init__(self, spec: ModelSpec, net: nn.Module) -> None:
        super().__init__()
        self.spec = spec
        self.net = net

    def forward(self, image: torch.Tensor, heads: bool = False) -> torch.Tensor:
        """Logits ``(B, K, *S)``; with ``heads=True`` every head's, ``(M, B, K, *S)``: the heads are members on the
        glossary's M axis (see :meth:`forward_heads`; the keyword form lets DistributedDataParallel see the call)."""
        if heads:
            return self.forward_heads(image)
        out: torch.Tensor = self.net(image)
        return out

    @property
    def num_heads(self) -> int:
        """Number of segmentation heads, the size M of :meth:`forward_heads`' member axis (1 for single-output
        networks)."""
        return len(self.spec.channels) - 1 if hasattr(self.net, "forward_heads") else 1

    def forward_heads(self, image: torch.Tensor) -> torch.Tensor:
        """Logits of every head, deepest first, the full-resolution output last: the heads are members, on their
        own leading M axis (layer ensembles and EDUE use them as such).

        Shape:
            image ``(B, C, *S)`` -> ``(M, B, K, *S)``, M = :attr:`num_heads`.

        Raises:
            ValueError: if the network has a single output (build it as ``multihead_unet``).
        """
        if not hasattr(self.net, "forward_heads"):
            raise ValueError(
                f"Model {self.spec.name!r} has a single output head; layer ensembles and EDUE need a multi-head "
                "network (model.name = 'multihead_unet')."
            )
        forward_heads: Callable[[torch.Tensor], torch.Tensor] = self.net.forward_heads  # type: ignore[assignment]
        return forward_heads(image)


def register_model(name: str, *, min_levels: int = 2) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator registering ``factory(spec) -> nn.Module`` under ``name`` in :data:`MODELS`, for specs with at
    least ``min_levels`` resolution levels (``len(spec.channels)``).

    Raises:
        TypeError: if ``name`` is not a string.
        ValueError: if ``name`` is invalid or already registered.
    """
    check_positive_int("min_levels", min_levels, minimum=2)
    return MODELS.register(name, min_levels=min_levels)


def list_models() -> list[str]:
    """Names of the registered models, sorted."""
    return MODELS.names()


def get_model(name: str) -> ModelFactory:
    """The factory registered under ``name``.

    Raises:
        ValueError: if no model has that name (the message suggests a near match).
    """
    return MODELS.get(name)


def build_model(spec: ModelSpec) -> SegmentationNet:
    """Build the network a spec describes, in training mode, with freshly initialised weights.

    Args:
        spec: the architecture.

    Returns:
        A :class:`SegmentationNet` mapping ``(B, C, *S)`` to logits ``(B, K, *S)``.

    Raises:
        TypeError: if ``spec`` is not a :class:`ModelSpec`.

    Example:
        >>> net = build_model(ModelSpec(spatial_dims=2, in_channels=1, num_classes=3, channels=(4, 8)))
        >>> tuple(net(torch.zeros(1, 1, 8, 8)).shape)
        (1, 3, 8, 8)
    """
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"Expected `spec` to be a ModelSpec, but got {type(spec).__name__}.")
    return SegmentationNet(spec, MODELS.get(spec.name)(spec))


def _norm(spec: ModelSpec) -> Any:
    return ("instance", {"affine": True}) if spec.norm == "instance" else "batch"


@register_model("unet")
def unet(spec: ModelSpec) -> nn.Module:
    """MONAI ``UNet`` (residual units, strided convolutions), as in Ding et al.'s 2D/3D U-Nets."""
    from monai.networks.nets import UNet

    return UNet(
        spatial_dims=spec.spatial_dims,
        in_channels=spec.in_channels,
        out_channels=spec.num_classes,
        channels=spec.channels,
        strides=(2,) * (len(spec.channels) - 1),
        num_res_units=spec.num_res_units,
        norm=_norm(spec),
        dropout=spec.dropout,
    )


class _MainOutput(nn.Module):
    """DynUNet returns its deep-supervision heads stacked in training mode; keep the full-resolution one."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(image)
        return out[:, 0] if self.training and out.ndim == image.ndim + 1 else out


def _dynunet(spec: ModelSpec, **extra: Any) -> nn.Module:
    """MONAI ``DynUNet`` for a spec: 3x3 kernels, stride-2 downsamplings, transposed-conv upsampling."""
    from monai.networks.nets import DynUNet

    levels = len(spec.channels)
    net: nn.Module = DynUNet(
        spatial_dims=spec.spatial_dims,
        in_channels=spec.in_channels,
        out_channels=spec.num_classes,
        kernel_size=[3] * levels,
        strides=[1] + [2] * (levels - 1),
        upsample_kernel_size=[2] * (levels - 1),
        filters=list(spec.channels),
        norm_name=_norm(spec),
        dropout=spec.dropout or None,
        res_block=spec.num_res_units > 0,
        **extra,
    )
    return net


@register_model("dynunet", min_levels=3)  # MONAI DynUNet needs >= 3 levels
def dynunet(spec: ModelSpec) -> nn.Module:
    """MONAI ``DynUNet`` (the nnU-Net architecture), 3x3 kernels, stride-2 downsamplings, transposed-conv upsampling."""
    return _MainOutput(_dynunet(spec))


class _MultiHead(nn.Module):
    """DynUNet with deep-supervision heads: ``forward`` gives the full-resolution output in every mode;
    ``forward_heads`` all heads, the coarser ones' logits upsampled to full resolution with ``mode``."""

    def __init__(self, net: nn.Module, mode: str, spatial_dims: int) -> None:
        super().__init__()
        self.net = net
        self.mode = mode if mode == "nearest" else ("bilinear" if spatial_dims == 2 else "trilinear")

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(image)
        return out[:, 0] if out.ndim == image.ndim + 1 else out

    def forward_heads(self, image: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(image)
        main = out[:, 0] if out.ndim == image.ndim + 1 else out  # training mode stacks MONAI's nearest heads: unused
        size = main.shape[2:]
        stored: list[torch.Tensor] = self.net.heads  # type: ignore[assignment]  # the heads' own logits, coarse
        if self.mode == "nearest":
            heads = [torch.nn.functional.interpolate(h, size) for h in stored]
        else:
            heads = [torch.nn.functional.interpolate(h, size, mode=self.mode, align_corners=False) for h in stored]
        return torch.stack([*reversed(heads), main])


@register_model("multihead_unet", min_levels=3)
def multihead_unet(spec: ModelSpec) -> nn.Module:
    """MONAI ``DynUNet`` with a segmentation head (1x1 conv at its decoder depth's resolution, logits upsampled to
    full resolution as ``spec.head_upsample`` says) at every decoder depth below the top: ``len(channels) - 1`` heads
    in all, the last one the full-resolution output. The heads are what layer ensembles (Kushibar et al. 2022) and
    EDUE use as members; ``forward`` returns the full-resolution head."""
    net = _dynunet(spec, deep_supervision=True, deep_supr_num=len(spec.channels) - 2)
    return _MultiHead(net, spec.head_upsample, spec.spatial_dims)
