"""Requests-per-minute and tokens-per-minute limits for deployments, models and clients.

Window: a sliding 60 s window made of 60 one-second buckets. A charge made at time t counts until
floor(t) + 60, so "rpm=10" admits exactly 10 requests in any such window and the 11th is refused with the
exact wait until enough charges leave the window. The same pure functions serve the in-process and Redis
back ends, so both admit exactly the same sequences.

Tokens are reserved from an estimate before the call (`reserve`), and the window is corrected by
actual - estimate after it (`settle`), so the limit is neither exceeded nor wasted. `release` (the call failed
before the upstream used any tokens) is `settle(reservation, 0)`: the tokens go back, but the request still
counts toward rpm — the attempt was made, and refunding it would let a failing client or a retry loop
bypass rpm. A single estimate larger than a tpm limit is charged as the whole limit (so it is admitted
once that window is empty instead of never) and then settled with its real usage.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

WINDOW_SECONDS = 60
"""Length of the sliding window; buckets are one second wide."""


@dataclass(frozen=True, slots=True)
class Limit:
    """A limit on one scope: `dep:<model/deployment>`, `model:<id>`, `client:<name>`. 0 means unlimited."""

    scope: str
    rpm: int = 0
    tpm: int = 0

    def __post_init__(self) -> None:
        if self.rpm < 0 or self.tpm < 0:
            raise ValueError(f"Limit {self.scope}: rpm and tpm must be >= 0")

    @property
    def active(self) -> bool:
        return self.rpm > 0 or self.tpm > 0

    def cost(self, tokens: int) -> int:
        """Tokens this limit is charged for an estimate (capped at tpm, see module docstring)."""
        return min(max(tokens, 0), self.tpm) if self.tpm else 0


def deployment_limit(key: str, rpm: int, tpm: int) -> Limit:
    """Limit of one deployment, by its key `model/deployment`."""
    return Limit(f"dep:{key}", rpm, tpm)


def model_limit(model_id: str, rpm: int, tpm: int) -> Limit:
    """Limit of a model, by its canonical id (resolve aliases first, so they cannot bypass it)."""
    return Limit(f"model:{model_id}", rpm, tpm)


def client_limit(name: str, rpm: int, tpm: int) -> Limit:
    """Limit of a client: an API key's name (never the secret) or a client IP."""
    return Limit(f"client:{name}", rpm, tpm)


@dataclass(frozen=True, slots=True)
class LimitState:
    """Usage of one limit at one time, for x-ratelimit-* headers and display. Resets are in seconds."""

    scope: str
    limit_requests: int
    remaining_requests: int
    reset_requests: float
    limit_tokens: int
    remaining_tokens: int
    reset_tokens: float


@dataclass(frozen=True, slots=True)
class Reservation:
    """Admitted: what was charged, to settle or release exactly once after the call."""

    limits: tuple[Limit, ...]
    tokens: int
    charged: tuple[int, ...]
    bucket: int
    at: float
    states: tuple[LimitState, ...]

    def headers(self) -> dict[str, str]:
        return ratelimit_headers(self.states)


@dataclass(frozen=True, slots=True)
class Denial:
    """Refused: the first limit that refused, what it ran out of, and the wait until every limit fits."""

    scope: str
    exhausted: Literal["requests", "tokens"]
    retry_after: float
    states: tuple[LimitState, ...]

    def headers(self) -> dict[str, str]:
        return {**ratelimit_headers(self.states), "retry-after": str(max(1, math.ceil(self.retry_after)))}


class RateLimiter(Protocol):
    """Atomic all-or-nothing reservations over several limits."""

    async def reserve(self, limits: Sequence[Limit], tokens: int, now: float | None = None) -> Reservation | Denial:
        """Charge one request and `tokens` to every limit, or to none and say why."""
        ...

    async def settle(self, reservation: Reservation, actual_tokens: int, now: float | None = None) -> None:
        """Correct the token charge by actual - estimate."""
        ...

    async def release(self, reservation: Reservation, now: float | None = None) -> None:
        """Give the tokens back (the request still counts toward rpm)."""
        ...

    async def peek(self, limits: Sequence[Limit], now: float | None = None) -> list[LimitState]:
        """Current state of each limit, charging nothing."""
        ...

    async def close(self) -> None: ...


Buckets = Mapping[int, int]


def oldest_bucket(now: float) -> int:
    """The oldest one-second bucket still inside the window at `now`."""
    return math.floor(now) - WINDOW_SECONDS + 1


def window_used(buckets: Buckets, now: float) -> int:
    """Sum of the charges still inside the window."""
    oldest = oldest_bucket(now)
    return sum(v for b, v in buckets.items() if b >= oldest)


def wait_until_fits(buckets: Buckets, now: float, limit: int, cost: int) -> float:
    """Seconds until `cost` more fits under `limit` if nothing else is charged (0 when it fits now)."""
    oldest = oldest_bucket(now)
    excess = sum(v for b, v in buckets.items() if b >= oldest) + cost - limit
    if excess <= 0:  # what every admitted call sees: no sort of the window's (up to 60) buckets
        return 0.0
    for b, v in sorted((b, v) for b, v in buckets.items() if b >= oldest):
        excess -= v
        if excess <= 0:
            return max(0.0, b + WINDOW_SECONDS - now)
    return float(WINDOW_SECONDS)


def reset_after(buckets: Buckets, now: float) -> float:
    """Seconds until every charge in the window has expired (OpenAI's "resets to its initial state")."""
    oldest = oldest_bucket(now)
    live = [b for b, v in buckets.items() if b >= oldest and v > 0]
    return max(0.0, max(live) + WINDOW_SECONDS - now) if live else 0.0


def limit_state(limit: Limit, requests: Buckets, tokens: Buckets, now: float) -> LimitState:
    """State of one limit from its request and token buckets."""
    return LimitState(
        scope=limit.scope,
        limit_requests=limit.rpm,
        remaining_requests=max(0, limit.rpm - window_used(requests, now)) if limit.rpm else 0,
        reset_requests=reset_after(requests, now) if limit.rpm else 0.0,
        limit_tokens=limit.tpm,
        remaining_tokens=max(0, limit.tpm - window_used(tokens, now)) if limit.tpm else 0,
        reset_tokens=reset_after(tokens, now) if limit.tpm else 0.0,
    )


def check_limits(
    limits: Sequence[Limit], tokens: int, now: float, windows: Sequence[tuple[Buckets, Buckets]]
) -> Denial | None:
    """The denial for charging one request and `tokens` to every limit (windows[i] = its buckets), or None."""
    refused: tuple[str, Literal["requests", "tokens"]] | None = None
    wait = 0.0
    for limit, (requests, token_buckets) in zip(limits, windows, strict=True):
        checks: tuple[tuple[Literal["requests", "tokens"], int, Buckets, int], ...] = (
            ("requests", limit.rpm, requests, 1),
            ("tokens", limit.tpm, token_buckets, limit.cost(tokens)),
        )
        for kind, cap, buckets, cost in checks:
            if cap:
                needed = wait_until_fits(buckets, now, cap, cost)
                if needed > 0:
                    refused = refused or (limit.scope, kind)
                    wait = max(wait, needed)
    if refused is None:
        return None
    states = tuple(limit_state(lim, r, t, now) for lim, (r, t) in zip(limits, windows, strict=True))
    return Denial(refused[0], refused[1], wait, states)


def charge(
    active: tuple[Limit, ...], tokens: int, now: float, windows: Sequence[tuple[dict[int, int], dict[int, int]]]
) -> Reservation:
    """Count one request and the token estimate into each limit's current bucket; the admitted reservation."""
    bucket = math.floor(now)
    charged = tuple(limit.cost(tokens) for limit in active)
    for limit, cost, (requests, token_buckets) in zip(active, charged, windows, strict=True):
        if limit.rpm:
            requests[bucket] = requests.get(bucket, 0) + 1
        if limit.tpm:
            token_buckets[bucket] = token_buckets.get(bucket, 0) + cost
    states = tuple(limit_state(lim, r, t, now) for lim, (r, t) in zip(active, windows, strict=True))
    return Reservation(active, max(tokens, 0), charged, bucket, now, states)


def active_limits(limits: Iterable[Limit]) -> tuple[Limit, ...]:
    """The limits that limit something; a scope given twice is a caller bug."""
    out = tuple(limit for limit in limits if limit.active)
    if len({limit.scope for limit in out}) != len(out):
        raise ValueError("rate limits: the same scope appears twice in one reservation")
    return out


def format_reset(seconds: float) -> str:
    """OpenAI/Go-style duration for x-ratelimit-reset-*: "250ms", "1s", "1.5s", "6m0s", "1h2m3s"."""
    ms = max(0, math.ceil(seconds * 1000 - 1e-6))
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def ratelimit_headers(states: Iterable[LimitState]) -> dict[str, str]:
    """x-ratelimit-{limit,remaining,reset}-{requests,tokens} for the tightest request and token limits."""
    states = list(states)
    headers: dict[str, str] = {}
    requests = [s for s in states if s.limit_requests]
    if requests:
        tight = min(requests, key=lambda s: (s.remaining_requests / s.limit_requests, -s.reset_requests))
        headers["x-ratelimit-limit-requests"] = str(tight.limit_requests)
        headers["x-ratelimit-remaining-requests"] = str(tight.remaining_requests)
        headers["x-ratelimit-reset-requests"] = format_reset(tight.reset_requests)
    tokens = [s for s in states if s.limit_tokens]
    if tokens:
        tight = min(tokens, key=lambda s: (s.remaining_tokens / s.limit_tokens, -s.reset_tokens))
        headers["x-ratelimit-limit-tokens"] = str(tight.limit_tokens)
        headers["x-ratelimit-remaining-tokens"] = str(tight.remaining_tokens)
        headers["x-ratelimit-reset-tokens"] = format_reset(tight.reset_tokens)
    return headers


def _text_chars(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        total = 0
        for part in content:
            if isinstance(part, Mapping):
                if isinstance(part.get("text"), str):
                    total += len(part["text"])
                elif part.get("type") in ("image_url", "input_image", "image"):
                    total += 85 * 4  # OpenAI's low-detail image cost, as a floor
            elif isinstance(part, str):
                total += len(part)
        return total
    return 0


def prompt_messages(payload: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """What a request gives the model to read, as chat messages for estimate_tokens: its `messages`, or a legacy
    completion's `prompt` (a string, a batch of them, or token ids, counted at 4 characters an id)."""
    messages = payload.get("messages")
    if isinstance(messages, list):
        return [m for m in messages if isinstance(m, Mapping)]
    prompt = payload.get("prompt")
    items = prompt if isinstance(prompt, list) and not all(isinstance(p, int) for p in prompt) else [prompt]
    found: list[Mapping[str, Any]] = []
    for item in items:
        if isinstance(item, str):
            found.append({"content": item})
        elif isinstance(item, list):
            found.append({"content": "    " * len(item)})
    return found


def estimate_tokens(messages: Iterable[Mapping[str, Any]], max_tokens: int | None, default_max: int = 1024) -> int:
    """Rough upper estimate of a call's tokens: prompt characters / 4 (+4 per message) plus the output cap."""
    chars, count = 0, 0
    for message in messages:
        count += 1
        chars += _text_chars(message.get("content"))
        for call in message.get("tool_calls") or ():
            if isinstance(call, Mapping) and isinstance(call.get("function"), Mapping):
                chars += len(str(call["function"].get("arguments", ""))) + len(str(call["function"].get("name", "")))
    output = max_tokens if max_tokens is not None and max_tokens > 0 else default_max
    return math.ceil(chars / 4) + 4 * count + output


class InProcessRateLimiter:
    """Limits held in this process: exact for one worker. With several workers use RedisRateLimiter, or the
    limits multiply by the number of workers. Every operation is synchronous inside, so it is atomic on
    one event loop (not thread-safe across loops)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._windows: dict[str, tuple[dict[int, int], dict[int, int]]] = {}
        self._swept = -math.inf

    def _window(self, scope: str, now: float) -> tuple[dict[int, int], dict[int, int]]:
        window = self._windows.get(scope)
        if window is None:
            window = self._windows[scope] = ({}, {})
        oldest = oldest_bucket(now)
        for buckets in window:
            for b in [b for b in buckets if b < oldest]:
                del buckets[b]
        return window

    def _sweep(self, now: float) -> None:
        # Client scopes (one per IP) come and go: drop idle ones once per window so memory stays bounded.
        if now - self._swept < WINDOW_SECONDS:
            return
        self._swept = now
        oldest = oldest_bucket(now)
        for scope in [s for s, (r, t) in self._windows.items() if all(b < oldest for b in (*r, *t))]:
            del self._windows[scope]

    async def reserve(self, limits: Sequence[Limit], tokens: int, now: float | None = None) -> Reservation | Denial:
        now = self._clock() if now is None else now
        self._sweep(now)
        active = active_limits(limits)
        windows = [self._window(limit.scope, now) for limit in active]
        denial = check_limits(active, tokens, now, windows)
        if denial is not None:
            return denial
        return charge(active, tokens, now, windows)

    async def settle(self, reservation: Reservation, actual_tokens: int, now: float | None = None) -> None:
        now = self._clock() if now is None else now
        for limit, cost in zip(reservation.limits, reservation.charged, strict=True):
            if not limit.tpm:
                continue
            delta = max(actual_tokens, 0) - cost
            target = settle_bucket(reservation.bucket, delta, now)
            if target is not None:
                _, token_buckets = self._window(limit.scope, now)
                token_buckets[target] = token_buckets.get(target, 0) + delta

    async def release(self, reservation: Reservation, now: float | None = None) -> None:
        await self.settle(reservation, 0, now)

    async def peek(self, limits: Sequence[Limit], now: float | None = None) -> list[LimitState]:
        now = self._clock() if now is None else now
        return [limit_state(limit, *self._window(limit.scope, now), now) for limit in limits]

    async def close(self) -> None:
        self._windows.clear()


def settle_bucket(bucket: int, delta: int, now: float) -> int | None:
    """Where a settlement's delta goes: the reservation's bucket while it is in the window; once it has left,
    extra usage is charged now (it was really consumed) and a refund is dropped (nothing left to refund)."""
    if delta == 0:
        return None
    if bucket >= oldest_bucket(now):
        return bucket
    return math.floor(now) if delta > 0 else None
