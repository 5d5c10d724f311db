"""Sliding-window rate limits (in-process back end) and the pure helpers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.lifespan import build_limiter
from gateway.settings import Settings
from routing.limits.ratelimit import (
    Denial,
    InProcessRateLimiter,
    Limit,
    Reservation,
    client_limit,
    deployment_limit,
    estimate_tokens,
    format_reset,
    model_limit,
    ratelimit_headers,
    settle_bucket,
    wait_until_fits,
)

T0 = 1_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def admitted(result: Reservation | Denial) -> Reservation:
    assert isinstance(result, Reservation), result
    return result


def denied(result: Reservation | Denial) -> Denial:
    assert isinstance(result, Denial), result
    return result


async def test_rpm_admits_exactly_the_limit_at_once() -> None:
    limiter = InProcessRateLimiter()
    limits = [deployment_limit("m/a", rpm=10, tpm=0)]
    results = await asyncio.gather(*(limiter.reserve(limits, 1, now=T0) for _ in range(11)))
    assert sum(isinstance(r, Reservation) for r in results) == 10
    denial = denied(results[-1])
    assert (denial.scope, denial.exhausted, denial.retry_after) == ("dep:m/a", "requests", 60.0)


async def test_window_slides_per_second() -> None:
    limiter = InProcessRateLimiter()
    limits = [Limit("dep:m/a", rpm=2)]
    admitted(await limiter.reserve(limits, 0, now=T0 + 0.5))
    admitted(await limiter.reserve(limits, 0, now=T0 + 30.0))
    assert denied(await limiter.reserve(limits, 0, now=T0 + 59.9)).retry_after == pytest.approx(0.1)
    admitted(await limiter.reserve(limits, 0, now=T0 + 60.0))
    assert denied(await limiter.reserve(limits, 0, now=T0 + 61.0)).retry_after == pytest.approx(29.0)


async def test_tokens_reserved_then_settled_down_frees_room() -> None:
    limiter = InProcessRateLimiter()
    limits = [Limit("model:m", tpm=1000)]
    first = admitted(await limiter.reserve(limits, 600, now=T0))
    denial = denied(await limiter.reserve(limits, 600, now=T0 + 1))
    assert (denial.exhausted, denial.retry_after) == ("tokens", 59.0)
    await limiter.settle(first, 100, now=T0 + 2)
    (state,) = await limiter.peek(limits, now=T0 + 2)
    assert state.remaining_tokens == 900
    admitted(await limiter.reserve(limits, 600, now=T0 + 2))


async def test_settle_up_charges_the_overrun() -> None:
    limiter = InProcessRateLimiter()
    limits = [Limit("model:m", tpm=1000)]
    first = admitted(await limiter.reserve(limits, 100, now=T0))
    await limiter.settle(first, 950, now=T0 + 1)
    assert denied(await limiter.reserve(limits, 100, now=T0 + 1)).exhausted == "tokens"


async def test_release_returns_tokens_but_keeps_the_request() -> None:
    limiter = InProcessRateLimiter()
    limits = [Limit("dep:m/a", rpm=5, tpm=1000)]
    reservation = admitted(await limiter.reserve(limits, 800, now=T0))
    await limiter.release(reservation, now=T0 + 1)
    (state,) = await limiter.peek(limits, now=T0 + 1)
    assert (state.remaining_tokens, state.remaining_requests) == (1000, 4)


async def test_all_or_nothing_across_limits() -> None:
    limiter = InProcessRateLimiter()
    dep, model = Limit("dep:m/a", rpm=100, tpm=10_000), Limit("model:m", rpm=1)
    admitted(await limiter.reserve([dep, model], 10, now=T0))
    denial = denied(await limiter.reserve([dep, model], 10, now=T0))
    assert denial.scope == "model:m"
    (dep_state,) = await limiter.peek([dep], now=T0)
    assert (dep_state.remaining_requests, dep_state.remaining_tokens) == (99, 9_990)


async def test_retry_after_is_the_longest_wait_and_scope_the_first_refusal() -> None:
    limiter = InProcessRateLimiter()
    a, b = Limit("client:x", rpm=1), Limit("dep:m/a", tpm=100)
    admitted(await limiter.reserve([a], 0, now=T0))
    admitted(await limiter.reserve([b], 100, now=T0 + 10))
    denial = denied(await limiter.reserve([a, b], 10, now=T0 + 20))
    assert denial.scope == "client:x"
    assert denial.retry_after == pytest.approx(50.0)
    assert denial.headers()["retry-after"] == "50"


async def test_estimate_larger_than_tpm_is_capped_and_waits_for_an_empty_window() -> None:
    limiter = InProcessRateLimiter()
    limits = [Limit("dep:m/a", tpm=1000)]
    big = admitted(await limiter.reserve(limits, 5000, now=T0))
    assert big.charged == (1000,)
    assert denied(await limiter.reserve(limits, 1, now=T0 + 1)).retry_after == pytest.approx(59.0)
    await limiter.settle(big, 200, now=T0 + 2)
    admitted(await limiter.reserve(limits, 800, now=T0 + 2))


async def test_settle_after_the_window_passed() -> None:
    limiter = InProcessRateLimiter()
    limits = [Limit("dep:m/a", tpm=1000)]
    slow = admitted(await limiter.reserve(limits, 100, now=T0))
    await limiter.settle(slow, 700, now=T0 + 90)  # a 90 s stream: its overrun is charged now
    (state,) = await limiter.peek(limits, now=T0 + 90)
    assert state.remaining_tokens == 400
    assert settle_bucket(1000, -50, T0 + 90) is None


async def test_unlimited_and_empty_limits() -> None:
    limiter = InProcessRateLimiter()
    reservation = admitted(await limiter.reserve([Limit("dep:m/a")], 10**9, now=T0))
    assert reservation.limits == () and reservation.headers() == {}
    await limiter.settle(reservation, 5)


async def test_duplicate_scope_is_a_bug() -> None:
    with pytest.raises(ValueError):
        await InProcessRateLimiter().reserve([Limit("model:m", rpm=1), Limit("model:m", tpm=5)], 1, now=T0)


async def test_injected_clock_and_idle_scopes_are_swept() -> None:
    clock = Clock()
    limiter = InProcessRateLimiter(clock)
    for ip in range(50):
        admitted(await limiter.reserve([client_limit(f"10.0.0.{ip}", 1, 0)], 0))
    assert len(limiter._windows) == 50
    clock.now += 120
    admitted(await limiter.reserve([client_limit("10.0.0.1", 1, 0)], 0))
    assert len(limiter._windows) == 1


async def test_headers_pick_the_tightest_limit() -> None:
    limiter = InProcessRateLimiter()
    limits = [Limit("dep:m/a", rpm=10, tpm=10_000), Limit("model:m", rpm=100, tpm=1_000)]
    reservation = admitted(await limiter.reserve(limits, 400, now=T0 + 0.25))
    assert reservation.headers() == {
        "x-ratelimit-limit-requests": "10",
        "x-ratelimit-remaining-requests": "9",
        "x-ratelimit-reset-requests": "59.75s",
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "600",
        "x-ratelimit-reset-tokens": "59.75s",
    }
    assert ratelimit_headers([]) == {}


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0ms"), (0.25, "250ms"), (0.0121, "13ms"), (1, "1s"), (1.5, "1.5s"), (59.75, "59.75s"), (360, "6m0s"),
     (3723.5, "1h2m3.5s")],
)  # fmt: skip
def test_format_reset(seconds: float, text: str) -> None:
    assert format_reset(seconds) == text


def test_wait_until_fits() -> None:
    buckets = {100: 3, 110: 2, 40: 50}  # bucket 40 is out of the window at 120
    assert wait_until_fits(buckets, 120.0, 5, 0) == 0.0
    assert wait_until_fits(buckets, 120.0, 5, 1) == pytest.approx(40.0)
    assert wait_until_fits(buckets, 120.0, 5, 4) == pytest.approx(50.0)


def test_estimate_tokens() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "x" * 40},
        {"role": "user", "content": [{"type": "text", "text": "y" * 20}, {"type": "image_url", "image_url": {}}]},
        {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]},
    ]
    chars = 40 + 20 + 85 * 4 + len("{}") + len("f")  # text, image floor, tool call
    prompt = -(-chars // 4) + 4 * len(messages)
    assert estimate_tokens(messages, 100) == prompt + 100
    assert estimate_tokens(messages, None) == prompt + 1024
    assert estimate_tokens(messages, 0, default_max=7) == prompt + 7
    assert estimate_tokens([], None) == 1024


def test_limit_helpers() -> None:
    assert deployment_limit("m/a", 1, 2) == Limit("dep:m/a", 1, 2)
    assert model_limit("m", 0, 5).scope == "model:m"
    assert not Limit("x").active
    with pytest.raises(ValueError):
        Limit("x", rpm=-1)


async def test_the_lifespan_limiter_without_redis_is_in_process() -> None:
    limiter = build_limiter(Settings.from_env({}), None)
    assert isinstance(limiter, InProcessRateLimiter)
    await limiter.close()
