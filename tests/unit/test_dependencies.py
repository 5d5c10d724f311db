"""Honest dependencies: the runtime lock holds what production code imports, and nothing only tests use; the
README's Layout table names every package folder."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ("gateway", "routing", "adapters")
TEST_ONLY = {"aiohttp", "httpx", "httpx2", "pyreqwest", "sse-starlette", "openai", "pytest"}
# imports of an optional extra (pyproject's `otel`), each allowed in one module only, imported only when configured
OPTIONAL = {"opentelemetry": ("otel", "gateway/telemetry/otel.py")}


def locked(name: str) -> set[str]:
    text = (ROOT / name).read_text()
    return {normalized(m.group(1)) for m in re.finditer(r"^([A-Za-z0-9_.-]+)==", text, re.MULTILINE)}


def normalized(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def third_party_imports(optional: bool = False) -> set[str]:
    found: set[str] = set()
    for package in PRODUCTION:
        for path in (ROOT / package).rglob("*.py"):
            if optional != (str(path.relative_to(ROOT)) in {where for _, where in OPTIONAL.values()}):
                continue
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


def test_an_optional_extras_imports_stay_in_its_one_module_and_the_dev_lock() -> None:
    assert set(OPTIONAL) & third_party_imports() == set()  # nowhere else
    assert third_party_imports(optional=True) <= set(OPTIONAL)
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    dev = {requirement_name(r) for r in extras["dev"]}
    for module, (extra, _) in OPTIONAL.items():
        wanted = {requirement_name(r) for r in extras[extra]}
        assert wanted and all(w.startswith(module) for w in wanted)
        assert wanted <= dev  # the dev extra repeats it whole: the tests run with it
        assert wanted <= locked("requirements.lock")


def requirement_name(requirement: str) -> str:
    return normalized(re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0])


def test_the_layout_table_names_every_package_folder() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Layout", 1)[1]
    folders = {
        str(init.parent.relative_to(ROOT)) + "/"
        for package in PRODUCTION
        for init in (ROOT / package).rglob("__init__.py")
    }
    assert {f for f in folders if f"`{f}`" not in table} == set()
