"""RIGA fundus optic disc and cup with six annotators, format ``"riga"``; masks recovered from drawn outlines.

RIGA ships no masks: each annotator's file is the photo with that annotator's optic-disc and optic-cup outlines
drawn on it. In every subfolder (``BinRushed1..4``, ``MESSIDOR``, ``Magrabia...``; nested folders too),
``<base>prime.<ext>`` is the clean photo and ``<base>-<k>.<ext>`` (``k = 1..A``) the photo with annotator ``k``'s
outlines, ``<ext>`` any of ``.jpg``, ``.jpeg``, ``.tif``, ``.tiff``, ``.png``, ``.bmp``. :func:`outline_masks`
recovers the two regions from one annotated copy; :func:`load_riga` reads a folder (see ``docs/data.md``).

References:
    Almazroa et al., "Retinal fundus images for glaucoma analysis: the RIGA dataset", SPIE Medical Imaging 2018.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

from ..._validation import look_up_option
from ..case import Case, DatasetInfo, SegmentationDataset
from ..crop import DEFAULT_CROP_FACTOR, annotation_window, crop_case
from ..io import PILLOW_SUFFIXES, file_suffix, read_image
from ..names import safe_case_id
from ..tolerant import read_all
from .registry import SPLITS, register_format

__all__ = ["RIGA_CLASSES", "load_riga", "outline_masks"]

RIGA_CLASSES: dict[str, tuple[str, ...]] = {
    "rim_cup": ("background", "disc rim", "cup"),
    "disc": ("background", "disc"),
    "cup": ("background", "cup"),
}
"""The label sets :func:`load_riga` offers: ``classes`` option -> class names (index = label value)."""

_CHANNEL_NAMES = ("red", "green", "blue")
_PRIME = re.compile(r"(.+?)prime", re.IGNORECASE)
_ANNOTATED = re.compile(r"(.+)-(\d+)")
_MIN_HOLE_FRACTION = 0.01  # enclosed regions smaller than this share of the disc are stroke artefacts (loops)


# --------------------------------------------------------------------------------------------------- mask recovery


def outline_masks(
    photo: np.ndarray,
    annotated: np.ndarray,
    *,
    threshold: int = 40,
    low_threshold: int = 20,
    close_radius: int = 3,
    source: str | Path = "the annotated image",
) -> tuple[np.ndarray, np.ndarray]:
    """Recover the optic disc and cup regions from a photo and a copy with the disc and cup outlines drawn on it.

    1. **Strokes** (hysteresis): the per-pixel maximum over channels of ``|annotated - photo|``; pixels above
       ``threshold`` are strokes for sure (JPEG noise stays near 6), and pixels above ``low_threshold`` join them
       when connected (8-neighbourhood) to such a pixel: a stroke drawn over a dark vessel differs from the photo by
       only ~30 in places, and a single threshold of 40 would open a gap in the outline there.
    2. **Closing** with a disc of radius ``r`` bridges gaps of up to about ``2 r`` pixels, but also fills a rim
       thinner than ``2 r`` (a cup outline running close to the disc outline). So ``r = 0, 1, ..., close_radius``
       are tried in turn and the first one under which the disc encloses two regions (rim and cup) is kept.
    3. **Regions**: holes are filled; the largest filled region is the disc. Inside it, the regions enclosed by the
       strokes are the cup's interior and the rim between the two outlines (one annulus, or one or more crescents
       where the outlines touch). Enclosed regions under 1 % of the disc are stroke loops and are ignored in the
       choice. The cup is the enclosed region whose border lies deepest inside the disc (largest mean distance to
       the outside of the disc): the rim always borders the disc outline, the cup only where the outlines touch.
    4. **Centre lines**: every stroke pixel goes to the nearest enclosed region or to the outside, so both
       boundaries run along the middle of the drawn lines (the line width does not bias disc or cup sizes) and
       overshooting line ends outside the disc are dropped. The cup is inside the disc by construction.

    Args:
        photo: the clean photo.
        annotated: the same photo with one annotator's disc and cup outlines drawn on it.
        threshold: max-channel difference above which a pixel is certainly a stroke, in [1, 255].
        low_threshold: difference above which a pixel connected to a stroke joins it, in [1, ``threshold``].
        close_radius: the largest radius in pixels of the closing that bridges gaps in the strokes (0 = none).
        source: names the annotated image in error messages (the loader passes its path).

    Shape:
        photo, annotated: ``(H, W, 3)`` uint8 -> disc, cup: ``(H, W)`` bool.

    Returns:
        ``(disc, cup)``: the optic disc (cup included) and the optic cup.

    Raises:
        TypeError: if ``photo`` or ``annotated`` is not a uint8 numpy array, or an option is not an integer.
        ValueError: if the arrays are not ``(H, W, 3)`` or differ in shape, an option is out of range, no pixel
            differs from the photo by more than ``threshold`` (no outline), the strokes enclose no region (the
            outline is not closed), or the disc encloses no second outline (no cup found inside the disc); the
            message names ``source``.

    Example:
        >>> yy, xx = np.mgrid[:80, :80]
        >>> radius = np.hypot(yy - 40, xx - 40)
        >>> photo = np.full((80, 80, 3), 150, np.uint8)
        >>> drawn = photo.copy()
        >>> drawn[(np.abs(radius - 25) < 1.5) | (np.abs(radius - 10) < 1.5)] = (51, 49, 90)
        >>> disc, cup = outline_masks(photo, drawn)
        >>> float(round(disc.sum() / (np.pi * 25**2), 2)), float(round(cup.sum() / (np.pi * 10**2), 2))
        (1.0, 1.0)
    """
    for name, array in (("photo", photo), ("annotated", annotated)):
        if not isinstance(array, np.ndarray) or array.dtype != np.uint8:
            kind = array.dtype if isinstance(array, np.ndarray) else type(array).__name__
            raise TypeError(f"Expected `{name}` to be a uint8 numpy array, but got {kind}.")
        if array.ndim != 3 or array.shape[-1] != 3:
            raise ValueError(f"Expected `{name}` to have shape (H, W, 3), but got shape {array.shape}.")
    if photo.shape != annotated.shape:
        raise ValueError(
            f"Expected {source} to have the shape {photo.shape} of the photo, but got shape {annotated.shape}."
        )
    for name, value, low, high in (
        ("threshold", threshold, 1, 255),
        ("low_threshold", low_threshold, 1, threshold),
        ("close_radius", close_radius, 0, 100),
    ):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise TypeError(f"Expected `{name}` to be an integer, but got {type(value).__name__}.")
        if not low <= value <= high:
            raise ValueError(f"Expected `{name}` to be in [{low}, {high}], but got {value}.")

    diff = (np.maximum(photo, annotated) - np.minimum(photo, annotated)).max(axis=-1)
    strong = diff > threshold
    rows, cols = np.nonzero(strong)
    if rows.size == 0:
        raise ValueError(
            f"Found no outline in {source}: no pixel differs from the photo by more than {threshold} "
            f"(largest difference {int(diff.max())})."
        )
    margin = close_radius + 16
    top, left = max(int(rows.min()) - margin, 0), max(int(cols.min()) - margin, 0)
    bottom, right = int(rows.max()) + margin + 1, int(cols.max()) + margin + 1
    window = (slice(top, bottom), slice(left, right))
    disc_crop, cup_crop = _regions(diff[window] > low_threshold, strong[window], close_radius, str(source))
    disc = np.zeros(diff.shape, dtype=bool)
    cup = np.zeros(diff.shape, dtype=bool)
    disc[window], cup[window] = disc_crop, cup_crop
    return disc, cup


def _disk(radius: int) -> np.ndarray:
    yy, xx = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    return np.asarray(xx * xx + yy * yy <= radius * radius)


def _regions(weak: np.ndarray, strong: np.ndarray, close_radius: int, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Disc and cup on a window holding every stroke (see :func:`outline_masks` for the steps)."""
    components, _ = ndi.label(weak, structure=np.ones((3, 3), dtype=bool))
    keep = np.zeros(int(components.max()) + 1, dtype=bool)
    keep[np.unique(components[strong])] = True
    keep[0] = False
    strokes = keep[components]
    closed = region = interior = holes = strokes
    count, candidates = 0, np.zeros(0, dtype=np.intp)
    for radius in range(close_radius + 1):  # the smallest closing that finds two nested outlines
        closed = strokes
        if radius > 0:
            closed = ndi.binary_closing(np.pad(strokes, radius), structure=_disk(radius))[
                radius:-radius, radius:-radius
            ]
        filled, count = ndi.label(ndi.binary_fill_holes(closed))
        sizes = np.bincount(filled.ravel())
        sizes[0] = 0
        region = filled == int(np.argmax(sizes))
        interior = region & ~closed
        holes, _ = ndi.label(interior)
        hole_sizes = np.bincount(holes.ravel())[1:]
        candidates = np.flatnonzero(hole_sizes >= _MIN_HOLE_FRACTION * region.sum()) + 1
        if candidates.size >= 2:
            break
    if count == 0 or not interior.any():
        raise ValueError(
            f"Found strokes but no closed outline in {source}: the strokes enclose no region (a gap wider than "
            f"about {2 * close_radius} pixels? try a larger close_radius)."
        )
    if candidates.size < 2:
        raise ValueError(
            f"Found no cup inside the disc in {source}: the largest outline encloses {candidates.size} region(s) "
            f"of at least {_MIN_HOLE_FRACTION:.0%} of its area, but a disc with a cup inside it encloses two (the "
            f"cup outline is missing or open, or the disc outline has a gap wider than about {2 * close_radius} "
            "pixels)."
        )
    # the cup: the enclosed region whose border lies deepest inside the disc
    depth = ndi.distance_transform_edt(region)
    border = interior & ~ndi.binary_erosion(interior)
    mean_depth = np.asarray(ndi.mean(depth, labels=np.where(border, holes, 0), index=candidates))
    cup_label = int(candidates[int(np.argmax(mean_depth))])
    # centre lines: each stroke pixel belongs to its nearest enclosed region (label >= 1) or to the outside (0)
    owner = np.where(region, holes, 0)
    indices = ndi.distance_transform_edt(~(interior | ~region), return_distances=False, return_indices=True)
    owner = owner[tuple(indices)]
    disc = ndi.binary_fill_holes(region & (owner > 0))
    cup = ndi.binary_fill_holes(owner == cup_label) & disc
    return np.asarray(disc, dtype=bool), np.asarray(cup, dtype=bool)


# -------------------------------------------------------------------------------------------------------- loader


@dataclass(frozen=True)
class _CaseFiles:
    case_id: str
    photo: Path
    annotators: dict[int, list[Path]]


def _detect(root: Path) -> bool:
    try:
        return any(root.glob("*[Pp]rime.*")) or any(root.glob("*/*[Pp]rime.*"))
    except OSError:
        return False


@register_format(
    "riga",
    detect=_detect,
    description="image<N>prime.<ext> photos with image<N>-<k>.<ext> outlines (in a subfolder)",
    detect_order=30,
)
def load_riga(
    root: str | Path,
    split: str = "train",
    *,
    classes: str = "rim_cup",
    scale: float = 1.0,
    crop_size: int = 0,
    crop_factor: float = DEFAULT_CROP_FACTOR,
) -> SegmentationDataset:
    """Read a RIGA folder: one photo per case and one label map per annotator, recovered from the drawn outlines.

    Every ``<base>prime.<ext>`` under ``root`` (at any depth) is a case, with id ``<folder>_<base>`` (folders
    relative to ``root`` joined by ``_``, e.g. ``"BinRushed2_image1"``) and annotators ``<base>-1.<ext>`` ..
    ``<base>-A.<ext>`` in the same folder (``A`` = the largest ``k`` in the folder tree: a case missing one of them is
    skipped with a :class:`~selectseg.data.tolerant.DatasetWarning`, as is a case whose files are unreadable, of
    another size, or hold no recoverable outline). Masks come from :func:`outline_masks` at full resolution.

    RIGA has no official train/test split: ``"train"`` and ``"all"`` both give every case; ``"test"`` is refused
    (use a k-fold split of the cases).

    Args:
        root: the RIGA folder (e.g. holding ``BinRushed2/``).
        split: ``"train"`` or ``"all"``.
        classes: ``"rim_cup"`` (0 background, 1 disc rim = disc without cup, 2 cup), ``"disc"`` (0 background,
            1 disc, cup included) or ``"cup"`` (0 background, 1 cup). See :data:`RIGA_CLASSES`.
        scale: resize factor in (0, 1] for memory (1.0 = full size, 2376 x 1584): images are area-averaged
            (Pillow's box filter, rounded to integers), label maps resized with nearest neighbour after recovery at
            full size. ``Case.affine`` stays the identity.
        crop_size: 0 = the whole photo; else the **optic-disc region** (the usual multi-rater RIGA protocol), cut and
            resampled at full resolution to ``crop_size x crop_size``: a square window centred on the centroid of the
            annotators' mean disc, of side ``crop_factor`` x its equivalent diameter, shifted inside the photo
            (:func:`~selectseg.data.crop.annotation_window`); the photo area-averaged, the label maps nearest
            (:func:`~selectseg.data.crop.crop_case`), ``Case.affine`` maps the crop's pixels to the photo's. Needs
            ``scale = 1``. The window comes from the annotators' masks, i.e. the disc is taken as located.
        crop_factor: window side / the mean disc's equivalent diameter (whatever ``classes``: the disc places the
            window for the cup too).

    Returns:
        The dataset, cases sorted by case id: images ``(3, H, W)`` float32 in [0, 255], labels ``(A, H, W)``,
        ``file_kind="png"``, ``subject=None``. At full size a case takes about 225 MB in memory (6 int64 maps).

    Raises:
        TypeError: if ``root`` is not a str or Path, or ``classes``/``split`` is not a string, or ``scale`` not a
            number.
        ValueError: if ``root`` is not a folder, holds no ``*prime.*`` photo, ``split`` is ``"test"`` or unknown,
            ``classes`` is unknown, ``scale`` is outside (0, 1], ``crop_size`` is negative or set with ``scale < 1``,
            ``crop_factor`` is not positive, or no case can be read (the first error names its file).

    Example:
        >>> import tempfile
        >>> yy, xx = np.mgrid[:60, :60]
        >>> radius = np.hypot(yy - 30, xx - 30)
        >>> photo = np.full((60, 60, 3), 150, np.uint8)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     Path(tmp, "Set1").mkdir()
        ...     Image.fromarray(photo).save(f"{tmp}/Set1/image1prime.png")
        ...     for k, outer in enumerate((20, 22), start=1):
        ...         drawn = photo.copy()
        ...         drawn[(np.abs(radius - outer) < 1.5) | (np.abs(radius - 8) < 1.5)] = (51, 49, 90)
        ...         Image.fromarray(drawn).save(f"{tmp}/Set1/image1-{k}.png")
        ...     ds = load_riga(tmp, "all")
        >>> ds[0].case_id, ds[0].labels.shape, ds.info.class_names
        ('Set1_image1', (2, 60, 60), ('background', 'disc rim', 'cup'))
    """
    if not isinstance(root, (str, Path)):
        raise TypeError(f"Expected `root` to be a str or Path, but got {type(root).__name__}.")
    root = Path(root)
    split = look_up_option("split", split, SPLITS)
    classes = look_up_option("classes", classes, RIGA_CLASSES)
    if not isinstance(scale, (int, float, np.integer, np.floating)) or isinstance(scale, bool):
        raise TypeError(f"Expected `scale` to be a number, but got {type(scale).__name__}.")
    if not 0.0 < float(scale) <= 1.0:
        raise ValueError(f"Expected `scale` to be in (0, 1], but got {scale}.")
    if isinstance(crop_size, bool) or not isinstance(crop_size, (int, np.integer)):
        raise TypeError(f"Expected `crop_size` to be an int, but got {type(crop_size).__name__}.")
    if crop_size < 0 or (crop_size > 0 and float(scale) != 1.0):
        raise ValueError(
            f"Expected `crop_size` >= 0 (0 = whole photo), and `scale` = 1 with a crop (the crop is resampled at full "
            f"resolution), but got crop_size={crop_size}, scale={scale}."
        )
    if isinstance(crop_factor, bool) or not isinstance(crop_factor, (int, float, np.integer, np.floating)):
        raise TypeError(f"Expected `crop_factor` to be a number, but got {type(crop_factor).__name__}.")
    if not 0.0 < float(crop_factor) < float("inf"):
        raise ValueError(f"Expected `crop_factor` to be a positive finite number, but got {crop_factor}.")
    if not root.is_dir():
        raise ValueError(f"Expected `root` to be a RIGA folder, but {root} is not a folder.")
    if split == "test":
        raise ValueError(
            f"Expected split 'train' or 'all' for the RIGA folder {root}: RIGA has no test split here (every case is "
            "a training case); split the cases yourself, e.g. k-fold."
        )
    files = _list_cases(root)
    num_annotators = max(max(f.annotators, default=0) for f in files)
    crop = (int(crop_size), float(crop_factor))
    cases = read_all(
        files,
        lambda f: _read_case(f, num_annotators, classes, float(scale), crop),
        name=lambda f: f"case {f.case_id!r}",
    )
    return SegmentationDataset(DatasetInfo("RIGA", RIGA_CLASSES[classes], _CHANNEL_NAMES, 2, "riga"), tuple(cases))


def _list_cases(root: Path) -> list[_CaseFiles]:
    photos: list[tuple[Path, str]] = []
    for path in sorted(root.rglob("*")):
        suffix = file_suffix(path)
        match = _PRIME.fullmatch(path.name[: -len(suffix)]) if suffix in PILLOW_SUFFIXES else None
        if match and path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts):
            photos.append((path, match.group(1)))
    if not photos:
        raise ValueError(
            f"Expected {root} to be a RIGA folder, with photos <base>prime.<ext> and annotated copies "
            "<base>-<k>.<ext> (e.g. BinRushed2/image1prime.jpg, BinRushed2/image1-1.jpg), but found no *prime.* file."
        )
    by_folder: dict[Path, dict[str, dict[int, list[Path]]]] = {}
    cases: dict[str, _CaseFiles] = {}
    for photo, base in photos:
        folder = photo.parent
        if folder not in by_folder:
            by_folder[folder] = _annotated_files(folder)
        parts = [*photo.parent.relative_to(root).parts, base]
        case_id = safe_case_id("_".join(parts), photo)
        if case_id in cases:
            raise ValueError(
                f"Expected one photo per RIGA case, but {cases[case_id].photo} and {photo} are both case {case_id!r}."
            )
        cases[case_id] = _CaseFiles(case_id, photo, by_folder[folder].get(base.lower(), {}))
    return [cases[k] for k in sorted(cases)]


def _annotated_files(folder: Path) -> dict[str, dict[int, list[Path]]]:
    """``<base>-<k>.<ext>`` files of a folder: lower-case base -> annotator k -> paths."""
    found: dict[str, dict[int, list[Path]]] = {}
    for path in sorted(folder.iterdir()):
        suffix = file_suffix(path)
        if suffix not in PILLOW_SUFFIXES or path.name.startswith("."):
            continue
        match = _ANNOTATED.fullmatch(path.name[: -len(suffix)])
        if match and int(match.group(2)) >= 1:
            found.setdefault(match.group(1).lower(), {}).setdefault(int(match.group(2)), []).append(path)
    return found


def _read_case(files: _CaseFiles, num_annotators: int, classes: str, scale: float, crop: tuple[int, float]) -> Case:
    paths: list[Path] = []
    stem = files.photo.name[: -len(file_suffix(files.photo)) - len("prime")]
    for k in range(1, num_annotators + 1):
        found = files.annotators.get(k, [])
        if not found:
            raise ValueError(
                f"Expected annotator file {files.photo.parent / stem}-{k}.<ext> for photo {files.photo} "
                f"({num_annotators} annotators), but it does not exist."
            )
        if len(found) > 1:
            raise ValueError(f"Expected one file for annotator {k} of photo {files.photo}, but found {found}.")
        paths.append(found[0])
    photo = _read_rgb(files.photo)
    maps, discs = [], []
    for path in paths:
        annotated = _read_rgb(path)
        if annotated.shape != photo.shape:
            raise ValueError(
                f"Expected annotated image {path} to have the shape {photo.shape[:2]} of photo {files.photo}, "
                f"but got {annotated.shape[:2]}."
            )
        disc, cup = outline_masks(photo, annotated, source=path)
        discs.append(disc)
        if classes == "rim_cup":
            label = disc.astype(np.uint8) + cup.astype(np.uint8)
        else:
            label = (disc if classes == "disc" else cup).astype(np.uint8)
        maps.append(label)
    crop_size, crop_factor = crop
    if crop_size > 0:
        window = annotation_window(np.stack(discs), factor=crop_factor)
        full = Case(files.case_id, np.moveaxis(photo, -1, 0), np.stack(maps), np.eye(4), files.photo, None, "png")
        return crop_case(full, window, crop_size)
    if scale != 1.0:
        height, width = photo.shape[:2]
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        photo = np.asarray(Image.fromarray(photo).resize(size, Image.Resampling.BOX))
        maps = [np.asarray(Image.fromarray(m).resize(size, Image.Resampling.NEAREST)) for m in maps]
    image = np.moveaxis(photo, -1, 0).astype(np.float32)
    labels = np.stack(maps).astype(np.int64)
    return Case(files.case_id, image, labels, np.eye(4), files.photo, None, "png")


def _read_rgb(path: Path) -> np.ndarray:
    array: Any
    array, _, _ = read_image(path)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(
            f"Expected {path} to be an 8-bit RGB image (H, W, 3) uint8, but got shape {array.shape} {array.dtype}."
        )
    return np.asarray(array)
