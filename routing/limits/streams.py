"""A cap on concurrent streams per client (API key name, else client IP): in this worker, or in Redis.

With REDIS_URL set the count is shared by every worker and replica, as the rate limits are: each open stream is
a member of a sorted set per client, scored by when its lease runs out, so a worker that dies without releasing
frees its slots once the lease (the call deadline) has passed. `acquire` is one round trip; `release` never
waits: it is sent in the background, so a finishing call is not held up, nor a slot leaked by a cancellation.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

from routing.shared.link import REDIS_ERRORS, SharedLink

log = logging.getLogger("routing.limits.streams")

# KEYS[1] the client's set; ARGV: limit, member, lease (ms). Expired leases go first, then the count decides.
ACQUIRE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""


@dataclass(frozen=True, slots=True)
class Lease:
    """One open stream's slot; `shared` when Redis holds it."""

    client: str
    member: str = ""
    shared: bool = False


class StreamCap(Protocol):
    limit: int

    async def acquire(self, client: str) -> Lease | None:
        """A slot for one more stream, or None when the client is at the limit."""
        ...

    def release(self, lease: Lease) -> None: ...

    async def close(self) -> None: ...


class LocalStreamCap:
    """Counted in this worker (0 = unlimited)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}

    async def acquire(self, client: str) -> Lease | None:
        count = self._open.get(client, 0)
        if self.limit and count >= self.limit:
            return None
        self._open[client] = count + 1
        return Lease(client)

    def release(self, lease: Lease) -> None:
        count = self._open.get(lease.client, 0) - 1
        if count > 0:
            self._open[lease.client] = count
        else:
            self._open.pop(lease.client, None)

    def open_streams(self, client: str) -> int:
        return self._open.get(client, 0)

    async def close(self) -> None:
        return None


class RedisStreamCap:
    """Counted in Redis for every worker and replica. A Redis outage admits (fails open) with a warning."""

    def __init__(
        self,
        limit: int,
        redis: Redis,
        prefix: str,
        lease_s: float,
        owns_client: bool = False,
        link: SharedLink | None = None,
    ) -> None:
        self.limit, self._link = limit, link  # with a link, an outage is its to report, and Redis is skipped meanwhile
        self._redis, self._prefix, self._owns = redis, prefix, owns_client
        self._lease_ms = max(1, int(lease_s * 1000))
        self._acquire = redis.register_script(ACQUIRE_LUA)
        self._pending: set[asyncio.Task[None]] = set()

    async def acquire(self, client: str) -> Lease | None:
        if not self.limit:
            return Lease(client)
        link = self._link
        if link is not None and not link.up:
            return Lease(client)
        member = uuid.uuid4().hex
        try:
            admitted = await self._acquire(keys=[self._key(client)], args=[self.limit, member, self._lease_ms])
        except REDIS_ERRORS as exc:
            if link is not None:
                link.failed(exc, "stream cap")
                return Lease(client)
            log.warning("stream cap: Redis unavailable (%s); admitting without a shared count", type(exc).__name__)
            return Lease(client)
        return Lease(client, member, shared=True) if admitted else None

    def release(self, lease: Lease) -> None:
        if not lease.shared:
            return
        task = asyncio.get_running_loop().create_task(self._release(lease))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _release(self, lease: Lease) -> None:
        try:
            await self._redis.zrem(self._key(lease.client), lease.member)
        except REDIS_ERRORS as exc:  # the lease expires on its own
            if self._link is not None:
                self._link.failed(exc, "stream cap")
                return
            log.warning("stream cap: release failed (%s); the slot frees at its lease end", type(exc).__name__)

    async def close(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        if self._owns:
            await self._redis.aclose()

    def _key(self, client: str) -> str:
        return f"{self._prefix}:streams:{client}"
