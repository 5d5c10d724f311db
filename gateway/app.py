"""The app factory. `uvicorn gateway.app:app` (or `--factory gateway.app:create_app`) serves the configured
gateway; tests call create_app(settings). Every route declares its access level (gateway/routes.py)."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute
from starlette.types import Message, Receive, Scope, Send

from gateway.access import Access, AccessPolicy
from gateway.anthropic import endpoints as anthropic
from gateway.beacon import endpoints as beacon
from gateway.beacon import maps, ws
from gateway.edge import RequestHeadMiddleware
from gateway.errors import gateway_error_handler, http_error_handler, unhandled_error_handler
from gateway.lifespan import Services, running_services
from gateway.logs import configure_logging, write_directly
from gateway.middleware import RequestIdMiddleware
from gateway.openai import embeddings, key_info, model_detail
from gateway.openai import endpoints as openai_api
from gateway.openai.responses import endpoints as responses_api
from gateway.ops import admin, dashboard, health, metrics, monitoring, stats
from gateway.ops.reload import reload_config
from gateway.routes import GuardedRoute, GuardedWebSocketRoute, unguarded
from gateway.settings import Settings, SettingsError
from routing.config.schema import ConfigError
from routing.errors import GatewayError

# CPython's default (a young collection every 700 net container allocations) collected about once every 7 calls
# under load and cost 0.13 ms of CPU per call, a tenth of the call (bench/RESULTS.md); calls free almost all they
# allocate by reference counting, so it found little. One every 20,000 holds at most the cyclic garbage of some
# hundred calls (RSS stays flat).
GC_THRESHOLDS = (20_000, 20, 100)

log = logging.getLogger("gateway")
STARTUP_ERRORS = (ConfigError, SettingsError)


def routes() -> list[BaseRoute]:
    """Every route of the gateway, each with the access level it needs."""
    client, admin_only, public = Access.CLIENT, Access.ADMIN, Access.PUBLIC
    post, get = ["POST"], ["GET"]
    return [
        # OpenAI / OpenRouter
        GuardedRoute("/v1/chat/completions", openai_api.chat_completions, access=client, methods=post),
        GuardedRoute("/chat/completions", openai_api.chat_completions, access=client, methods=post),
        GuardedRoute(
            "/api/v1/chat/completions",
            openai_api.openrouter_chat_completions,
            access=client,
            methods=post,
            refusal=openai_api.openrouter_refusal,
        ),
        GuardedRoute("/v1/completions", openai_api.completions, access=client, methods=post),
        GuardedRoute("/v1/embeddings", embeddings.embeddings, access=client, methods=post),
        GuardedRoute(
            "/api/v1/embeddings",
            embeddings.openrouter_embeddings,
            access=client,
            methods=post,
            refusal=openai_api.openrouter_refusal,
        ),
        GuardedRoute("/completion", openai_api.completions, access=client, methods=post),
        GuardedRoute("/v1/models", openai_api.list_models, access=client, methods=get),
        # OpenAI Responses
        GuardedRoute("/v1/responses", responses_api.create_response, access=client, methods=post),
        GuardedRoute("/v1/responses/{response_id}", responses_api.get_response, access=client, methods=get),
        GuardedRoute("/v1/responses/{response_id}", responses_api.delete_response, access=client, methods=["DELETE"]),
        GuardedRoute(
            "/v1/responses/{response_id}/input_items", responses_api.input_items_of, access=client, methods=get
        ),
        GuardedRoute("/models", openai_api.list_models, access=client, methods=get),
        GuardedRoute("/v1/models/{model_id:path}", model_detail.retrieve_model, access=client, methods=get),
        GuardedRoute(
            "/api/v1/models/{model_id:path}",
            model_detail.openrouter_retrieve_model,
            access=client,
            methods=get,
            refusal=openai_api.openrouter_refusal,
        ),
        GuardedRoute(
            "/api/v1/models",
            openai_api.openrouter_models,
            access=client,
            methods=get,
            refusal=openai_api.openrouter_refusal,
        ),
        # Anthropic's Messages API (Claude Code)
        GuardedRoute("/v1/messages", anthropic.messages, access=client, methods=post, refusal=anthropic.refusal),
        GuardedRoute(
            "/v1/messages/count_tokens", anthropic.count_tokens, access=client, methods=post, refusal=anthropic.refusal
        ),
        # Project Beacon
        GuardedRoute("/inference", beacon.inference, access=client, methods=post, refusal=beacon.refusal),
        GuardedRoute("/v1/inference", beacon.inference, access=client, methods=post, refusal=beacon.refusal),
        GuardedRoute("/providers", beacon.providers, access=client, methods=get, refusal=beacon.refusal),
        GuardedRoute("/ws", ws.ws_hint, access=client, methods=get),
        # a same-origin handshake with the dashboard's session cookie subscribes as the admin
        GuardedWebSocketRoute("/ws", ws.websocket, access=client, session=True),
        GuardedRoute("/maps/api.js", maps.maps_script, access=public, methods=get),
        # operators
        GuardedRoute("/health", health.health, access=public, methods=get),
        GuardedRoute("/ready", health.ready, access=public, methods=get),
        GuardedRoute("/routing", admin.routing_table, access=admin_only, methods=get),
        GuardedRoute("/routing", admin.change_routing, access=admin_only, methods=post),
        GuardedRoute("/admin/routing", admin.routing_table, access=admin_only, methods=get),
        GuardedRoute("/stats", stats.stats, access=admin_only, methods=get, session=True),
        GuardedRoute("/admin/stats", stats.stats, access=admin_only, methods=get, session=True),
        # the dashboard: the page and its state take the session cookie (reads only); its assets hold no data
        *(
            GuardedRoute(
                path, dashboard.page, access=admin_only, methods=get, session=True, refusal=dashboard.sign_in_refusal
            )
            for path in ("/monitoring/dashboard.html", "/dashboard")
        ),
        GuardedRoute("/monitoring/state", monitoring.state, access=admin_only, methods=get, session=True),
        GuardedRoute("/monitoring/static/{path:path}", dashboard.asset, access=public, methods=get),
        GuardedRoute("/monitoring/session", dashboard.sign_in, access=public, methods=post),
        GuardedRoute("/monitoring/session", dashboard.sign_out, access=public, methods=["DELETE"]),
        GuardedRoute(
            "/api/v1/generation",
            openai_api.speaks_openrouter(stats.generation),
            access=admin_only,
            methods=get,
            refusal=openai_api.openrouter_refusal,
        ),
        GuardedRoute("/metrics", metrics.metrics, access=Access.METRICS, methods=get),
        GuardedRoute(
            "/api/v1/key",
            openai_api.speaks_openrouter(key_info.current_key),
            access=client,
            methods=get,
            refusal=openai_api.openrouter_refusal,
        ),
        # OpenRouter's shape for any other /api/v1 path (last: every route above matches first)
        GuardedRoute(
            "/api/v1/{rest:path}",
            openai_api.no_route,
            access=client,
            methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            refusal=openai_api.openrouter_refusal,
        ),
    ]


class Gateway(Starlette):
    """The Starlette app, whose failed start-up says its one line (file, field, fix) instead of a traceback."""

    startup_error: Exception | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await super().__call__(scope, receive, send)
            return

        async def send_plainly(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed" and self.startup_error is not None:
                message = {**message, "message": f"configuration error: {self.startup_error}"}
                # the cause was said; uvicorn's generic "Application startup failed. Exiting." would be a second line
                logging.getLogger("uvicorn.error").addFilter(_said_once)
            await send(message)

        await super().__call__(scope, receive, send_plainly)


def _said_once(record: logging.LogRecord) -> bool:
    return record.getMessage() != "Application startup failed. Exiting."


def create_app(settings: Settings | None = None, *, own_logging: bool = True) -> Gateway:
    """Build the ASGI app. Settings and config are checked at start-up, so a bad variable or file stops it with
    one message. `own_logging=False` leaves logging and the garbage collector as the caller set them up (tests)."""
    deferred: SettingsError | None = None
    if settings is None:
        try:
            settings = Settings.from_env()
        except SettingsError as exc:
            deferred, settings = exc, Settings(env={})
    resolved = settings

    @asynccontextmanager
    async def lifespan(app: Gateway) -> AsyncIterator[None]:
        if own_logging:
            configure_logging(resolved.log_level, resolved.log_format)
        try:
            if deferred is not None:
                raise deferred
            app.state.access = resolved.access
            announce_access(resolved.access)
            async with running_services(resolved) as services:
                app.state.services = services
                if own_logging:
                    # what start-up built lives as long as the process: out of the collector's sight, a full
                    # collection under load walks only what calls allocate (7-10 % more req/s, bench/RESULTS.md)
                    gc.collect()
                    gc.freeze()
                    gc.set_threshold(*GC_THRESHOLDS)
                async with publishing_call_log(services), services.recent.fed_by(services.events):
                    with reload_on_sighup(services):
                        yield
        except STARTUP_ERRORS as exc:
            app.startup_error = exc
            raise
        finally:
            if own_logging:
                write_directly()

    table = routes()
    if missing := unguarded(table):
        raise RuntimeError(f"routes without an access level: {', '.join(missing)}")
    return Gateway(
        routes=table,
        middleware=edge_middleware(resolved),
        exception_handlers={
            GatewayError: gateway_error_handler,
            HTTPException: http_error_handler,
            Exception: unhandled_error_handler,
        },
        lifespan=lifespan,
    )


def edge_middleware(settings: Settings) -> list[Middleware]:
    """Request id outermost, then CORS (so preflights are answered before any route's guard), then the request
    head's size and Host. Access is checked by each route's own middleware."""
    stack = [Middleware(RequestIdMiddleware)]
    if settings.cors_origins:
        wildcard = "*" in settings.cors_origins
        stack.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_credentials=not wildcard,  # never credentials with `*`
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=[
                    "Authorization",
                    "Content-Type",
                    "HTTP-Referer",
                    "X-Title",
                    "X-Request-Id",
                    *("X-Api-Key", "Anthropic-Version", "Anthropic-Beta"),  # Anthropic's SDKs
                ],
                expose_headers=["x-request-id", "x-gateway-deployment", "x-gateway-provider", "retry-after"],
            )
        )
    stack.append(
        Middleware(
            RequestHeadMiddleware, max_header_bytes=settings.max_header_bytes, allowed_hosts=settings.allowed_hosts
        )
    )
    return stack


@asynccontextmanager
async def publishing_call_log(services: Services, interval_s: float = 1.0) -> AsyncIterator[None]:
    """Publish this worker's call-log counters and spill budget to its gauges every `interval_s`, and at the end."""
    # Only this worker's event loop can read its writer's counters: without the timer, a worker's gauges would
    # move only when it answers a scrape, and with several workers the others' values would go stale.

    def publish() -> None:
        try:
            services.metrics.set_call_log(services.call_log.counters())
            services.board.publish_budget()
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
    if not policy.admin_key_hash and policy.loopback_only:
        log.warning("ADMIN_API_KEY is not set: admin routes (/routing, /stats, /metrics...) answer only this host")
    elif not policy.admin_key_hash:
        log.warning(
            "ADMIN_API_KEY is not set and the gateway listens beyond loopback (HOST): admin routes "
            "(/routing, /stats, /metrics...) are refused; set ADMIN_API_KEY to use them"
        )


def __getattr__(name: str) -> Any:
    """`gateway.app:app`, built when first asked for (as `uvicorn gateway.app:app` does), not at import."""
    if name == "app":
        return create_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
