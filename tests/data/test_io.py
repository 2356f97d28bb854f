from __future__ import annotations

import os

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

from selectseg.data import Case, load_dataset, read_image, save_like, write_msd_dataset
from selectseg.data import io as data_io
from tests.data._files import AFFINE, integer_images, save_json, save_nifti, small_synthetic


def nifti_case(tmp_path, shape=(6, 5, 4), image_class=nib.Nifti1Image) -> Case:
    """A case read from a NIfTI source with a non-identity affine, qform code 1, sform code 4 and scaling."""
    source = tmp_path / "source.nii.gz"
    image = image_class(np.arange(np.prod(shape), dtype=np.int16).reshape(shape), AFFINE)
    image.set_qform(AFFINE, code=1)
    image.set_sform(AFFINE, code=4)
    image.header.set_xyzt_units("mm", "sec")
    image.header.set_slope_inter(2.0, 1.0)
    nib.save(image, str(source))
    array, affine, header = read_image(source)
    data = array.astype(np.float32)
    while data.ndim > 2 and data.shape[-1] == 1:
        data = data[..., 0]
    return Case("src", data[None], None, affine, source, header, "nifti")


# ------------------------------------------------------------------------------------------------------ read_image


def test_read_image_nifti_keeps_file_order_scaling_and_geometry(tmp_path):
    case = nifti_case(tmp_path)
    array, affine, header = read_image(case.source)
    assert array.shape == (6, 5, 4) and np.array_equal(array, np.arange(120).reshape(6, 5, 4) * 2.0 + 1.0)
    assert affine.dtype == np.float64 and np.array_equal(affine, AFFINE)
    assert isinstance(header, nib.Nifti1Header)
    assert case.spacing == pytest.approx((2.0, 1.5, 3.0))


@pytest.mark.parametrize(
    ("mode", "array", "expected_shape", "expected_dtype"),
    [
        ("L", np.arange(12, dtype=np.uint8).reshape(3, 4), (3, 4), np.uint8),
        ("I;16", np.arange(12, dtype=np.uint16).reshape(3, 4) * 1000, (3, 4), np.uint16),
        ("RGB", np.arange(36, dtype=np.uint8).reshape(3, 4, 3), (3, 4, 3), np.uint8),
        ("RGBA", np.arange(48, dtype=np.uint8).reshape(3, 4, 4), (3, 4, 3), np.uint8),
        ("LA", np.arange(24, dtype=np.uint8).reshape(3, 4, 2), (3, 4), np.uint8),
    ],
)
def test_read_image_pillow_modes(tmp_path, mode, array, expected_shape, expected_dtype):
    path = tmp_path / "x.png"
    Image.fromarray(array, mode=mode if mode == "LA" else None).save(path)
    data, affine, header = read_image(str(path))
    assert data.shape == expected_shape and data.dtype == expected_dtype
    assert np.array_equal(affine, np.eye(4)) and header is None
    if mode in ("L", "I;16", "RGB"):
        assert np.array_equal(data, array)


def test_read_image_palette_and_bilevel_png_give_indices(tmp_path):
    palette = Image.fromarray(np.array([[0, 1], [2, 1]], np.uint8), mode="L").convert("P")
    palette.save(tmp_path / "p.png")
    assert read_image(tmp_path / "p.png")[0].shape == (2, 2)
    Image.fromarray(np.array([[0, 255], [255, 0]], np.uint8)).convert("1").save(tmp_path / "b.png")
    bilevel = read_image(tmp_path / "b.png")[0]
    assert bilevel.dtype == np.uint8 and bilevel.tolist() == [[0, 1], [1, 0]]


def test_read_image_rejects_bad_input(tmp_path):
    with pytest.raises(TypeError, match="`path` to be a str or Path"):
        read_image(1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"x.mha to end with one of"):
        read_image(tmp_path / "x.mha")
    with pytest.raises(ValueError, match=r"image file .*missing.png to exist"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "bad.nii.gz").write_bytes(b"nonsense")
    with pytest.raises(ValueError, match=r"Could not read image file .*bad.nii.gz"):
        read_image(tmp_path / "bad.nii.gz")
    (tmp_path / "bad.png").write_bytes(b"nonsense")
    with pytest.raises(ValueError, match=r"Could not read image file .*bad.png"):
        read_image(tmp_path / "bad.png")
    frames = [Image.fromarray(np.full((4, 4), v, np.uint8)) for v in (0, 9)]
    frames[0].save(tmp_path / "stack.tif", save_all=True, append_images=frames[1:])
    with pytest.raises(ValueError, match=r"stack.tif to hold one frame, but it holds 2"):
        read_image(tmp_path / "stack.tif")


# ------------------------------------------------------------------------------------------------------- save_like


def test_save_like_nifti_keeps_affine_and_header_geometry(tmp_path):
    case = nifti_case(tmp_path)
    seg = (case.image[0] > 50).astype(np.uint8)
    out = save_like(seg, case, tmp_path / "out" / "seg.nii.gz")
    saved = nib.load(out)
    assert saved.shape == (6, 5, 4) and saved.get_data_dtype() == np.uint8
    assert np.array_equal(np.asanyarray(saved.dataobj), seg)  # no scaling inherited from the source
    assert np.array_equal(saved.affine, case.affine)
    source = case.header
    for coded in ("get_qform", "get_sform"):
        matrix, code = getattr(saved.header, coded)(coded=True)
        source_matrix, source_code = getattr(source, coded)(coded=True)
        assert code == source_code and np.array_equal(matrix, source_matrix)
    assert np.array_equal(saved.header["pixdim"][:4], source["pixdim"][:4])
    assert saved.header.get_xyzt_units() == ("mm", "sec")
    assert sorted(p.name for p in out.parent.iterdir()) == ["seg.nii.gz"]  # atomic: no temporary left


@pytest.mark.parametrize(
    ("array", "dtype"),
    [
        (np.zeros((6, 5, 4), bool), np.uint8),
        (np.full((6, 5, 4), 300, np.int64), np.int16),
        (np.full((6, 5, 4), -40000, np.int64), np.int32),
        (np.full((6, 5, 4), 0.25, np.float64), np.float32),
        (torch.full((6, 5, 4), 0.5), np.float32),
    ],
)
def test_save_like_nifti_dtypes(tmp_path, array, dtype):
    case = nifti_case(tmp_path)
    saved = nib.load(save_like(array, case, tmp_path / "m.nii"))
    assert saved.get_data_dtype() == dtype
    expected = array.numpy() if isinstance(array, torch.Tensor) else array
    assert np.array_equal(np.asanyarray(saved.dataobj), expected.astype(dtype))


@pytest.mark.parametrize("stored", [(7, 5, 1), (7, 5)])
def test_save_like_restores_the_stored_2d_shape(tmp_path, stored):
    root = tmp_path / "d"
    save_nifti(root / "imagesTr" / "a_0000.nii.gz", np.zeros(stored, np.float32))
    save_nifti(root / "labelsTr" / "a.nii.gz", np.zeros(stored, np.uint8))
    save_json(root, {"channel_names": {"0": "x"}, "labels": {"background": 0, "fg": 1}, "file_ending": ".nii.gz"})
    case = load_dataset(root)[0]
    assert case.spatial_shape == (7, 5)
    out = save_like(np.ones((7, 5), np.uint8), case, tmp_path / "seg.nii.gz")
    assert nib.load(out).shape == stored
    assert np.array_equal(nib.load(out).affine, AFFINE)


def test_save_like_nifti2_source_gives_nifti2(tmp_path):
    case = nifti_case(tmp_path, image_class=nib.Nifti2Image)
    out = save_like(np.zeros(case.spatial_shape, np.float32), case, tmp_path / "u.nii.gz")
    assert isinstance(nib.load(out), nib.Nifti2Image)


@pytest.mark.parametrize(("spatial_dims", "stored"), [(2, (16, 16, 1)), (3, (16, 16, 16))])
def test_save_like_synthetic_case_writes_identity_nifti(tmp_path, spatial_dims, stored):
    case = small_synthetic(spatial_dims=spatial_dims)[0]
    out = save_like(case.labels[0], case, tmp_path / "seg.nii.gz")
    saved = nib.load(out)
    assert saved.shape == stored and np.array_equal(saved.affine, np.eye(4))
    assert np.array_equal(np.asanyarray(saved.dataobj).reshape(case.spatial_shape), case.labels[0])


def test_save_like_png_case(tmp_path):
    root = write_msd_dataset(tmp_path / "d", integer_images(small_synthetic()), file_ending=".png")
    case = load_dataset(root)[0]
    seg = case.labels[0]
    out = save_like(seg, case, tmp_path / "out" / "seg.png")
    array, _, _ = read_image(out)
    assert array.dtype == np.uint8 and np.array_equal(array, seg)
    uncertainty = np.linspace(-0.5, 1.5, 256).reshape(16, 16)
    out = save_like(uncertainty, case, tmp_path / "out" / "u.png")
    array, _, _ = read_image(out)
    assert array.dtype == np.uint16
    assert np.array_equal(array, np.round(65535 * np.clip(uncertainty, 0, 1)))
    big = np.full((16, 16), 1000, np.int32)
    assert read_image(save_like(big, case, tmp_path / "out" / "big.png"))[0].dtype == np.uint16
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["big.png", "seg.png", "u.png"]


def test_save_like_rejects_bad_input(tmp_path):
    case = nifti_case(tmp_path)
    shape = case.spatial_shape
    with pytest.raises(TypeError, match="`case` to be a Case"):
        save_like(np.zeros(shape), "case", tmp_path / "x.nii.gz")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`path` to be a str or Path"):
        save_like(np.zeros(shape), case, 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`array`"):
        save_like(np.full(shape, "a"), case, tmp_path / "x.nii.gz")
    with pytest.raises(ValueError, match=r"spatial shape \(6, 5, 4\) of case 'src', but got shape \(6, 5\)"):
        save_like(np.zeros((6, 5)), case, tmp_path / "x.nii.gz")
    with pytest.raises(ValueError, match="finite"):
        save_like(np.full(shape, np.nan), case, tmp_path / "x.nii.gz")
    with pytest.raises(ValueError, match=r"within int32 for NIfTI"):
        save_like(np.full(shape, 2**40), case, tmp_path / "x.nii.gz")
    with pytest.raises(ValueError, match=r"end with '.nii.gz' or '.nii' for the nifti case 'src', but got 'x.png'"):
        save_like(np.zeros(shape), case, tmp_path / "x.png")
    png_case = Case("p", np.zeros((1, 4, 4), np.float32), None, np.eye(4), None, None, "png")
    with pytest.raises(ValueError, match=r"end with '.png' for the png case 'p'"):
        save_like(np.zeros((4, 4)), png_case, tmp_path / "x.nii.gz")
    with pytest.raises(ValueError, match=r"integers in \[0, 65535\] for PNG"):
        save_like(np.full((4, 4), -1), png_case, tmp_path / "x.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source.nii.gz"]


def test_atomic_write_removes_the_temporary_file_on_failure(tmp_path, monkeypatch):
    case = small_synthetic()[0]

    def failing_save(image, filename):
        with open(filename, "wb") as handle:
            handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(data_io.nib, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        save_like(case.labels[0], case, tmp_path / "seg.nii.gz")
    assert os.listdir(tmp_path) == []
