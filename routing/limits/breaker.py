"""Circuit breakers per deployment: pure state machines driven by an injected clock (`now` arguments).

Only failures that are the deployment's fault should be recorded as counting failures: connect errors,
timeouts, 5xx, auth errors (see `backoff.is_deployment_fault`). The caller decides; a client's own 4xx must
never reach `record_failure`. A 429 (or 503) with Retry-After makes the deployment unavailable until then via
`record_failure(..., retry_after=s, counts=False)` (or `block_until`), without counting toward the breaker. The
block is capped at `retry_after_cap` seconds (an upstream answering `Retry-After: 1000000000000` must not take a
deployment out for millennia), and `clear_blocks` lifts every block (a config reload: the operator changed something).

States: closed -> open (N consecutive failures, or a failure rate over a sliding window) -> half_open after the
cooldown (or at once when a health probe passes, `probe_passed`), which admits exactly one trial at a time
(`try_acquire`) -> closed on the trial's success, or open again (with a longer cooldown, capped) on its failure.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

BreakerStatus = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """Thresholds and timings of every breaker on a board."""

    consecutive_failures: int = 3
    window: float = 60.0
    min_calls: int = 10
    failure_rate: float = 0.5
    cooldown: float = 30.0
    cooldown_growth: float = 2.0
    max_cooldown: float = 300.0
    trial_timeout: float = 60.0
    retry_after_cap: float = 3600.0

    def __post_init__(self) -> None:
        if self.consecutive_failures < 1 or self.min_calls < 1:
            raise ValueError("BreakerConfig.consecutive_failures and min_calls must be >= 1")
        if not 0.0 < self.failure_rate <= 1.0:
            raise ValueError("BreakerConfig.failure_rate must be in (0, 1]")
        if self.window <= 0 or self.cooldown < 0 or self.cooldown_growth < 1 or self.trial_timeout <= 0:
            raise ValueError("BreakerConfig: window and trial_timeout > 0, cooldown >= 0, cooldown_growth >= 1")
        if not self.retry_after_cap > 0:
            raise ValueError("BreakerConfig.retry_after_cap must be > 0")

    def cooldown_for(self, trips: int) -> float:
        """Cooldown after the `trips`-th trip in a row (1-based), growing geometrically up to max_cooldown."""
        grown = self.cooldown * math.pow(self.cooldown_growth, min(max(trips - 1, 0), 64))
        return min(grown, max(self.max_cooldown, self.cooldown))


@dataclass(frozen=True, slots=True)
class BreakerState:
    """A snapshot for display: /admin, metrics, logs."""

    key: str
    status: BreakerStatus
    available: bool
    opened_at: float | None
    until: float | None
    blocked_until: float | None
    consecutive_failures: int
    trips: int
    recent_calls: int
    recent_failures: int
    error_rate: float


@dataclass(slots=True)
class CircuitBreaker:
    """One deployment's breaker. Mutable; every method takes the current time."""

    config: BreakerConfig = field(default_factory=BreakerConfig)
    status: BreakerStatus = "closed"
    consecutive: int = 0
    trips: int = 0
    opened_at: float | None = None
    until: float | None = None
    closed_at: float = -math.inf
    blocked_until: float = -math.inf
    blocked_status: int = 429
    trial_started: float | None = None
    # (second, calls, failures) buckets covering the sliding window: bounded memory whatever the traffic.
    buckets: deque[list[int]] = field(default_factory=deque)

    def _prune(self, now: float) -> None:
        oldest = math.floor(now - self.config.window)
        while self.buckets and self.buckets[0][0] <= oldest:
            self.buckets.popleft()

    def _count(self, now: float, failed: bool) -> None:
        second = math.floor(now)
        if self.buckets and self.buckets[-1][0] >= second:
            bucket = self.buckets[-1]
        else:
            bucket = [second, 0, 0]
            self.buckets.append(bucket)
        bucket[1] += 1
        bucket[2] += int(failed)
        self._prune(now)

    def recent(self, now: float) -> tuple[int, int]:
        """(calls, failures) recorded within the sliding window."""
        self._prune(now)
        return sum(b[1] for b in self.buckets), sum(b[2] for b in self.buckets)

    def _trial_busy(self, now: float) -> bool:
        # A trial whose outcome never arrived (cancelled task, lost result) expires so the breaker cannot stick.
        return self.trial_started is not None and now - self.trial_started < self.config.trial_timeout

    def available(self, now: float) -> bool:
        """Whether `try_acquire(now)` would admit a request (no side effects)."""
        if now < self.blocked_until:
            return False
        if self.status == "closed":
            return True
        if self.status == "open":
            return self.until is None or now >= self.until
        return not self._trial_busy(now)

    def try_acquire(self, now: float) -> bool:
        """Admit a request. When the cooldown is over, this moves open -> half_open and the caller holds the
        single trial; others are refused until its outcome is recorded. An open circuit is never pushed past
        during its cooldown; a passing health probe ends it (`probe_passed`)."""
        if not self.available(now):
            return False
        if self.status == "closed":
            return True
        self.status = "half_open"
        self.trial_started = now
        return True

    def record_success(self, now: float) -> None:
        """An admitted request succeeded. In half_open this closes the breaker; a late success while open
        (a request admitted before the trip) changes nothing."""
        self._count(now, failed=False)
        self.consecutive = 0
        if self.status == "half_open":
            self.status, self.opened_at, self.until, self.trial_started = "closed", None, None, None
            self.closed_at = now
            self.buckets.clear()  # the failures that tripped it must not re-trip it at once

    def probe_passed(self) -> bool:
        """A health probe just passed: an open circuit's cooldown ends now and the next request is its one trial
        (half_open; a trial already running stays the only one). True when the state changed."""
        if self.status != "open":
            return False
        self.status, self.trial_started = "half_open", None
        return True

    def record_failure(self, now: float) -> None:
        """An admitted request failed through the deployment's fault."""
        self._count(now, failed=True)
        self.consecutive += 1
        if self.status == "half_open":
            self._open(now)
        elif self.status == "closed" and self._should_trip(now):
            self._open(now)

    def release(self) -> None:
        """End a held trial with no verdict (the call was cancelled, or the failure did not count)."""
        self.trial_started = None

    def block_until(self, until: float, status: int = 429) -> None:
        """Unavailable until `until` (Retry-After of an HTTP `status`). A later deadline extends, an earlier one
        never shortens."""
        if until > self.blocked_until:
            self.blocked_until, self.blocked_status = until, status

    def adopt_open(self, now: float, cooldown: float, trips: int) -> bool:
        """Another process of the fleet opened this circuit: open here too for the `cooldown` left. True when the
        state changed."""
        changed = self.status != "open"
        self.status, self.opened_at, self.trial_started = "open", now, None
        self.until = now + max(0.0, cooldown)
        self.trips = max(self.trips, trips)
        return changed

    def adopt_closed(self, now: float) -> bool:
        """Another process's trial closed this circuit: closed here too. True when the state changed."""
        if self.status == "closed":
            return False
        self.status, self.opened_at, self.until, self.trial_started = "closed", None, None, None
        self.consecutive, self.closed_at = 0, now
        self.buckets.clear()
        return True

    def _should_trip(self, now: float) -> bool:
        if self.consecutive >= self.config.consecutive_failures:
            return True
        calls, failures = self.recent(now)
        return calls >= self.config.min_calls and failures >= self.config.failure_rate * calls

    def _open(self, now: float) -> None:
        # Trips grow the cooldown only while the deployment keeps failing; a full quiet window resets them.
        if self.status == "closed" and now - self.closed_at >= self.config.window:
            self.trips = 0
        self.trips += 1
        self.status, self.opened_at, self.trial_started = "open", now, None
        self.until = now + self.config.cooldown_for(self.trips)

    def ready_at(self, now: float) -> float:
        """Earliest time at which this breaker could admit a request (now when it can already)."""
        ready = max(now, self.blocked_until)
        if self.status == "open" and self.until is not None:
            ready = max(ready, self.until)
        elif self.status == "half_open" and self.trial_started is not None and self._trial_busy(now):
            ready = max(ready, self.trial_started + self.config.trial_timeout)
        return ready

    def snapshot(self, key: str, now: float) -> BreakerState:
        """Display state at `now`."""
        calls, failures = self.recent(now)
        return BreakerState(
            key=key,
            status=self.status,
            available=self.available(now),
            opened_at=self.opened_at,
            until=self.until,
            blocked_until=self.blocked_until if self.blocked_until > now else None,
            consecutive_failures=self.consecutive,
            trips=self.trips,
            recent_calls=calls,
            recent_failures=failures,
            error_rate=failures / calls if calls else 0.0,
        )


class BreakerBoard:
    """Circuit breakers keyed by deployment key (`model/deployment`), created on first use."""

    def __init__(self, config: BreakerConfig | None = None) -> None:
        self.config = config or BreakerConfig()
        self._breakers: dict[str, CircuitBreaker] = {}
        self._last_now = 0.0

    def _get(self, key: str, now: float | None = None) -> CircuitBreaker:
        if now is not None:
            self._last_now = max(self._last_now, now)
        breaker = self._breakers.get(key)
        if breaker is None:
            breaker = self._breakers[key] = CircuitBreaker(self.config)
        return breaker

    def available(self, key: str, now: float) -> bool:
        """Whether the deployment could take a request now (no side effects)."""
        return self._get(key, now).available(now)

    def try_acquire(self, key: str, now: float) -> bool:
        """Admit one request to the deployment; in half_open only one caller wins the trial."""
        return self._get(key, now).try_acquire(now)

    def record_success(self, key: str, now: float) -> None:
        """The deployment answered successfully."""
        self._get(key, now).record_success(now)

    def record_failure(
        self, key: str, now: float, retry_after: float | None = None, *, counts: bool = True, status: int = 429
    ) -> None:
        """The deployment failed. `retry_after` seconds (from a 429/503, given as `status`) block it until
        now + retry_after, at most `config.retry_after_cap`; `counts=False` blocks without counting toward the
        breaker (use it for 429) and frees a held trial."""
        breaker = self._get(key, now)
        if retry_after is not None and retry_after > 0:
            breaker.block_until(now + min(retry_after, self.config.retry_after_cap), status)
        if counts:
            breaker.record_failure(now)
        elif breaker.status == "half_open":
            breaker.release()

    def probe_passed(self, key: str) -> bool:
        """The deployment's health probe passed: an open circuit gets its trial at once (see CircuitBreaker)."""
        breaker = self._breakers.get(key)
        return breaker is not None and breaker.probe_passed()

    def adopt(self, key: str, status: BreakerStatus, now: float, cooldown: float = 0.0, trips: int = 1) -> bool:
        """Take the fleet's word for a circuit (`open` for `cooldown` more seconds, or `closed`); True on a change."""
        breaker = self._get(key, now)
        if status == "open":
            return breaker.adopt_open(now, cooldown, trips)
        return breaker.adopt_closed(now) if status == "closed" else False

    def release(self, key: str) -> None:
        """Give back a held half_open trial without a verdict (the call was cancelled)."""
        self._get(key).release()

    def block_until(self, key: str, until: float, status: int = 429) -> None:
        """Make the deployment unavailable until `until` without counting a failure."""
        self._get(key).block_until(until, status)

    def clear_blocks(self, now: float) -> int:
        """Lift every Retry-After block (circuits keep their state); returns how many were in force at `now`."""
        lifted = 0
        for breaker in self._breakers.values():
            lifted += breaker.blocked_until > now
            breaker.blocked_until = -math.inf
        return lifted

    def ready_at(self, key: str, now: float) -> float:
        """Earliest time the deployment could admit a request: now, or the end of its cooldown, block or trial."""
        return self._get(key, now).ready_at(now)

    def blocked(self, key: str, now: float) -> tuple[float, int] | None:
        """(seconds left, HTTP status) of the upstream's Retry-After blocking the deployment, or None."""
        breaker = self._breakers.get(key)
        if breaker is None or now >= breaker.blocked_until:
            return None
        return breaker.blocked_until - now, breaker.blocked_status

    def status(self, key: str) -> BreakerStatus:
        """The breaker's status alone: cheap enough for every call (state() builds a full snapshot)."""
        breaker = self._breakers.get(key)
        return "closed" if breaker is None else breaker.status

    def state(self, key: str, now: float | None = None) -> BreakerState:
        """Display state; `now` defaults to the latest time the board has seen."""
        when = self._last_now if now is None else now
        return self._get(key, now).snapshot(key, when)

    def states(self, now: float | None = None) -> list[BreakerState]:
        """Display state of every breaker seen so far, sorted by key."""
        return [self.state(key, now) for key in sorted(self._breakers)]
