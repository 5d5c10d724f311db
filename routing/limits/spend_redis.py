"""Spend budgets in Redis, shared by every worker and replica: one Lua script per reservation reads the period's
spend and holds and charges it or refuses, so concurrent calls on N processes cannot overshoot together.

Layout: one hash per key and period, `<prefix>:spend:<key>:<period>:<start YYYYMMDD>`, fields `spent` and `held`
(nano-USD), expiring EXPIRE_MARGIN after the period ends (spend.py). The period is taken from this host's clock
(NTP-synchronised replicas agree but for a moment around midnight). For Redis Cluster, give the prefix a hash tag.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError

from routing.limits.spend import (
    EXPIRE_MARGIN,
    Budget,
    SpendDenial,
    SpendHold,
    SpendState,
    charge_for,
    entry_name,
    period_bounds,
    unheld,
)

log = logging.getLogger(__name__)

# KEYS: the entry; ARGV: limit, charge, replaced charge, expire_at. The same rule as spend.fits.
RESERVE_LUA = """
local spent = tonumber(redis.call('HGET', KEYS[1], 'spent') or '0')
local held = tonumber(redis.call('HGET', KEYS[1], 'held') or '0') - tonumber(ARGV[3])
if held < 0 then held = 0 end
local limit, charge = tonumber(ARGV[1]), tonumber(ARGV[2])
if spent >= limit or spent + held + charge > limit then
  return {0, spent, held}
end
redis.call('HSET', KEYS[1], 'held', held + charge)
redis.call('EXPIREAT', KEYS[1], ARGV[4])
return {1, spent, held + charge}
"""

# KEYS: the entry; ARGV: held charge, actual cost, expire_at.
SETTLE_LUA = """
local held = tonumber(redis.call('HGET', KEYS[1], 'held') or '0') - tonumber(ARGV[1])
if held < 0 then held = 0 end
redis.call('HSET', KEYS[1], 'held', held)
if tonumber(ARGV[2]) > 0 then redis.call('HINCRBY', KEYS[1], 'spent', ARGV[2]) end
redis.call('EXPIREAT', KEYS[1], ARGV[3])
return 1
"""


class SpendBackendError(RuntimeError):
    """Redis could not be reached or answered an error; raised unless the ledger fails open."""


class RedisSpendLedger:
    """SpendLedger on Redis. `fail_open=True` admits (and logs) when Redis is down, as the rate limits do."""

    def __init__(self, redis: Redis, *, prefix: str = "gw:rl", fail_open: bool = False) -> None:
        self._redis, self._prefix, self._fail_open = redis, prefix, fail_open
        self._reserve = redis.register_script(RESERVE_LUA)
        self._settle = redis.register_script(SETTLE_LUA)

    def _key(self, entry: str) -> str:
        return f"{self._prefix}:spend:{entry}"

    def _failed(self, exc: RedisError, what: str) -> None:
        if not self._fail_open:
            raise SpendBackendError(f"spend ledger: Redis failed: {type(exc).__name__}") from exc
        log.warning("spend ledger: Redis failed (%s); %s", type(exc).__name__, what)

    async def reserve(
        self, budget: Budget, estimate: int, replacing: SpendHold | None = None, now: float | None = None
    ) -> SpendHold | SpendDenial:
        now = time.time() if now is None else now
        start, end = period_bounds(budget.period, now)
        name, expire_at = entry_name(budget, start), int(end.timestamp()) + EXPIRE_MARGIN
        old = replacing.charged if replacing is not None and replacing.entry == name else 0
        charge = charge_for(estimate, budget.limit_nanos)
        try:
            reply = await self._reserve(keys=[self._key(name)], args=[budget.limit_nanos, charge, old, expire_at])
        except RedisError as exc:
            self._failed(exc, "admitting without the budget")
            return unheld(budget)
        admitted, spent, held = (int(v) for v in reply)
        if not admitted:
            return SpendDenial(SpendState(budget, spent, held, end), charge)
        return SpendHold(budget, name, charge, expire_at)

    async def settle(self, hold: SpendHold, actual: int) -> None:
        if not hold.entry:
            return
        try:
            await self._settle(keys=[self._key(hold.entry)], args=[hold.charged, max(0, actual), hold.expire_at])
        except RedisError as exc:
            self._failed(exc, "settlement dropped")

    async def peek(self, budgets: Sequence[Budget], now: float | None = None) -> list[SpendState]:
        now = time.time() if now is None else now
        bounds = [period_bounds(b.period, now) for b in budgets]
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for budget, (start, _) in zip(budgets, bounds, strict=True):
                    pipe.hmget(self._key(entry_name(budget, start)), ["spent", "held"])
                replies = await pipe.execute()
        except RedisError as exc:
            raise SpendBackendError(f"spend ledger: Redis failed: {type(exc).__name__}") from exc
        return [
            SpendState(budget, int(spent or 0), int(held or 0), end)
            for budget, (_, end), (spent, held) in zip(budgets, bounds, replies, strict=True)
        ]

    async def close(self) -> None:
        """The Redis client belongs to the lifespan (shared with the rate limits)."""
