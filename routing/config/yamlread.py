"""Reading a config file (YAML parse errors as ConfigError) and the URL check both files and the environment share."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from routing.config.schema import ConfigError
from routing.config.urls import redact_url


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


def check_url(file: str, path: str, url: str) -> str:
    """Validate an http(s) URL and strip its trailing slash; `path` names the field in messages."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ConfigError(
            file, path, f"must be an http:// or https:// URL, got {redact_url(url)!r}", "write a full URL"
        )
    if parts.query or "@" in parts.netloc:
        raise ConfigError(file, path, "must not carry credentials or a query string", "put keys in `api_key`")
    return url.rstrip("/")
