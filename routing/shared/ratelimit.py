"""Rate limits in Redis that survive Redis going away: shared while it answers, this process's own while it does not
(REDIS_FAIL=open, the default), or refused with 503 `rate_limiter_unavailable` (REDIS_FAIL=closed, for operators
who would rather refuse than let the limits multiply by the number of processes).

A reservation remembers which store charged it (`LocalReservation` for this process's), so settling goes to the
same one even if Redis came back or went away in between.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

from routing.errors import Category, RoutingError
from routing.limits.ratelimit import Denial, InProcessRateLimiter, Limit, LimitState, Reservation
from routing.limits.ratelimit_redis import RateLimitBackendError, RedisRateLimiter
from routing.shared.link import SharedLink


class RateLimitsUnavailable(RoutingError):
    """REDIS_FAIL=closed and the limits' store is unreachable: 503, retry shortly."""

    status = 503
    code = "rate_limiter_unavailable"
    category: Category = "unavailable"

    def __init__(self) -> None:
        super().__init__(
            "rate limits are enforced in Redis, which is unreachable; with REDIS_FAIL=closed the gateway refuses "
            "calls under a rate limit until it returns"
        )
        self.retry_after = 1.0


@dataclass(frozen=True, slots=True)
class LocalReservation(Reservation):
    """Charged to this process's own limiter while Redis was down."""


class FailoverRateLimiter:
    """RateLimiter: Redis while the link is up; on its failure this process's limiter, or a refusal when closed."""

    def __init__(self, shared: RedisRateLimiter, link: SharedLink, *, fail_closed: bool = False) -> None:
        self.shared, self.link, self.fail_closed = shared, link, fail_closed
        self.local = InProcessRateLimiter()

    async def reserve(self, limits: Sequence[Limit], tokens: int, now: float | None = None) -> Reservation | Denial:
        if self.link.up:
            try:
                return await self.shared.reserve(limits, tokens, now)
            except RateLimitBackendError as exc:
                self.link.failed(exc.__cause__ or exc, "rate limits")
        if self.fail_closed:
            raise RateLimitsUnavailable()
        outcome = await self.local.reserve(limits, tokens, now)
        if isinstance(outcome, Denial):
            return outcome
        return LocalReservation(*(getattr(outcome, f.name) for f in fields(outcome)))

    async def settle(self, reservation: Reservation, actual_tokens: int, now: float | None = None) -> None:
        if isinstance(reservation, LocalReservation):
            await self.local.settle(reservation, actual_tokens, now)
        elif self.link.up:
            try:
                await self.shared.settle(reservation, actual_tokens, now)
            except RateLimitBackendError as exc:  # dropped: the charge stands for its window
                self.link.failed(exc.__cause__ or exc, "rate limits")

    async def release(self, reservation: Reservation, now: float | None = None) -> None:
        await self.settle(reservation, 0, now)

    async def peek(self, limits: Sequence[Limit], now: float | None = None) -> list[LimitState]:
        if self.link.up:
            try:
                return await self.shared.peek(limits, now)
            except RateLimitBackendError as exc:
                self.link.failed(exc.__cause__ or exc, "rate limits")
        return await self.local.peek(limits, now)

    async def close(self) -> None:
        await self.shared.close()
        await self.local.close()
