"""Figures of one strategy's run of `make bench-routing`, and the table that compares them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Outcome:
    """One call as the client saw it."""

    burst: bool
    local: bool  # served by a local deployment (the chunks' `provider` is `local`)
    ttft: float | None  # seconds; None when the call failed
    cost: float
    ok: bool
    error: str = ""  # why it failed: an HTTP status, a stream error, a client exception


def quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summarize(outcomes: list[Outcome], prefix_hit_rate: float | None) -> dict[str, Any]:
    ok = [o for o in outcomes if o.ok]
    burst = [o.ttft for o in ok if o.burst and o.ttft is not None]
    steady = [o for o in ok if not o.burst]
    every = [o.ttft for o in ok if o.ttft is not None]
    return {
        "calls": len(outcomes),
        "errors": len(outcomes) - len(ok),
        "ttft_p50_s": quantile(every, 0.5),
        "ttft_p99_s": quantile(every, 0.99),
        "burst_ttft_p50_s": quantile(burst, 0.5),
        "burst_ttft_p99_s": quantile(burst, 0.99),
        "local_share": sum(o.local for o in ok) / len(ok) if ok else 0.0,
        "non_burst_local_share": sum(o.local for o in steady) / len(steady) if steady else 0.0,
        "cloud_cost_usd": round(sum(o.cost for o in ok if not o.local), 6),
        "prefix_cache_hit_rate": prefix_hit_rate,
        "error_kinds": dict(Counter(o.error for o in outcomes if not o.ok)),
    }


def table(results: dict[str, dict[str, Any]]) -> str:
    head = (
        "| strategy | TTFT p50 / p99 (s) | burst TTFT p50 / p99 (s) | local share (non-burst) | cloud cost (USD) "
        "| errors | prefix-cache hit rate |"
    )
    lines = [head, "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(
            f"| {name} | {_s(r['ttft_p50_s'])} / {_s(r['ttft_p99_s'])} | {_s(r['burst_ttft_p50_s'])} / "
            f"{_s(r['burst_ttft_p99_s'])} | {r['local_share']:.1%} ({r['non_burst_local_share']:.1%}) | "
            f"{r['cloud_cost_usd']:.4f} | {r['errors']} | "
            f"{'-' if r['prefix_cache_hit_rate'] is None else format(r['prefix_cache_hit_rate'], '.1%')} |"
        )
    return "\n".join(lines)


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
