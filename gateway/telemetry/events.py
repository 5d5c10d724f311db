"""A fan-out of live events (deployment health changes, completed calls) to WebSocket subscribers.

Publishing never blocks: each subscriber has a bounded queue, and a subscriber too slow to keep up loses
its oldest events (counted in `dropped`) rather than slowing the request path.

A call's event belongs to the API key name that made the call (`owner`): a subscriber sees its own key's calls
only, unless it `sees_all` (the admin key, or an open gateway where every caller is anonymous). Events without
an owner (`provider_health`) go to everyone. The owner is never part of the event itself, so no subscriber
learns the key names of others.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from gateway.calllog.record import CallRecord


def call_event(record: CallRecord) -> dict[str, Any]:
    """The `call_completed` event for a finished call (no content, no secrets, no key name); publish it with
    `owner=record.api_key_name`."""
    return {
        "type": "call_completed",
        "request_id": record.request_id,
        "model": record.model_id,
        "provider": record.deployment,
        "provider_type": record.provider,
        "endpoint": record.endpoint,
        "success": record.status_code == 200,
        "status": record.status_code,
        "latency_ms": round(record.latency_ms, 1),
        "ttft_ms": None if record.ttft_ms is None else round(record.ttft_ms, 1),
        "tokens": record.total_tokens,
        "cost_usd": record.cost_usd,
        "timestamp": time.time(),
    }


class Subscription:
    """One subscriber's queue of events: its own key's (`key_name`) and ownerless ones, or all (`sees_all`)."""

    def __init__(self, hub: EventHub, size: int, key_name: str, sees_all: bool) -> None:
        self.hub = hub
        self.key_name, self.sees_all = key_name, sees_all
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(size)
        self.dropped = 0

    def wants(self, owner: str | None) -> bool:
        return owner is None or self.sees_all or owner == self.key_name

    async def get(self) -> dict[str, Any]:
        return await self.queue.get()

    def close(self) -> None:
        self.hub.unsubscribe(self)


class EventHub:
    """Fan-out with bounded per-subscriber queues."""

    def __init__(self, queue_size: int = 256) -> None:
        self._subscribers: list[Subscription] = []
        self._size = queue_size

    def subscribe(self, key_name: str = "", *, sees_all: bool = False, size: int = 0) -> Subscription:
        """A queue of the events for a subscriber that called with API key `key_name` (`size`: its bound, when
        not the hub's)."""
        sub = Subscription(self, size or self._size, key_name, sees_all)
        self._subscribers.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def publish(self, event: dict[str, Any], owner: str | None = None) -> None:
        """Send `event` to every subscriber allowed to see it; `owner` is the key name of the call it is about
        (None: an event for everyone, such as a health change)."""
        for sub in tuple(self._subscribers):
            if not sub.wants(owner):
                continue
            if sub.queue.full():
                sub.queue.get_nowait()
                sub.dropped += 1
            sub.queue.put_nowait(event)
