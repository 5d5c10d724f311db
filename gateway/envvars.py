"""Typed reads of environment variables with pydantic: one boolean parser, ranges checked, one error shape.

A settings group is a pydantic model whose fields carry the variable name as their alias; `read_env` validates
a mapping of variables against it and turns pydantic's errors into one `SettingsError` line that names the
variable, the value, the problem and the fix. Empty values count as unset.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic.fields import FieldInfo

from routing.config.flags import WORDS, parse_flag

M = TypeVar("M", bound=BaseModel)


class SettingsError(ValueError):
    """An environment variable is wrong; the message names it, its value, the problem and the fix."""


def _words(value: Any) -> list[str]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return list(value)


Flag = Annotated[bool, BeforeValidator(parse_flag)]
"""A boolean variable: true/false, 1/0, yes/no, on/off (any case); anything else is an error."""

Words = Annotated[tuple[str, ...], BeforeValidator(_words)]
"""A comma-separated list (empty items dropped)."""


class EnvGroup(BaseModel):
    """Base of a settings group read from environment variables (field aliases are the variable names)."""

    model_config = ConfigDict(
        extra="ignore", frozen=True, populate_by_name=False, allow_inf_nan=False, str_strip_whitespace=True
    )


def read_env(group: type[M], env: Mapping[str, str]) -> M:
    """The group validated from `env` (empty values are unset); SettingsError naming the first bad variable."""
    names = {field.alias or name for name, field in group.model_fields.items()}
    present = {name: value for name in names if (value := env.get(name, "")) is not None and value.strip() != ""}
    try:
        return group.model_validate(present)
    except ValidationError as exc:
        raise _settings_error(group, exc, present) from None


def _settings_error(group: type[BaseModel], exc: ValidationError, env: Mapping[str, str]) -> SettingsError:
    error = exc.errors(include_url=False)[0]
    name = str(error["loc"][0]) if error["loc"] else "?"
    field = next((f for n, f in group.model_fields.items() if (f.alias or n) == name), None)
    default = "" if field is None or field.default is None else f" ({_shown(field.default)})"
    expected = field.description if field is not None and field.description else _expected(error, field)
    return SettingsError(
        f"environment variable {name}={env.get(name, '')!r}: {_problem(error)}. "
        f"Fix: set {name} to {expected}, or unset it for the default{default}"
    )


def _problem(error: Any) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "value_error":
        return str(ctx.get("error") or error["msg"]).removeprefix("Value error, ")
    if kind in ("int_parsing", "int_from_float", "int_type"):
        return "must be a whole number"
    if kind in ("float_parsing", "float_type"):
        return "must be a number"
    if kind == "finite_number":
        return "must be a finite number"
    bound = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
    if kind in bound:
        limit = next(iter(ctx.values()), "")
        return f"must be {bound[kind]} {limit}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}"
    return str(error["msg"]).lower()


def _expected(error: Any, field: FieldInfo | None) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "value_error" and "true" in str(ctx.get("error", "")):
        return WORDS
    if kind == "literal_error":
        return f"one of {ctx.get('expected', '')}"
    whole = field is not None and field.annotation is int
    bounds = _bounds(field)
    return f"{'a whole number' if whole else 'a number'}{' ' + bounds if bounds else ''}"


def _bounds(field: FieldInfo | None) -> str:
    """The field's range in words: `>= 0`, `> 0 and <= 1`."""
    if field is None:
        return ""
    parts = []
    for item in field.metadata:
        for cls, sign, attr in ((Ge, ">=", "ge"), (Gt, ">", "gt"), (Le, "<=", "le"), (Lt, "<", "lt")):
            if isinstance(item, cls):
                parts.append(f"{sign} {getattr(item, attr)}")
    return " and ".join(parts)


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "unset"
    return str(value) if value != "" else "unset"
