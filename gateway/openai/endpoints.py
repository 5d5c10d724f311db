"""The OpenAI / OpenRouter surface's handlers: chat completions, the legacy completions (passed through to the
deployments that serve them, translated onto chat for the others), and the model list (only models that can be
served). `/api/v1/...` has its own, answering (errors included) in OpenRouter's shapes (openrouter.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.lifespan import Services
from gateway.openai.flow import run_chat
from gateway.openai.formats import ChatFormat, TextFormat
from gateway.openai.models import model_entry
from gateway.openai.openrouter import (
    OpenRouterChatFormat,
    model_list,
    no_route,
    openrouter_model,
    openrouter_refusal,
    page_bounds,
    speaks_openrouter,
)
from gateway.openai.request import parse_chat, parse_completion
from gateway.requests import read_json

_CHAT, _TEXT, _OPENROUTER = ChatFormat(), TextFormat(), OpenRouterChatFormat()
__all__ = [  # with what the app's /api/v1 routes take from openrouter.py
    "chat_completions",
    "completions",
    "list_models",
    "no_route",
    "openrouter_chat_completions",
    "openrouter_models",
    "openrouter_refusal",
    "speaks_openrouter",
]


async def chat_completions(request: Request) -> Any:
    services: Services = request.app.state.services
    body = await read_json(request, services.settings.max_body_bytes)
    return await run_chat(request, services, parse_chat(body), _CHAT, "/v1/chat/completions")


async def completions(request: Request) -> Any:
    services: Services = request.app.state.services
    body = await read_json(request, services.settings.max_body_bytes)
    return await run_chat(request, services, parse_completion(body), _TEXT, "/v1/completions")


async def list_models(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    created = int(services.started_at)
    data = [model_entry(route, created) for route in services.manager.routes()]
    return JSONResponse({"object": "list", "data": data})


@speaks_openrouter
async def openrouter_chat_completions(request: Request) -> Any:
    services: Services = request.app.state.services
    body = await read_json(request, services.settings.max_body_bytes)
    chat = replace(parse_chat(body), include_usage=True)  # OpenRouter always ends a stream with its usage
    return await run_chat(request, services, chat, _OPENROUTER, "/api/v1/chat/completions")


@speaks_openrouter
async def openrouter_models(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    offset, limit = page_bounds(request.query_params)
    created = int(services.started_at)
    data = [openrouter_model(route, created) for route in services.manager.routes()]
    return JSONResponse(model_list(data, offset, limit))
