"""Retry pacing: exponential backoff with injected jitter, Retry-After parsing, and which failures retry."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Literal, get_args

FailureKind = Literal["connect", "timeout", "rate_limited", "server", "auth", "client", "protocol"]
"""What went wrong in one attempt. `client` is the caller's own bad request (400/404/413/422...)."""

# `client` is never retried (the gateway's own 4xx never falls back), so it is not a kind one can ask to retry.
RETRYABLE_KINDS: tuple[FailureKind, ...] = tuple(k for k in get_args(FailureKind) if k != "client")
DEFAULT_RETRY_ON: frozenset[FailureKind] = frozenset(RETRYABLE_KINDS)

# Go-style durations as in OpenAI's x-ratelimit-reset-*: "1s", "6m0s", "12ms", "1h2m3.5s", "250us".
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|us|µs|ns|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def backoff_delay(attempt: int, base: float, cap: float, u: float) -> float:
    """Seconds to wait before retry number `attempt` (0 = first retry): `min(cap, base*2**attempt)` scaled by
    a jitter factor in [0.5, 1) from the uniform draw `u` in [0, 1)."""
    if attempt < 0:
        raise ValueError("attempt must be >= 0")
    # "Equal jitter": never less than half the exponential step, so retries stay spread but not instant.
    ceiling = min(cap, base * math.pow(2.0, min(attempt, 62)))
    return max(0.0, ceiling * (0.5 + 0.5 * min(max(u, 0.0), 1.0)))


def parse_duration(value: str) -> float | None:
    """Seconds in a Go/OpenAI duration string ("1s", "6m0s", "12ms"), or None when it is not one."""
    text = value.strip()
    if not text:
        return None
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    return total if pos == len(text) else None


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from `now` (unix time) given a Retry-After or x-ratelimit-reset-* value; None if absent
    or unparseable. Accepts delta seconds ("120", "1.5"), an HTTP-date, or a duration ("6m0s", "12ms")."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    duration = parse_duration(text)
    if duration is not None:
        return duration
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def classify_failure(kind: str, status: int | None = None) -> FailureKind:
    """Map an upstream failure (UpstreamError.kind: connect/timeout/status/protocol/stream, plus HTTP status)
    to a FailureKind."""
    if kind in ("connect", "timeout"):
        return kind  # type: ignore[return-value]
    if status is not None:
        if status == 429:
            return "rate_limited"
        if status in (401, 403):
            return "auth"
        if status == 408:
            return "timeout"
        if status >= 500:
            return "server"
        if 400 <= status < 500:
            return "client"
    return "protocol"


def is_deployment_fault(kind: FailureKind) -> bool:
    """Whether a failure should count against the deployment's circuit breaker.

    Client errors are the caller's fault. A 429 is load, not breakage: block the deployment for its
    Retry-After instead (BreakerBoard.record_failure(..., counts=False)). Auth failures do count: a wrong key
    is a broken deployment until someone fixes the config.
    """
    return kind not in ("client", "rate_limited")


def parse_retry_on(text: str) -> frozenset[FailureKind]:
    """The failure kinds of a comma list ("server,timeout"; "none" for none); ValueError names a bad entry."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if names == ["none"]:
        return frozenset()
    if not names:
        raise ValueError("is empty")
    kinds: set[FailureKind] = set()
    for name in names:
        if name == "client":
            raise ValueError("'client' (the caller's own bad request) is never retried")
        if name not in RETRYABLE_KINDS:
            raise ValueError(f"unknown failure kind {name!r}")
        kinds.add(name)
    return frozenset(kinds)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How attempts are paced and which failures are worth another one; how many attempts a call gets is
    ExecutorSettings.max_attempts (ROUTER_MAX_ATTEMPTS), its one source."""

    base: float = 0.05
    cap: float = 2.0
    retry_on: frozenset[FailureKind] = DEFAULT_RETRY_ON

    def __post_init__(self) -> None:
        if not (math.isfinite(self.base) and math.isfinite(self.cap)) or self.base < 0 or self.cap < 0:
            raise ValueError("RetryPolicy.base and cap must be finite and >= 0")
        if not self.retry_on <= frozenset(RETRYABLE_KINDS):
            raise ValueError(f"RetryPolicy.retry_on must be a subset of {', '.join(RETRYABLE_KINDS)}")

    def retryable(self, kind: FailureKind) -> bool:
        """Whether this kind of failure may be retried (on this or another deployment)."""
        return kind in self.retry_on

    def delay(self, attempts_made: int, u: float) -> float:
        """Seconds to wait before the next attempt after `attempts_made` (>= 1) failed attempts."""
        return backoff_delay(max(attempts_made - 1, 0), self.base, self.cap, u)
