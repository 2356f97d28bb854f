"""Installed versions of Python and of the packages selectseg's numbers depend on, read from package metadata
(nothing is imported)."""

from __future__ import annotations

import platform
from collections.abc import Sequence
from importlib import metadata

__all__ = ["package_versions"]


def package_versions(packages: Sequence[str]) -> dict[str, str]:
    """``{"python": ..., package: version or "not installed", ...}`` in the order given.

    Example:
        >>> sorted(package_versions(["numpy"]))
        ['numpy', 'python']
    """
    versions = {"python": platform.python_version()}
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions
