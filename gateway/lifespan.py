"""App-wide objects, built in the lifespan and held on app.state: config, routing, executor, call log."""

from __future__ import annotations

import asyncio
import contextlib
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
from gateway.telemetry.recent import RecentCalls
from gateway.telemetry.tracing import start_tracing
from routing.config.load import load_config
from routing.config.schema import GatewayConfig
from routing.executor import Executor, ExecutorSettings
from routing.limits.admission import Guards
from routing.limits.breaker import BreakerBoard
from routing.limits.ratelimit import InProcessRateLimiter, RateLimiter
from routing.limits.ratelimit_redis import RedisRateLimiter
from routing.limits.spend import InProcessSpendLedger, SpendLedger
from routing.limits.spend_redis import RedisSpendLedger
from routing.limits.streams import LocalStreamCap, RedisStreamCap, StreamCap
from routing.load_board import LoadBoard
from routing.manager import RoutingManager
from routing.shared.fleet import Fleet, shared_redis
from routing.shared.ratelimit import FailoverRateLimiter
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
    recent: RecentCalls = field(default_factory=RecentCalls)  # the dashboard's last minutes of calls
    spend: SpendLedger | None = None  # the spend budgets' ledger; None when no key has a budget
    fleet: Fleet | None = None  # state shared with the other workers and replicas (REDIS_URL)

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


def build_limiter(settings: Settings, redis: Redis | None, fleet: Fleet | None = None) -> RateLimiter:
    """Redis when REDIS_URL is set (shared by every worker and replica), else in this process.

    A Redis outage fails open by default: each process then limits on its own (the limits protect upstream quotas,
    and refusing every call because the counter store is down would be the worse outage); REDIS_FAIL=closed
    refuses calls under a limit instead (routing/shared/ratelimit.py).
    """
    if redis is None:
        return InProcessRateLimiter()
    if fleet is None:
        return RedisRateLimiter(redis, prefix=settings.rate_limit_prefix, fail_open=True)
    shared = RedisRateLimiter(redis, prefix=settings.rate_limit_prefix, fail_open=False)
    return FailoverRateLimiter(shared, fleet.link, fail_closed=settings.redis_fail_closed)


def build_spend_ledger(settings: Settings, redis: Redis | None) -> SpendLedger | None:
    """None without budgets (calls then pay nothing for them); Redis when REDIS_URL is set, failing open like the
    rate limits; else this process's own."""
    if not settings.budgets:
        return None
    if redis is None:
        return InProcessSpendLedger()
    return RedisSpendLedger(redis, prefix=settings.rate_limit_prefix, fail_open=True)


def build_stream_cap(settings: Settings, redis: Redis | None, fleet: Fleet | None = None) -> StreamCap:
    """Shared through Redis when REDIS_URL is set and a limit is configured, else this worker's own count."""
    limit = settings.max_streams_per_client
    if redis is None or not limit:
        return LocalStreamCap(limit)
    # a stream's slot is leased for the longest a call may run, so a dead worker's slots come back by then
    link = fleet.link if fleet is not None else None
    return RedisStreamCap(limit, redis, settings.rate_limit_prefix, settings.deadline + 60.0, link=link)


@asynccontextmanager
async def running_services(settings: Settings) -> AsyncIterator[Services]:
    """Build, start and finally stop every app-wide object."""
    config = load_gateway_config(settings)
    report_config(config)
    tracer = start_tracing(settings.env)  # None unless OTEL_EXPORTER_OTLP_ENDPOINT is set
    manager = RoutingManager(config)
    transport = HttpTransport(pool_size=settings.pool_size, proxies=settings.proxies)
    await transport.start()
    call_log = build_call_log(settings.storage)
    metrics = Metrics(observe_calls=settings.metrics_enabled)
    # one pool for limits, streams and the rest of the shared state
    redis = shared_redis(settings.redis_url) if settings.redis_url else None
    fleet: Fleet | None = None
    state: DeploymentState | None = None
    if redis is not None:
        fleet = Fleet(
            redis,
            settings.redis_url,
            f"{settings.rate_limit_prefix}:shared",
            lambda: state.shared_subjects() if state is not None else (),
            on_change=metrics.set_shared_state,
        )
    limiter = build_limiter(settings, redis, fleet)
    spend = build_spend_ledger(settings, redis)
    breakers = BreakerBoard(replace(settings.breaker, retry_after_cap=settings.retry_after_cap))
    guards = Guards(breakers, limiter)
    guards.fleet = fleet
    stream_cap = build_stream_cap(settings, redis, fleet)
    events = EventHub()
    state = DeploymentState(manager, transport, guards, metrics, events, fleet)
    guards.on_state = state.circuit_changed
    responses = ResponseStore(settings.storage)
    board = LoadBoard(
        config.routing,
        state.scrape_state,
        guards,
        on_affinity=metrics.routing.affinity_decided,
        on_budget=metrics.routing.budget,
    )
    spill_sync: asyncio.Task[None] | None = None
    try:
        await call_log.start()
        if fleet is not None:
            await fleet.start()  # before the probes: they ask it who leads
        await state.start()
        if fleet is not None:  # the spill budget is the fleet's: synced every second, off the request path
            spill_sync = asyncio.create_task(fleet.spill.run(lambda: board.budget, time.monotonic), name="spill-sync")
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
                budgets={b.key: b for b in settings.budgets},
                spend=spend,
                tracer=tracer,
            ),
            responses=responses,
            board=board,
            spend=spend,
            fleet=fleet,
        )
    finally:
        if spill_sync is not None:
            spill_sync.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await spill_sync
        await state.close()
        if fleet is not None:
            await fleet.close()
        await responses.close()
        await call_log.close()
        await limiter.close()
        if spend is not None:
            await spend.close()
        await stream_cap.close()
        if redis is not None:
            await redis.aclose()
        await transport.close()
        if tracer is not None:
            await tracer.close()
        if metrics.multiprocess:
            mark_worker_dead(os.getpid())
