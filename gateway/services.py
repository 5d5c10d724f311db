"""App-wide objects, built in the lifespan and held on app.state: config, routing, executor, call log."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from gateway.metrics import Metrics, mark_worker_dead
from gateway.settings import Settings
from gateway.storage.settings import StorageSettings
from gateway.storage.writer import CallLog, build_call_log
from gateway.streamcap import StreamCap
from routing.config import GatewayConfig
from routing.executor import Executor, ExecutorSettings
from routing.loader import load_config
from routing.manager import RoutingManager
from routing.transport import HttpTransport

log = logging.getLogger("gateway")


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
    started_at: float = field(default_factory=time.time)

    @property
    def config(self) -> GatewayConfig:
        return self.manager.config

    def routing_snapshot(self) -> dict[str, Any]:
        """The routing table as /routing shows it."""
        return self.manager.snapshot()


def load_gateway_config(settings: Settings) -> GatewayConfig:
    """Load and validate the config files (raises ConfigError with file, field and fix)."""
    return load_config(settings.models_path, settings.routing_path, settings.env)


def report_config(config: GatewayConfig) -> None:
    for warning in config.warnings:
        log.warning("config: %s", warning)
    served = [m.id for m in config.models if m.enabled_deployments]
    log.info("serving %d model(s): %s", len(served), ", ".join(served) or "none")


@asynccontextmanager
async def running_services(settings: Settings) -> AsyncIterator[Services]:
    """Build, start and finally stop every app-wide object."""
    config = load_gateway_config(settings)
    report_config(config)
    manager = RoutingManager(config)
    transport = HttpTransport(pool_size=settings.pool_size)
    await transport.start()
    call_log = build_call_log(StorageSettings.from_env(settings.env, settings.root))
    metrics = Metrics()
    try:
        await call_log.start()
        executor = Executor(transport, ExecutorSettings(max_attempts=settings.max_attempts, deadline=settings.deadline))
        yield Services(
            settings=settings,
            manager=manager,
            transport=transport,
            executor=executor,
            call_log=call_log,
            stream_cap=StreamCap(settings.max_streams_per_client),
            metrics=metrics,
        )
    finally:
        await call_log.close()
        await transport.close()
        if metrics.multiprocess:
            mark_worker_dead(os.getpid())
