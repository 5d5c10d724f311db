"""Debian tools some tests drive (promtool, prometheus): skip when missing on a developer's machine, fail in CI.

scripts/ensure_services.sh installs them on a clean CI machine (its `command:package` list)."""

from __future__ import annotations

import os
import shutil

import pytest


def need_tool(command: str, package: str) -> str:
    """The path of `command`; skips the test when it is missing, except in CI (`CI` set), where it fails."""
    path = shutil.which(command)
    if path is not None:
        return path
    message = f"{command} is not installed (Debian package {package!r}; scripts/ensure_services.sh installs it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
