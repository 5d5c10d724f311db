"""App-wide objects, built in the lifespan and held on app.state: config, routing, executor, call log."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from redis.asyncio import Redis

from gateway.calllog.responses import ResponseStore
from gateway.calllog.writer import CallLog, build_call_log
from gateway.settings import Settings
from gateway.telemetry.deployments import DeploymentState
from gateway.telemetry.events import EventHub
from gateway.telemetry.ledger import Bookkeeper, ClientLimits
from gateway.telemetry.metrics import Metrics, mark_worker_dead
from routing.config.load import load_config
from routing.config.schema import GatewayConfig
from routing.executor import Executor, ExecutorSettings
from routing.limits.admission import Guards
from routing.limits.breaker import BreakerBoard
from routing.limits.ratelimit import InProcessRateLimiter, RateLimiter
from routing.limits.ratelimit_redis import RedisRateLimiter
from routing.limits.streams import LocalStreamCap, RedisStreamCap, StreamCap
from routing.load_board import LoadBoard
from routing.manager import RoutingManager
from routing.strategies import Observed
from routing.upstream.transport import HttpTransport

log = logging.getLogger("gateway")
_NO_OBSERVATION = Observed()


@dataclass(slots=True)
class Services:
    """Everything a request handler needs, owned by the lifespan."""

    settings: Settings
    manager: RoutingManager
    transport: HttpTransport
    executor: Executor
    call_log: CallLog
    stream_cap: StreamCap
    metrics: Metrics
    deployments: DeploymentState
    limiter: RateLimiter
    events: EventHub
    books: Bookkeeper
    board: LoadBoard
    started_at: float = field(default_factory=time.time)
    responses: ResponseStore | None = None  # /v1/responses' stored responses

    @property
    def config(self) -> GatewayConfig:
        return self.manager.config

    def routing_snapshot(self) -> dict[str, Any]:
        """The routing table as /routing shows it, with each deployment's health, circuit and load."""
        snapshot = self.manager.snapshot()
        by_name = {(d.model_id, d.name): d for d in self.manager.deployments()}
        for model_id, info in snapshot["models"].items():
            for row in info["deployments"]:
                dep = by_name.get((model_id, row["deployment"]))
                if dep is not None and dep.enabled:
                    row.update(self.deployments.describe(dep))
                    if info["kind"] == "local_first" and row["side"] == "local":
                        row["load"] = self.board.describe(dep)
            if info["kind"] == "local_first":
                info.update(self.board.model_state(model_id))
        snapshot["local_first"] = self.board.budget_state()
        return snapshot


def load_gateway_config(settings: Settings) -> GatewayConfig:
    """Load and validate the config files (raises ConfigError with file, field and fix)."""
    return load_config(settings.models_path, settings.routing_path, settings.env)


def report_config(config: GatewayConfig) -> None:
    for warning in config.warnings:
        log.warning("config: %s", warning)
    served = [m.id for m in config.models if m.enabled_deployments]
    log.info("serving %d model(s): %s", len(served), ", ".join(served) or "none")


def build_limiter(settings: Settings, redis: Redis | None) -> RateLimiter:
    """Redis when REDIS_URL is set (shared by every worker and replica), else in this process.

    A Redis outage fails open (admits, with a warning): the limits protect upstream quotas, and refusing every
    call because the counter store is down would be the worse outage.
    """
    if redis is None:
        return InProcessRateLimiter()
    return RedisRateLimiter(redis, prefix=settings.rate_limit_prefix, fail_open=True)


def build_stream_cap(settings: Settings, redis: Redis | None) -> StreamCap:
    """Shared through Redis when REDIS_URL is set and a limit is configured, else this worker's own count."""
    limit = settings.max_streams_per_client
    if redis is None or not limit:
        return LocalStreamCap(limit)
    # a stream's slot is leased for the longest a call may run, so a dead worker's slots come back by then
    return RedisStreamCap(limit, redis, settings.rate_limit_prefix, settings.deadline + 60.0)


@asynccontextmanager
async def running_services(settings: Settings) -> AsyncIterator[Services]:
    """Build, start and finally stop every app-wide object."""
    config = load_gateway_config(settings)
    report_config(config)
    manager = RoutingManager(config)
    transport = HttpTransport(pool_size=settings.pool_size, proxies=settings.proxies)
    await transport.start()
    call_log = build_call_log(settings.storage)
    metrics = Metrics(observe_calls=settings.metrics_enabled)
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None  # one pool for limits and streams
    limiter = build_limiter(settings, redis)
    breakers = BreakerBoard(replace(settings.breaker, retry_after_cap=settings.retry_after_cap))
    guards = Guards(breakers, limiter)
    stream_cap = build_stream_cap(settings, redis)
    events = EventHub()
    state = DeploymentState(manager, transport, guards, metrics, events)
    guards.on_state = state.circuit_changed
    responses = ResponseStore(settings.storage)
    board = LoadBoard(
        config.routing,
        state.scrape_state,
        guards,
        on_affinity=metrics.routing.affinity_decided,
        on_budget=metrics.routing.budget,
    )
    try:
        await call_log.start()
        await state.start()
        executor = Executor(
            transport,
            ExecutorSettings(
                max_attempts=settings.max_attempts,
                deadline=settings.deadline,
                queue_timeout=settings.queue_timeout,
                retry=settings.retry,
            ),
            guards=guards,
            on_ttft=manager.observe_ttft,
            observed=lambda dep: manager.observed().get(dep.key, _NO_OBSERVATION),
            on_throughput=manager.observe_throughput,
            board=board,
        )
        yield Services(
            settings=settings,
            manager=manager,
            transport=transport,
            executor=executor,
            call_log=call_log,
            stream_cap=stream_cap,
            metrics=metrics,
            deployments=state,
            limiter=limiter,
            events=events,
            books=Bookkeeper(
                metrics=metrics,
                events=events,
                call_log=call_log,
                stream_cap=stream_cap,
                limiter=limiter,
                client_limits=ClientLimits(settings.client_rpm, settings.client_tpm),
                log_content=settings.log_content,
                max_text=settings.max_logged_text,
            ),
            responses=responses,
            board=board,
        )
    finally:
        await state.close()
        await responses.close()
        await call_log.close()
        await limiter.close()
        await stream_cap.close()
        if redis is not None:
            await redis.aclose()
        await transport.close()
        if metrics.multiprocess:
            mark_worker_dead(os.getpid())
