"""The error tree. Every error the gateway answers with carries its HTTP status, a surface-neutral `category`
and a code; each API surface (OpenAI, Beacon, ...) only renders them in its own shape.

    GatewayError                      status, category, code, param, upstream_type, headers
    ├── RoutingError                  raised by the executor and the transport
    │   ├── UpstreamError             one attempt failed (connect, timeout, status, protocol, stream)
    │   ├── ClientRequestError        the upstream rejected the client's own request (400, 413, 422): its
    │   │                             code, param and type are relayed, the gateway's own code stands in
    │   │                             only when it sent none
    │   ├── AllAttemptsFailed         502, or 504 when the last failure was a timeout
    │   ├── NoDeploymentAvailable     503
    │   ├── NoMatchingDeployment      404: the request's own routing constraints left no deployment
    │   ├── RateLimited               429 with Retry-After and x-ratelimit-* headers
    │   └── BudgetExceeded            402: the client key's spend budget cannot take the call until it resets
    │                                 (a `models` fallback may still fit a cheaper model)
    └── (gateway.errors.APIError)     the gateway's own refusals: bad input, keys, limits
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

Category = Literal[
    "invalid_request",
    "authentication",
    "permission",
    "not_found",
    "too_large",
    "billing",
    "rate_limited",
    "unavailable",
    "upstream",
    "timeout",
    "internal",
]
"""What went wrong, in words every surface can map to its own vocabulary."""

CATEGORY_OF_STATUS: dict[int, Category] = {
    400: "invalid_request",
    401: "authentication",
    402: "billing",
    403: "permission",
    404: "not_found",
    405: "invalid_request",
    413: "too_large",
    415: "invalid_request",
    422: "invalid_request",
    429: "rate_limited",
    431: "too_large",
    499: "invalid_request",
    502: "upstream",
    503: "unavailable",
    504: "timeout",
}


def category_of_status(status: int) -> Category:
    """The category an HTTP status stands for when nothing more is known."""
    return CATEGORY_OF_STATUS.get(status) or ("internal" if status >= 500 else "invalid_request")


class GatewayError(Exception):
    """Base of every error the gateway answers with."""

    status = 500
    code: str | None = "internal_error"
    category: Category = "internal"
    param: str | None = None
    upstream_type: str | None = None  # a relayed error: the upstream's own type, for a surface of its schema
    retry_after: float | None = None

    def __init__(self, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra_headers = {k.lower(): v for k, v in (headers or {}).items()}

    @property
    def headers(self) -> dict[str, str]:
        """Response headers that go with the error (lower-case names): Retry-After when a wait is known."""
        headers = {"retry-after": str(max(1, math.ceil(self.retry_after)))} if self.retry_after else {}
        headers.update(self.extra_headers)
        return headers


class RoutingError(GatewayError):
    """Base of every error the executor raises."""

    status = 502
    code = "upstream_error"
    category: Category = "upstream"


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
        timeout = kind == "timeout"
        self.status = 504 if timeout else 502
        self.code = "upstream_timeout" if timeout else "upstream_error"
        self.category = "timeout" if timeout else "upstream"


class ClientRequestError(RoutingError):
    """The upstream rejected the client's own request (400, 413, 422): returned to the client, never retried."""

    code = "upstream_rejected_request"

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        upstream_type: str | None = None,
    ) -> None:
        super().__init__(message or "the upstream rejected the request")
        self.status = status
        self.category = category_of_status(status)
        self.code = code or ClientRequestError.code
        self.param, self.upstream_type = param, upstream_type


class AllAttemptsFailed(RoutingError):
    """Every attempt failed: 504 when the last failure was a timeout, else 502."""

    def __init__(self, message: str, last: UpstreamError | None) -> None:
        super().__init__(message)
        self.last = last
        timeout = last is not None and last.kind == "timeout"
        self.status = 504 if timeout else 502
        self.code = "upstream_timeout" if timeout else "upstream_error"
        self.category = "timeout" if timeout else "upstream"
        self.retry_after = last.retry_after if last is not None else None


class NoDeploymentAvailable(RoutingError):
    """No deployment can take the call now (all disabled, cooling down or full)."""

    status = 503
    code = "no_deployment_available"
    category: Category = "unavailable"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NoMatchingDeployment(RoutingError):
    """The request's `provider` constraints left none of the model's deployments: 404, as OpenRouter answers,
    naming the constraint that emptied the list (a retry cannot help)."""

    status = 404
    code = "no_matching_deployment"
    category: Category = "not_found"


class RateLimited(RoutingError):
    """Every deployment with room is at its limit: 429 with Retry-After and x-ratelimit-* headers."""

    status = 429
    code = "rate_limit_exceeded"
    category: Category = "rate_limited"

    def __init__(self, message: str, retry_after: float, headers: dict[str, str] | None = None) -> None:
        super().__init__(message, headers)
        self.retry_after = retry_after


class BudgetExceeded(RoutingError):
    """The client key's spend budget cannot take the call: 402, with when it resets (message, Retry-After)."""

    status = 402
    code = "budget_exceeded"
    category: Category = "billing"

    def __init__(self, message: str, retry_after: float, resets_at: str) -> None:
        super().__init__(message)
        self.retry_after, self.resets_at = retry_after, resets_at
