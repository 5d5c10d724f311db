"""`POST /v1/embeddings` (and `/api/v1/embeddings` in OpenRouter's shapes): parse, route through the executor's
one retry loop, respond in OpenAI's list shape. Every call leaves one row through the call ledger, as chat does."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import APIError
from gateway.lifespan import Services
from gateway.openai.flow import AnsweredFirst
from gateway.openai.openrouter import speaks_openrouter
from gateway.openai.request import GATEWAY_ONLY
from gateway.openai.routing_fields import provider_routing
from gateway.requests import client_info, read_json, refuse_unserved, unroutable
from routing.embeddings import embed
from routing.request_routing import ProviderRouting

_FORMATS = ("float", "base64")


@dataclass(frozen=True, slots=True)
class EmbeddingsRequest:
    """A checked embeddings request: the public model asked for and the body to forward."""

    model: str
    payload: dict[str, Any]
    original: dict[str, Any]
    wants: ProviderRouting | None = None


def _bad(param: str, message: str) -> APIError:
    return APIError(400, message, code="invalid_value", param=param)


def _is_tokens(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(type(t) is int and t >= 0 for t in value)


def parse_embeddings(body: dict[str, Any]) -> EmbeddingsRequest:
    """Check `model`, `input` (a string, strings, or token arrays), `encoding_format` and `dimensions`; everything
    else is forwarded untouched."""
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise APIError(400, "`model` is required and must be a string", code="missing_model", param="model")
    given = body.get("input")
    items = given if isinstance(given, list) and given and not _is_tokens(given) else [given]
    if not all((isinstance(i, str) and i) or _is_tokens(i) for i in items):
        raise _bad(
            "input", "`input` must be a non-empty string, a list of them, a token array or a list of token arrays"
        )
    encoding = body.get("encoding_format")
    if encoding is not None and encoding not in _FORMATS:
        raise _bad("encoding_format", f"`encoding_format` must be one of {list(_FORMATS)}, got {encoding!r}")
    dimensions = body.get("dimensions")
    if dimensions is not None and (type(dimensions) is not int or dimensions < 1):
        raise _bad("dimensions", f"`dimensions` must be a whole number >= 1, got {dimensions!r}")
    payload = {k: v for k, v in body.items() if k not in GATEWAY_ONLY}
    return EmbeddingsRequest(model, payload, body, provider_routing(body, ""))


async def run_embeddings(request: Request, services: Services, ask: EmbeddingsRequest, endpoint: str) -> Response:
    """Route one checked request and answer it; the call is booked, admitted and finished by its ledger."""
    route = services.manager.route(ask.model)
    model = route.model if route else services.config.resolve(ask.model)
    request_id = request.scope["state"]["request_id"]
    ledger = services.books.open(request_id, ask.model, model, ask.original, client_info(request, endpoint), False)
    async with ledger.on_record(before_routing=True):
        if route is None:
            raise unroutable(model, ask.model)
        refuse_unserved(route.model, "embeddings")
        await ledger.admit(ask.payload)
    ledger.dispatched = True
    call = ledger.call
    async with ledger.on_record():
        result = await embed(services.executor, route, ask.payload, call, ask.wants)
        body = {"object": "list", "data": result["data"], "model": call.model_id, "usage": ledger.usage()}
    content = orjson.dumps(body)
    if services.call_log.settings.sync:
        await ledger.finish(200)
        return Response(content, 200, ledger.headers(), media_type="application/json")
    return AnsweredFirst(content, ledger)


async def embeddings(request: Request) -> Response:
    services: Services = request.app.state.services
    body = await read_json(request, services.settings.max_body_bytes)
    return await run_embeddings(request, services, parse_embeddings(body), "/v1/embeddings")


@speaks_openrouter
async def openrouter_embeddings(request: Request) -> Response:
    services: Services = request.app.state.services
    body = await read_json(request, services.settings.max_body_bytes)
    return await run_embeddings(request, services, parse_embeddings(body), "/api/v1/embeddings")
