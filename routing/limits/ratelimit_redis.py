"""Rate limits in Redis, shared by every worker and host: one Lua script per reservation checks every limit
and charges all of them or none, so N workers enforce the limit once, not N times.

Layout: per scope two hashes, `<prefix>:<scope>:r` (requests) and `<prefix>:<scope>:t` (tokens), field =
one-second bucket (unix second), value = charge; stale fields are deleted by the scripts and the keys expire
61+ s after their last write. Time is Redis server time (`TIME`) unless a clock is injected or `now` is
passed, and one source is used consistently for the whole call. For Redis Cluster, put a hash tag in the
prefix (e.g. "{gw}:rl") so one script's keys share a slot.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from routing.limits.ratelimit import (
    WINDOW_SECONDS,
    Denial,
    Limit,
    LimitState,
    Reservation,
    active_limits,
    charge,
    check_limits,
    limit_state,
)

log = logging.getLogger(__name__)

_NOW = """
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[1])
end
local window = tonumber(ARGV[2])
local cur = math.floor(now)
local oldest = cur - window + 1
"""

# KEYS: r1, t1, r2, t2, ...; ARGV: now|'', window, then rpm, tpm, cost per limit.
# Returns {admitted, now, {r1 flat buckets}, {t1 flat buckets}, ...} with the buckets as read before charging.
RESERVE_LUA = (
    _NOW
    + """
local function load(key)
  local flat = redis.call('HGETALL', key)
  local live, stale, sum = {}, {}, 0
  for j = 1, #flat, 2 do
    if tonumber(flat[j]) < oldest then
      stale[#stale + 1] = flat[j]
    else
      sum = sum + tonumber(flat[j + 1])
      live[#live + 1] = flat[j]
      live[#live + 1] = flat[j + 1]
    end
  end
  if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
  return live, sum
end
local out = {0, string.format('%.6f', now)}
local admitted = 1
local n = #KEYS / 2
for i = 1, n do
  local rpm, tpm, cost = tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1]), tonumber(ARGV[3 * i + 2])
  local r, rsum = load(KEYS[2 * i - 1])
  local t, tsum = load(KEYS[2 * i])
  if rpm > 0 and rsum + 1 > rpm then admitted = 0 end
  if tpm > 0 and tsum + cost > tpm then admitted = 0 end
  out[#out + 1] = r
  out[#out + 1] = t
end
if admitted == 1 then
  for i = 1, n do
    local rpm, tpm, cost = tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1]), tonumber(ARGV[3 * i + 2])
    if rpm > 0 then
      redis.call('HINCRBY', KEYS[2 * i - 1], cur, 1)
      redis.call('EXPIRE', KEYS[2 * i - 1], window + 2)
    end
    if tpm > 0 then
      redis.call('HINCRBY', KEYS[2 * i], cur, cost)
      redis.call('EXPIRE', KEYS[2 * i], window + 2)
    end
  end
end
out[1] = admitted
return out
"""
)

# KEYS: token hashes; ARGV: now|'', window, reservation bucket, delta per key. Mirrors ratelimit.settle_bucket.
SETTLE_LUA = (
    _NOW
    + """
local bucket = tonumber(ARGV[3])
for i = 1, #KEYS do
  local delta = tonumber(ARGV[3 + i])
  local target = nil
  if delta ~= 0 then
    if bucket >= oldest then target = bucket elseif delta > 0 then target = cur end
  end
  if target ~= nil then
    redis.call('HINCRBY', KEYS[i], target, delta)
    if redis.call('TTL', KEYS[i]) < window + 2 then redis.call('EXPIRE', KEYS[i], window + 2) end
  end
end
return 1
"""
)


class RateLimitBackendError(RuntimeError):
    """Redis could not be reached or answered an error; raised unless the limiter fails open."""


def _buckets(flat: Sequence[Any]) -> dict[int, int]:
    return {int(flat[j]): int(flat[j + 1]) for j in range(0, len(flat), 2)}


class RedisRateLimiter:
    """RateLimiter on Redis (redis.asyncio). `fail_open=True` admits (and logs) when Redis is unreachable."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "gw:rl",
        clock: Callable[[], float] | None = None,
        fail_open: bool = False,
        owns_client: bool = False,
    ) -> None:
        self._redis, self._prefix, self._clock = redis, prefix, clock
        self._fail_open, self._owns_client = fail_open, owns_client
        self._reserve = redis.register_script(RESERVE_LUA)
        self._settle = redis.register_script(SETTLE_LUA)

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str = "gw:rl", clock: Callable[[], float] | None = None, fail_open: bool = False
    ) -> RedisRateLimiter:
        """A limiter with its own connection pool, closed by `close()`."""
        return cls(Redis.from_url(url), prefix=prefix, clock=clock, fail_open=fail_open, owns_client=True)

    def _keys(self, limit: Limit) -> tuple[str, str]:
        base = f"{self._prefix}:{limit.scope}"
        return f"{base}:r", f"{base}:t"

    def _now_arg(self, now: float | None) -> str:
        if now is None and self._clock is not None:
            now = self._clock()
        return "" if now is None else repr(float(now))

    async def reserve(self, limits: Sequence[Limit], tokens: int, now: float | None = None) -> Reservation | Denial:
        active = active_limits(limits)
        if not active:
            at = now if now is not None else (self._clock() if self._clock else 0.0)
            return Reservation((), max(tokens, 0), (), math.floor(at), at, ())
        keys = [key for limit in active for key in self._keys(limit)]
        args: list[str | int] = [self._now_arg(now), WINDOW_SECONDS]
        for limit in active:
            args += [limit.rpm, limit.tpm, limit.cost(tokens)]
        try:
            reply = await self._reserve(keys=keys, args=args)
        except RedisError as exc:
            if not self._fail_open:
                raise RateLimitBackendError(f"rate limiter: Redis failed: {type(exc).__name__}") from exc
            log.warning("rate limiter: Redis failed (%s); admitting without limits", type(exc).__name__)
            at = now if now is not None else 0.0
            return Reservation((), max(tokens, 0), (), math.floor(at), at, ())
        admitted, at = int(reply[0]), float(reply[1])
        windows = [(_buckets(reply[2 + 2 * i]), _buckets(reply[3 + 2 * i])) for i in range(len(active))]
        if not admitted:
            denial = check_limits(active, tokens, at, windows)
            if denial is None:  # cannot happen: the script and check_limits apply the same rule
                raise RateLimitBackendError("rate limiter: Redis refused but the limits fit")
            return denial
        # the script charged Redis; apply the same charge to the snapshot it returned, for the headers
        return charge(active, tokens, at, windows)

    async def settle(self, reservation: Reservation, actual_tokens: int, now: float | None = None) -> None:
        keys: list[str] = []
        deltas: list[int] = []
        for limit, cost in zip(reservation.limits, reservation.charged, strict=True):
            if limit.tpm and max(actual_tokens, 0) != cost:
                keys.append(self._keys(limit)[1])
                deltas.append(max(actual_tokens, 0) - cost)
        if not keys:
            return
        try:
            await self._settle(keys=keys, args=[self._now_arg(now), WINDOW_SECONDS, reservation.bucket, *deltas])
        except RedisError as exc:
            if not self._fail_open:
                raise RateLimitBackendError(f"rate limiter: Redis failed: {type(exc).__name__}") from exc
            log.warning("rate limiter: Redis failed (%s); settlement dropped", type(exc).__name__)

    async def release(self, reservation: Reservation, now: float | None = None) -> None:
        await self.settle(reservation, 0, now)

    async def peek(self, limits: Sequence[Limit], now: float | None = None) -> list[LimitState]:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for limit in limits:
                    for key in self._keys(limit):
                        pipe.hgetall(key)
                pipe.time()
                replies = await pipe.execute()
        except RedisError as exc:
            raise RateLimitBackendError(f"rate limiter: Redis failed: {type(exc).__name__}") from exc
        if now is None:
            seconds, micros = replies[-1]
            now = self._clock() if self._clock is not None else seconds + micros / 1e6
        states = []
        for i, limit in enumerate(limits):
            requests = {int(b): int(v) for b, v in replies[2 * i].items()}
            tokens = {int(b): int(v) for b, v in replies[2 * i + 1].items()}
            states.append(limit_state(limit, requests, tokens, now))
        return states

    async def close(self) -> None:
        if self._owns_client:
            await self._redis.aclose()
