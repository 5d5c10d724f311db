"""The app factory. `uvicorn gateway.app:app` serves the shipped config; tests call create_app(settings)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Route

from gateway.endpoints import admin, chat, health, models
from gateway.errors import APIError, api_error_handler, http_error_handler, unhandled_error_handler
from gateway.middleware import RequestIdMiddleware
from gateway.services import running_services
from gateway.settings import Settings
from routing.config import ConfigError

log = logging.getLogger("gateway")


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the ASGI app; config is loaded in the lifespan, so a bad file stops start-up with its message."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        resolved = settings or Settings.from_env()
        try:
            async with running_services(resolved) as services:
                app.state.services = services
                yield
        except ConfigError as exc:
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
        Route("/health", health.health, methods=["GET"]),
        Route("/ready", health.ready, methods=["GET"]),
        Route("/routing", admin.routing_table, methods=["GET"]),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(RequestIdMiddleware)],
        exception_handlers={
            APIError: api_error_handler,
            HTTPException: http_error_handler,
            Exception: unhandled_error_handler,
        },
        lifespan=lifespan,
    )


app = create_app()
