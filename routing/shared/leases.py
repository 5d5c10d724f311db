"""`max_concurrent` across every worker and replica: in-flight leases per deployment in Redis.

Each attempt in flight is a member of the sorted set `<prefix>:inflight:<deployment key>`, scored by when its lease
runs out (Redis time, ms). `acquire` is one round trip (a Lua script drops expired leases, counts, adds); `release`
never waits: it is sent in the background, as `routing/limits/streams.py` does. Leases are short (`lease_s`, 15 s)
and a background task renews this process's live ones every `lease_s / 3`, so a SIGKILLed process's slots come back
within `lease_s` whatever the call deadline. With Redis down, `acquire` returns `LOCAL`: the caller falls back to
its own in-flight count.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Final

from routing.limits.streams import ACQUIRE_LUA
from routing.shared.link import REDIS_ERRORS, SharedLink

log = logging.getLogger("gateway.shared")

# Acquiring is the stream cap's ACQUIRE_LUA on the deployment's set (1 admitted, 0 full).
# KEYS: sets; ARGV: lease (ms), then one member per key. Pushes each live lease's expiry out (XX: never re-adds one
# already released or expired).
RENEW_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], 'XX', now + lease, ARGV[i + 1])
  redis.call('PEXPIRE', KEYS[i], lease)
end
return #KEYS
"""

LOCAL: Final = "local"  # no shared lease: Redis is down, the local count decides
FULL: Final = ""  # the fleet is at max_concurrent


class InFlightLeases:
    """Leases per deployment; `acquire` returns a lease id, FULL, or LOCAL (Redis unavailable)."""

    def __init__(self, link: SharedLink, lease_s: float = 15.0) -> None:
        self.link = link
        self.lease_ms = max(1000, int(lease_s * 1000))
        self._acquire = link.redis.register_script(ACQUIRE_LUA)
        self._renew = link.redis.register_script(RENEW_LUA)
        self._held: dict[str, str] = {}  # member -> deployment key
        self._pending: set[asyncio.Task[None]] = set()
        self._renewer: asyncio.Task[None] | None = None

    def key(self, deployment: str) -> str:
        return f"{self.link.prefix}:inflight:{deployment}"

    async def acquire(self, deployment: str, limit: int) -> str:
        if not self.link.up:
            return LOCAL
        member = uuid.uuid4().hex
        try:
            admitted = await self._acquire(keys=[self.key(deployment)], args=[limit, member, self.lease_ms])
        except REDIS_ERRORS as exc:
            self.link.failed(exc, "in-flight lease")
            return LOCAL
        if not admitted:
            return FULL
        self._held[member] = deployment
        return member

    def release(self, lease: str) -> None:
        """Give a lease back in the background (LOCAL and FULL are no-ops)."""
        deployment = self._held.pop(lease, None)
        if deployment is None:
            return
        task = asyncio.get_running_loop().create_task(self._release(deployment, lease))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _release(self, deployment: str, member: str) -> None:
        try:
            await self.link.redis.zrem(self.key(deployment), member)
        except REDIS_ERRORS as exc:  # the lease expires on its own
            self.link.failed(exc, "in-flight release")

    def held(self) -> int:
        return len(self._held)

    async def start(self) -> None:
        self._renewer = asyncio.get_running_loop().create_task(self._renew_loop(), name="inflight-lease-renewal")

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self.lease_ms / 3000)
            held = list(self._held.items())
            if not held or not self.link.up:
                continue
            try:
                await self._renew(keys=[self.key(d) for _, d in held], args=[self.lease_ms, *(m for m, _ in held)])
            except REDIS_ERRORS as exc:
                self.link.failed(exc, "in-flight lease renewal")

    async def close(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
