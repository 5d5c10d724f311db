"""The last minutes of finished calls, for the operator's dashboard: rates, success and error rates, latency and
TTFT percentiles, cost and tokens per model, deployment and provider, errors grouped by kind, the last calls.

Fed from the EventHub's `call_completed` events by one timer task (`fed_by`), so the request path only does one
non-blocking publish; the figures are computed when the dashboard asks, not per call, in a worker thread
(`figures_now`) so the event loop keeps serving calls meanwhile. The window is the last 10 minutes or the last
MAX_CALLS calls, whichever is shorter; rates are over the time the kept calls span.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from gateway.telemetry.events import EventHub

log = logging.getLogger("gateway.dashboard")

WINDOW_S = 600.0  # what the dashboard's charts span
BUCKET_S = 5.0  # one point of a chart
MAX_CALLS = 5_000  # bounded memory and snapshot time whatever the rate: the oldest calls go first
CACHE_S = 1.0  # several open dashboards share one computation
LAST_CALLS = 50
_ERROR_KINDS = {
    400: "bad_request",
    401: "auth",
    403: "auth",
    404: "not_found",
    408: "timeout",
    413: "too_large",
    422: "bad_request",
    429: "rate_limited",
    499: "client_closed",
    500: "gateway_error",
    502: "upstream_error",
    503: "unavailable",
    504: "timeout",
}


def error_kind(status: int) -> str:
    """The group a failed call's error falls in, from its status alone (no message: it may name a host)."""
    if status == 200:
        return ""
    return _ERROR_KINDS.get(status, f"http_{status}")


@dataclass(frozen=True, slots=True)
class FinishedCall:
    """What the dashboard keeps of one call."""

    at: float  # unix seconds it finished
    request_id: str
    model: str
    deployment: str
    provider: str
    status: int
    latency_ms: float
    ttft_ms: float | None
    tokens: int
    cost_usd: float

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> FinishedCall:
        ttft = event.get("ttft_ms")
        return cls(
            at=float(event.get("timestamp") or time.time()),
            request_id=str(event.get("request_id", "")),
            model=str(event.get("model", "")),
            deployment=str(event.get("provider", "")),
            provider=str(event.get("provider_type", "")),
            status=int(event.get("status", 0)),
            latency_ms=float(event.get("latency_ms", 0.0)),
            ttft_ms=None if ttft is None else float(ttft),
            tokens=int(event.get("tokens") or 0),
            cost_usd=float(event.get("cost_usd") or 0.0),
        )

    @property
    def ok(self) -> bool:
        return self.status == 200


def percentile(values: list[float], q: float) -> float | None:
    """The nearest-rank percentile `q` (0-100) of `values` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def summarise(calls: Iterable[FinishedCall], window_s: float) -> dict[str, Any]:
    """Counts, rates (per second over `window_s`), percentiles, cost and tokens of `calls`."""
    items = list(calls)
    ok = [c for c in items if c.ok]
    latencies = [c.latency_ms for c in ok]
    ttfts = [c.ttft_ms for c in ok if c.ttft_ms is not None]
    cost = sum(c.cost_usd for c in items)
    n = len(items)
    return {
        "calls": n,
        "errors": n - len(ok),
        "rate_per_s": round(n / window_s, 4) if window_s > 0 else 0.0,
        "success_rate": round(len(ok) / n, 4) if n else None,
        "error_rate": round((n - len(ok)) / n, 4) if n else None,
        "latency_p50_ms": _rounded(percentile(latencies, 50)),
        "latency_p95_ms": _rounded(percentile(latencies, 95)),
        "ttft_p50_ms": _rounded(percentile(ttfts, 50)),
        "ttft_p95_ms": _rounded(percentile(ttfts, 95)),
        "tokens": sum(c.tokens for c in items),
        "cost_usd": round(cost, 6),
        "cost_per_call_usd": round(cost / len(ok), 8) if ok else None,
        "cost_per_hour_usd": round(cost * 3600.0 / window_s, 6) if window_s > 0 else 0.0,
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


class RecentCalls:
    """A bounded window of finished calls; `snapshot()` gives the dashboard's figures."""

    def __init__(
        self, window_s: float = WINDOW_S, max_calls: int = MAX_CALLS, clock: Callable[[], float] = time.time
    ) -> None:
        self.window_s, self._clock = window_s, clock
        self._calls: deque[FinishedCall] = deque(maxlen=max_calls)
        self._cached: tuple[float, dict[str, Any]] | None = None

    def add(self, call: FinishedCall) -> None:
        self._calls.append(call)

    def _current(self, now: float) -> list[FinishedCall]:
        while self._calls and self._calls[0].at < now - self.window_s:
            self._calls.popleft()
        return list(self._calls)

    def snapshot(self, bucket_s: float = BUCKET_S) -> dict[str, Any]:
        """The figures now, computed here (see `figures`)."""
        now = self._clock()
        return figures(self._current(now), now, self.window_s, bucket_s)

    async def figures_now(self, bucket_s: float = BUCKET_S) -> dict[str, Any]:
        """The figures now, computed in a worker thread from a copy of the window; reused for CACHE_S."""
        now = self._clock()
        if self._cached is not None and now - self._cached[0] < CACHE_S:
            return self._cached[1]
        calls = self._current(now)  # copied on the loop: the feeder appends on the loop only
        result = await asyncio.to_thread(figures, calls, now, self.window_s, bucket_s)
        self._cached = (now, result)
        return result

    @contextlib.asynccontextmanager
    async def fed_by(self, events: EventHub, every_s: float = 0.5, queue_size: int = 8_192) -> AsyncIterator[None]:
        """While the block runs, the `call_completed` events of `events` are added here, drained every `every_s`
        (a timer, not a wake-up per call: the request path only appends to a queue)."""
        sub = events.subscribe("", sees_all=True, size=queue_size)

        def drain() -> None:
            while not sub.queue.empty():
                event = sub.queue.get_nowait()
                if event.get("type") != "call_completed":
                    continue
                try:
                    self.add(FinishedCall.from_event(event))
                except (TypeError, ValueError):  # one odd event must not stop the others
                    log.exception("dashboard: a call_completed event could not be read")

        async def feed() -> None:
            while True:
                drain()
                await asyncio.sleep(every_s)

        task = asyncio.create_task(feed(), name="dashboard-recent-calls")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            sub.close()


def figures(calls: list[FinishedCall], now: float, window_s: float, bucket_s: float = BUCKET_S) -> dict[str, Any]:
    """Totals and per-model, per-deployment and per-provider figures of `calls` (oldest first), a time series in
    `bucket_s` steps, errors by kind, and the last calls (newest first)."""
    # what a rate is over: the window, or the time since its oldest call (a gateway up for one minute must not
    # read a tenth of its real rate, nor one past MAX_CALLS a fraction)
    span = max(bucket_s, min(window_s, now - calls[0].at)) if calls else window_s
    errors: dict[str, int] = {}
    for call in calls:
        if not call.ok:
            kind = error_kind(call.status)
            errors[kind] = errors.get(kind, 0) + 1
    return {
        "window_s": window_s,
        "span_s": round(span, 1),
        "bucket_s": bucket_s,
        "now": now,
        "total": summarise(calls, span),
        "models": _grouped(calls, lambda c: c.model, span),
        "deployments": _grouped(calls, lambda c: f"{c.model}/{c.deployment}", span),
        "providers": _grouped(calls, lambda c: c.provider, span),
        "errors_by_kind": dict(sorted(errors.items(), key=lambda kv: -kv[1])),
        "series": _series(calls, now, window_s, bucket_s),
        "last_calls": [_row(c) for c in reversed(calls[-LAST_CALLS:])],
    }


def _grouped(calls: list[FinishedCall], key: Callable[[FinishedCall], str], span: float) -> dict[str, Any]:
    groups: dict[str, list[FinishedCall]] = {}
    for call in calls:
        groups.setdefault(key(call), []).append(call)
    return {name: summarise(group, span) for name, group in sorted(groups.items())}


def _series(calls: list[FinishedCall], now: float, window_s: float, bucket_s: float) -> dict[str, list[Any]]:
    """Per bucket (its start, unix seconds): calls per second, errors per second, p50/p95 latency and TTFT."""
    n = max(1, int(window_s // bucket_s))
    start = (now // bucket_s) * bucket_s - (n - 1) * bucket_s
    buckets: list[list[FinishedCall]] = [[] for _ in range(n)]
    for call in calls:
        index = int((call.at - start) // bucket_s)
        if 0 <= index < n:
            buckets[index].append(call)
    out: dict[str, list[Any]] = {
        "t": [start + i * bucket_s for i in range(n)],
        "rate": [],
        "error_rate": [],
        "latency_p50_ms": [],
        "latency_p95_ms": [],
        "ttft_p50_ms": [],
        "ttft_p95_ms": [],
    }
    for bucket in buckets:
        ok = [c.latency_ms for c in bucket if c.ok]
        ttft = [c.ttft_ms for c in bucket if c.ok and c.ttft_ms is not None]
        out["rate"].append(round(len(bucket) / bucket_s, 3))
        out["error_rate"].append(round(sum(1 for c in bucket if not c.ok) / bucket_s, 3))
        out["latency_p50_ms"].append(_rounded(percentile(ok, 50)))
        out["latency_p95_ms"].append(_rounded(percentile(ok, 95)))
        out["ttft_p50_ms"].append(_rounded(percentile(ttft, 50)))
        out["ttft_p95_ms"].append(_rounded(percentile(ttft, 95)))
    return out


def _row(call: FinishedCall) -> dict[str, Any]:
    return {
        "at": call.at,
        "request_id": call.request_id,
        "model": call.model,
        "deployment": call.deployment,
        "provider": call.provider,
        "status": call.status,
        "error_kind": error_kind(call.status),
        "latency_ms": round(call.latency_ms, 1),
        "ttft_ms": _rounded(call.ttft_ms),
        "tokens": call.tokens,
        "cost_usd": call.cost_usd,
    }
