"""The distribution ships every package: pyproject's explicit package list must name each folder with an
``__init__.py`` under its package dirs (an editable install finds them anyway, a wheel does not)."""

from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_in_pyproject() -> None:
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {
        ".".join([name, *init.parent.relative_to(ROOT / folder).parts])
        for name, folder in setup["package-dir"].items()
        for init in (ROOT / folder).rglob("__init__.py")
    }
    assert found - set(setup["packages"]) == set(), "packages missing from pyproject.toml"
