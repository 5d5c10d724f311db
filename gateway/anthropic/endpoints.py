"""The Messages surface's handlers; every error they raise is answered in Anthropic's shape."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from gateway.anthropic.flow import count_messages_tokens, run_messages
from gateway.anthropic.formats import error_response
from gateway.anthropic.request import parse_messages
from gateway.errors import speaks
from gateway.lifespan import Services
from gateway.requests import read_json
from routing.errors import GatewayError

speaks_anthropic = speaks(error_response)  # a handler's errors as `{"type": "error", "error": {"type", "message"}}`


def refusal(error: GatewayError, scope: Scope) -> Response:
    """A refused key, in Anthropic's shape."""
    return error_response(error)


@speaks_anthropic
async def messages(request: Request) -> Any:
    services: Services = request.app.state.services
    body = await read_json(request, services.settings.max_body_bytes)
    return await run_messages(request, services, parse_messages(body, request.headers), "/v1/messages")


@speaks_anthropic
async def count_tokens(request: Request) -> Any:
    services: Services = request.app.state.services
    body = await read_json(request, services.settings.max_body_bytes)
    call = parse_messages(body, request.headers, count_tokens=True)
    return await count_messages_tokens(request, services, call, "/v1/messages/count_tokens")
