"""The Medical Segmentation Decathlon / nnU-Net folder layout (format ``"msd"``): reader and writer.

Two ``dataset.json`` styles are read (see ``docs/data.md`` for examples):

- **MSD style** (also nnU-Net v1): ``"training": [{"image": "./imagesTr/x.nii.gz", "label": "./labelsTr/x.nii.gz"}]``,
  ``"test": ["./imagesTs/y.nii.gz"]``, ``"labels": {"0": "background", ...}``, ``"modality": {"0": "CT"}``.
  Multi-modal images are one 4-D file ``(X, Y, Z, C)``; where the listed file is absent, nnU-Net v1 channel files
  ``x_0000.nii.gz, x_0001.nii.gz, ...`` are read instead. Extension: ``"label"`` may be a list of paths, one per
  annotator. Test labels: an entry's ``"label"``, else ``labelsTs/<image file name>`` when ``labelsTs/`` exists.
- **nnU-Net v2 style**: ``"channel_names": {"0": "T2"}``, ``"labels": {"background": 0, ...}``,
  ``"file_ending": ".nii.gz"``; cases are found from ``imagesTr/<case>_XXXX<ending>`` (one file per channel, or one
  RGB PNG for three channels) and labelled by ``labelsTr/<case><ending>``. Extension: ``labelsTr/<case>_a1<ending>,
  <case>_a2<ending>, ...`` are the maps of annotators 1..A; where they exist they are the case's labels and a plain
  ``labelsTr/<case><ending>`` (for instance a consensus kept for nnU-Net itself) is not read. Test cases come from
  ``imagesTs/``, labelled the same way from ``labelsTs/`` when that folder exists.

Image arrays keep the file's axis order (nibabel's voxel order; rows, columns for PNG), channels are moved first,
and a NIfTI image stored as ``(X, Y, 1)`` (or ``(X, Y, 1, C)``) is a 2-D case. Images are cast to float32 and not
normalised. Labels must be integer-valued (floats such as ``1.0`` are accepted) and lie in ``[0, K)``.

Every file read, listed or found, must lie inside the dataset folder once ``..`` and symbolic links are resolved
(an absolute path or ``../`` in ``dataset.json`` is refused before the file is looked for); ``allow_outside_root``
(or ``SELECTSEG_ALLOW_OUTSIDE_DATA=1``) lifts this for data kept elsewhere on purpose. Case ids must be usable as file
names (:func:`~selectseg.data.names.safe_case_id`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..case import Case, DatasetInfo, SegmentationDataset
from ..io import NIFTI_SUFFIXES, PILLOW_SUFFIXES, file_suffix, read_image
from ..names import confine, outside_root_allowed, safe_case_id
from ._nifti import integer_labels
from .registry import register_format

__all__ = ["ANNOTATOR_FILE", "CASE_ID", "DATASET_JSON", "FOLDERS", "load_msd"]

DATASET_JSON = "dataset.json"
CASE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
"""What a case id may be: a letter or digit, then letters, digits, ``.``, ``_`` or ``-`` (safe as a file name)."""
_CHANNEL_FILE = re.compile(r"(.+)_(\d{4})")
ANNOTATOR_FILE = re.compile(r"(.+)_a(\d+)")
FOLDERS = {"train": ("imagesTr", "labelsTr"), "test": ("imagesTs", "labelsTs")}


@dataclass(frozen=True)
class _CaseFiles:
    case_id: str
    images: list[Path]
    labels: list[Path] | None


def _detect(root: Path) -> bool:
    return (root / DATASET_JSON).is_file()


@register_format("msd", detect=_detect, description=f"a {DATASET_JSON} file (MSD or nnU-Net layout)", detect_order=10)
def load_msd(root: Path, split: str, *, allow_outside_root: bool | None = None) -> SegmentationDataset:
    """Read an MSD / nnU-Net folder (called through :func:`~selectseg.data.load_dataset`, which checks its input).

    Args:
        root: an existing dataset folder.
        split: ``"train"``, ``"test"`` or ``"all"``.
        allow_outside_root: let files outside ``root`` be read; None: as ``load_dataset`` or the environment
            variable ``SELECTSEG_ALLOW_OUTSIDE_DATA`` says (:func:`~selectseg.data.names.outside_root_allowed`).

    Returns:
        The dataset, cases sorted by case id (train cases first for ``"all"``).

    Raises:
        ValueError: naming the file at fault, if dataset.json is missing, not valid JSON or lacks keys, a listed or
            expected image or label file is missing or unreadable, shapes disagree (channels of a case, image and
            label, annotators), a label value is not an integer in ``[0, K)``, a case has a channel count other than
            dataset.json's, cases mix 2-D and 3-D, or the split has no case (``"all"`` needs training cases); naming
            the dataset.json entry, if it names a file outside ``root`` (absolute, ``..``, or through a symbolic
            link) and ``allow_outside_root`` is off; if a case id holds ``/``, ``\\``, ``..`` or a control character.

    Example:
        >>> import tempfile
        >>> from selectseg.data import make_synthetic_dataset, write_msd_dataset
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     root = write_msd_dataset(f"{tmp}/d", make_synthetic_dataset(num_cases=1, size=16, num_annotators=1))
        ...     load_msd(root, "train")[0].labels.shape
        (1, 16, 16)
    """
    json_path = root / DATASET_JSON
    if not json_path.is_file():
        raise ValueError(f"Expected {json_path} to exist (the 'msd' format needs it), but it does not.")
    meta = _read_json(json_path)
    allow = outside_root_allowed(allow_outside_root)
    if "training" in meta:
        _require(meta, json_path, ("labels", "training"), "MSD style")
        channels = meta.get("modality", meta.get("channel_names"))
        if channels is None:
            raise ValueError(f"Expected {json_path} (MSD style) to hold the key 'modality', but it does not.")

        def listing(which: str, required: bool) -> list[_CaseFiles]:
            return _list_msd_style(root, meta, json_path, which, required, allow)

    elif "channel_names" in meta or "file_ending" in meta:
        _require(meta, json_path, ("labels", "channel_names", "file_ending"), "nnU-Net v2 style")
        channels = meta["channel_names"]
        ending = meta["file_ending"]
        if not isinstance(ending, str) or ending.lower() not in NIFTI_SUFFIXES + PILLOW_SUFFIXES:
            raise ValueError(
                f"Expected 'file_ending' in {json_path} to be one of {list(NIFTI_SUFFIXES + PILLOW_SUFFIXES)}, "
                f"but got {ending!r}."
            )

        def listing(which: str, required: bool) -> list[_CaseFiles]:
            return _list_nnunet_style(root, which, ending, required, allow)

    else:
        raise ValueError(
            f"Expected {json_path} to hold 'training' (MSD style) or 'channel_names' and 'file_ending' "
            f"(nnU-Net v2 style), but it holds the keys {sorted(meta)}."
        )
    class_names = _class_names(meta["labels"], json_path)
    channel_names = _channel_names(channels, json_path)
    name = meta.get("name") if isinstance(meta.get("name"), str) and meta.get("name") else root.name

    cases: list[Case] = []
    for which in ("train", "test") if split == "all" else (split,):
        files = listing(which, which == "train" or split == "test")  # "all" tolerates a missing test split
        cases.extend(_read_case(f, len(channel_names), len(class_names), json_path) for f in files)
    first = cases[0]
    for case in cases:
        if case.spatial_dims != first.spatial_dims:
            raise ValueError(
                f"Expected every image to be {first.spatial_dims}-D like {first.source}, but {case.source} is "
                f"{case.spatial_dims}-D with shape {case.spatial_shape}."
            )
    info = DatasetInfo(str(name), class_names, channel_names, first.spatial_dims, "msd")
    return SegmentationDataset(info, tuple(cases))


# ----------------------------------------------------------------------------------------------------- dataset.json


def _read_json(json_path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"Expected {json_path} to hold valid JSON, but it does not: {err}.") from err
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"Could not read {json_path}: {err}") from err
    if not isinstance(meta, dict):
        raise ValueError(f"Expected {json_path} to hold a JSON object, but it holds a {type(meta).__name__}.")
    return meta


def _require(meta: dict[str, Any], json_path: Path, keys: tuple[str, ...], style: str) -> None:
    missing = [k for k in keys if k not in meta]
    if missing:
        raise ValueError(f"Expected {json_path} ({style}) to hold the keys {list(keys)}, but {missing} are missing.")


def _class_names(labels: Any, json_path: Path) -> tuple[str, ...]:
    if not isinstance(labels, dict) or len(labels) < 2:
        raise ValueError(
            f"Expected 'labels' in {json_path} to map at least 2 label values to names, but got {labels!r}."
        )
    by_value: dict[int, str] = {}
    for key, value in labels.items():
        if isinstance(value, int) and not isinstance(value, bool):  # nnU-Net v2: {"background": 0}
            index, name = value, key
        elif isinstance(key, str) and key.isdigit() and isinstance(value, str):  # MSD: {"0": "background"}
            index, name = int(key), value
        else:
            raise ValueError(
                f"Expected 'labels' in {json_path} to map names to integer values or value strings to names, but "
                f"got {key!r}: {value!r} (nnU-Net region-based labels are not supported)."
            )
        if index in by_value or not name:
            raise ValueError(
                f"Expected 'labels' in {json_path} to give each value one non-empty name, but got {labels}."
            )
        by_value[index] = name
    if sorted(by_value) != list(range(len(by_value))):
        raise ValueError(
            f"Expected the label values in {json_path} to be 0..{len(by_value) - 1}, but got {sorted(by_value)}."
        )
    names = tuple(by_value[i] for i in range(len(by_value)))
    if len(set(names)) != len(names):
        raise ValueError(f"Expected distinct label names in {json_path}, but got {list(names)}.")
    return names


def _channel_names(channels: Any, json_path: Path) -> tuple[str, ...]:
    if (
        not isinstance(channels, dict)
        or not channels
        or sorted(channels) != sorted(str(i) for i in range(len(channels)))
        or not all(isinstance(v, str) and v for v in channels.values())
    ):
        raise ValueError(
            f"Expected the channel names in {json_path} to map '0', '1', ... to non-empty names, but got {channels!r}."
        )
    return tuple(channels[str(i)] for i in range(len(channels)))


# -------------------------------------------------------------------------------------------------------- listings


def _list_msd_style(
    root: Path, meta: dict[str, Any], json_path: Path, which: str, required: bool, allow: bool
) -> list[_CaseFiles]:
    key = "training" if which == "train" else "test"
    entries = meta.get(key, [])
    if not isinstance(entries, list):
        raise ValueError(f"Expected '{key}' in {json_path} to be a list, but got {type(entries).__name__}.")
    if not entries:
        if required:
            raise ValueError(f"Expected {json_path} to list {which} cases under '{key}', but it lists none.")
        return []
    labels_ts = root / FOLDERS["test"][1]
    out: dict[str, _CaseFiles] = {}
    for i, entry in enumerate(entries):
        if isinstance(entry, str):
            image, label = entry, None
        elif isinstance(entry, dict) and isinstance(entry.get("image"), str):
            image, label = entry["image"], entry.get("label")
        else:
            raise ValueError(
                f"Expected entry {i} of '{key}' in {json_path} to be an image path or "
                f"{{'image': path, 'label': path or [paths]}}, but got {entry!r}."
            )
        where = f"entry {i} of '{key}' in {json_path}"
        image_path = confine(root, root / image, f"{where} ('image': {image!r})", allow_outside=allow)
        labels: list[Path] | None
        if label is None:
            if which == "train":
                raise ValueError(f"Expected {where} to have a 'label', but it has none.")
            labels = None
            if labels_ts.is_dir():
                what = f"{where} (its test label {FOLDERS['test'][1]}/{image_path.name})"
                labels = [confine(root, labels_ts / image_path.name, what, allow_outside=allow)]
        elif isinstance(label, str):
            labels = [confine(root, root / label, f"{where} ('label': {label!r})", allow_outside=allow)]
        elif isinstance(label, list) and label and all(isinstance(p, str) for p in label):
            labels = [confine(root, root / p, f"{where} ('label': {p!r})", allow_outside=allow) for p in label]
        else:
            raise ValueError(
                f"Expected the 'label' of entry {i} of '{key}' in {json_path} to be a path or a non-empty list of "
                f"paths (one per annotator), but got {label!r}."
            )
        case_id = safe_case_id(_strip_ending(image_path.name), f"{where} ('image': {image!r})")
        if case_id in out:
            raise ValueError(f"Expected distinct images in '{key}' of {json_path}, but {image!r} appears twice.")
        out[case_id] = _CaseFiles(case_id, _nnunet_v1_channels(root, image_path, where, allow), labels)
    return [out[k] for k in sorted(out)]


def _nnunet_v1_channels(root: Path, image_path: Path, where: str, allow: bool) -> list[Path]:
    """The listed file (already confined), or where it is absent the nnU-Net v1 channel files ``<case>_0000<ending>,
    ...`` beside it, each confined to ``root`` before it is looked for."""
    if image_path.exists():
        return [image_path]
    ending = file_suffix(image_path)
    stem = image_path.name[: len(image_path.name) - len(ending)]
    files: list[Path] = []
    while True:
        candidate = image_path.with_name(f"{stem}_{len(files):04d}{image_path.name[len(stem) :]}")
        confine(root, candidate, f"{where} (its channel file {candidate.name})", allow_outside=allow)
        if not candidate.is_file():
            return files or [image_path]
        files.append(candidate)


def _list_nnunet_style(root: Path, which: str, ending: str, required: bool, allow: bool) -> list[_CaseFiles]:
    images_dir, labels_dir = (root / name for name in FOLDERS[which])
    channels: dict[str, dict[int, Path]] = {}
    if images_dir.is_dir():
        for f in sorted(images_dir.iterdir()):
            if f.name.startswith(".") or not f.name.endswith(ending):
                continue
            confine(root, f, f"image file {f}", allow_outside=allow)
            if not f.is_file():
                continue
            match = _CHANNEL_FILE.fullmatch(f.name[: len(f.name) - len(ending)])
            if match is None:
                raise ValueError(
                    f"Expected the image files in {images_dir} to be named <case>_XXXX{ending} (XXXX: 4-digit "
                    f"channel index), but found {f.name!r}."
                )
            channels.setdefault(safe_case_id(match[1], f), {})[int(match[2])] = f
    if not channels:
        if required:
            raise ValueError(f"Expected image files <case>_0000{ending} in {images_dir}, but found none.")
        return []
    labels = _label_files(root, images_dir, labels_dir, ending, set(channels), allow) if labels_dir.is_dir() else None
    if labels is None and which == "train":
        raise ValueError(f"Expected folder {labels_dir} with the labels of {images_dir}, but it does not exist.")
    out = []
    for case_id in sorted(channels):
        files = channels[case_id]
        for index in range(max(files) + 1):
            if index not in files:
                raise ValueError(
                    f"Expected image file {images_dir / f'{case_id}_{index:04d}{ending}'} (channel {index} of case "
                    f"{case_id!r}), but it does not exist."
                )
        out.append(_CaseFiles(case_id, [files[i] for i in sorted(files)], None if labels is None else labels[case_id]))
    return out


def _label_files(
    root: Path, images_dir: Path, labels_dir: Path, ending: str, case_ids: set[str], allow: bool
) -> dict[str, list[Path]]:
    plain: dict[str, Path] = {}
    annotators: dict[str, dict[int, Path]] = {}
    for f in sorted(labels_dir.iterdir()):
        if f.name.startswith(".") or not f.name.endswith(ending):
            continue
        confine(root, f, f"label file {f}", allow_outside=allow)
        if not f.is_file():
            continue
        stem = f.name[: len(f.name) - len(ending)]
        if stem in case_ids:
            plain[stem] = f
            continue
        match = ANNOTATOR_FILE.fullmatch(stem)
        if match is not None and match[1] in case_ids:
            k = int(match[2])
            if k < 1 or k in annotators.get(match[1], {}):
                raise ValueError(f"Expected annotator numbers 1, 2, ... in {labels_dir}, but found {f.name!r}.")
            annotators.setdefault(match[1], {})[k] = f
            continue
        owner = stem if match is None else match[1]
        raise ValueError(
            f"Expected image file {images_dir / f'{owner}_0000{ending}'} for label file {f}, but it does not exist."
        )
    out: dict[str, list[Path]] = {}
    for case_id in case_ids:
        if case_id in annotators:
            files = annotators[case_id]
            for k in range(1, max(files) + 1):
                if k not in files:
                    raise ValueError(
                        f"Expected label file {labels_dir / f'{case_id}_a{k}{ending}'} (annotator {k} of case "
                        f"{case_id!r}), but it does not exist."
                    )
            out[case_id] = [files[k] for k in sorted(files)]
        elif case_id in plain:
            out[case_id] = [plain[case_id]]
        else:
            raise ValueError(
                f"Expected label file {labels_dir / f'{case_id}{ending}'} (or {case_id}_a1{ending}, ...) for case "
                f"{case_id!r}, but it does not exist."
            )
    return out


def _strip_ending(name: str) -> str:
    ending = file_suffix(Path(name))
    return name[: len(name) - len(ending)] if ending else name


# ----------------------------------------------------------------------------------------------------------- reading


def _read_case(files: _CaseFiles, num_channels: int, num_classes: int, json_path: Path) -> Case:
    parts: list[np.ndarray] = []
    affine, header = np.eye(4), None
    for i, path in enumerate(files.images):
        raw, file_affine, file_header = read_image(path)
        part = _channels_first(raw, path)
        if i == 0:
            affine, header = file_affine, file_header
        elif part.shape[1:] != parts[0].shape[1:]:
            raise ValueError(
                f"Expected image file {path} to have the spatial shape {parts[0].shape[1:]} of {files.images[0]}, "
                f"but got {part.shape[1:]}."
            )
        parts.append(part)
    image = parts[0] if len(parts) == 1 else np.concatenate(parts)
    if image.shape[0] != num_channels:
        raise ValueError(
            f"Expected image of case {files.case_id!r} ({files.images[0]}) to have {num_channels} channel(s) as "
            f"listed in {json_path}, but it has {image.shape[0]}."
        )
    if image.ndim == 4 and image.shape[3] == 1:  # a 2-D image stored as (X, Y, 1)
        image = image[..., 0]
    spatial = image.shape[1:]
    labels = None
    if files.labels is not None:
        maps: list[np.ndarray] = []
        for path in files.labels:
            raw = read_image(path)[0]
            while raw.ndim > len(spatial) and raw.shape[-1] == 1:
                raw = raw[..., 0]
            if maps and raw.shape != maps[0].shape:
                raise ValueError(
                    f"Expected the annotators' label maps of case {files.case_id!r} to share one shape, but "
                    f"{path} has shape {raw.shape} and {files.labels[0]} has shape {maps[0].shape}."
                )
            maps.append(raw)
        if maps[0].shape != spatial:
            hint = " (a label file must hold one channel)" if maps[0].ndim > len(spatial) else ""
            raise ValueError(
                f"Expected label file {files.labels[0]} to have the spatial shape {spatial} of image "
                f"{files.images[0]}, but got {maps[0].shape}{hint}."
            )
        labels = np.stack([_label_values(m, p, num_classes, json_path) for m, p in zip(maps, files.labels)])
    kind = "nifti" if file_suffix(files.images[0]) in NIFTI_SUFFIXES else "png"
    image = np.ascontiguousarray(image, dtype=np.float32)
    return Case(files.case_id, image, labels, affine, files.images[0], header, kind)


def _channels_first(raw: np.ndarray, path: Path) -> np.ndarray:
    if file_suffix(path) not in NIFTI_SUFFIXES:
        return raw[None] if raw.ndim == 2 else np.moveaxis(raw, -1, 0)
    array = raw[:, :, :, 0, :] if raw.ndim == 5 and raw.shape[3] == 1 else raw  # ITK vector image (X, Y, Z, 1, C)
    if array.ndim == 4:
        return np.moveaxis(array, -1, 0)
    if array.ndim in (2, 3):
        return array[None]
    raise ValueError(
        f"Expected image file {path} to have shape (X, Y), (X, Y, Z) or (X, Y, Z, C), but got {raw.shape}."
    )


def _label_values(raw: np.ndarray, path: Path, num_classes: int, json_path: Path) -> np.ndarray:
    raw = integer_labels(raw, path)
    low, high = int(raw.min()), int(raw.max())
    if low < 0 or high >= num_classes:
        raise ValueError(
            f"Expected label file {path} to hold values in [0, {num_classes}) ({num_classes} labels in "
            f"{json_path.name}), but found values in [{low}, {high}]."
        )
    return raw


# ----------------------------------------------------------------------------------------------------------- writing


def read_image_folder(folder: str | Path, num_channels: int) -> list[Case]:
    """The unlabelled cases of a plain folder of nnU-Net-named images (nnU-Net's ``-i`` input): files
    ``<case>_XXXX<ending>`` (one per channel, ``XXXX`` = 0000, 0001, ...), no ``dataset.json`` needed; channels come
    from the suffixes and geometry from the files.

    Args:
        folder: the folder of images.
        num_channels: channels each case must have (the run's).

    Returns:
        One :class:`~selectseg.data.Case` per case id, sorted by id.

    Raises:
        ValueError: if the folder holds no such images, a case lacks a channel file, or an image does not have
            ``num_channels`` channels (the message names the file).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"Expected a folder of images, but {str(folder)!r} is not a directory.")
    channels: dict[str, dict[int, Path]] = {}
    for f in sorted(folder.iterdir()):
        ending = next((e for e in (*NIFTI_SUFFIXES, *PILLOW_SUFFIXES) if f.name.endswith(e)), None)
        match = _CHANNEL_FILE.fullmatch(f.name[: -len(ending)]) if ending and f.is_file() else None
        if match is not None:
            channels.setdefault(safe_case_id(match[1], f), {})[int(match[2])] = f
    if not channels:
        raise ValueError(
            f"Expected images named <case>_0000.nii.gz (nnU-Net's input layout) in {str(folder)!r}, but found none."
        )
    cases = []
    for case_id, files in sorted(channels.items()):
        missing = [k for k in range(num_channels) if k not in files]
        if missing or len(files) != num_channels:
            raise ValueError(
                f"Expected {num_channels} channel file(s) {case_id}_0000 ... {case_id}_{num_channels - 1:04d} in "
                f"{str(folder)!r}, but found {[files[k].name for k in sorted(files)]}."
            )
        paths = [files[k] for k in range(num_channels)]
        cases.append(_read_case(_CaseFiles(case_id, paths, None), num_channels, 2, folder / DATASET_JSON))
    return cases
