from __future__ import annotations

from pathlib import Path

import pytest

from selectseg.data.names import (
    ALLOW_OUTSIDE_ENV,
    allowing_outside_root,
    confine,
    outside_root_allowed,
    safe_case_id,
)


@pytest.mark.parametrize("case_id", ["BraTS_001", "la_003", "case.v2", "a-b", "Ünïcode", "testA_12", ".hidden"])
def test_safe_case_id_accepts_file_name_stems(case_id):
    assert safe_case_id(case_id, "somewhere") == case_id


@pytest.mark.parametrize("case_id", ["", ".", "..", "../x", "a/b", "a\\b", "a..b", "x\x00y", "x\ny", "\x7f"])
def test_safe_case_id_rejects_separators_dots_and_control_characters(case_id):
    with pytest.raises(ValueError, match=r"case id from imagesTr/f\.nii\.gz to be usable as a file name"):
        safe_case_id(case_id, "imagesTr/f.nii.gz")


def test_confine_accepts_paths_inside_and_refuses_outside(tmp_path):
    root = tmp_path / "d"
    (root / "imagesTr").mkdir(parents=True)
    (tmp_path / "secret.nii.gz").write_bytes(b"x")
    inside = root / "imagesTr" / "x.nii.gz"
    assert confine(root, inside, "entry 0", allow_outside=False) == inside
    assert confine(root, root / "imagesTr" / ".." / "imagesTr" / "x.nii.gz", "entry 0", allow_outside=False)
    for path in (root / ".." / "secret.nii.gz", tmp_path / "secret.nii.gz", Path("/etc/passwd")):
        with pytest.raises(ValueError, match=r"Expected entry 0 to be inside the dataset folder .*allow_outside_root"):
            confine(root, path, "entry 0", allow_outside=False)
        assert confine(root, path, "entry 0", allow_outside=True) == path


def test_confine_follows_symlinks_and_refuses_loops(tmp_path):
    root = tmp_path / "d"
    root.mkdir()
    (tmp_path / "secret.nii.gz").write_bytes(b"x")
    (root / "out.nii.gz").symlink_to(tmp_path / "secret.nii.gz")
    (root / "dangling.nii.gz").symlink_to(tmp_path / "missing.nii.gz")
    (root / "in.nii.gz").symlink_to(root / "out.nii.gz")  # a chain that ends outside
    (root / "loop.nii.gz").symlink_to(root / "loop.nii.gz")
    for name in ("out.nii.gz", "dangling.nii.gz", "in.nii.gz", "loop.nii.gz"):
        with pytest.raises(ValueError, match="resolves outside it"):
            confine(root, root / name, name, allow_outside=False)
    (root / "data").mkdir()
    (root / "data" / "x.nii.gz").write_bytes(b"x")
    (root / "link.nii.gz").symlink_to(root / "data" / "x.nii.gz")  # a link that stays inside is fine
    assert confine(root, root / "link.nii.gz", "link", allow_outside=False).name == "link.nii.gz"


def test_confine_accepts_a_root_that_is_itself_a_symlink(tmp_path):
    (tmp_path / "real" / "imagesTr").mkdir(parents=True)
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    assert confine(tmp_path / "alias", tmp_path / "alias" / "imagesTr" / "x", "e", allow_outside=False)


def test_outside_root_allowed_explicit_then_scoped_then_environment(monkeypatch):
    monkeypatch.delenv(ALLOW_OUTSIDE_ENV, raising=False)
    assert outside_root_allowed() is False
    for value, expected in (("1", True), ("true", True), ("YES", True), ("0", False), ("", False), ("no", False)):
        monkeypatch.setenv(ALLOW_OUTSIDE_ENV, value)
        assert outside_root_allowed() is expected
    monkeypatch.setenv(ALLOW_OUTSIDE_ENV, "1")
    with allowing_outside_root(False):
        assert outside_root_allowed() is False
        assert outside_root_allowed(True) is True
    with allowing_outside_root(None):
        assert outside_root_allowed() is True
    monkeypatch.delenv(ALLOW_OUTSIDE_ENV)
    with allowing_outside_root(True):
        assert outside_root_allowed() is True
    assert outside_root_allowed() is False
