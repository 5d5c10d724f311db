"""`${VAR}` and `${VAR:-default}` expansion over YAML trees, remembering which variables were unset."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class Expansion:
    """The result of expanding one string: its value and the names of unset variables it referenced."""

    __slots__ = ("missing", "value")

    def __init__(self, value: str, missing: tuple[str, ...]) -> None:
        self.value = value
        self.missing = missing


def expand(text: str, env: Mapping[str, str]) -> Expansion:
    """Expand every `${VAR}` / `${VAR:-default}` in text; an unset VAR without default becomes ''."""
    missing: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = env.get(name)
        if value is None or value == "":
            if default is not None:
                return default
            missing.append(name)
            return ""
        return value

    return Expansion(_PATTERN.sub(substitute, text), tuple(missing))


def expand_tree(node: Any, env: Mapping[str, str], missing: dict[str, tuple[str, ...]], path: str = "") -> Any:
    """Expand all strings of a YAML tree; record unset variables by the dotted path of the string holding them."""
    if isinstance(node, str):
        result = expand(node, env)
        if result.missing:
            missing[path] = result.missing
        return result.value
    if isinstance(node, list):
        return [expand_tree(item, env, missing, f"{path}[{i}]") for i, item in enumerate(node)]
    if isinstance(node, dict):
        return {
            key: expand_tree(value, env, missing, f"{path}.{key}" if path else str(key)) for key, value in node.items()
        }
    return node
