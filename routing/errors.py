"""Errors of routing and upstream calls. The gateway maps them to HTTP status and OpenAI error JSON once."""

from __future__ import annotations

from typing import Any


class RoutingError(Exception):
    """Base of every error the executor raises."""

    status = 502
    code = "upstream_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UpstreamError(RoutingError):
    """One attempt failed. `kind`: connect, timeout, status, protocol, stream. Messages are secret-free."""

    def __init__(
        self,
        kind: str,
        message: str,
        status: int | None = None,
        retry_after: float | None = None,
        retryable: bool = True,
    ) -> None:
        super().__init__(message)
        self.kind, self.upstream_status, self.retry_after, self.retryable = kind, status, retry_after, retryable
        self.status = 504 if kind == "timeout" else 502


class ClientRequestError(RoutingError):
    """The upstream rejected the client's own request (400, 413, 422): returned to the client, never retried."""

    code = "invalid_request_error"

    def __init__(self, status: int, message: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.body = status, body


class AllAttemptsFailed(RoutingError):
    """Every attempt failed: 504 when the last failure was a timeout, else 502."""

    def __init__(self, message: str, last: UpstreamError | None) -> None:
        super().__init__(message)
        self.last = last
        self.status = 504 if last is not None and last.kind == "timeout" else 502
        self.code = "upstream_timeout" if self.status == 504 else "upstream_error"
        self.retry_after = last.retry_after if last is not None else None


class NoDeploymentAvailable(RoutingError):
    """No deployment can take the call now (all disabled, cooling down or full)."""

    status = 503
    code = "no_deployment_available"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(RoutingError):
    """Every deployment with room is at its limit: 429 with Retry-After and x-ratelimit-* headers."""

    status = 429
    code = "rate_limit_exceeded"

    def __init__(self, message: str, retry_after: float, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.retry_after, self.headers = retry_after, headers or {}
