"""What every surface needs to take a call in: the JSON body, who sent it, and the model it names."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import ClientDisconnect, HTTPConnection, Request

from gateway.errors import APIError
from gateway.telemetry.recording import ClientInfo
from routing.call import Call
from routing.config.schema import ModelConfig
from routing.load import PRIORITIES


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    """The JSON object body, refusing bodies over `limit` bytes before reading them whole.

    Only `application/json` is taken: a web page can send `text/plain` cross-origin without a CORS preflight
    (a "simple request"), so accepting it would let any page drive the API from a visitor's browser. A body
    nested deeper than the gateway can write back out (orjson's limit is 254 levels) is refused here, before any
    upstream call, rather than failing later in the adapter or the call log.
    """
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise APIError(
            415,
            f"the body must be sent as `Content-Type: application/json`, not {media or 'no content type'!r}",
            code="unsupported_media_type",
        )
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise APIError(413, f"request body is {declared} bytes; the limit is {limit}", code="request_too_large")
    size, parts = 0, []
    try:
        async for part in request.stream():
            size += len(part)
            if size > limit:
                raise APIError(413, f"request body exceeds the limit of {limit} bytes", code="request_too_large")
            parts.append(part)
    except ClientDisconnect:  # nobody is left to answer; not an internal error worth a traceback
        raise APIError(499, "client disconnected while sending the body", code="client_disconnected") from None
    body = b"".join(parts)
    if not body.strip():
        raise APIError(400, "request body is empty; send a JSON object", code="invalid_json")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise APIError(400, f"request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise APIError(400, "request body must be a JSON object", code="invalid_json")
    try:
        orjson.dumps(data)  # a few microseconds: the same C encoder that writes it upstream and to the call log
    except orjson.JSONEncodeError:
        raise APIError(400, "request body is nested too deeply (at most 254 levels)", code="invalid_json") from None
    return data


def client_info(conn: HTTPConnection, endpoint: str) -> ClientInfo:
    """Who sent the call (an HTTP request or a WebSocket), as far as the call log may keep it."""
    headers = conn.headers
    return ClientInfo(
        ip=conn.client.host if conn.client else "",
        api_key_name=conn.scope.get("state", {}).get("api_key_name", ""),
        endpoint=endpoint,
        referer=headers.get("http-referer", "") or headers.get("referer", ""),
        title=headers.get("x-title", ""),
        session_id=headers.get("x-session-id", "") or headers.get("x-claude-code-session-id", ""),
        raw_headers=conn.scope["headers"],
    )


def apply_routing_hints(conn: HTTPConnection, call: Call) -> None:
    """`X-Priority` (high, normal, low; anything else counts as normal) and the session headers, for routing."""
    headers = conn.headers
    priority = headers.get("x-priority", "").strip().lower()
    call.priority = priority if priority in PRIORITIES else "normal"
    call.session = (headers.get("x-session-id", "") or headers.get("x-claude-code-session-id", ""))[:200]


def unroutable(model: ModelConfig | None, name: str) -> APIError:
    """404 for a model nobody configured; 503 for a configured one whose deployments are all disabled."""
    if model is None:
        return APIError(
            404, f"model {name!r} does not exist; see GET /v1/models", code="model_not_found", param="model"
        )
    why = "; ".join(f"{d.name}: {d.disabled_reason or 'disabled'}" for d in model.deployments) or "none configured"
    return APIError(503, f"no deployment of model {model.id} is available: {why}", code="no_deployment_available")


_ENDPOINT_PATHS = {"chat": "/v1/chat/completions", "embeddings": "/v1/embeddings"}


def refuse_unserved(model: ModelConfig, endpoint: str) -> None:
    """400 for a call to an endpoint the model does not declare (`endpoints:` in models.yaml), naming what it does."""
    if model.serves(endpoint):
        return
    serves = ", ".join(_ENDPOINT_PATHS.get(e, e) for e in model.endpoints)
    raise APIError(
        400,
        f"model {model.id} does not serve {endpoint} (it serves {serves}); use a model that lists "
        f"`{endpoint}` in its endpoints",
        code="unsupported_endpoint",
        param="model",
    )
