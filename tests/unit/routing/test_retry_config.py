"""The retry policy from the environment: ROUTER_RETRY_ON, ROUTER_BACKOFF_BASE, ROUTER_BACKOFF_CAP."""

from __future__ import annotations

import dataclasses

import pytest

from gateway.settings import Settings
from routing.retry import DEFAULT_RETRY_ON, RetryPolicy, parse_retry_on


def test_defaults_retry_every_kind_but_client() -> None:
    settings = Settings.from_env({})
    assert settings.retry == RetryPolicy()
    assert settings.retry.retry_on == DEFAULT_RETRY_ON and "client" not in DEFAULT_RETRY_ON
    assert (settings.retry.base, settings.retry.cap, settings.max_attempts) == (0.05, 2.0, 3)


def test_max_attempts_has_one_source() -> None:
    assert "max_attempts" not in {f.name for f in dataclasses.fields(RetryPolicy)}
    assert Settings.from_env({"ROUTER_MAX_ATTEMPTS": "5"}).max_attempts == 5


def test_env_sets_the_policy() -> None:
    env = {"ROUTER_RETRY_ON": " Timeout, connect ,,", "ROUTER_BACKOFF_BASE": "0.2", "ROUTER_BACKOFF_CAP": "7"}
    retry = Settings.from_env(env).retry
    assert retry.retry_on == {"timeout", "connect"}
    assert (retry.base, retry.cap) == (0.2, 7.0)
    assert not retry.retryable("server") and retry.retryable("timeout")
    assert retry.delay(1, 0.0) == pytest.approx(0.1) and retry.delay(10, 0.999999) == pytest.approx(7.0)


def test_none_disables_retries() -> None:
    assert Settings.from_env({"ROUTER_RETRY_ON": "none"}).retry.retry_on == frozenset()
    assert parse_retry_on("NONE") == frozenset()


@pytest.mark.parametrize(
    ("env", "fragments"),
    [
        ({"ROUTER_RETRY_ON": "server,flaky"}, ("ROUTER_RETRY_ON='server,flaky'", "unknown failure kind 'flaky'")),
        ({"ROUTER_RETRY_ON": "client"}, ("ROUTER_RETRY_ON", "never retried")),
        ({"ROUTER_RETRY_ON": ","}, ("ROUTER_RETRY_ON", "is empty")),
        ({"ROUTER_RETRY_ON": "none,server"}, ("ROUTER_RETRY_ON", "unknown failure kind 'none'")),
        ({"ROUTER_BACKOFF_BASE": "-1"}, ("ROUTER_BACKOFF_BASE='-1'", ">= 0")),
        ({"ROUTER_BACKOFF_CAP": "inf"}, ("ROUTER_BACKOFF_CAP='inf'", ">= 0")),
        ({"ROUTER_BACKOFF_CAP": "soon"}, ("ROUTER_BACKOFF_CAP='soon'", "must be a number")),
    ],
)
def test_bad_values_name_the_variable_and_the_fix(env: dict[str, str], fragments: tuple[str, ...]) -> None:
    with pytest.raises(ValueError) as info:
        Settings.from_env(env)
    message = str(info.value)
    assert all(f in message for f in fragments) and "Fix:" in message, message


def test_policy_rejects_kinds_it_cannot_retry() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(retry_on=frozenset({"client"}))
    with pytest.raises(ValueError):
        RetryPolicy(cap=float("nan"))
