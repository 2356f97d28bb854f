from __future__ import annotations

import pytest

from selectseg.data.tolerant import DatasetWarning, read_all


def _parse(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"file {text}.nii.gz is unreadable")
    return int(text)


def test_one_bad_case_is_skipped_with_a_warning_naming_it() -> None:
    with pytest.warns(DatasetWarning, match=r"Skipped case_b: file b\.nii\.gz is unreadable"):
        assert read_all(["1", "b", "3"], _parse, name=lambda t: f"case_{t}") == [1, 3]


def test_all_bad_or_none_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"None of the 2 cases could be read; the first: file a\.nii\.gz"):
        read_all(["a", "b"], _parse)
    with pytest.raises(ValueError, match="at least one case"):
        read_all([], _parse)


def test_other_exceptions_propagate() -> None:
    def boom(text: str) -> int:
        raise KeyError(text)

    with pytest.raises(KeyError):
        read_all(["1"], boom)
