"""The in-memory data model: one :class:`Case` per image, a :class:`DatasetInfo`, a :class:`SegmentationDataset`.

Axis conventions (the same for every format):

- ``image`` is ``(C, *S)`` float32, channels first; ``*S`` is ``(H, W)`` or ``(D, H, W)`` **in the file's own array
  axis order**: nibabel's voxel order for NIfTI (no reorientation, no transposes), rows then columns for PNG.
- ``labels`` is ``(A, *S)`` int64 in ``[0, K)``: one label map per annotator, on the image's grid.
- ``affine`` is the ``(4, 4)`` float64 voxel-to-world matrix (the identity for PNG and synthetic cases).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .names import safe_case_id

__all__ = ["FILE_KINDS", "Case", "DatasetInfo", "SegmentationDataset"]

FILE_KINDS: tuple[str, ...] = ("nifti", "png", "synthetic")
"""How outputs for a case are written by :func:`~selectseg.data.save_like`."""


@dataclass(frozen=True, eq=False)
class Case:
    """One image with its annotators' label maps and the geometry needed to write outputs on its grid.

    The constructor converts ``image`` to float32, integer ``labels`` to int64 and ``affine`` to float64; it checks
    shapes but not label values (the number of classes belongs to the dataset, see :class:`DatasetInfo`).

    Args:
        case_id: identifier, unique within a dataset (the file name stem for files on disk).
        image: the image, channels first.
        labels: one label map per annotator, or ``None`` for an unlabelled case.
        affine: voxel-to-world matrix.
        source: path of the (first) image file; ``None`` for synthetic cases.
        header: the nibabel header of the source image (``None`` for PNG and synthetic cases); used to write outputs
            with the same geometry.
        file_kind: ``"nifti"``, ``"png"`` or ``"synthetic"``: how outputs for this case are written (``"png"`` for
            any 2-D raster source: PNG, BMP, JPEG, TIFF).
        subject: the patient (or subject) the case belongs to, where the format records it (e.g. GlaS
            ``Grade.csv``); cross-validation splits keep a subject's cases together. ``None`` = the case is its own
            subject.

    Shape:
        image: ``(C, *S)`` float32. labels: ``(A, *S)`` int64. affine: ``(4, 4)`` float64.

    Raises:
        TypeError: if ``image``, ``labels`` or ``affine`` is not a numpy array, ``image`` or ``affine`` is not real,
            or ``labels`` does not hold integers.
        ValueError: if ``image`` is not 3-D or 4-D, is empty or holds NaN/inf (the message names the case and its
            file), ``labels`` has no annotator or a spatial shape other than the image's, ``affine`` is not
            ``(4, 4)``, ``case_id`` is empty or ``file_kind`` is unknown.

    Example:
        >>> case = Case("c0", np.zeros((1, 4, 5), np.float32), np.zeros((2, 4, 5), np.int64), np.eye(4), None)
        >>> case.spatial_dims, case.spatial_shape, case.num_annotators, case.spacing
        (2, (4, 5), 2, (1.0, 1.0))
    """

    case_id: str
    image: np.ndarray
    labels: np.ndarray | None
    affine: np.ndarray
    source: Path | None
    header: Any = field(default=None, repr=False)
    file_kind: str = "nifti"
    subject: str | None = None

    def __post_init__(self) -> None:
        if self.subject is not None and (not isinstance(self.subject, str) or not self.subject):
            raise ValueError(f"Expected `subject` to be a non-empty string or None, but got {self.subject!r}.")
        if not isinstance(self.case_id, str) or not self.case_id:
            raise ValueError(f"Expected `case_id` to be a non-empty string, but got {self.case_id!r}.")
        safe_case_id(self.case_id, self.source or "`case_id`")  # it becomes part of output file names
        if self.file_kind not in FILE_KINDS:
            raise ValueError(f"Expected `file_kind` to be one of {list(FILE_KINDS)}, but got {self.file_kind!r}.")
        image = _real_array("image", self.image, np.float32)
        if image.ndim not in (3, 4):
            raise ValueError(
                f"Expected `image` of case {self.case_id!r} to have shape (C, H, W) or (C, D, H, W), "
                f"but got shape {image.shape}."
            )
        if image.shape[0] < 1 or 0 in image.shape[1:]:
            raise ValueError(
                f"Expected `image` of case {self.case_id!r}{_from(self.source)} to have at least one channel and "
                f"a non-empty spatial shape, but got shape {image.shape}."
            )
        with np.errstate(over="ignore"):  # one cheap pass; count only when it fails (the sum may overflow)
            total = image.sum()
        if not np.isfinite(total):
            bad = int((~np.isfinite(image)).sum())
            if bad:
                raise ValueError(
                    f"Expected `image` of case {self.case_id!r}{_from(self.source)} to be finite, but got {bad} NaN "
                    "or infinite value(s); fix or drop the file (a NaN voxel makes every trained weight NaN)."
                )
        object.__setattr__(self, "image", image)
        if self.labels is not None:
            if not isinstance(self.labels, np.ndarray):
                raise TypeError(f"Expected `labels` to be a numpy array or None, but got {type(self.labels).__name__}.")
            if not np.issubdtype(self.labels.dtype, np.integer):
                raise TypeError(
                    f"Expected `labels` to hold integer labels, but case {self.case_id!r}{_from(self.source)} "
                    f"has dtype {self.labels.dtype}."
                )
            if self.labels.ndim != image.ndim or self.labels.shape[1:] != image.shape[1:]:
                raise ValueError(
                    f"Expected `labels` of case {self.case_id!r}{_from(self.source)} to have shape (A, *S) with "
                    f"*S = {image.shape[1:]} (the image's), but got shape {self.labels.shape}."
                )
            if self.labels.shape[0] < 1:
                raise ValueError(
                    f"Expected `labels` of case {self.case_id!r}{_from(self.source)} to hold at least one "
                    f"annotator's map (A >= 1), but got shape {self.labels.shape}; pass labels=None for an "
                    "unlabelled case."
                )

            object.__setattr__(self, "labels", self.labels.astype(np.int64, copy=False))
        affine = _real_array("affine", self.affine, np.float64)
        if affine.shape != (4, 4):
            raise ValueError(f"Expected `affine` to have shape (4, 4), but got shape {affine.shape}.")
        object.__setattr__(self, "affine", affine)
        if self.source is not None:
            object.__setattr__(self, "source", Path(self.source))

    def __repr__(self) -> str:
        labels = "None" if self.labels is None else f"{self.labels.shape} int64"
        return (
            f"Case(case_id={self.case_id!r}, image={self.image.shape} float32, labels={labels}, "
            f"spacing={tuple(round(s, 4) for s in self.spacing)}, file_kind={self.file_kind!r}, source={self.source})"
        )

    @property
    def spatial_dims(self) -> int:
        """2 for ``(H, W)`` images, 3 for ``(D, H, W)`` volumes."""
        return self.image.ndim - 1

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """``*S``: the image shape without its channel axis."""
        return tuple(int(s) for s in self.image.shape[1:])

    @property
    def num_annotators(self) -> int:
        """``A``, the number of label maps (0 for an unlabelled case)."""
        return 0 if self.labels is None else int(self.labels.shape[0])

    @property
    def spacing(self) -> tuple[float, ...]:
        """Voxel size along each spatial axis: the length of the affine's first ``spatial_dims`` columns."""
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, : self.spatial_dims], axis=0))


@dataclass(frozen=True)
class DatasetInfo:
    """What the label values and the image channels mean.

    Args:
        name: dataset name.
        class_names: one name per label value (index = value), background first; ``K = len(class_names) >= 2``.
        channel_names: one name per image channel; ``C = len(channel_names)``.
        spatial_dims: 2 or 3.
        format: the registry name of the format read (``"msd"``, ...) or ``"synthetic"``.

    Raises:
        ValueError: if there are fewer than 2 classes or no channel, a name is empty, a class name is repeated
            (channel names may repeat: nnU-Net uses them as normalisation schemes), or ``spatial_dims`` is not 2 or 3.

    Example:
        >>> DatasetInfo("demo", ("background", "tumour"), ("T2",), 3, "msd").num_classes
        2
    """

    name: str
    class_names: tuple[str, ...]
    channel_names: tuple[str, ...]
    spatial_dims: int
    format: str

    def __post_init__(self) -> None:
        for attr, minimum in (("class_names", 2), ("channel_names", 1)):
            names = tuple(getattr(self, attr))
            object.__setattr__(self, attr, names)
            if len(names) < minimum:
                raise ValueError(f"Expected `{attr}` to hold at least {minimum} name(s), but got {len(names)}.")
            if any(not isinstance(n, str) or not n for n in names):
                raise ValueError(f"Expected `{attr}` to hold non-empty strings, but got {names}.")
        if len(set(self.class_names)) != len(self.class_names):
            raise ValueError(f"Expected `class_names` to be distinct, but got {self.class_names}.")
        if self.spatial_dims not in (2, 3):
            raise ValueError(f"Expected `spatial_dims` to be 2 or 3, but got {self.spatial_dims!r}.")

    @property
    def num_classes(self) -> int:
        """``K``, the number of classes including background."""
        return len(self.class_names)

    @property
    def num_channels(self) -> int:
        """``C``, the number of image channels."""
        return len(self.channel_names)


@dataclass(frozen=True)
class SegmentationDataset:
    """An ordered, immutable collection of cases with their :class:`DatasetInfo`.

    Args:
        info: what the labels and channels mean.
        cases: the cases, in a fixed order (sorted by case id for datasets read from disk).

    Raises:
        ValueError: if a case has a channel count or a number of spatial dimensions other than ``info``'s, a label
            outside ``[0, K)`` (K = ``info.num_classes``; the message names the case, its file and the classes), or
            two cases share a case id.

    Example:
        >>> info = DatasetInfo("demo", ("background", "fg"), ("gray",), 2, "synthetic")
        >>> case = Case("c0", np.zeros((1, 4, 4), np.float32), None, np.eye(4), None, file_kind="synthetic")
        >>> ds = SegmentationDataset(info, (case,))
        >>> len(ds), ds[0].case_id, ds.num_annotators
        (1, 'c0', 0)
    """

    info: DatasetInfo
    cases: tuple[Case, ...]

    def __post_init__(self) -> None:
        cases = tuple(self.cases)
        object.__setattr__(self, "cases", cases)
        seen: set[str] = set()
        for case in cases:
            if case.image.shape[0] != self.info.num_channels:
                raise ValueError(
                    f"Expected every case to have {self.info.num_channels} channel(s) {self.info.channel_names}, "
                    f"but case {case.case_id!r}{_from(case.source)} has {case.image.shape[0]}."
                )
            if case.spatial_dims != self.info.spatial_dims:
                raise ValueError(
                    f"Expected every case to be {self.info.spatial_dims}-D, "
                    f"but case {case.case_id!r} is {case.spatial_dims}-D with shape {case.spatial_shape}."
                )
            if case.labels is not None and case.labels.size:
                low, high = int(case.labels.min()), int(case.labels.max())
                if low < 0 or high >= self.info.num_classes:
                    raise ValueError(
                        f"Expected the labels of case {case.case_id!r}{_from(case.source)} to lie in "
                        f"[0, {self.info.num_classes}) (classes {list(self.info.class_names)}), but got values in "
                        f"[{low}, {high}]."
                    )
            if case.case_id in seen:
                raise ValueError(f"Expected distinct case ids, but got {case.case_id!r} twice.")
            seen.add(case.case_id)

    def __repr__(self) -> str:
        return f"SegmentationDataset(info={self.info!r}, cases=<{len(self.cases)} cases>)"

    def __len__(self) -> int:
        return len(self.cases)

    def __getitem__(self, index: int) -> Case:
        return self.cases[index]

    def __iter__(self) -> Iterator[Case]:
        return iter(self.cases)

    @property
    def num_annotators(self) -> int:
        """The largest number of annotators of any case (0 when no case is labelled)."""
        return max((case.num_annotators for case in self.cases), default=0)


def _from(source: Any) -> str:
    """`` (file '...')`` for messages about a case read from disk, nothing for a synthetic case."""
    return "" if source is None else f" (file {str(source)!r})"


def _real_array(name: str, value: Any, dtype: type[np.floating[Any]]) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise TypeError(f"Expected `{name}` to be a numpy array, but got {type(value).__name__}.")
    if not (np.issubdtype(value.dtype, np.integer) or np.issubdtype(value.dtype, np.floating)):
        raise TypeError(f"Expected `{name}` to hold real numbers, but got dtype {value.dtype}.")
    return value.astype(dtype, copy=False)
