"""Building blocks of the config file models: the strict base model and the value types both files share."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError


class FileModel(BaseModel):
    """A mapping of one config file: unknown keys are errors, numbers must be finite, numbers pass as strings."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, coerce_numbers_to_str=True, allow_inf_nan=False, protected_namespaces=()
    )

    @model_validator(mode="before")
    @classmethod
    def _blank_is_unset(cls, data: Any) -> Any:
        # `key:` with no value and `key: ${UNSET}` (expanded to "") both mean "use the default", as they always did.
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None and value != ""}
        return data


def _plain_number(value: Any) -> Any:
    """Reject what pydantic's lax mode would take for a number but a config file should not: booleans, 'inf'."""
    if isinstance(value, bool):
        raise PydanticCustomError("bool_number", "Input should be a number, not a boolean")
    if isinstance(value, str | float):
        try:
            number = float(value)
        except ValueError:
            return value
        if not math.isfinite(number):
            raise PydanticCustomError("finite_number", "Input should be a finite number")
    return value


def _between(low: float, high: float) -> AfterValidator:
    def check(value: float) -> float:
        if not low <= value <= high:
            raise PydanticCustomError(
                "between", "Input should be between {low} and {high}", {"low": float(low), "high": float(high)}
            )
        return value

    return AfterValidator(check)


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str | int | float) and not isinstance(value, bool) else value


_NUMERIC = BeforeValidator(_plain_number)
_DECIMAL = r"^\s*[0-9]*\.?[0-9]+\s*$"

Number = Annotated[float, Field(ge=0), _NUMERIC]
"""A finite number >= 0 (a weight, a price, seconds, milliseconds)."""

Seconds = Annotated[float, Field(ge=0.01), _NUMERIC]
"""A timeout: a finite number of seconds, at least 10 ms."""

Fraction = Annotated[float, _NUMERIC, _between(0.0, 1.0), Field(json_schema_extra={"minimum": 0, "maximum": 1})]
"""A finite number between 0 and 1."""

Count = Annotated[int, Field(ge=0), _NUMERIC]
"""A whole number >= 0 (a limit; 0 = none)."""

Positive = Annotated[int, Field(ge=1), _NUMERIC]
"""A whole number >= 1."""

Price = Annotated[
    float,
    Field(ge=0),
    _NUMERIC,
    WithJsonSchema({"anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": _DECIMAL}]}),
]
"""USD, written as a number or a decimal string (`prompt: "0.10"`)."""

Strings = Annotated[
    tuple[str, ...],
    BeforeValidator(_one_or_many),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
]
"""A list of strings, or one string for a one-item list."""


def strings(values: tuple[str, ...]) -> tuple[str, ...]:
    """The non-empty strings of a list (an item written `${UNSET}` drops out)."""
    return tuple(value for value in values if value != "")
