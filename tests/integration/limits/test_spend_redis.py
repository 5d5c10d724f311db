"""The Redis spend ledger against a real Redis: the same arithmetic as the in-process one, entries that expire by
themselves after their period, no overshoot under concurrent reservations, and failing open when Redis is down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from routing.limits.spend import (
    EXPIRE_MARGIN,
    Budget,
    InProcessSpendLedger,
    SpendDenial,
    SpendHold,
    SpendLedger,
    to_nanos,
)
from routing.limits.spend_redis import RedisSpendLedger, SpendBackendError
from tests.integration.limits.test_multiprocess import REDIS_URL
from tests.integration.limits.test_multiprocess import redis_prefix as redis_prefix

NOW = datetime(2026, 12, 3, 10, tzinfo=UTC).timestamp()
BUDGET = Budget("team-a", "day", 1.0)


@pytest.fixture(params=["in-process", "redis"])
async def ledger(request: pytest.FixtureRequest, redis_prefix: str) -> AsyncIterator[SpendLedger]:
    if request.param == "in-process":
        yield InProcessSpendLedger(clock=lambda: NOW)
        return
    client = Redis.from_url(REDIS_URL)
    yield RedisSpendLedger(client, prefix=redis_prefix)
    await client.aclose()


async def test_both_ledgers_reserve_replace_refuse_and_settle_alike(ledger: SpendLedger) -> None:
    first = await ledger.reserve(BUDGET, to_nanos(0.6), now=NOW)
    assert isinstance(first, SpendHold)
    assert isinstance(await ledger.reserve(BUDGET, to_nanos(0.6), now=NOW), SpendDenial)
    dearer = await ledger.reserve(BUDGET, to_nanos(0.9), replacing=first, now=NOW)  # a fallback's swap
    assert isinstance(dearer, SpendHold)
    denial = await ledger.reserve(BUDGET, to_nanos(0.2), now=NOW)
    assert isinstance(denial, SpendDenial) and denial.state.held == to_nanos(0.9) and denial.needed == to_nanos(0.2)
    await ledger.settle(dearer, to_nanos(0.7))
    (state,) = await ledger.peek([BUDGET], now=NOW)
    assert (state.spent, state.held, state.remaining) == (to_nanos(0.7), 0, to_nanos(0.3))
    big = await ledger.reserve(BUDGET, to_nanos(0.31), now=NOW)
    assert isinstance(big, SpendDenial)
    await ledger.close()


async def test_an_entry_expires_a_margin_after_its_period(redis_prefix: str) -> None:
    client = Redis.from_url(REDIS_URL)
    ledger = RedisSpendLedger(client, prefix=redis_prefix)
    hold = await ledger.reserve(BUDGET, 5)  # the real clock: today's entry
    assert isinstance(hold, SpendHold)
    key = f"{redis_prefix}:spend:{hold.entry}"
    ttl = await client.ttl(key)
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp() + 86400
    assert abs(ttl - (midnight + EXPIRE_MARGIN - datetime.now(UTC).timestamp())) < 5
    await ledger.settle(hold, 3)
    assert await client.hgetall(key) == {b"spent": b"3", b"held": b"0"}
    await client.aclose()


async def test_concurrent_reservations_on_two_clients_never_overshoot(redis_prefix: str) -> None:
    clients = [Redis.from_url(REDIS_URL) for _ in range(2)]
    ledgers = [RedisSpendLedger(c, prefix=redis_prefix) for c in clients]
    outcomes = await asyncio.gather(*(ledgers[i % 2].reserve(BUDGET, to_nanos(0.07), now=NOW) for i in range(60)))
    held = [o for o in outcomes if isinstance(o, SpendHold)]
    assert len(held) == 14  # 14 * 0.07 = 0.98; a 15th would pass 1.0
    (state,) = await ledgers[0].peek([BUDGET], now=NOW)
    assert state.held == 14 * to_nanos(0.07) <= BUDGET.limit_nanos
    for client in clients:
        await client.aclose()


async def test_redis_down_admits_as_the_rate_limits_do() -> None:
    client = Redis.from_url("redis://127.0.0.1:1/0")
    ledger = RedisSpendLedger(client, prefix="gwtest", fail_open=True)
    hold = await ledger.reserve(BUDGET, to_nanos(5.0))
    assert isinstance(hold, SpendHold) and hold.charged == 0 and not hold.entry  # holds nothing
    await ledger.settle(hold, to_nanos(5.0))  # and settles nothing, without raising
    strict = RedisSpendLedger(client, prefix="gwtest", fail_open=False)
    with pytest.raises(SpendBackendError, match="Redis failed"):
        await strict.reserve(BUDGET, 1)
    with pytest.raises(SpendBackendError):
        await strict.peek([BUDGET])
    await client.aclose()
