"""OpenRouter's surface (`/api/v1/...`): its error object, whose `code` is the HTTP status, its mid-stream error
chunk and its model list. Chat bodies are OpenAI's (formats.py), as OpenRouter's own are.

Our string code travels in the error's `metadata` (`gateway_code`), beside OpenRouter's canonical `error_type`:
OpenRouter's SDKs validate `code` as an integer, and read `metadata` as an open object.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from starlette.datastructures import URL, QueryParams
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Match, Route
from starlette.types import Scope

from gateway.errors import APIError, error_headers, speaks
from gateway.openai.formats import ChatFormat, Identity
from gateway.openai.models import model_entry
from routing.errors import Category, GatewayError, category_of_status
from routing.manager import ModelRoute

ERROR_TYPES: Mapping[Category, str] = {
    "invalid_request": "invalid_request",
    "authentication": "authentication",
    "permission": "permission_denied",
    "not_found": "not_found",
    "too_large": "payload_too_large",
    "billing": "payment_required",
    "rate_limited": "rate_limit_exceeded",
    "unavailable": "provider_unavailable",
    "upstream": "server",
    "timeout": "timeout",
    "internal": "server",
}
# The status each code a stream can end with stands for, when the relay knows only the code (a stream cut mid-way).
_STATUS_OF_CODE = {
    "upstream_error": 502,
    "upstream_timeout": 504,
    "no_deployment_available": 503,
    "rate_limit_exceeded": 429,
    "upstream_rejected_request": 400,
    "internal_error": 500,
}


def _error(status: int, category: Category, message: str, code: str | None, param: str | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"error_type": ERROR_TYPES[category]}
    if code:
        metadata["gateway_code"] = code
    if param:
        metadata["param"] = param
    return {"code": status, "message": message, "metadata": metadata}


def openrouter_error(error: GatewayError) -> dict[str, Any]:
    """OpenRouter's error object: `{"error": {code: <HTTP status>, message, metadata}}`."""
    return {"error": _error(error.status, error.category, error.message, error.code, error.param)}


def openrouter_response(error: GatewayError, extra: Mapping[str, str] | None = None) -> Response:
    content = orjson.dumps(openrouter_error(error))
    return Response(content, error.status, error_headers(error, extra), media_type="application/json")


def openrouter_refusal(error: GatewayError, scope: Scope) -> Response:
    """The access guard's 401/403 in OpenRouter's shape."""
    return openrouter_response(error)


speaks_openrouter = speaks(openrouter_response)  # a handler's errors in OpenRouter's shape


async def no_route(request: Request) -> Response:
    """An /api/v1 path no route serves, answered as Starlette's router would but in OpenRouter's shape: 405 (with
    Allow) when the path has routes for other methods, a redirect when it differs from a route by its trailing
    slash, else 404."""
    routes = [r for r in request.app.routes if isinstance(r, Route) and r.endpoint is not no_route]
    allowed = {m for r in routes if r.matches(request.scope)[0] is Match.PARTIAL for m in r.methods or ()}
    path = request.url.path
    twin = {**request.scope, "path": path[:-1] if path.endswith("/") else f"{path}/"}
    if not allowed and any(r.matches(twin)[0] is not Match.NONE for r in routes):
        return RedirectResponse(URL(scope=twin))
    if allowed:
        headers = {"allow": ", ".join(sorted(allowed))}
        return openrouter_response(APIError(405, "method not allowed", code="method_not_allowed", headers=headers))
    return openrouter_response(APIError(404, f"no route for {request.method} {request.url.path}", code="not_found"))


class OpenRouterChatFormat(ChatFormat):
    """OpenAI's chat shapes with OpenRouter's errors, before the stream commits and in its error chunk."""

    def response(self, result: dict[str, Any], who: Identity, usage: dict[str, Any] | None) -> dict[str, Any]:
        body = super().response(result, who, usage)
        body.setdefault("system_fingerprint", None)  # OpenRouter's SDK requires the key; many upstreams omit it
        return body

    def error_body(self, error: GatewayError) -> dict[str, Any]:
        return openrouter_error(error)

    def error_chunk(self, who: Identity, code: str, message: str, status: int | None = None) -> dict[str, Any]:
        chunk = super().error_chunk(who, code, message)
        status = status or _STATUS_OF_CODE.get(code, 502)  # a relayed upstream code is in no table
        chunk["error"] = _error(status, category_of_status(status), message, code, None)
        return chunk


def openrouter_model(route: ModelRoute, created: int) -> dict[str, Any]:
    """One model as OpenRouter lists it: the /v1 entry plus the fields OpenRouter's SDKs require."""
    entry = model_entry(route, created)
    entry.update(
        default_parameters=None,
        supported_voices=None,
        links={"details": f"/api/v1/models/{entry['id']}/endpoints"},
    )
    return entry


def page_bounds(query: QueryParams) -> tuple[int, int | None]:
    """`offset` and `limit` of a model-list request (OpenRouter's SDK pages with them); 400 naming a bad one."""
    bounds: list[int | None] = []
    for name, low in (("offset", 0), ("limit", 1)):
        raw = query.get(name)
        if raw is None or raw == "":
            bounds.append(None)
        elif raw.isascii() and raw.isdigit() and int(raw) >= low:
            bounds.append(int(raw))
        else:
            raise APIError(
                400, f"`{name}` must be a whole number >= {low}, got {raw!r}", code="invalid_value", param=name
            )
    return bounds[0] or 0, bounds[1]


def model_list(models: Sequence[dict[str, Any]], offset: int, limit: int | None) -> dict[str, Any]:
    """OpenRouter's list: one page of `models`, the link to the next page (or null) and the total count."""
    end = len(models) if limit is None else offset + limit
    more = limit is not None and end < len(models)
    following = f"/api/v1/models?offset={end}&limit={limit}" if more else None
    # "object" is OpenAI's, for the OpenAI SDKs that are pointed at /api/v1 as OpenRouter's docs suggest
    return {
        "object": "list",
        "data": list(models[offset:end]),
        "links": {"next": following},
        "total_count": len(models),
    }
