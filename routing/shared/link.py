"""The health of the Redis connection that shared state runs on: one switch every shared part reads.

Up, shared parts use Redis; down, they skip it and run on this process's own state (fail open) without waiting on
a dead socket per call. The first failure is logged once, `on_change(False)` lets a gauge and `/health` say so, and
a background loop pings every `retry_s` until Redis answers; then `on_change(True)`, and the shared parts use Redis
again (the board's subscriber resubscribes and re-reads the latest state by itself). While up, a heartbeat ping
every `retry_s` notices an outage even when no call is running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("gateway.shared")

# what a Redis call can raise when the server is gone or hung: redis-py's own errors, and the socket's
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)


class SharedLink:
    """Up/down state of the shared-state Redis, with a heartbeat and a reconnect loop (`start`/`close`)."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        *,
        retry_s: float = 0.5,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.redis, self.prefix, self.retry_s = redis, prefix, retry_s
        self.up = False
        self._on_change = on_change
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._reported = False  # the outage was logged; the next one is logged again after a recovery

    @property
    def status(self) -> str:
        return "ok" if self.up else "degraded: shared state unavailable"

    async def start(self) -> None:
        """Connect once now (a failure only marks the link down), then keep watching in the background."""
        await self._check()
        self._task = asyncio.get_running_loop().create_task(self._watch(), name="shared-state-link")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def failed(self, exc: BaseException, what: str) -> None:
        """A shared part's Redis call failed: go down (logged once per outage); the watcher reconnects."""
        if not self.up:
            return
        self._set(False, f"{what}: {type(exc).__name__}")
        self._wake.set()

    async def _watch(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.retry_s)
            self._wake.clear()
            await self._check()

    async def _check(self) -> None:
        try:
            await self.redis.ping()
        except REDIS_ERRORS as exc:
            if self.up or not self._reported:
                self._set(False, f"ping: {type(exc).__name__}")
            return
        if not self.up:
            self._set(True, "")

    def _set(self, up: bool, why: str) -> None:
        self.up = up
        if up:
            if self._reported:
                log.warning("shared state: Redis is back; limits, circuits and health are shared again")
            self._reported = False
        else:
            log.warning(
                "shared state unavailable (%s): every worker runs on its own state (in-flight caps, circuits, "
                "health, load) until Redis returns",
                why,
            )
            self._reported = True
        if self._on_change is not None:
            self._on_change(up)
