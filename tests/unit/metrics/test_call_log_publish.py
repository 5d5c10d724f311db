"""The lifespan's call-log publisher: gauges follow the writer's counters on a timer and survive a failed read."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest

from gateway.app import publishing_call_log
from gateway.telemetry.metrics import Metrics
from routing.config.schema import LocalFirstConfig, RoutingConfig
from routing.limits.admission import Guards
from routing.limits.breaker import BreakerBoard
from routing.limits.ratelimit import InProcessRateLimiter
from routing.load_board import LoadBoard


class FakeCallLog:
    def __init__(self) -> None:
        self.values = {"queue_depth": 0, "rows_written": 0, "rows_lost": 0}
        self.fail_next = False

    def counters(self) -> dict[str, int]:
        if self.fail_next:
            self.fail_next = False
            raise OSError("disk full")
        return dict(self.values)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def budget_board(metrics: Metrics, clock: Clock) -> tuple[LoadBoard, Clock]:
    routing = RoutingConfig(strategy="local_first", local_first=LocalFirstConfig(spill_budget_usd_per_hour=2.0))
    guards = Guards(BreakerBoard(), InProcessRateLimiter())
    return LoadBoard(routing, lambda key: None, guards, clock=clock, on_budget=metrics.routing.budget), clock


def gauge(metrics: Metrics, name: str) -> float:
    return next(s.value for f in metrics._registry.collect() for s in f.samples if s.name == name)


def call_log_summary(metrics: Metrics) -> dict[str, Any]:
    summary: dict[str, Any] = metrics.summary()["call_log"]
    return summary


def test_gauges_follow_the_writer_without_a_scrape(caplog: pytest.LogCaptureFixture) -> None:
    metrics, call_log = Metrics(), FakeCallLog()
    services: Any = SimpleNamespace(metrics=metrics, call_log=call_log, board=budget_board(metrics, Clock())[0])

    async def run() -> None:
        async with publishing_call_log(services, interval_s=0.01):
            call_log.values.update(queue_depth=3, rows_written=7)
            await asyncio.sleep(0.1)
            assert call_log_summary(metrics)["queue_depth"] == 3
            assert call_log_summary(metrics)["rows_written"] == 7
            call_log.fail_next = True  # one failed read is logged; the timer keeps going
            call_log.values.update(queue_depth=0, rows_written=9)
            await asyncio.sleep(0.1)
            assert call_log_summary(metrics)["rows_written"] == 9
            call_log.values.update(rows_written=10, rows_lost=1)
        # the last values are published when the block ends, not left a tick behind
        assert call_log_summary(metrics)["rows_written"] == 10
        assert call_log_summary(metrics)["rows_lost"] == 1
        assert asyncio.all_tasks() == {asyncio.current_task()}

    with caplog.at_level(logging.ERROR, logger="gateway"):
        asyncio.run(run())
    assert "publishing the call-log gauges failed" in caplog.text


def test_the_spill_budget_gauge_empties_with_its_window_though_no_call_spills() -> None:
    """An exhausted budget stops spilling, so no charge would ever lower the gauge: the timer must."""
    metrics = Metrics()
    board, clock = budget_board(metrics, Clock())
    call_log = FakeCallLog()
    call_log.values["queue_capacity"] = 10_000
    services: Any = SimpleNamespace(metrics=metrics, call_log=call_log, board=board)

    async def run() -> None:
        async with publishing_call_log(services, interval_s=0.01):
            board.charge(3.0)
            assert gauge(metrics, "gateway_spill_budget_used_ratio") == 1.5
            clock.now += 3601  # the hour's window has emptied
            await asyncio.sleep(0.05)
            assert gauge(metrics, "gateway_spill_budget_used_ratio") == 0.0
        assert gauge(metrics, "gateway_call_log_queue_capacity") == 10_000

    asyncio.run(run())
