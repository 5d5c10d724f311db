"""The dashboard's window of finished calls: pure, clock-injected."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.telemetry.events import EventHub
from gateway.telemetry.recent import FinishedCall, RecentCalls, error_kind, percentile


def call(at: float, status: int = 200, latency: float = 100.0, **kw: Any) -> FinishedCall:
    fields: dict[str, Any] = {
        "request_id": f"r{at}",
        "model": "m",
        "deployment": "a",
        "provider": "local",
        "ttft_ms": latency / 2,
        "tokens": 10,
        "cost_usd": 0.001,
        **kw,
    }
    return FinishedCall(at=at, status=status, latency_ms=latency, **fields)


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 100)) == (50.0, 95.0, 100.0)
    assert percentile([], 50) is None and percentile([7.0], 95) == 7.0


def test_errors_are_grouped_by_status_never_by_message() -> None:
    assert [error_kind(s) for s in (200, 429, 502, 503, 504, 499, 418)] == [
        "",
        "rate_limited",
        "upstream_error",
        "unavailable",
        "timeout",
        "client_closed",
        "http_418",
    ]


def test_snapshot_counts_rates_percentiles_and_cost_over_the_window() -> None:
    now = [1000.0]
    recent = RecentCalls(window_s=60.0, clock=lambda: now[0])
    recent.add(call(900.0))  # older than the window: dropped
    for i in range(10):
        recent.add(call(950.0 + i, latency=100.0 + i * 10))
    recent.add(call(960.0, status=502, deployment="b", provider="openai"))
    recent.add(call(961.0, status=429, deployment="b", provider="openai"))
    snap = recent.snapshot(bucket_s=10.0)
    total = snap["total"]
    assert total["calls"] == 12 and total["errors"] == 2
    assert total["success_rate"] == round(10 / 12, 4) and total["error_rate"] == round(2 / 12, 4)
    assert total["latency_p50_ms"] == 140.0 and total["latency_p95_ms"] == 190.0  # failed calls have no latency here
    assert total["rate_per_s"] == round(12 / 50.0, 4)  # since the oldest call kept, 50 s ago
    assert snap["deployments"]["m/a"]["calls"] == 10 and snap["deployments"]["m/b"]["errors"] == 2
    assert snap["providers"]["local"]["cost_per_call_usd"] == 0.001
    assert snap["providers"]["openai"]["cost_per_call_usd"] is None  # no successful call to divide by
    assert snap["errors_by_kind"] == {"upstream_error": 1, "rate_limited": 1}
    assert snap["last_calls"][0]["request_id"] == "r961.0" and len(snap["last_calls"]) == 12
    series = snap["series"]
    assert len(series["t"]) == 6 and series["t"][-1] == 1000.0
    assert sum(r * 10 for r in series["rate"]) == 12 and series["error_rate"][series["t"].index(960.0)] == 0.2


def test_the_window_is_bounded_whatever_the_rate() -> None:
    recent = RecentCalls(window_s=600.0, max_calls=100, clock=lambda: 10.0)
    for i in range(1000):
        recent.add(call(5.0 + i / 1000))
    assert recent.snapshot()["total"]["calls"] == 100


async def test_fed_by_takes_call_events_from_the_hub_and_ignores_the_rest() -> None:
    hub = EventHub()
    recent = RecentCalls(clock=lambda: 2000.0)
    async with recent.fed_by(hub, every_s=0.01):
        hub.publish({"type": "provider_health", "provider": "a"})
        event = {"type": "call_completed", "request_id": "x", "model": "m", "provider": "a", "provider_type": "local"}
        hub.publish({**event, "status": 200, "latency_ms": 5.0, "ttft_ms": None, "timestamp": 1999.0}, owner="k")
        for _ in range(100):
            if recent.snapshot()["total"]["calls"]:
                break
            await asyncio.sleep(0.01)
    assert recent.snapshot()["last_calls"][0]["request_id"] == "x"
    assert hub.subscribers == 0


async def test_figures_are_computed_off_the_loop_and_shared_for_a_second() -> None:
    now = [100.0]
    recent = RecentCalls(clock=lambda: now[0])
    recent.add(call(99.0))
    first = await recent.figures_now()
    recent.add(call(99.5))
    assert await recent.figures_now() is first, "within CACHE_S the same figures serve every dashboard"
    now[0] = 101.5
    assert (await recent.figures_now())["total"]["calls"] == 2
