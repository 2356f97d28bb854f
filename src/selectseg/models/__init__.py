"""Segmentation networks (MONAI U-Nets) by name, 2D and 3D."""

from .factory import ModelSpec, SegmentationNet, build_model, get_model, list_models, register_model

__all__ = ["ModelSpec", "SegmentationNet", "build_model", "get_model", "list_models", "register_model"]
