"""Datasets: the in-memory case model, file formats behind a registry, a synthetic generator and MONAI transforms.

- :class:`Case`, :class:`DatasetInfo`, :class:`SegmentationDataset`: images ``(C, *S)`` float32 in the file's own
  axis order, one label map per annotator ``(A, *S)`` int64, the voxel-to-world affine and the source header.
- :func:`load_dataset` reads a folder in a registered format (:func:`list_formats`; ``"msd"``: the Medical
  Segmentation Decathlon / nnU-Net layout); :func:`write_msd_dataset` writes that layout.
- :func:`make_synthetic_dataset`: 2-D/3-D images with ambiguous boundaries and several simulated annotators.
- :func:`read_image`, :func:`save_like`: read one file; write an output map on a case's grid, atomically.
- :func:`resize_case`, :func:`resize_dataset`: resample to a coarser grid, the affine following.
- :func:`crop_to_annotations`: cut a case to a window around its annotators' structure, resampled to a fixed size.
- :func:`train_transforms`, :func:`eval_transforms`: MONAI dictionary transforms for training patches.

See ``docs/data.md``.
"""

from .case import Case, DatasetInfo, SegmentationDataset
from .crop import annotation_window, crop_case, crop_to_annotations
from .formats import DatasetFormat, get_format, list_formats, load_dataset, register_format, write_msd_dataset
from .io import read_image, save_like
from .resize import resample_case, resize_case, resize_dataset
from .synthetic import make_synthetic_dataset
from .transforms import eval_transforms, train_transforms

__all__ = [
    "Case",
    "DatasetFormat",
    "DatasetInfo",
    "SegmentationDataset",
    "annotation_window",
    "crop_case",
    "crop_to_annotations",
    "eval_transforms",
    "get_format",
    "list_formats",
    "load_dataset",
    "make_synthetic_dataset",
    "read_image",
    "register_format",
    "resample_case",
    "resize_case",
    "resize_dataset",
    "save_like",
    "train_transforms",
    "write_msd_dataset",
]
