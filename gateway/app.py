"""The app factory. `uvicorn gateway.app:app` serves the shipped config; tests call create_app(settings)."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route, WebSocketRoute

from gateway.access import AccessConfigError, AccessPolicy
from gateway.beacon import endpoints as beacon
from gateway.beacon import maps, ws
from gateway.errors import APIError, api_error_handler, http_error_handler, unhandled_error_handler
from gateway.guard import GuardMiddleware
from gateway.lifespan import Services, running_services
from gateway.logs import configure_logging
from gateway.middleware import RequestIdMiddleware
from gateway.openai import endpoints as chat
from gateway.openai import models
from gateway.ops import admin, health, metrics, stats
from gateway.ops.reload import reload_config
from gateway.settings import Settings
from routing.config.schema import ConfigError

log = logging.getLogger("gateway")


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the ASGI app; config is loaded in the lifespan, so a bad file stops start-up with its message."""
    resolved = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if resolved.env.get("GATEWAY_CONFIGURE_LOGGING") == "1":
            configure_logging(resolved.env.get("LOG_LEVEL", "INFO"), resolved.env.get("LOG_FORMAT", "json").lower())
        try:
            app.state.access = AccessPolicy.from_env(resolved.env)
            announce_access(app.state.access)
            async with running_services(resolved) as services:
                app.state.services = services
                async with publishing_call_log(services):
                    with reload_on_sighup(services):
                        yield
        except (ConfigError, AccessConfigError) as exc:
            log.error("configuration error: %s", exc)
            raise

    routes = [
        Route("/v1/chat/completions", chat.chat_completions, methods=["POST"]),
        Route("/chat/completions", chat.chat_completions, methods=["POST"]),
        Route("/api/v1/chat/completions", chat.chat_completions, methods=["POST"]),
        Route("/v1/completions", chat.completions, methods=["POST"]),
        Route("/completion", chat.completions, methods=["POST"]),
        Route("/v1/models", models.list_models, methods=["GET"]),
        Route("/models", models.list_models, methods=["GET"]),
        Route("/api/v1/models", models.list_models, methods=["GET"]),
        Route("/inference", beacon.inference, methods=["POST"]),
        Route("/v1/inference", beacon.inference, methods=["POST"]),
        Route("/providers", beacon.providers, methods=["GET"]),
        Route("/ws", ws.ws_hint, methods=["GET"]),
        WebSocketRoute("/ws", ws.websocket),
        Route("/maps/api.js", maps.maps_script, methods=["GET"]),
        Route("/health", health.health, methods=["GET"]),
        Route("/ready", health.ready, methods=["GET"]),
        Route("/routing", admin.routing_table, methods=["GET"]),
        Route("/routing", admin.change_routing, methods=["POST"]),
        Route("/admin/routing", admin.routing_table, methods=["GET"]),
        Route("/stats", stats.stats, methods=["GET"]),
        Route("/metrics", metrics.metrics, methods=["GET"]),
        Route("/admin/stats", stats.stats, methods=["GET"]),
        Route("/api/v1/generation", stats.generation, methods=["GET"]),
    ]
    return Starlette(
        routes=routes,
        middleware=edge_middleware(resolved),
        exception_handlers={
            APIError: api_error_handler,
            HTTPException: http_error_handler,
            Exception: unhandled_error_handler,
        },
        lifespan=lifespan,
    )


def edge_middleware(settings: Settings) -> list[Middleware]:
    """Request id outermost, then CORS (so preflights are answered before auth), then the guard."""
    stack = [Middleware(RequestIdMiddleware)]
    if settings.cors_origins:
        wildcard = "*" in settings.cors_origins
        stack.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_credentials=not wildcard,  # never credentials with `*`
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["Authorization", "Content-Type", "HTTP-Referer", "X-Title", "X-Request-Id"],
                expose_headers=["x-request-id", "x-gateway-deployment", "x-gateway-provider", "retry-after"],
            )
        )
    stack.append(Middleware(GuardMiddleware, max_header_bytes=settings.max_header_bytes))
    return stack


@asynccontextmanager
async def publishing_call_log(services: Services, interval_s: float = 1.0) -> AsyncIterator[None]:
    """Publish this worker's call-log counters to its gauges every `interval_s`, and once more at the end."""
    # Only this worker's event loop can read its writer's counters: without the timer, a worker's gauges would
    # move only when it answers a scrape, and with several workers the others' values would go stale.

    def publish() -> None:
        try:
            services.metrics.set_call_log(services.call_log.counters())
        except Exception:  # task boundary: one failed write (disk full...) must not stop the later ones
            log.exception("metrics: publishing the call-log gauges failed")

    async def publish_forever() -> None:
        while True:
            publish()
            await asyncio.sleep(interval_s)

    task = asyncio.create_task(publish_forever(), name="call-log-gauges")
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        publish()


@contextmanager
def reload_on_sighup(services: Services) -> Iterator[None]:
    """SIGHUP re-reads the config in this process (with several workers, uvicorn's supervisor restarts them)."""
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGHUP, reload_config, services)
    except (RuntimeError, ValueError, NotImplementedError):  # not the main thread (tests), or no signals here
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGHUP)


def announce_access(policy: AccessPolicy) -> None:
    if policy.open:
        log.warning(
            "NO CLIENT API KEYS CONFIGURED: /v1/* is open to anyone who can reach this port "
            "(set GATEWAY_API_KEYS or GATEWAY_KEYS_FILE)"
        )
    else:
        log.info("client API keys: %d configured", len(policy.client_keys))
    if not policy.admin_key_hash:
        log.warning("ADMIN_API_KEY is not set: admin routes (/routing, /stats, /metrics...) answer only this host")


app = create_app()
