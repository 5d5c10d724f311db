"""The shared-state parts of one process, built together over one Redis: link, leases, board, leadership."""

from __future__ import annotations

import os
import platform
import uuid
from collections.abc import Callable, Iterable

from redis.asyncio import Redis

from routing.shared.board import FleetBoard
from routing.shared.leader import Leadership
from routing.shared.leases import InFlightLeases
from routing.shared.link import SharedLink
from routing.shared.spill import SharedSpill

# a hung Redis must cost a call at most this long before the link goes down and calls stop asking it
REDIS_TIMEOUT_S = 1.0


def process_id() -> str:
    """This process in the fleet: host, pid and a nonce (a pid is reused across restarts and containers)."""
    return f"{platform.node()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def shared_redis(url: str) -> Redis:
    """A client whose calls fail fast on a dead or hung server (they then fall back to local state)."""
    return Redis.from_url(url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S)


class Fleet:
    """Everything shared by the processes of one gateway; `subjects()` lists the deployment keys known here."""

    def __init__(
        self,
        redis: Redis,
        url: str,
        prefix: str,
        subjects: Callable[[], Iterable[str]],
        on_change: Callable[[bool], None] | None = None,
        lease_s: float = 15.0,
    ) -> None:
        self.me = process_id()
        self.link = SharedLink(redis, prefix, on_change=on_change)
        self.leases = InFlightLeases(self.link, lease_s)
        self.leader = Leadership(self.link, self.me)
        subscriber = Redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT_S)
        self.board = FleetBoard(self.link, self.me, subscriber, subjects)
        self.spill = SharedSpill(self.link)

    @property
    def up(self) -> bool:
        return self.link.up

    async def start(self) -> None:
        await self.link.start()
        await self.leases.start()
        await self.board.start()

    async def close(self) -> None:
        await self.leader.resign_all()
        await self.board.close()
        await self.leases.close()
        await self.link.close()
