"""Run uvicorn: one worker in this process, or several under uvicorn's supervisor, each connection bounded."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Generator
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, cast

import uvicorn
from uvicorn.supervisors import Multiprocess

from gateway.http_protocol import GatewayHttpProtocol, HeadLimits

if TYPE_CHECKING:
    from gateway.settings import Settings

STARTUP_FAILURE = 3


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """What bounds each worker's connections: the request head (gateway/http_protocol.py), keep-alive, their count."""

    head: HeadLimits = field(default_factory=HeadLimits)
    keepalive_timeout: float = 5.0
    max_connections: int = 2048  # 0: no limit

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        server = settings.server
        return cls(HeadLimits.from_settings(settings), server.keepalive_timeout, server.max_connections)


class GracefulServer(uvicorn.Server):
    """uvicorn re-raises a captured SIGTERM after its graceful shutdown, so the process dies by that signal.
    When the drain completed, the exit is clean: return normally and let the process exit 0."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None]:
        with super().capture_signals():
            try:
                yield
            finally:
                if self.started:
                    self._captured_signals.clear()


def run_server(
    host: str,
    port: int,
    workers: int,
    graceful_timeout: float,
    forwarded_allow_ips: str = "",
    limits: ConnectionLimits | None = None,
) -> int:
    """Serve until SIGTERM. X-Forwarded-For is trusted only from `forwarded_allow_ips` (e.g. the Cloudflare or
    nginx addresses in front); without it client IPs are the socket's and the per-request rewrite is skipped.
    `limits` bound each connection: the time and size of a request head, the keep-alive wait, how many at once."""
    limits = limits or ConnectionLimits()
    config = uvicorn.Config(
        "gateway.app:app",
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        # uvicorn calls it as it calls a protocol class; a partial pickles, so the workers get the limits too
        http=cast("type[asyncio.Protocol]", partial(GatewayHttpProtocol, limits=limits.head)),
        # uvicorn's Config takes whole seconds here
        timeout_keep_alive=max(1, round(limits.keepalive_timeout)),
        # uvicorn answers 503 when the open connections, the one asking included, reach limit_concurrency
        limit_concurrency=limits.max_connections + 1 if limits.max_connections else None,
        lifespan="on",
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=max(1, round(graceful_timeout)),
        log_config=None,
        proxy_headers=bool(forwarded_allow_ips),
        forwarded_allow_ips=forwarded_allow_ips or None,
    )
    if workers > 1:
        return run_supervisor(config)
    server = GracefulServer(config)
    server.run()
    return 0 if server.started else STARTUP_FAILURE


class DrainingSupervisor(Multiprocess):
    """uvicorn's supervisor, which lets go of the listening socket before it stops its workers.

    Each worker closes its copy of the socket when SIGTERM starts its drain, but the supervisor's copy kept the
    port listening until the last worker had drained: the kernel went on accepting connections into a backlog
    that no worker would serve, and reset them at exit (1-11 calls per replica SIGTERM in `make chaos`). With
    the supervisor's copy closed first, the port refuses new connections as soon as the workers stop accepting,
    so a load balancer moves them to another replica, and the calls in flight still finish.
    """

    def terminate_all(self) -> None:
        for sock in self.sockets:
            sock.close()
        super().terminate_all()


def run_supervisor(config: uvicorn.Config) -> int:
    """Several workers under uvicorn's supervisor; STARTUP_FAILURE when a worker could not start."""
    supervisor = DrainingSupervisor(config, sockets=[config.bind_socket()])
    supervisor.run()
    # The supervisor stops when a worker exits with STARTUP_FAILURE (bad config, port, TLS) and returns normally;
    # it keeps that dead worker in its list instead of replacing it. Without a non-zero exit here, systemd's
    # Restart=on-failure would never fire and the unit would not show failed. Workers stopped by SIGTERM end by
    # that signal (a negative exit code), so a clean shutdown still exits 0.
    if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes):
        return STARTUP_FAILURE
    return 0
