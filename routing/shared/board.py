"""The fleet's notice board: what one process learns of a deployment (its circuit opened or closed, a probe result,
a load scrape), every process applies within a pub/sub hop, and a process that (re)joins reads the latest of each.

Layout: one channel `<prefix>:fleet`, messages `{"from": process, "kind": kind, "key": subject, ...data}`; the
latest message of each (kind, subject) is also kept at `<prefix>:last:<kind>:<subject>` for `ttl_s`, read when the
subscription (re)starts. Publishing never waits on the caller's path (a background task: SET + PUBLISH in one
round trip); a process ignores its own messages. A half-open trial is the token `<prefix>:trial:<deployment>`
(`SET NX PX` for the trial's timeout): one trial per deployment across the fleet.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from redis.asyncio import Redis

from routing.shared.leader import RESIGN_LUA
from routing.shared.link import REDIS_ERRORS, SharedLink

log = logging.getLogger("gateway.shared")

Handler = Callable[[str, dict[str, Any]], None]


class FleetBoard:
    """Publish and apply per-deployment news; `on(kind, handler)` before `start()`."""

    def __init__(self, link: SharedLink, me: str, subscriber: Redis, subjects: Callable[[], Iterable[str]]) -> None:
        self.link, self.me = link, me
        self._subscriber = subscriber  # its own connection pool: a subscribed connection takes no other command
        self._subjects = subjects
        self.channel = f"{link.prefix}:fleet"
        self._handlers: dict[str, Handler] = {}
        self._pending: set[asyncio.Task[None]] = set()
        self._listener: asyncio.Task[None] | None = None
        self._end_trial = link.redis.register_script(RESIGN_LUA)
        self.received = 0

    def on(self, kind: str, handler: Handler) -> None:
        self._handlers[kind] = handler

    def last_key(self, kind: str, subject: str) -> str:
        return f"{self.link.prefix}:last:{kind}:{subject}"

    def publish(self, kind: str, subject: str, data: dict[str, Any], ttl_s: float) -> None:
        """Tell the fleet (in the background); dropped while Redis is down (each process then judges alone)."""
        if not self.link.up:
            return
        message = json.dumps({"from": self.me, "kind": kind, "key": subject, **data}, separators=(",", ":"))
        self._spawn(self._publish(self.last_key(kind, subject), message, max(1, int(ttl_s * 1000))))

    async def _publish(self, key: str, message: str, ttl_ms: int) -> None:
        try:
            async with self.link.redis.pipeline(transaction=False) as pipe:
                pipe.set(key, message, px=ttl_ms)
                pipe.publish(self.channel, message)
                await pipe.execute()
        except REDIS_ERRORS as exc:
            self.link.failed(exc, "fleet publish")

    async def claim_trial(self, deployment: str, ttl_s: float) -> bool:
        """The one half-open trial of `deployment` across the fleet; True when this process holds it (or Redis is
        down: then each process has its own)."""
        if not self.link.up:
            return True
        try:
            key = f"{self.link.prefix}:trial:{deployment}"
            return bool(await self.link.redis.set(key, self.me, nx=True, px=max(1, int(ttl_s * 1000))))
        except REDIS_ERRORS as exc:
            self.link.failed(exc, "half-open trial")
            return True

    def end_trial(self, deployment: str) -> None:
        """The trial's verdict is in (and published): free the token in the background."""
        if self.link.up:
            self._spawn(self._release_trial(deployment))

    async def _release_trial(self, deployment: str) -> None:
        try:
            await self._end_trial(keys=[f"{self.link.prefix}:trial:{deployment}"], args=[self.me])
        except REDIS_ERRORS as exc:
            self.link.failed(exc, "half-open trial")

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def start(self) -> None:
        self._listener = asyncio.get_running_loop().create_task(self._listen(), name="fleet-board")

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        await self._subscriber.aclose()

    async def _listen(self) -> None:
        """Subscribe, read the latest of everything, apply messages; after any failure, again once Redis is up."""
        while True:
            if not self.link.up:
                await asyncio.sleep(self.link.retry_s)
                continue
            pubsub = self._subscriber.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                await self.resync()
                while self.link.up:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._apply(message["data"])
            except asyncio.CancelledError:
                raise
            except REDIS_ERRORS as exc:
                self.link.failed(exc, "fleet subscription")
                await asyncio.sleep(self.link.retry_s)
            finally:
                with contextlib.suppress(*REDIS_ERRORS):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def resync(self) -> None:
        """Apply the latest kept message of every (kind, subject) this process knows of."""
        keys = [self.last_key(kind, s) for s in self._subjects() for kind in self._handlers]
        if not keys:
            return
        for raw in await self.link.redis.mget(keys):
            if raw is not None:
                self._apply(raw)

    def _apply(self, raw: bytes | str) -> None:
        try:
            message = json.loads(raw)
            if message.get("from") == self.me:
                return
            handler = self._handlers.get(message.get("kind", ""))
            if handler is not None:
                self.received += 1
                handler(str(message["key"]), message)
        except Exception:  # one bad message must not end the subscription
            log.exception("fleet board: could not apply a message")
