"""The data set a config names, read for training or evaluation."""

from __future__ import annotations

from ..data import SegmentationDataset, load_dataset, make_synthetic_dataset
from .config import DataConfig

__all__ = ["load_cases"]


def load_cases(config: DataConfig, *, split: str = "train") -> SegmentationDataset:
    """The data set a config names: the synthetic generator or a folder read through the format registry (with
    ``data.crop_size`` as the reader's ``crop_size`` option when set), resampled by ``data.scale`` when below 1.

    Raises:
        ValueError: from the reader, naming the file at fault, or when the format's reader takes no ``crop_size``.
    """
    dataset = _read(config, split)
    if config.scale == 1.0:
        return dataset
    from ..data.resize import resize_dataset  # torch and MONAI: only when resampling

    return resize_dataset(dataset, config.scale)


def _read(config: DataConfig, split: str) -> SegmentationDataset:
    if config.path == "synthetic":
        s = config.synthetic
        return make_synthetic_dataset(
            split=split,
            num_cases=s.num_train if split == "train" else s.num_test,
            spatial_dims=s.spatial_dims,
            size=s.size,
            num_classes=s.num_classes,
            num_annotators=s.num_annotators,
            seed=s.seed,
        )
    options = {"crop_size": config.crop_size} if config.crop_size else None
    return load_dataset(config.path, split=split, format=config.format, options=options)
