"""The committed JSON Schemas match the file models, accept the shipped files (with their `${VAR}`s) and are strict."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from routing.config import jsonschema
from routing.config.load import load_config

CONFIG = Path(__file__).resolve().parents[3] / "config"
SHIPPED = {"models.schema.json": CONFIG / "models.yaml", "routing.schema.json": CONFIG / "routing.yaml"}
TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "number": int | float,
    "boolean": bool,
    "null": type(None),
}


def problems(value: Any, schema: dict[str, Any], root: dict[str, Any], path: str = "") -> list[str]:
    """The subset of JSON Schema the generated files use (jsonschema is not a dependency), as error strings."""
    if "$ref" in schema:
        return problems(value, root["$defs"][schema["$ref"].rsplit("/", 1)[1]], root, path)
    if "anyOf" in schema:
        if any(not problems(value, branch, root, path) for branch in schema["anyOf"]):
            return []
        return [f"{path}: {value!r} matches no alternative"]
    expected = schema.get("type")
    if expected is not None:
        if isinstance(value, bool) and expected in ("integer", "number"):
            return [f"{path}: boolean is not a {expected}"]
        if not isinstance(value, TYPES[expected]):
            return [f"{path}: {value!r} is not {expected}"]
    found: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{path}: {value!r} not in enum")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        found.append(f"{path}: {value!r} does not match {schema['pattern']}")
    if "minimum" in schema and value < schema["minimum"]:
        found.append(f"{path}: {value!r} < minimum")
    if "maximum" in schema and value > schema["maximum"]:
        found.append(f"{path}: {value!r} > maximum")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            found.append(f"{path}: too few items")
        for i, item in enumerate(value):
            found += problems(item, schema.get("items", {}), root, f"{path}[{i}]")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        found += [f"{path}.{key}: required" for key in schema.get("required", ()) if key not in value]
        for key, item in value.items():
            sub = properties.get(key, schema.get("additionalProperties", {}))
            if sub is False:
                found.append(f"{path}.{key}: not allowed")
            else:
                found += problems(item, sub, root, f"{path}.{key}")
    return found


def test_committed_schema_files_are_current() -> None:
    for name, schema in jsonschema.schemas().items():
        assert (CONFIG / name).read_text(encoding="utf-8") == jsonschema.render(schema), (
            f"config/{name} is stale: run `python -m routing.config.jsonschema --write`"
        )
    assert jsonschema.main([]) == 0


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_files_name_their_schema_and_validate_against_it(name: str) -> None:
    path = SHIPPED[name]
    assert path.read_text().splitlines()[0] == f"# yaml-language-server: $schema={name}"
    schema = jsonschema.schemas()[name]
    assert problems(yaml.safe_load(path.read_text()), schema, schema) == []


def test_shipped_files_load() -> None:
    config = load_config(CONFIG / "models.yaml", CONFIG / "routing.yaml", {})
    assert config.resolve("mock") is not None and config.routing.local_fraction == 0.6


def test_shipped_routing_example_validates_against_the_schema() -> None:
    lines = (CONFIG / "routing.yaml").read_text().splitlines()
    block = [line.removeprefix("# ") for line in lines[lines.index("# strategies:") :] if line.startswith("# ")]
    schema = jsonschema.schemas()["routing.schema.json"]
    assert problems(yaml.safe_load("\n".join(block)), schema, schema) == []


@pytest.mark.parametrize(
    ("name", "document", "problem"),
    [
        ("models.schema.json", {"models": [{"id": "m", "route": [{"kind": "mock", "wieght": 5}]}]}, "wieght"),
        ("models.schema.json", {"models": [{"id": "m", "route": [{"kind": "warp"}]}]}, "kind"),
        ("models.schema.json", {"models": [{"id": "m", "route": [{"kind": "mock", "weight": True}]}]}, "weight"),
        ("models.schema.json", {"models": [{"id": "m", "pricing": {"prompt": "cheap"}}]}, "prompt"),
        ("models.schema.json", {"models": []}, "models"),
        ("models.schema.json", {"models": [{"route": []}]}, "id"),
        ("routing.schema.json", {"routing_parameter": {"local_fractoin": 0.2}}, "local_fractoin"),
        ("routing.schema.json", {"routing_parameter": {"local_fraction": 2}}, "local_fraction"),
        ("routing.schema.json", {"strategies": {"s": {"kind": "magic"}}}, "kind"),
    ],
)
def test_schema_rejects_what_the_loader_rejects(name: str, document: Any, problem: str) -> None:
    schema = jsonschema.schemas()[name]
    found = problems(document, schema, schema)
    assert found and problem in " ".join(found)


def test_every_non_string_value_also_takes_a_variable() -> None:
    schema = jsonschema.schemas()["models.schema.json"]
    document = {
        "models": [
            {
                "id": "m",
                "context_length": "${CTX}",
                "pricing": {"prompt": "${PRICE}", "completion": "0.25"},
                "route": [{"kind": "${KIND}", "name": "${NAME}", "weight": "${W:-1}", "timeouts": {"total": "${T}"}}],
            }
        ]
    }
    assert problems(document, schema, schema) == []
    assert problems({"models": [{"id": "m", "context_length": "lots"}]}, schema, schema)

    def leaves(node: Any) -> list[dict[str, Any]]:
        if not isinstance(node, dict):
            return [leaf for item in node for leaf in leaves(item)] if isinstance(node, list) else []
        own = [node] if node.get("type") in ("number", "integer", "boolean") or "enum" in node else []
        return own + [leaf for key, item in node.items() if key != "default" for leaf in leaves(item)]

    for name, tree in jsonschema.schemas().items():
        for leaf in leaves(tree):
            parents = [n for n in _anyofs(tree) if leaf in n["anyOf"]]
            assert parents and all(jsonschema.VARIABLE in n["anyOf"] for n in parents), (name, leaf)


def _anyofs(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, list):
        return [found for item in node for found in _anyofs(item)]
    if not isinstance(node, dict):
        return []
    own = [node] if "anyOf" in node else []
    return own + [found for item in node.values() for found in _anyofs(item)]
