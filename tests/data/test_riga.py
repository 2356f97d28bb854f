from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from selectseg.data import load_dataset
from selectseg.data.crop import annotation_window, crop_case
from selectseg.data.formats.riga import load_riga, outline_masks  # importing it registers "riga"
from selectseg.data.tolerant import DatasetWarning
from selectseg.metrics.annotators import pairwise_dice
from tests.data._files import snapshot

from .._shared_data import shared

SHARED = shared("riga")
STROKE = (51, 49, 90)
SIZE = 96


def _photo(seed: int = 0) -> np.ndarray:
    """A smooth orange-ish background with mild texture (like a fundus photo around the disc)."""
    rng = np.random.default_rng(seed)
    base = np.array([190, 110, 60], np.float64) + rng.normal(0, 4, size=(SIZE, SIZE, 3))
    return np.clip(base, 0, 255).astype(np.uint8)


def _ring(center: tuple[float, float], radius: float, width: float = 1.5) -> np.ndarray:
    yy, xx = np.mgrid[:SIZE, :SIZE]
    return np.asarray(np.abs(np.hypot(yy - center[0], xx - center[1]) - radius) < width)


def _disk(center: tuple[float, float], radius: float) -> np.ndarray:
    yy, xx = np.mgrid[:SIZE, :SIZE]
    return np.asarray(np.hypot(yy - center[0], xx - center[1]) <= radius)


def _draw(photo: np.ndarray, *rings: np.ndarray, jpeg: bool = False) -> np.ndarray:
    drawn = photo.copy()
    for ring in rings:
        drawn[ring] = STROKE
    if jpeg:
        buffer = io.BytesIO()
        Image.fromarray(drawn).save(buffer, format="JPEG", quality=90)
        drawn = np.asarray(Image.open(buffer).convert("RGB"))
    return drawn


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


# ---------------------------------------------------------------------------------------------------- outline_masks


@pytest.mark.parametrize("jpeg", [False, True])
def test_outline_masks_circle_in_circle(jpeg):
    photo = _photo()
    disc_true, cup_true = _disk((48, 48), 30), _disk((46, 50), 12)
    drawn = _draw(photo, _ring((48, 48), 30), _ring((46, 50), 12), jpeg=jpeg)
    disc, cup = outline_masks(photo, drawn)
    assert disc.dtype == np.bool_ and disc.shape == (SIZE, SIZE) and not (cup & ~disc).any()
    assert _dice(disc, disc_true) > 0.97 and _dice(cup, cup_true) > 0.93  # boundaries on the strokes' centre lines


def test_outline_masks_touching_outlines_cup_is_not_the_crescent():
    photo = _photo()
    drawn = _draw(photo, _ring((48, 48), 30), _ring((48, 36), 18))  # cup touches the disc outline on the left
    disc, cup = outline_masks(photo, drawn)
    assert _dice(disc, _disk((48, 48), 30)) > 0.97 and _dice(cup, _disk((48, 36), 18)) > 0.95


def test_outline_masks_big_cup_close_to_disc():
    photo = _photo()
    _, cup = outline_masks(photo, _draw(photo, _ring((48, 48), 30), _ring((48, 48), 24)))
    assert _dice(cup, _disk((48, 48), 24)) > 0.95  # the cup is the bigger enclosed region: chosen by depth, not size


def test_outline_masks_bridges_gap_and_faint_stroke():
    photo = _photo()
    disc_ring = _ring((48, 48), 30)
    disc_ring[:, 46:50] = False  # a 4-pixel gap, bridged by the closing
    drawn = _draw(photo, disc_ring, _ring((48, 48), 12))
    faint = _ring((48, 48), 30) & (np.mgrid[:SIZE, :SIZE][0] > 60)
    drawn[faint] = np.clip(photo[faint].astype(int) - 30, 0, 255)  # differs by 30 only: joins through hysteresis
    disc, cup = outline_masks(photo, drawn)
    assert _dice(disc, _disk((48, 48), 30)) > 0.97 and _dice(cup, _disk((48, 48), 12)) > 0.93
    with pytest.raises(ValueError, match=r"no closed outline|no cup"):
        outline_masks(photo, drawn, low_threshold=40)  # without hysteresis the faint arc is a wide gap


@pytest.mark.parametrize(
    ("rings", "match"),
    [
        ((), r"Found no outline in image1-1.jpg: no pixel differs from the photo by more than 40"),
        (((48, 48, 30),), r"Found no cup inside the disc in image1-1.jpg"),
    ],
)
def test_outline_masks_errors_name_the_source(rings, match):
    photo = _photo()
    drawn = _draw(photo, *(_ring((y, x), r) for y, x, r in rings))
    with pytest.raises(ValueError, match=match):
        outline_masks(photo, drawn, source="image1-1.jpg")


def test_outline_masks_open_outline():
    photo = _photo()
    arc = _ring((48, 48), 30) & (np.mgrid[:SIZE, :SIZE][1] < 60)  # a C shape: nothing enclosed
    with pytest.raises(ValueError, match=r"no closed outline in x\.jpg"):
        outline_masks(photo, _draw(photo, arc), source="x.jpg")


def test_outline_masks_bad_arguments():
    photo = _photo()
    with pytest.raises(TypeError, match="`photo` to be a uint8 numpy array"):
        outline_masks(photo.astype(np.float32), photo)
    with pytest.raises(ValueError, match=r"`annotated` to have shape \(H, W, 3\)"):
        outline_masks(photo, photo[..., 0])
    with pytest.raises(ValueError, match=r"Expected a.jpg to have the shape \(96, 96, 3\) of the photo"):
        outline_masks(photo, photo[:90], source="a.jpg")
    with pytest.raises(ValueError, match=r"`low_threshold` to be in \[1, 40\]"):
        outline_masks(photo, photo, low_threshold=50)
    with pytest.raises(TypeError, match="`close_radius` to be an integer"):
        outline_masks(photo, photo, close_radius=2.5)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------------- loader


def riga_folder(root: Path, cases: dict[str, int] | None = None, annotators: int = 3) -> Path:
    """``<folder>/image<N>prime.png`` with ``image<N>-<k>.png``: disc radius 28 + k, cup radius 10 + k."""
    for key, seed in (cases or {"BinRushed1/image1": 0, "BinRushed1/image2": 1, "MESSIDOR/sub/image7": 2}).items():
        folder, base = key.rsplit("/", 1)
        (root / folder).mkdir(parents=True, exist_ok=True)
        photo = _photo(seed)
        Image.fromarray(photo).save(root / folder / f"{base}prime.png")
        for k in range(1, annotators + 1):
            drawn = _draw(photo, _ring((48, 48), 28 + k), _ring((48, 48), 10 + k))
            Image.fromarray(drawn).save(root / folder / f"{base}-{k}.png")
    return root


def test_load_riga_reads_nested_folders_with_annotators(tmp_path):
    root = riga_folder(tmp_path / "riga")
    ds = load_dataset(root)  # format="auto" recognises the *prime.* photos one level down
    assert ds.info.format == "riga" and ds.info.class_names == ("background", "disc rim", "cup")
    assert [c.case_id for c in ds] == ["BinRushed1_image1", "BinRushed1_image2", "MESSIDOR_sub_image7"]
    case = ds[0]
    assert case.image.shape == (3, SIZE, SIZE) and case.labels is not None and case.labels.shape == (3, SIZE, SIZE)
    assert np.array_equal(case.image, np.moveaxis(_photo(0), -1, 0))
    assert case.file_kind == "png" and case.subject is None and case.source == root / "BinRushed1" / "image1prime.png"
    for k in range(3):
        assert _dice(case.labels[k] == 2, _disk((48, 48), 11 + k)) > 0.9
        assert _dice(case.labels[k] > 0, _disk((48, 48), 29 + k)) > 0.95
    assert load_riga(root, "all")[0].case_id == "BinRushed1_image1"


def test_load_riga_class_options_and_scale(tmp_path):
    root = riga_folder(tmp_path / "riga", {"S/image1": 0})
    full = load_riga(root, "train")[0].labels
    disc = load_riga(root, "train", classes="disc")
    cup = load_riga(root, "train", classes="cup")
    assert disc.info.class_names == ("background", "disc") and cup.info.class_names == ("background", "cup")
    assert full is not None and np.array_equal(disc[0].labels, (full > 0).astype(np.int64))
    assert np.array_equal(cup[0].labels, (full == 2).astype(np.int64))
    half = load_riga(root, "train", scale=0.5)[0]
    assert half.image.shape == (3, 48, 48) and half.labels is not None and half.labels.shape == (3, 48, 48)
    assert np.array_equal(half.labels, full[:, 1::2, 1::2])  # nearest neighbour: Pillow samples pixel centres


def test_load_riga_options_errors(tmp_path):
    root = riga_folder(tmp_path / "riga", {"S/image1": 0})
    with pytest.raises(ValueError, match=r"RIGA has no test split here.*k-fold"):
        load_riga(root, "test")
    with pytest.raises(ValueError, match=r"RIGA has no test split"):
        load_dataset(root, split="test")
    with pytest.raises(ValueError, match=r"`classes` to be one of \['rim_cup', 'disc', 'cup'\], but got 'discs'. Did"):
        load_riga(root, "train", classes="discs")
    with pytest.raises(ValueError, match=r"`scale` to be in \(0, 1\], but got 2"):
        load_riga(root, "train", scale=2)
    with pytest.raises(TypeError, match="`root` to be a str or Path"):
        load_riga(1, "train")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`scale` to be a number"):
        load_riga(root, "train", scale="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="is not a folder"):
        load_riga(root / "missing", "train")


def test_load_riga_disc_crop_equals_crop_of_the_full_photo(tmp_path):
    root = riga_folder(tmp_path / "riga", {"S/image1": 0})
    full = load_riga(root, "train")[0]
    for classes in ("rim_cup", "cup"):
        cropped = load_riga(root, "train", classes=classes, crop_size=32, crop_factor=1.5)[0]
        # the window comes from the mean disc (labels > 0 of rim_cup), for the cup too
        expected = crop_case(full, annotation_window(full.labels > 0, factor=1.5), 32)
        assert cropped.image.shape == (3, 32, 32) and cropped.labels is not None and cropped.labels.shape == (3, 32, 32)
        np.testing.assert_allclose(cropped.image, expected.image, atol=1e-4)
        np.testing.assert_allclose(cropped.affine, expected.affine)
        assert expected.labels is not None
        want = expected.labels if classes == "rim_cup" else (expected.labels == 2).astype(np.int64)
        np.testing.assert_array_equal(cropped.labels, want)
    # disc radius ~30 around (48, 48): side 1.5 x ~60 = ~90 px of 96, the disc centred
    window = annotation_window(full.labels > 0, factor=1.5)
    assert all(abs((s.start + s.stop - 1) / 2 - 48) <= 1 for s in window)


def test_load_riga_crop_errors(tmp_path):
    root = riga_folder(tmp_path / "riga", {"S/image1": 0})
    with pytest.raises(ValueError, match="`scale` = 1 with a crop"):
        load_riga(root, "train", scale=0.5, crop_size=32)
    with pytest.raises(ValueError, match="`crop_size` >= 0"):
        load_riga(root, "train", crop_size=-1)
    with pytest.raises(TypeError, match="`crop_size` to be an int"):
        load_riga(root, "train", crop_size=32.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`crop_factor` to be a positive finite"):
        load_riga(root, "train", crop_size=32, crop_factor=0)
    with pytest.raises(TypeError, match="`crop_factor` to be a number"):
        load_riga(root, "train", crop_size=32, crop_factor="2")  # type: ignore[arg-type]


def test_load_riga_wrong_folder(tmp_path):
    (tmp_path / "x").mkdir()
    Image.fromarray(_photo()).save(tmp_path / "x" / "image1.png")
    with pytest.raises(ValueError, match=r"to be a RIGA folder, .* but found no \*prime\.\* file"):
        load_riga(tmp_path / "x", "train")


def _replace_with(path: Path, array: np.ndarray) -> None:
    Image.fromarray(array).save(path)


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda d: (d / "image2-2.png").unlink(), r"case 'S_image2': Expected annotator file .*image2-2.<ext>"),
        (lambda d: (d / "image2-3.png").write_bytes(b"junk"), r"case 'S_image2': Could not read image file .*-3.png"),
        (
            lambda d: _replace_with(d / "image2-1.png", np.zeros((90, SIZE, 3), np.uint8)),
            r"annotated image .*image2-1.png to have the shape \(96, 96\) of photo .*image2prime.png",
        ),
        (lambda d: _replace_with(d / "image2-1.png", _photo(1)), r"Found no outline in .*image2-1.png"),
        (lambda d: _replace_with(d / "image2prime.png", _photo(1)[..., 0]), r"image2prime.png to be an 8-bit RGB"),
    ],
)
def test_load_riga_one_bad_case_is_skipped_with_warning(tmp_path, damage, match):
    root = riga_folder(tmp_path / "riga", {"S/image1": 0, "S/image2": 1})
    damage(root / "S")
    with pytest.warns(DatasetWarning, match=match):
        ds = load_riga(root, "train")
    assert [c.case_id for c in ds] == ["S_image1"]


def test_load_riga_all_cases_bad(tmp_path):
    root = riga_folder(tmp_path / "riga", {"S/image1": 0})
    (root / "S" / "image1-1.png").unlink()
    (root / "S" / "image1-1.jpg").write_bytes(b"junk")
    with pytest.raises(ValueError, match=r"None of the 1 cases could be read; .*image1-1.jpg"):
        load_riga(root, "train")


def test_load_riga_writes_nothing(tmp_path):
    root = riga_folder(tmp_path / "riga")
    before = snapshot(root)
    load_riga(root, "all", scale=0.5)
    assert snapshot(root) == before


# ------------------------------------------------------------------------------------------- the shared real data

# mean pairwise Dice over the 6 annotators, measured at full size: case -> (disc, cup, rim)
PINNED = {"image1": (0.9714, 0.6029, 0.9212), "image2": (0.9057, 0.6204, 0.8291), "image3": (0.9608, 0.8225, 0.8819)}


@pytest.fixture(scope="module")
def shared_riga(tmp_path_factory):
    if not (SHARED / "BinRushed2").is_dir():
        pytest.skip(f"shared RIGA data not found at {SHARED} (set SELECTSEG_DATA)")
    before = snapshot(SHARED)
    root = tmp_path_factory.mktemp("riga")  # links to three cases: the data folder itself is only read
    (root / "BinRushed2").mkdir()
    for base in PINNED:
        for name in [f"{base}prime.jpg", *(f"{base}-{k}.jpg" for k in range(1, 7))]:
            (root / "BinRushed2" / name).symlink_to(SHARED / "BinRushed2" / name)
    ds = load_dataset(root)
    assert snapshot(SHARED) == before
    return ds


def test_load_riga_shared_cases(shared_riga):
    ds = shared_riga
    assert ds.info.format == "riga" and [c.case_id for c in ds] == [f"BinRushed2_{b}" for b in PINNED]
    for case in ds:
        assert case.image.shape == (3, 1584, 2376) and case.labels is not None and case.labels.shape == (6, 1584, 2376)


def test_load_riga_shared_inter_annotator_dice(shared_riga):
    for case in shared_riga:
        labels = case.labels
        disc = pairwise_dice((labels > 0).astype(np.int64), num_classes=2)[0]
        cup = pairwise_dice((labels == 2).astype(np.int64), num_classes=2)[0]
        rim = pairwise_dice(labels, num_classes=3)[0]
        expected = PINNED[case.case_id.removeprefix("BinRushed2_")]
        assert (disc, cup, rim) == pytest.approx(expected, abs=1e-3)
        assert 0.89 <= disc <= 0.98 and 0.57 <= cup <= 0.92  # the ranges the data README gives
