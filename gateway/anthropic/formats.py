"""Anthropic's wire shapes: the error object, its type per status, and one SSE event."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

from gateway.errors import APIError, error_headers
from gateway.telemetry.ledger import CallLedger
from routing.answers import speaks_messages
from routing.errors import AllAttemptsFailed, Category, GatewayError

ERROR_TYPES: Mapping[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_BY_CATEGORY: Mapping[Category, str] = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "not_found_error",
    "too_large": "request_too_large",
    "billing": "billing_error",
    "rate_limited": "rate_limit_error",
    "timeout": "timeout_error",
}


def error_type(error: GatewayError) -> str:
    """Anthropic's `error.type` for an error: by its status as Anthropic uses them, else by its category."""
    return ERROR_TYPES.get(error.status) or _BY_CATEGORY.get(error.category, "api_error")


def error_body(error: GatewayError) -> dict[str, Any]:
    """`{"type": "error", "error": {"type", "message"}}`."""
    return {"type": "error", "error": {"type": error_type(error), "message": error.message}}


def error_response(error: GatewayError) -> Response:
    content = orjson.dumps(error_body(error))
    return Response(content, error.status, error_headers(error), media_type="application/json")


def event(obj: Mapping[str, Any]) -> bytes:
    """One SSE event as Anthropic writes them: `event: <type>` then its data."""
    return b"event: " + str(obj.get("type", "")).encode() + b"\ndata: " + orjson.dumps(obj) + b"\n\n"


def error_event(error: GatewayError) -> bytes:
    return event(error_body(error))


def as_upstream_wrote(error: GatewayError, ledger: CallLedger) -> GatewayError:
    """A call whose last attempt was a native Messages deployment's HTTP error answers with that status and the
    upstream's own wording (Claude Code's recovery reads it), not the gateway's summary of every attempt."""
    last = error.last if isinstance(error, AllAttemptsFailed) else None
    attempts, model = ledger.call.attempts, ledger.model
    if last is None or not last.upstream_status or not attempts or model is None:
        return error
    name, status = attempts[-1].deployment, last.upstream_status
    prefix = f"{name}: HTTP {status}: "  # how the transport words an upstream's status (routing/upstream)
    native = any(d.name == name and speaks_messages(d) for d in model.deployments)
    if not native or not last.message.startswith(prefix):
        return error
    # the gateway's attempts are spent either way, so the SDK is told not to multiply them
    headers = {**error.extra_headers, "x-should-retry": "false"}
    return ledger.mask(APIError(status, last.message[len(prefix) :], code=error.code, headers=headers))
