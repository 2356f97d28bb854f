from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import selectseg.data.formats.brats
import selectseg.data.formats.hecktor  # registers "hecktor"
import selectseg.data.formats.mmwhs
import selectseg.data.formats.qubiq  # noqa: F401  (the cross-format detector test needs every format registered)
from selectseg.data import get_format, load_dataset
from selectseg.data.formats.hecktor import CLASS_NAMES, load_hecktor
from selectseg.data.tolerant import DatasetWarning
from tests.data._files import AFFINE, msd_style_folder, save_nifti, snapshot
from tests.data.test_brats import make_brats_folder, write_official_case
from tests.data.test_mmwhs import make_mmwhs_folder
from tests.data.test_qubiq import make_qubiq_folder

SHAPE = (6, 5, 4)


def write_hecktor_case(images: Path, labels: Path | None, case_id: str, seed=0) -> None:
    rng = np.random.default_rng(seed)
    save_nifti(images / f"{case_id}__CT.nii.gz", rng.normal(size=SHAPE).astype(np.float32))
    save_nifti(images / f"{case_id}__PT.nii.gz", rng.gamma(2.0, size=SHAPE).astype(np.float32))
    if labels is not None:
        save_nifti(labels / f"{case_id}.nii.gz", rng.integers(0, 3, size=SHAPE).astype(np.uint8))


def make_hecktor_folder(root: Path) -> Path:
    write_hecktor_case(root / "imagesTr", root / "labelsTr", "CHUM-001", seed=1)
    write_hecktor_case(root / "imagesTr", root / "labelsTr", "MDA-017", seed=2)
    write_hecktor_case(root / "imagesTs", None, "CHB-005", seed=3)
    return root


def test_load_hecktor_2022_layout(tmp_path):
    root = make_hecktor_folder(tmp_path / "hecktor")
    ds = load_dataset(root)
    assert ds.info.format == "hecktor" and ds.info.channel_names == ("CT", "PT") and ds.info.class_names == CLASS_NAMES
    assert [c.case_id for c in ds] == ["CHUM-001", "MDA-017"] and ds[0].subject == "CHUM-001"
    case = ds[0]
    assert case.image.shape == (2, *SHAPE) and case.labels.shape == (1, *SHAPE)
    ct = np.asarray(nib.load(root / "imagesTr" / "CHUM-001__CT.nii.gz").dataobj)
    assert np.array_equal(case.image[0], ct) and np.array_equal(case.affine, AFFINE)
    assert case.source.name == "CHUM-001__CT.nii.gz"
    test = load_hecktor(root, "test")
    assert [c.case_id for c in test] == ["CHB-005"] and test[0].labels is None
    assert len(load_hecktor(root, "all")) == 3


def test_load_hecktor_flat_folder(tmp_path):
    write_hecktor_case(tmp_path, tmp_path, "CHUM-001")
    assert load_dataset(tmp_path)[0].case_id == "CHUM-001"
    with pytest.raises(ValueError, match=r"imagesTs/ folder .* for split 'test'"):
        load_hecktor(tmp_path, "test")
    assert len(load_hecktor(tmp_path, "all")) == 1


def test_load_hecktor_pet_on_another_grid(tmp_path):
    ct_affine = np.diag([1.0, 1.0, 1.0, 1.0])
    pt_affine = np.diag([2.0, 2.0, 2.0, 1.0])
    pt_affine[:3, 3] = 0.5  # PET voxel centres at 0.5 + 2 i mm: the ramp x + 2y + 3z is exact under linear sampling
    grid = np.indices((8, 8, 8)).astype(np.float64)
    save_nifti(tmp_path / "CHUM-001__CT.nii.gz", grid[0].astype(np.float32), ct_affine)
    pt_world = 0.5 + 2 * np.indices((4, 4, 4)).astype(np.float64)
    ramp = (pt_world[0] + 2 * pt_world[1] + 3 * pt_world[2]).astype(np.float32)
    save_nifti(tmp_path / "CHUM-001__PT.nii.gz", ramp, pt_affine)
    save_nifti(tmp_path / "CHUM-001.nii.gz", np.zeros((8, 8, 8), np.uint8), ct_affine)
    with pytest.raises(ValueError, match=r"CT .* and PET .* on one grid, but got shapes \(8, 8, 8\) and \(4, 4, 4\)"):
        load_hecktor(tmp_path)
    case = load_hecktor(tmp_path, resample_pet=True)[0]
    inside = (slice(1, 7),) * 3  # CT voxels within the PET's outermost voxel centres (0.5 .. 6.5)
    expected = grid[0] + 2 * grid[1] + 3 * grid[2]
    assert np.allclose(case.image[1][inside], expected[inside], atol=1e-4)
    assert np.array_equal(case.affine, ct_affine)


def test_load_hecktor_same_shape_other_affine_is_another_grid(tmp_path):
    write_hecktor_case(tmp_path, tmp_path, "CHUM-001")
    save_nifti(tmp_path / "CHUM-001__PT.nii.gz", np.zeros(SHAPE, np.float32), np.eye(4))
    with pytest.raises(ValueError, match=r"with different affines: resample the PET onto the CT grid first"):
        load_hecktor(tmp_path)


def test_load_hecktor_writes_nothing(tmp_path):
    root = make_hecktor_folder(tmp_path)
    before = snapshot(root)
    load_hecktor(root, "all")
    assert snapshot(root) == before


def test_load_hecktor_raises_for_wrong_folder(tmp_path):
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(ValueError, match=r"Expected <Center>-<ID>__CT.nii.gz files of split 'train'"):
        load_hecktor(tmp_path)


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda r: (r / "labelsTr" / "MDA-017.nii.gz").unlink(), r"label file .*MDA-017.nii.gz \(a training case\)"),
        (lambda r: (r / "imagesTr" / "MDA-017__PT.nii.gz").unlink(), r"image file .*MDA-017__PT.nii.gz \(PT of case"),
        (lambda r: (r / "imagesTr" / "MDA-017__CT.nii.gz").unlink(), r"image file .*MDA-017__CT.nii.gz \(CT of case"),
        (lambda r: (r / "imagesTr" / "MDA-017__PT.nii.gz").write_bytes(b"x"), "Could not read image file .*__PT"),
        (
            lambda r: save_nifti(r / "labelsTr" / "MDA-017.nii.gz", np.zeros((6, 5, 3), np.uint8)),
            r"label file .*MDA-017.nii.gz to have the shape \(6, 5, 4\) of .*MDA-017__CT",
        ),
        (
            lambda r: save_nifti(r / "labelsTr" / "MDA-017.nii.gz", np.full(SHAPE, 3, np.uint8)),
            r"MDA-017.nii.gz to hold values in \[0, 1, 2\], but found \[3\]",
        ),
        (
            lambda r: save_nifti(r / "imagesTr" / "MDA-017__CT.nii.gz", np.zeros((6, 5), np.float32)),
            "to be a 3-D volume",
        ),
    ],
)
def test_load_hecktor_one_bad_case_warns_and_a_lone_bad_case_raises(tmp_path, damage, match):
    root = make_hecktor_folder(tmp_path)
    damage(root)
    with pytest.warns(DatasetWarning, match=r"Skipped MDA-017: .*" + match):
        ds = load_hecktor(root)
    assert [c.case_id for c in ds] == ["CHUM-001"]
    for f in (*root.glob("imagesTr/CHUM-001*"), *root.glob("labelsTr/CHUM-001*")):
        f.unlink()
    if any(root.glob("imagesTr/MDA-017__CT*")):
        with pytest.raises(ValueError, match=r"None of the 1 cases could be read; the first: .*" + match):
            load_hecktor(root)


# ------------------------------------------------------------------------------------ detectors, across formats


def test_detectors_claim_only_their_own_folders(tmp_path):
    folders = {
        "qubiq": make_qubiq_folder(tmp_path / "qubiq"),
        "brats": make_brats_folder(tmp_path / "brats"),
        "brats_official": tmp_path / "official",
        "mmwhs": make_mmwhs_folder(tmp_path / "mmwhs"),
        "hecktor": make_hecktor_folder(tmp_path / "hecktor"),
        "hecktor_flat": tmp_path / "flat",
        "msd": msd_style_folder(tmp_path / "msd"),
        "empty": tmp_path / "empty",
    }
    write_official_case(folders["brats_official"] / "BraTS20_Training_001")
    write_hecktor_case(folders["hecktor_flat"], folders["hecktor_flat"], "CHUM-001")
    folders["empty"].mkdir()
    (tmp_path / "missing").mkdir()
    (tmp_path / "missing").rmdir()
    folders["missing"] = tmp_path / "missing"
    for name in ("qubiq", "brats", "mmwhs", "hecktor"):
        detect = get_format(name).detect
        claimed = sorted(k for k, folder in folders.items() if detect(folder))
        assert claimed == sorted(k for k in folders if k.split("_")[0] == name), name
    # a dataset.json folder stays "msd"'s even when it also holds files another detector would recognise
    write_hecktor_case(folders["msd"], None, "CHUM-002")
    assert not get_format("hecktor").detect(folders["msd"])
    assert load_dataset(folders["msd"]).info.format == "msd"


def test_load_hecktor_rejects_an_unsafe_case_id(tmp_path):
    write_hecktor_case(tmp_path / "imagesTr", tmp_path / "labelsTr", "a\\..\\b")
    with pytest.raises(ValueError, match=r"case id from .*imagesTr.* to be usable as a file name.*got 'a"):
        load_dataset(tmp_path)
