"""Pure selection: a weighted draw for the first attempt, then the rest by weight for fallback."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

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
