"""One error tree for the HTTP edge and the one place that turns errors into OpenAI-style JSON responses."""

from __future__ import annotations

import logging
import math
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from routing.errors import ClientRequestError, RateLimited, RoutingError

log = logging.getLogger("gateway")

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


class APIError(Exception):
    """An error the gateway answers with: HTTP status, OpenAI error type, code and the offending param."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        type_: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param
        self.headers = headers or {}
        self.type = type_ or _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> Response:
        return Response(orjson.dumps(self.body()), self.status, self.headers, media_type="application/json")


def from_routing(exc: RoutingError) -> APIError:
    """Translate an executor error once, at the boundary."""
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimited):
        headers.update((k.lower(), v) for k, v in exc.headers.items())
    retry_after = getattr(exc, "retry_after", None)
    if retry_after and "retry-after" not in headers:
        headers["retry-after"] = str(max(1, math.ceil(retry_after)))
    if isinstance(exc, ClientRequestError):
        upstream = exc.message or "the upstream rejected the request"
        return APIError(exc.status, upstream, code="upstream_rejected_request", headers=headers)
    return APIError(exc.status, exc.message, code=exc.code, headers=headers)


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    return exc.response()


async def http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = {404: f"no route for {request.method} {request.url.path}", 405: "method not allowed"}.get(
        exc.status_code, str(exc.detail)
    )
    return APIError(
        exc.status_code, message, code={404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
    ).response()


async def unhandled_error_handler(request: Request, exc: Exception) -> Response:
    request_id = request.scope.get("state", {}).get("request_id", "-")
    log.error("unhandled error in %s %s (request %s)", request.method, request.url.path, request_id, exc_info=exc)
    return APIError(500, f"internal error (request {request_id})", code="internal_error").response()
