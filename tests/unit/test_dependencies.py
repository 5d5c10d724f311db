"""Honest dependencies: the runtime lock holds what production code imports, and nothing only tests use; the
README's Layout table names every package folder."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ("gateway", "routing", "adapters")
TEST_ONLY = {"aiohttp", "httpx", "httpx2", "pyreqwest", "sse-starlette", "openai", "pytest"}


def locked(name: str) -> set[str]:
    text = (ROOT / name).read_text()
    return {normalized(m.group(1)) for m in re.finditer(r"^([A-Za-z0-9_.-]+)==", text, re.MULTILINE)}


def normalized(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def third_party_imports() -> set[str]:
    found: set[str] = set()
    for package in PRODUCTION:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                found.update(n.split(".")[0] for n in names)
    return {n for n in found if n not in sys.stdlib_module_names and n not in PRODUCTION and n != "__future__"}


def test_the_runtime_lock_holds_every_import_and_no_test_only_package() -> None:
    runtime = locked("requirements.runtime.lock")
    distributions = packages_distributions()
    missing = {}
    for module in third_party_imports():
        names = {normalized(d) for d in distributions.get(module, [module])}
        if not names & runtime:
            missing[module] = sorted(names)
    assert missing == {}
    assert runtime & TEST_ONLY == set()
    assert TEST_ONLY - {"pytest"} <= locked("requirements.lock")  # the dev lock pins them for tests and bench


def test_the_layout_table_names_every_package_folder() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Layout", 1)[1]
    folders = {
        str(init.parent.relative_to(ROOT)) + "/"
        for package in PRODUCTION
        for init in (ROOT / package).rglob("__init__.py")
    }
    assert {f for f in folders if f"`{f}`" not in table} == set()
