"""OpenRouter's error shapes, as the `openrouter` SDK's own models validate them, and x-should-retry per error."""

from __future__ import annotations

import pytest
from openrouter import components, errors

from gateway.errors import APIError, error_headers, openai_error, should_retry
from gateway.openai.formats import identity
from gateway.openai.openrouter import OpenRouterChatFormat, openrouter_error
from routing.errors import (
    AllAttemptsFailed,
    ClientRequestError,
    GatewayError,
    NoDeploymentAvailable,
    RateLimited,
    UpstreamError,
)

SDK_ERROR_DATA = {
    400: errors.BadRequestResponseErrorData,
    401: errors.UnauthorizedResponseErrorData,
    403: errors.ForbiddenResponseErrorData,
    404: errors.NotFoundResponseErrorData,
    413: errors.PayloadTooLargeResponseErrorData,
    422: errors.UnprocessableEntityResponseErrorData,
    429: errors.TooManyRequestsResponseErrorData,
    500: errors.InternalServerResponseErrorData,
    502: errors.BadGatewayResponseErrorData,
    503: errors.ServiceUnavailableResponseErrorData,
    504: errors.GatewayTimeoutResponseErrorData,
}
# each error, and whether a client's retry can help (None: no x-should-retry, the SDK decides)
CASES: list[tuple[GatewayError, bool | None]] = [
    (APIError(400, "bad", code="invalid_value", param="temperature"), False),
    (APIError(401, "who?", code="missing_api_key"), False),
    (APIError(403, "no", code="invalid_admin_key"), False),
    (APIError(404, "no such model", code="model_not_found", param="model"), False),
    (APIError(413, "too big", code="request_too_large"), False),
    (ClientRequestError(422, "the upstream said no"), False),
    (RateLimited("at the limit", 3.0), True),
    (APIError(500, "internal error", code="internal_error"), None),
    (AllAttemptsFailed("all failed", UpstreamError("status", "HTTP 500", status=500)), False),
    (NoDeploymentAvailable("every deployment is cooling down", 2.0), True),
    (NoDeploymentAvailable("no enabled deployment"), None),
    (AllAttemptsFailed("all timed out", UpstreamError("timeout", "slow")), False),
]


@pytest.mark.parametrize(("error", "retry"), CASES, ids=lambda c: getattr(c, "message", str(c)))
def test_each_error_validates_as_the_sdks_and_says_whether_to_retry(error: GatewayError, retry: bool | None) -> None:
    body = openrouter_error(error)
    parsed = SDK_ERROR_DATA[error.status].model_validate(body)
    assert parsed.error.code == error.status and parsed.error.message == error.message
    assert body["error"]["metadata"]["gateway_code"] == error.code
    assert should_retry(error) is retry
    expected = {True: "true", False: "false", None: None}[retry]
    assert error_headers(error).get("x-should-retry") == expected
    assert set(openai_error(error)["error"]) == {"message", "type", "param", "code"}  # OpenAI's is unchanged


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("upstream_error", 502),
        ("upstream_timeout", 504),
        ("no_deployment_available", 503),
        ("rate_limit_exceeded", 429),
        ("something_new", 502),
    ],
)
def test_the_mid_stream_error_chunk_validates_as_the_sdks(code: str, status: int) -> None:
    chunk = OpenRouterChatFormat().error_chunk(identity("gen-1", "m", "p"), code, "stream interrupted")
    parsed = components.ChatStreamChunk.model_validate(chunk)
    assert parsed.error is not None and parsed.error.code == status and parsed.choices[0].finish_reason == "error"
    assert parsed.error.metadata is not None and parsed.error.metadata.error_type != ""
    assert chunk["error"]["metadata"]["gateway_code"] == code


def test_a_completion_carries_the_key_the_sdk_requires() -> None:
    result = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]}
    body = OpenRouterChatFormat().response(result, identity("gen-1", "m", "p"), None)
    assert components.ChatResult.model_validate(body).system_fingerprint is None
