"""Segmentation networks (MONAI U-Nets) by name, 2D and 3D."""

from .factory import (
    HEAD_UPSAMPLING,
    MODELS,
    ModelInfo,
    ModelSpec,
    SegmentationNet,
    build_model,
    get_model,
    list_models,
    register_model,
)

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
