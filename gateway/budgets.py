"""Spend budgets from the configuration: GATEWAY_BUDGETS (`team-a:50/day,team-b:500/month`) and the keys file's
optional third column (`team-a sha256:<hex> 50/day`), each naming a configured client key."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from gateway.access import keys_file_lines
from gateway.envvars import SettingsError
from routing.limits.spend import Budget, parse_budget

_FIX = "Fix: write name:<USD>/day or name:<USD>/month, comma separated, e.g. team-a:50/day,team-b:500/month"


def read_budgets(spec: str, keys_file: str, key_names: Iterable[str]) -> tuple[Budget, ...]:
    """Every configured budget; SettingsError names the variable (or file line), the entry and the fix."""
    known = set(key_names)
    budgets: dict[str, Budget] = {}
    for index, item in enumerate(p.strip() for p in spec.split(",") if p.strip()):
        where = f"environment variable GATEWAY_BUDGETS: entry {index + 1} ({item!r})"
        name, sep, amount = item.rpartition(":")
        if not sep or not name:
            raise SettingsError(f"{where} names no key. {_FIX}")
        try:
            budget = parse_budget(name, amount)
        except ValueError as exc:
            raise SettingsError(f"{where}: {exc}. {_FIX}") from None
        if name not in known:
            raise SettingsError(
                f"{where}: no client key is named {name!r}. Fix: name a key of GATEWAY_API_KEYS (name:key) or "
                "GATEWAY_KEYS_FILE, or remove the entry"
            )
        if name in budgets:
            raise SettingsError(f"{where}: {name!r} has a budget already. Fix: give each key one budget")
        budgets[name] = budget
    if keys_file.strip():
        path = Path(keys_file.strip())
        for number, name, _, column in keys_file_lines(path):
            if not column:
                continue
            try:
                budget = parse_budget(name, column)
            except ValueError as exc:
                raise SettingsError(
                    f"{path}:{number}: {exc}. Fix: write the third column as 50/day or 500/month"
                ) from None
            if name in budgets:
                raise SettingsError(
                    f"{path}:{number}: {name!r} has a budget in GATEWAY_BUDGETS too. Fix: keep one of the two"
                )
            budgets[name] = budget
    return tuple(budgets.values())
