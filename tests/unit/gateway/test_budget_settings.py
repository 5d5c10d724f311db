"""GATEWAY_BUDGETS and the keys file's budget column: read once at start-up, a bad value named with its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.access import hash_key
from gateway.lifespan import build_spend_ledger
from gateway.settings import Settings, SettingsError
from routing.limits.spend import Budget, InProcessSpendLedger

KEYS = "team-a:sk-a,team-b:sk-b"


def test_budgets_from_the_variable_and_the_keys_file(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text(f"team-c sha256:{hash_key('sk-c')} 7.5/month\nteam-d sha256:{hash_key('sk-d')}\n")
    settings = Settings.from_env(
        {"GATEWAY_API_KEYS": KEYS, "GATEWAY_KEYS_FILE": str(keys), "GATEWAY_BUDGETS": "team-a:50/day, team-b:500/month"}
    )
    assert settings.budgets == (
        Budget("team-a", "day", 50.0),
        Budget("team-b", "month", 500.0),
        Budget("team-c", "month", 7.5),
    )
    assert [name for name, _ in settings.access.client_keys] == ["team-a", "team-b", "team-c", "team-d"]


def test_no_budgets_by_default() -> None:
    assert Settings.from_env({"GATEWAY_API_KEYS": KEYS}).budgets == ()


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("team-a", "entry 1 ('team-a') names no key"),
        ("team-a:50", "entry 1 ('team-a:50'): budget '50' for 'team-a': expected <USD>/day or <USD>/month"),
        ("team-a:50/day,team-a:5/month", "entry 2 ('team-a:5/month'): 'team-a' has a budget already"),
        ("nobody:5/day", "entry 1 ('nobody:5/day'): no client key is named 'nobody'"),
        ("team-a:0/day", "the amount must be > 0"),
    ],
)
def test_a_bad_budget_stops_start_up_with_one_line(value: str, fragment: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"GATEWAY_API_KEYS": KEYS, "GATEWAY_BUDGETS": value})
    message = str(info.value)
    assert message.startswith("environment variable GATEWAY_BUDGETS: ")
    assert fragment in message and "Fix: " in message and "\n" not in message


def test_a_bad_keys_file_column_names_the_line(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text(f"# team keys\nteam-c sha256:{hash_key('sk-c')} lots\n")
    with pytest.raises(SettingsError, match=r"keys:2: budget 'lots' for 'team-c'.*Fix: write the third column"):
        Settings.from_env({"GATEWAY_KEYS_FILE": str(keys)})
    keys.write_text(f"team-c sha256:{hash_key('sk-c')} 5/day\n")
    with pytest.raises(SettingsError, match="keys:1: 'team-c' has a budget in GATEWAY_BUDGETS too"):
        Settings.from_env({"GATEWAY_KEYS_FILE": str(keys), "GATEWAY_BUDGETS": "team-c:5/day"})
    keys.write_text(f"team-c sha256:{hash_key('sk-c')} 5/day extra\n")
    with pytest.raises(SettingsError, match=r"keys:1: expected `name sha256:<64 hex> \[budget"):
        Settings.from_env({"GATEWAY_KEYS_FILE": str(keys)})


def test_without_budgets_there_is_no_ledger_to_consult() -> None:
    assert build_spend_ledger(Settings.from_env({"GATEWAY_API_KEYS": KEYS}), None) is None
    with_one = Settings.from_env({"GATEWAY_API_KEYS": KEYS, "GATEWAY_BUDGETS": "team-a:1/day"})
    assert isinstance(build_spend_ledger(with_one, None), InProcessSpendLedger)
