"""Admission of one attempt to one deployment: concurrency cap, circuit breaker, rate limits; then settlement.

Every admission ends exactly once, as `succeeded`, `failed` or `abandoned`: the breaker learns the outcome, the
rate-limit reservation is settled to the best figure of the tokens used (`settled_tokens`), and the in-flight
count drops.

With a `Fleet` (REDIS_URL) the concurrency cap and the half-open trial hold across every process: an admission to a
deployment with `max_concurrent` takes an in-flight lease in Redis (one round trip, given back in the background),
and the one trial of a half-open circuit takes the fleet's trial token; a circuit that opens or closes here is
published for the others. With Redis down both fall back to this process's own count and breaker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from routing.config.schema import DeploymentConfig, ModelConfig
from routing.errors import UpstreamError
from routing.limits.breaker import BreakerBoard
from routing.limits.ratelimit import Denial, Limit, RateLimiter, Reservation, deployment_limit, model_limit
from routing.retry import classify_failure, is_deployment_fault
from routing.shared.fleet import Fleet
from routing.shared.leases import FULL, LOCAL

log = logging.getLogger("gateway.guards")

# after the fleet refused a lease, this process counts the deployment full for this long (then asks again): a call
# waiting for room polls Redis at most this often instead of spinning
FLEET_FULL_S = 0.025


@dataclass(frozen=True, slots=True)
class Admission:
    """An attempt may go ahead; it must end once: Guards.succeeded, failed or abandoned."""

    dep: DeploymentConfig
    reservation: Reservation | None
    lease: str = ""  # the fleet's in-flight lease (Redis), "" or LOCAL when none
    trial: bool = False  # this admission holds the fleet's half-open trial token


@dataclass(frozen=True, slots=True)
class Skip:
    """This deployment cannot take the attempt now: `full`, `circuit_open`, `rate_limited` (our own limits) or
    `retry_after` (the upstream answered `status` 429/503 with a Retry-After that has not run out)."""

    dep: DeploymentConfig
    reason: str
    retry_after: float | None = None
    denial: Denial | None = None
    status: int | None = None


class Guards:
    """Shared per-process state about deployments: in-flight counts, breakers, rate limiter."""

    def __init__(
        self,
        breakers: BreakerBoard,
        limiter: RateLimiter,
        on_state: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.breakers, self.limiter, self.on_state, self._clock = breakers, limiter, on_state, clock
        self._in_flight: dict[str, int] = {}
        self._freed = asyncio.Condition()
        self.fleet: Fleet | None = None
        self._fleet_full: dict[str, float] = {}  # deployment key -> when the fleet last refused a lease

    def in_flight(self, key: str) -> int:
        return self._in_flight.get(key, 0)

    def available(self, dep: DeploymentConfig) -> bool:
        return self.breakers.available(dep.key, self._clock())

    def lift_blocks(self) -> int:
        """Lift every upstream Retry-After block now (a config reload); returns how many were in force."""
        return self.breakers.clear_blocks(self._clock())

    def has_room(self, dep: DeploymentConfig) -> bool:
        if not dep.max_concurrent:
            return True
        if self._in_flight.get(dep.key, 0) >= dep.max_concurrent:
            return False
        refused = self._fleet_full.get(dep.key)
        return refused is None or self._clock() - refused >= FLEET_FULL_S

    async def admit(self, dep: DeploymentConfig, model: ModelConfig, tokens: int) -> Admission | Skip:
        if not self.has_room(dep):
            return Skip(dep, "full")
        key, fleet = dep.key, self.fleet
        now = self._clock()
        if not self.breakers.try_acquire(key, now):
            blocked = self.breakers.blocked(key, now)
            if blocked is not None:
                return Skip(dep, "retry_after", blocked[0], status=blocked[1])
            return Skip(dep, "circuit_open", self.breakers.ready_at(key, now) - now)
        trial = fleet is not None and self.breakers.status(key) == "half_open"
        if fleet is not None and trial and not await fleet.board.claim_trial(key, self.breakers.config.trial_timeout):
            # another process runs the trial: this breaker stays busy until its verdict arrives (or times out)
            return Skip(dep, "circuit_open", self.breakers.ready_at(key, now) - now)
        lease = ""
        if fleet is not None and dep.max_concurrent:
            lease = await fleet.leases.acquire(key, dep.max_concurrent)
            if lease == FULL:
                self._fleet_full[key] = self._clock()
                self._give_back(key, trial)
                return Skip(dep, "full")
            self._fleet_full.pop(key, None)
        limits = _limits(dep, model)
        reservation: Reservation | None = None
        if limits:
            try:
                outcome = await self.limiter.reserve(limits, tokens)
            except BaseException:  # REDIS_FAIL=closed with Redis down, or a cancellation: hold nothing
                self._give_back(key, trial, lease)
                raise
            if isinstance(outcome, Denial):
                self._give_back(key, trial, lease)
                return Skip(dep, "rate_limited", outcome.retry_after, outcome)
            reservation = outcome
        self._in_flight[key] = self._in_flight.get(key, 0) + 1
        return Admission(dep, reservation, lease, trial)

    def _give_back(self, key: str, trial: bool, lease: str = "") -> None:
        """Undo an admission half made: the breaker's trial, the fleet's trial token and lease."""
        self.breakers.release(key)
        if self.fleet is not None:
            if trial:
                self.fleet.board.end_trial(key)
            if lease and lease != LOCAL:
                self.fleet.leases.release(lease)

    async def succeeded(self, admission: Admission, tokens: int | None = None) -> None:
        """The attempt served the call; `tokens` is the usage the upstream reported (None: none)."""
        await self._finish(admission, None, tokens, judged=True, delivered=True)

    async def failed(
        self, admission: Admission, error: UpstreamError, tokens: int | None = None, delivered: bool = False
    ) -> None:
        """The upstream failed the attempt; `delivered` when output had already reached the client (mid-stream)."""
        await self._finish(admission, error, tokens, judged=True, delivered=delivered)

    async def abandoned(self, admission: Admission, tokens: int | None = None, delivered: bool = False) -> None:
        """The attempt ended without a verdict on the deployment (the client left, the call was cancelled)."""
        await self._finish(admission, None, tokens, judged=False, delivered=delivered)

    async def _finish(
        self, admission: Admission, error: UpstreamError | None, tokens: int | None, *, judged: bool, delivered: bool
    ) -> None:
        """Exactly once per admission: the in-flight count drops, the breaker learns the verdict, the rate-limit
        reservation settles to the best figure (`settled_tokens`), waiters for room wake."""
        key, fleet = admission.dep.key, self.fleet
        self._in_flight[key] = max(0, self._in_flight.get(key, 0) - 1)
        if fleet is not None and admission.lease:
            fleet.leases.release(admission.lease)
        before = self.breakers.status(key)
        now = self._clock()
        if not judged:
            self.breakers.release(key)
        elif error is None:
            self.breakers.record_success(key, now)
        else:
            kind = classify_failure(error.kind, error.upstream_status)
            status = error.upstream_status or 429
            self.breakers.record_failure(key, now, error.retry_after, counts=is_deployment_fault(kind), status=status)
            if fleet is not None and error.retry_after:
                self.publish_block(key)
        reservation = admission.reservation
        if reservation is not None:
            used = settled_tokens(tokens, delivered)
            try:
                if used == 0:
                    await self.limiter.release(reservation)
                elif used is not None:
                    await self.limiter.settle(reservation, used)
            except Exception as exc:  # a limiter outage must not fail a finished call
                log.warning("rate limiter settle failed for %s: %s", key, type(exc).__name__)
        after = self.breakers.status(key)
        if fleet is not None:
            if admission.trial:
                fleet.board.end_trial(key)
            if after != before and after != "half_open":
                self.publish_circuit(key)
        if self.on_state is not None and after != before:
            self.on_state(key)
        async with self._freed:
            self._freed.notify_all()

    def publish_circuit(self, key: str) -> None:
        """Tell the fleet this circuit opened (with its cooldown left) or closed."""
        if self.fleet is None:
            return
        now = self._clock()
        state = self.breakers.state(key, now)
        cooldown = max(0.0, (state.until or now) - now) if state.status == "open" else 0.0
        data = {"status": state.status, "until": time.time() + cooldown, "trips": state.trips}
        self.fleet.board.publish("circuit", key, data, cooldown + 60.0)

    def publish_block(self, key: str) -> None:
        """Tell the fleet the upstream asked for a pause (Retry-After): no other process spends a call to learn it."""
        if self.fleet is None:
            return
        blocked = self.breakers.blocked(key, self._clock())
        if blocked is not None:
            left, status = blocked
            self.fleet.board.publish("block", key, {"until": time.time() + left, "status": status}, left + 5.0)

    def adopt_block(self, key: str, message: dict[str, object]) -> bool:
        """Apply another process's Retry-After block; True when it is still in force."""
        until, status = message.get("until"), message.get("status")
        left = float(until) - time.time() if isinstance(until, int | float) else 0.0
        if left <= 0:
            return False
        self.breakers.block_until(key, self._clock() + left, status if isinstance(status, int) else 429)
        return True

    def adopt_circuit(self, key: str, message: dict[str, object]) -> bool:
        """Apply another process's circuit news; True when this process's breaker changed."""
        status = message.get("status")
        until, trips = message.get("until"), message.get("trips")
        cooldown = float(until) - time.time() if isinstance(until, int | float) else 0.0
        if status == "open" and cooldown <= 0:
            return False  # an old opening, its cooldown already over
        count = trips if isinstance(trips, int) else 1
        if status not in ("open", "closed"):
            return False
        return self.breakers.adopt(key, "open" if status == "open" else "closed", self._clock(), cooldown, count)

    async def wait_for_room(self, seconds: float, deps: Sequence[DeploymentConfig]) -> bool:
        """Wait (bounded) until one of `deps` has room under max_concurrent; False on timeout."""
        if seconds <= 0:
            return any(self.has_room(d) for d in deps)
        if self.fleet is not None and self.fleet.up:
            return await self._poll_for_room(seconds, deps)
        try:
            async with asyncio.timeout(seconds):
                async with self._freed:
                    # the predicate is checked first: a slot freed before we got here is not a wake-up missed
                    await self._freed.wait_for(lambda: any(self.has_room(d) for d in deps))
            return True
        except TimeoutError:
            return False

    async def _poll_for_room(self, seconds: float, deps: Sequence[DeploymentConfig]) -> bool:
        # a slot freed by another process wakes nobody here: look again every FLEET_FULL_S (or at a local free)
        until = self._clock() + seconds
        while True:
            if any(self.has_room(d) for d in deps):
                return True
            left = until - self._clock()
            if left <= 0:
                return False
            try:
                async with asyncio.timeout(min(left, FLEET_FULL_S)):
                    async with self._freed:
                        await self._freed.wait()
            except TimeoutError:
                pass


def settled_tokens(reported: int | None, delivered: bool) -> int | None:
    """The tokens to settle a reservation at, None to let it stand: nothing when no output reached the client
    (the attempt failed before its first byte), else the upstream's reported usage, else the reservation.

    With no usage reported the reservation (prompt estimate + max_tokens, or the default cap) stands rather than
    a guess from the completion text: chars / 4 under-counts code and non-Latin text several times over, and
    under-counting is what these limits exist to prevent (the upstream's own quota is then exceeded). The
    reservation is an upper bound the upstream agreed to; an over-count lasts one window, and only for upstreams
    that ignore the OpenAI schema's request for usage (`stream_options.include_usage`).
    """
    if not delivered:
        return 0
    return None if reported is None else max(reported, 0)


def _limits(dep: DeploymentConfig, model: ModelConfig) -> list[Limit]:
    limits = []
    if dep.rpm or dep.tpm:
        limits.append(deployment_limit(dep.key, dep.rpm, dep.tpm))
    if model.rpm or model.tpm:
        limits.append(model_limit(model.id, model.rpm, model.tpm))
    return limits
