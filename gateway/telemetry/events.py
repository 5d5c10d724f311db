"""A fan-out of live events (deployment health changes, completed calls) to WebSocket subscribers.

Publishing never blocks: each subscriber has a bounded queue, and a subscriber too slow to keep up loses
its oldest events (counted in `dropped`) rather than slowing the request path.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from gateway.calllog.record import CallRecord


def call_event(record: CallRecord) -> dict[str, Any]:
    """The `call_completed` event for a finished call (no content, no secrets)."""
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
        "tokens": record.total_tokens,
        "cost_usd": record.cost_usd,
        "timestamp": time.time(),
    }


class Subscription:
    """One subscriber's queue of events."""

    def __init__(self, hub: EventHub, size: int) -> None:
        self.hub = hub
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(size)
        self.dropped = 0

    async def get(self) -> dict[str, Any]:
        return await self.queue.get()

    def close(self) -> None:
        self.hub.unsubscribe(self)


class EventHub:
    """Fan-out with bounded per-subscriber queues."""

    def __init__(self, queue_size: int = 256) -> None:
        self._subscribers: list[Subscription] = []
        self._size = queue_size

    def subscribe(self) -> Subscription:
        sub = Subscription(self, self._size)
        self._subscribers.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def publish(self, event: dict[str, Any]) -> None:
        for sub in tuple(self._subscribers):
            if sub.queue.full():
                sub.queue.get_nowait()
                sub.dropped += 1
            sub.queue.put_nowait(event)
