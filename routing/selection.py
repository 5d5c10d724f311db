"""Pure selection: a weighted draw for the first attempt, then the rest by weight for fallback, reordered by a
request's own preferences (region, provider, cost or latency first)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from routing.config.schema import DeploymentConfig
from routing.price import unit_price

T = TypeVar("T")


def pick_weighted(weights: Sequence[float], u: float) -> int:
    """Index chosen by weight for a uniform draw u in [0, 1); -1 when no weight is positive."""
    total = sum(w for w in weights if w > 0)
    if total <= 0:
        return -1
    target = u * total
    running = 0.0
    last = -1
    for i, w in enumerate(weights):
        if w <= 0:
            continue
        running += w
        last = i
        if target < running:
            return i
    return last


def attempt_order(items: Sequence[T], weights: Sequence[float], u: float) -> list[T]:
    """The primary by weighted draw, then the others by descending weight (zero-weight ones last)."""
    first = pick_weighted(weights, u)
    if first < 0:
        return list(items)
    rest = sorted((i for i in range(len(items)) if i != first), key=lambda i: -weights[i])
    return [items[first], *(items[i] for i in rest)]


@dataclass(frozen=True, slots=True)
class Preferences:
    """Per-request routing inputs (Beacon's API): region, provider, cost or latency first."""

    region: str = ""
    strict_region: bool = False
    provider: str = ""
    cost_priority: bool | None = None


def preferred_order(
    order: list[DeploymentConfig], prefs: Preferences, latency: Callable[[DeploymentConfig], float | None]
) -> list[DeploymentConfig]:
    """Stable reorder: preferred provider first, then preferred region, then cost or latency as asked."""

    def key(dep: DeploymentConfig) -> tuple[Any, ...]:
        observed = latency(dep)
        lat = float("inf") if observed is None else observed
        price = unit_price(dep)
        speed = (price, lat) if prefs.cost_priority else (lat, price)
        return (
            bool(prefs.provider) and prefs.provider not in (dep.provider, dep.kind, dep.name),
            bool(prefs.region) and dep.region != prefs.region,
            *(speed if prefs.cost_priority is not None else ()),
        )

    return sorted(order, key=key)
