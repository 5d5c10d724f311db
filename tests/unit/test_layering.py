"""The layout's rules, read from the imports of every module (function-level imports included):

- dependency direction `gateway -> routing -> adapters`; adapters import nothing of ours;
- inside routing: `config` is a leaf (adapters only), `limits` and `upstream` never reach into the decision
  core (manager, executor, strategies, selection, stream) nor into each other; `shared` (Redis) neither;
- inside gateway: `calllog` is a leaf, `telemetry` never imports a surface, the surfaces (`openai`, `beacon`,
  `ops`) never import each other, and only the composition root (app, cli) imports the surfaces;
- only gateway imports starlette; only routing/upstream opens sockets (ssl, httptools, client libraries);
- no import cycle between modules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("adapters", "routing", "gateway")
CORE = ("routing.manager", "routing.executor", "routing.strategies", "routing.selection", "routing.stream")
SURFACES = ("gateway.openai", "gateway.beacon", "gateway.ops", "gateway.anthropic")
SOCKET_LIBRARIES = ("ssl", "httptools", "aiohttp", "httpx", "httpx2", "pyreqwest", "socket")

# module prefix -> prefixes of ours it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "adapters": ("routing", "gateway"),
    "routing": ("gateway",),
    "routing.config": ("routing.limits", "routing.upstream", *CORE, "routing.errors", "routing.call"),
    "routing.limits": ("routing.upstream", *CORE),
    "routing.upstream": ("routing.limits", *CORE),
    "routing.shared": ("routing.upstream", *CORE),
    "gateway.calllog": ("gateway.telemetry", *SURFACES, "gateway.app", "gateway.lifespan", "gateway.settings"),
    "gateway.telemetry": (*SURFACES, "gateway.app", "gateway.lifespan"),
    "gateway.openai": ("gateway.beacon", "gateway.ops", "gateway.anthropic", "gateway.app"),
    "gateway.beacon": ("gateway.openai", "gateway.ops", "gateway.anthropic", "gateway.app"),
    "gateway.ops": ("gateway.openai", "gateway.beacon", "gateway.anthropic", "gateway.app"),
    # Messages reuses the chat surface's SSE relay and answer (gateway/openai/relay.py, flow.py); nothing else
    "gateway.anthropic": ("gateway.beacon", "gateway.ops", "gateway.app"),
}
COMPOSITION = ("gateway.app", "gateway.cli")


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = modules()


def imports_of(path: Path) -> Iterator[str]:
    """Every module name imported anywhere in the file (absolute imports; `from a import b` yields a and a.b)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def ours(name: str) -> str | None:
    """The module of ours an imported name refers to (the longest known prefix), if any."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        targets = {target for imported in imports_of(path) if (target := ours(imported)) and target != name}
        edges[name] = targets
    return edges


GRAPH = graph()


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_upward_or_sideways_import(layer: str) -> None:
    offenders = {
        module: sorted(t for t in targets if any(within(t, bad) for bad in FORBIDDEN[layer]))
        for module, targets in GRAPH.items()
        if within(module, layer)
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_only_the_composition_root_imports_the_surfaces() -> None:
    offenders = {
        module: sorted(t for t in targets if any(within(t, s) for s in SURFACES))
        for module, targets in GRAPH.items()
        if not any(within(module, s) for s in SURFACES) and module not in COMPOSITION
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_only_gateway_imports_starlette_and_only_upstream_opens_sockets() -> None:
    starlette, sockets = {}, {}
    for name, path in MODULES.items():
        tops = {imported.split(".")[0] for imported in imports_of(path)}
        if "starlette" in tops and not within(name, "gateway"):
            starlette[name] = True
        if tops & set(SOCKET_LIBRARIES) and not within(name, "routing.upstream"):
            sockets[name] = sorted(tops & set(SOCKET_LIBRARIES))
    assert starlette == {} and sockets == {}


def test_no_import_cycle() -> None:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for target in sorted(GRAPH.get(node, ())):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[node] = 2

    for node in sorted(GRAPH):
        if node not in state:
            visit(node)
    assert cycles == []


def test_the_rules_see_the_tree() -> None:
    # a rule over a package that no longer exists would pass for nothing
    for prefix in (*FORBIDDEN, *SURFACES, *CORE, *COMPOSITION):
        assert any(within(m, prefix) for m in MODULES), prefix
    assert sum(len(t) for t in GRAPH.values()) > 150


def test_no_module_over_400_lines() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    assert {name: n for name, n in sizes.items() if n > 400} == {}
