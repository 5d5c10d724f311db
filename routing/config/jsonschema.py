"""JSON Schemas of models.yaml and routing.yaml for editors: `python -m routing.config.jsonschema --write`.

Generated from the pydantic file models, then loosened where the files may say `${VAR}`: every value that is
not a free string (a number, an enum, a patterned name) also accepts a string containing `${`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from routing.config.models_schema import ModelsFile
from routing.config.routing_schema import RoutingFile

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
FILES: dict[str, type[BaseModel]] = {"models.yaml": ModelsFile, "routing.yaml": RoutingFile}
VARIABLE: dict[str, Any] = {"type": "string", "pattern": r"\$\{"}
_SUBSCHEMAS = ("items", "additionalProperties")
_META = ("title", "description", "default")


def schemas() -> dict[str, dict[str, Any]]:
    """Schema file name (`models.schema.json`) -> its JSON Schema."""
    result: dict[str, dict[str, Any]] = {}
    for name, model in FILES.items():
        schema = _loosen(model.model_json_schema())
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["title"] = name
        result[name.removesuffix(".yaml") + ".schema.json"] = schema
    return result


def render(schema: dict[str, Any]) -> str:
    """The committed text of a schema file."""
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def _loosen(node: dict[str, Any]) -> dict[str, Any]:
    for group in ("properties", "$defs"):
        if group in node:
            node[group] = {key: _loosen(value) for key, value in node[group].items()}
    for key in _SUBSCHEMAS:
        if isinstance(node.get(key), dict):
            node[key] = _loosen(node[key])
    if "anyOf" in node:
        branches: list[dict[str, Any]] = []
        for branch in (_loosen(b) for b in node["anyOf"]):
            for item in branch["anyOf"] if set(branch) == {"anyOf"} else [branch]:
                if item not in branches:
                    branches.append(item)
        node["anyOf"] = branches
        return node
    if node.get("type") in ("number", "integer", "boolean") or "enum" in node or "pattern" in node:
        meta = {key: node.pop(key) for key in _META if key in node}
        return {**meta, "anyOf": [node, VARIABLE]}
    return node


def main(argv: list[str] | None = None) -> int:
    """Write the schema files with `--write`; without it, exit 1 when the committed ones are stale."""
    parser = argparse.ArgumentParser(prog="python -m routing.config.jsonschema", description=__doc__)
    parser.add_argument("--write", action="store_true", help=f"write the schema files into {CONFIG_DIR}")
    args = parser.parse_args(argv)
    stale = 0
    for name, schema in schemas().items():
        path, text = CONFIG_DIR / name, render(schema)
        if args.write:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
        elif not path.is_file() or path.read_text(encoding="utf-8") != text:
            print(f"{path} is stale; run `python -m routing.config.jsonschema --write`", file=sys.stderr)
            stale = 1
    return stale


if __name__ == "__main__":
    sys.exit(main())
