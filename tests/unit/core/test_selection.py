from __future__ import annotations

import random

from routing.selection import attempt_order, pick_weighted


def test_pick_follows_cumulative_weights() -> None:
    weights = [0.6, 0.4]
    assert pick_weighted(weights, 0.0) == 0
    assert pick_weighted(weights, 0.599) == 0
    assert pick_weighted(weights, 0.6) == 1
    assert pick_weighted(weights, 0.999999) == 1


def test_zero_weights_are_never_picked_first() -> None:
    assert pick_weighted([0.0, 1.0, 0.0], 0.0) == 1
    assert pick_weighted([0.0, 1.0, 0.0], 0.99) == 1
    assert pick_weighted([0.0, 0.0], 0.5) == -1


def test_attempt_order_primary_then_by_weight() -> None:
    items = ["a", "b", "c"]
    assert attempt_order(items, [0.2, 0.5, 0.3], 0.1) == ["a", "b", "c"]
    assert attempt_order(items, [0.2, 0.5, 0.3], 0.5) == ["b", "c", "a"]
    assert attempt_order(items, [0.0, 0.0, 1.0], 0.3) == ["c", "a", "b"]


def test_statistical_split_with_fixed_seed() -> None:
    rng = random.Random(1234)
    counts = [0, 0]
    for _ in range(20_000):
        counts[pick_weighted([0.6, 0.4], rng.random())] += 1
    assert abs(counts[0] / 20_000 - 0.6) < 0.015
