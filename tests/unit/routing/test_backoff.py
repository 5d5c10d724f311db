"""Backoff delays, Retry-After parsing and the retry policy."""

from __future__ import annotations

import pytest

from routing.retry import (
    RetryPolicy,
    backoff_delay,
    classify_failure,
    is_deployment_fault,
    parse_duration,
    parse_retry_after,
)


def test_backoff_grows_exponentially_with_jitter_bounds() -> None:
    assert backoff_delay(0, 0.05, 2.0, 0.0) == pytest.approx(0.025)
    assert backoff_delay(0, 0.05, 2.0, 0.999999) == pytest.approx(0.05, rel=1e-5)
    assert backoff_delay(3, 0.05, 2.0, 0.0) == pytest.approx(0.2)
    assert backoff_delay(3, 0.05, 2.0, 0.5) == pytest.approx(0.3)


def test_backoff_is_capped_even_for_huge_attempts() -> None:
    assert backoff_delay(10, 0.05, 2.0, 0.99) <= 2.0
    assert backoff_delay(10_000, 0.05, 2.0, 0.0) == pytest.approx(1.0)


def test_backoff_rejects_negative_attempt() -> None:
    with pytest.raises(ValueError):
        backoff_delay(-1, 0.05, 2.0, 0.5)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("1s", 1.0), ("6m0s", 360.0), ("12ms", 0.012), ("1h2m3.5s", 3723.5), ("250us", 0.00025), ("0.5s", 0.5)],
)
def test_parse_duration(value: str, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["", "abc", "1x", "s1", "1s junk", "m"])
def test_parse_duration_rejects_garbage(value: str) -> None:
    assert parse_duration(value) is None


def test_parse_retry_after_forms() -> None:
    now = 1_700_000_000.0  # 2023-11-14T22:13:20Z
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after(" 1.5 ", now) == 1.5
    assert parse_retry_after("-3", now) == 0.0
    assert parse_retry_after("6m0s", now) == 360.0
    assert parse_retry_after("12ms", now) == pytest.approx(0.012)
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:50 GMT", now) == pytest.approx(30.0)
    assert parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now) == 0.0
    for bad in (None, "", "soon", "nan", "inf"):
        assert parse_retry_after(bad, now) is None


def test_classify_failure() -> None:
    assert classify_failure("connect") == "connect"
    assert classify_failure("timeout") == "timeout"
    assert classify_failure("status", 429) == "rate_limited"
    assert classify_failure("status", 503) == "server"
    assert classify_failure("status", 401) == "auth"
    assert classify_failure("status", 403) == "auth"
    assert classify_failure("status", 408) == "timeout"
    for status in (400, 404, 413, 422):
        assert classify_failure("status", status) == "client"
    assert classify_failure("protocol") == "protocol"


def test_policy_retries_only_retryable_kinds() -> None:
    policy = RetryPolicy()
    for kind in ("connect", "timeout", "rate_limited", "server", "auth", "protocol"):
        assert policy.retryable(kind)
    assert not policy.retryable("client")
    assert policy.delay(1, 0.0) == pytest.approx(0.025)
    assert policy.delay(2, 0.0) == pytest.approx(0.05)


def test_policy_validates() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(base=-1)


def test_deployment_fault() -> None:
    assert is_deployment_fault("server") and is_deployment_fault("connect") and is_deployment_fault("auth")
    assert not is_deployment_fault("client") and not is_deployment_fault("rate_limited")
