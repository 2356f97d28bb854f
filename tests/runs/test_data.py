"""load_cases: the data set a config names, resampled by data.scale, with format reader options."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from selectseg.data import make_synthetic_dataset, write_msd_dataset
from selectseg.runs.config import DataConfig, SyntheticConfig
from selectseg.runs.data import load_cases


def test_load_cases_scale_halves_shape_keeps_integer_labels_and_affine() -> None:
    synthetic = SyntheticConfig(num_train=2, size=32)
    full = load_cases(DataConfig(synthetic=synthetic))
    half = load_cases(DataConfig(synthetic=synthetic, scale=0.5))
    assert [c.case_id for c in half] == [c.case_id for c in full]
    for big, small in zip(full, half):
        assert small.image.shape == (big.image.shape[0], 16, 16) and small.labels is not None
        assert small.labels.dtype == np.int64 and set(np.unique(small.labels)) <= set(np.unique(big.labels))
        np.testing.assert_allclose(np.diag(small.affine)[:2], 2 * np.diag(big.affine)[:2])
        # the first new pixel's centre lies between the first two old ones
        np.testing.assert_allclose(small.affine[:2, 3], big.affine[:2, 3] + 0.5 * np.diag(big.affine)[:2])


def test_load_cases_scale_on_a_folder(tmp_path: Path) -> None:
    root = write_msd_dataset(tmp_path / "Dataset001_S", make_synthetic_dataset(num_cases=2, size=16))
    cases = load_cases(DataConfig(path=str(root), scale=0.5))
    assert {c.spatial_shape for c in cases} == {(8, 8)}


def test_load_cases_crop_size_refused_by_a_format_without_it(tmp_path: Path) -> None:
    root = write_msd_dataset(tmp_path / "Dataset001_S", make_synthetic_dataset(num_cases=2, size=16))
    with pytest.raises(ValueError, match=r"'msd' reader takes no option \['crop_size'\]"):
        load_cases(DataConfig(path=str(root), crop_size=8))
