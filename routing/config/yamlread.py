"""Typed reads from parsed YAML that fail with a ConfigError naming the file, the field and the fix."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from routing.config.schema import ConfigError
from routing.config.urls import redact_url

_MISSING: Any = object()


def load_yaml(path: Path, what: str) -> Any:
    """Parse a YAML file, turning I/O and syntax errors into ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "", "file not found", f"create it or point {what} at the right file") from None
    except OSError as exc:
        raise ConfigError(
            str(path), "", f"cannot read file ({exc.strerror})", "check the path and permissions"
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "somewhere"
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(str(path), "", f"malformed YAML at {where}: {problem}", "fix the YAML syntax") from None


class Reader:
    """A mapping at a dotted path of one file, read field by field with checks."""

    def __init__(self, file: str, path: str, data: Any) -> None:
        if not isinstance(data, dict):
            raise ConfigError(
                file, path or "(top level)", f"must be a mapping, got {type(data).__name__}", "write `key: value` lines"
            )
        self.file, self.path, self.data = file, path, data

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, problem: str, fix: str = "") -> ConfigError:
        return ConfigError(self.file, self.at(key), problem, fix)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def raw(self, key: str, default: Any = None) -> Any:
        value = self.data.get(key)
        return default if value is None else value

    def text(self, key: str, default: Any = _MISSING) -> str:
        value = self.data.get(key)
        if value is None or value == "":
            if default is _MISSING:
                raise self.fail(key, "is required", f"add `{key}:` with a non-empty string")
            return str(default)
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(key, f"must be a string, got {type(value).__name__}", f"quote the value of `{key}`")
        return str(value)

    def number(self, key: str, default: float, low: float | None = None, high: float | None = None) -> float:
        value = self.data.get(key)
        if value is None or value == "":
            return default
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
        except (TypeError, ValueError):
            raise self.fail(key, f"must be a number, got {value!r}", f"write a plain number, e.g. `{key}: 1`") from None
        if not math.isfinite(number):
            # NaN and infinity pass naive comparisons and turn weights, prices and limits into nonsense.
            raise self.fail(key, f"must be a finite number, got {value!r}", f"write a plain number, e.g. `{key}: 1`")
        if (low is not None and number < low) or (high is not None and number > high):
            bounds = f">= {low}" if high is None else f"between {low} and {high}"
            raise self.fail(key, f"must be {bounds}, got {value!r}", f"set `{key}` to a number {bounds}")
        return number

    def integer(self, key: str, default: int, low: int = 0) -> int:
        number = self.number(key, float(default), float(low))
        if number != int(number):
            raise self.fail(key, f"must be a whole number, got {number!r}", "drop the fraction")
        return int(number)

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false", "1", "0", "yes", "no"}:
            return value.lower() in {"true", "1", "yes"}
        raise self.fail(key, f"must be true or false, got {value!r}", f"write `{key}: true` or `{key}: false`")

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
            raise self.fail(key, "must be a list of strings", f"write `{key}: [a, b]`")
        return tuple(str(v) for v in value if str(v) != "")

    def items(self, key: str) -> list[Any]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(
                key, f"must be a list, got {type(value).__name__}", f"write `{key}:` followed by `- ...` items"
            )
        return value

    def child(self, key: str) -> Reader:
        value = self.data.get(key)
        return Reader(self.file, self.at(key), {} if value is None else value)


def check_url(reader: Reader, key: str, url: str) -> str:
    """Validate an http(s) URL and strip its trailing slash."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise reader.fail(key, f"must be an http:// or https:// URL, got {redact_url(url)!r}", "write a full URL")
    if parts.query or "@" in parts.netloc:
        raise reader.fail(key, "must not carry credentials or a query string", "put keys in `api_key`")
    return url.rstrip("/")
