"""The dashboard's files ship with the package: every asset it serves matches pyproject's package-data, so
`gateway serve` from an installed wheel finds them (checked once by building a wheel: all seven files were in it)."""

from __future__ import annotations

import tomllib
from pathlib import PurePosixPath

from gateway.ops.dashboard import ASSETS, STATIC
from gateway.settings import ROOT


def test_every_served_file_exists_and_is_package_data() -> None:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["gateway.ops"]
    for name in [*ASSETS, "dashboard.html"]:
        assert (STATIC / name).is_file(), name
        path = PurePosixPath("static", name)
        # setuptools' globs do not cross a `/`: a pattern matches a file with as many parts as itself
        assert any(path.match(p) and len(path.parts) == len(PurePosixPath(p).parts) for p in patterns), name


def test_the_vendored_uplot_says_where_it_came_from() -> None:
    version = (STATIC / "vendor/uplot/VERSION").read_text()
    assert "uPlot 1.6.32" in version and "npm pack uplot@1.6.32" in version
    assert "MIT License" in (STATIC / "vendor/uplot/LICENSE").read_text()
