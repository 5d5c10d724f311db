"""The one reading of a boolean setting, for environment variables and config values alike."""

from __future__ import annotations

TRUE = frozenset({"true", "1", "yes", "on"})
FALSE = frozenset({"false", "0", "no", "off"})
WORDS = "true/false, 1/0, yes/no or on/off"


def parse_flag(value: str | bool) -> bool:
    """True or False for one of `WORDS` (any case, surrounding spaces ignored); ValueError for anything else."""
    if isinstance(value, bool):
        return value
    text = value.strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ValueError(f"must be {WORDS}")
