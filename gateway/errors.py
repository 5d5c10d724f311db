"""The gateway's own refusals (APIError) on the one error tree, and OpenAI's rendering of any error on it.

Status, category and code live on the error (routing/errors.py); this module and each surface's renderer
(Beacon's in gateway/beacon/flow.py, OpenRouter's in gateway/openai/openrouter.py) only turn them into bytes, with
the headers of error_headers. The app's exception handlers answer in OpenAI's shape; a surface that speaks another
shape renders its errors itself before they reach them.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from routing.errors import AllAttemptsFailed, Category, GatewayError, category_of_status

log = logging.getLogger("gateway")

OPENAI_TYPES: Mapping[Category, str] = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "invalid_request_error",
    "too_large": "invalid_request_error",
    "billing": "insufficient_quota",
    "rate_limited": "rate_limit_error",
    "unavailable": "server_error",
    "upstream": "server_error",
    "timeout": "server_error",
    "internal": "server_error",
}


class APIError(GatewayError):
    """A refusal of the gateway's own: HTTP status, code, the offending param and extra response headers."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
        category: Category | None = None,
    ) -> None:
        super().__init__(message, headers)
        self.status, self.code, self.param = status, code, param
        self.category = category or category_of_status(status)


def openai_error(error: GatewayError) -> dict[str, Any]:
    """OpenAI's error object: `{"error": {message, type, param, code}}`; a relayed upstream error keeps its type."""
    kind = error.upstream_type or OPENAI_TYPES[error.category]
    return {"error": {"message": error.message, "type": kind, "param": error.param, "code": error.code}}


def should_retry(error: GatewayError) -> bool | None:
    """Whether a client's retry can help: no after the gateway's own retries (AllAttemptsFailed) or for a refusal
    of the request itself (4xx), yes for a 429 or a 503 that says when to come back, None when nobody knows."""
    if error.category == "rate_limited" or (error.category == "unavailable" and error.retry_after):
        return True
    if isinstance(error, AllAttemptsFailed) or 400 <= error.status < 500:
        return False
    return None


def error_headers(error: GatewayError, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """An error's response headers on every surface: its own (Retry-After...), `extra`, WWW-Authenticate on a 401,
    and `x-should-retry` when should_retry knows (the openai and anthropic SDKs obey it over their status rules)."""
    headers = {**error.headers, **(extra or {})}
    if error.status == 401:
        headers.setdefault("www-authenticate", "Bearer")
    retry = should_retry(error)
    if retry is not None:
        headers.setdefault("x-should-retry", "true" if retry else "false")
    return headers


def openai_response(error: GatewayError, extra: Mapping[str, str] | None = None) -> Response:
    content = orjson.dumps(openai_error(error))
    return Response(content, error.status, error_headers(error, extra), media_type="application/json")


async def gateway_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return openai_response(exc)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = {404: f"no route for {request.method} {request.url.path}", 405: "method not allowed"}.get(
        exc.status_code, str(exc.detail)
    )
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
    return openai_response(APIError(exc.status_code, message, code=code), dict(exc.headers or {}))


async def unhandled_error_handler(request: Request, exc: Exception) -> Response:
    request_id = request.scope.get("state", {}).get("request_id", "-")
    log.error("unhandled error in %s %s (request %s)", request.method, request.url.path, request_id, exc_info=exc)
    return openai_response(APIError(500, f"internal error (request {request_id})", code="internal_error"))


Handler = Callable[[Request], Awaitable[Any]]


def speaks(render: Callable[[GatewayError], Response]) -> Callable[[Handler], Handler]:
    """A decorator for a surface whose errors are not OpenAI's: the GatewayErrors its handler raises are answered
    by `render` (the app's exception handlers answer in OpenAI's shape)."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def answer(request: Request) -> Any:
            try:
                return await handler(request)
            except GatewayError as exc:
                return render(exc)

        return answer

    return wrap
