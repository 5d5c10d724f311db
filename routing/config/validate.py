"""Validate a parsed config file against its pydantic model; pydantic's errors become one ConfigError.

The message keeps the loader's shape, `file: path: problem. Fix: ...`: the path is written the way the file is
(`models[0].route[1].weight`), the problem in plain words, the fix from a small table per kind of error.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from routing.config.schema import ConfigError

M = TypeVar("M", bound=BaseModel)
Special = Mapping[tuple[str, str], tuple[str, str]]
"""(path, pydantic error type) -> (problem, fix) for a field whose generic message would say too little."""

_NUMBER = ("must be a number, got {got}", "write a plain number, e.g. `{key}: 1`")
_MAPPING = ("must be a mapping, got {type}", "write `key: value` lines")
_LIST = ("must be a list, got {type}", "write `{key}:` followed by `- ...` items")
_HINTS: dict[str, tuple[str, str]] = {
    "missing": ("is required", "add `{key}:` with a non-empty string"),
    "string_type": ("must be a string, got {type}", "quote the value of `{key}`"),
    "float_type": _NUMBER,
    "float_parsing": _NUMBER,
    "int_type": _NUMBER,
    "int_parsing": _NUMBER,
    "bool_number": _NUMBER,
    "int_from_float": ("must be a whole number, got {got}", "drop the fraction"),
    "finite_number": ("must be a finite number, got {got}", "write a plain number, e.g. `{key}: 1`"),
    "greater_than_equal": ("must be >= {ge}, got {got}", "set `{key}` to a number >= {ge}"),
    "between": ("must be between {low} and {high}, got {got}", "set `{key}` to a number between {low} and {high}"),
    "model_type": _MAPPING,
    "model_attributes_type": _MAPPING,
    "dict_type": _MAPPING,
    "list_type": _LIST,
    "tuple_type": _LIST,
    "too_short": ("must not be empty", "add at least one `- ...` item under `{key}:`"),
}


def validate(model: type[M], data: Any, file: str, special: Special | None = None) -> M:
    """`model` validated from data; the first problem raises ConfigError naming file, path and fix.

    Unknown keys come first: a misspelt required key is also reported missing, and the spelling is the news.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = sorted(exc.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")
        raise config_error(model, errors[0], file, special or {}) from None


def config_error(model: type[BaseModel], error: ErrorDetails, file: str, special: Special) -> ConfigError:
    """One pydantic error as a ConfigError."""
    loc = tuple(part for part in error["loc"] if part != "[key]")
    path = dotted(loc)
    key = next((str(part) for part in reversed(loc) if isinstance(part, str)), "value")
    kind = error["type"]
    if kind == "extra_forbidden":
        problem, fix = _unknown(key, valid_keys(model, loc[:-1]))
    elif (path, kind) in special:
        problem, fix = special[(path, kind)]
    elif kind in _HINTS:
        value = error["input"]
        ctx = {name: _bound(v) for name, v in (error.get("ctx") or {}).items()}
        fields = {"key": key, "got": repr(value), "type": type(value).__name__, **ctx}
        problem, fix = (text.format(**fields) for text in _HINTS[kind])
    else:
        problem, fix = error["msg"][:1].lower() + error["msg"][1:], "see the README for this field"
    return ConfigError(file, path or "(top level)", problem, fix)


def dotted(loc: Sequence[int | str]) -> str:
    """`models[0].route[1].weight` for the loc ('models', 0, 'route', 1, 'weight')."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def valid_keys(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """The keys the mapping at loc accepts (empty when it is free-form)."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return []
            current = field.annotation
        elif get_origin(current) in (list, tuple) and isinstance(part, int):
            current = get_args(current)[0]
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        else:
            return []
    current = _unwrap(current)
    return list(current.model_fields) if isinstance(current, type) and issubclass(current, BaseModel) else []


def _unwrap(annotation: Any) -> Any:
    """The type inside `Annotated[...]` and `X | None`."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            members = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _unknown(key: str, valid: list[str]) -> tuple[str, str]:
    close = difflib.get_close_matches(key, valid, n=1)
    if close:
        return f"unknown field; did you mean `{close[0]}`?", f"rename it to `{close[0]}`, or remove it"
    if valid:
        return "unknown field", f"remove it; the keys here are: {', '.join(valid)}"
    return "unknown field", "remove it"


def _bound(value: Any) -> Any:
    # the loader always wrote bounds as floats (`must be >= 0.0`); keep messages people may grep for
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
