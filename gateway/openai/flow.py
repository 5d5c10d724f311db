"""Plan, execute and respond for one chat call (shared by /v1/chat/completions and /v1/completions)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from adapters.redact import redact
from gateway.calllog.record import CallRecord
from gateway.errors import APIError, from_routing
from gateway.lifespan import Services
from gateway.openai.formats import ChatFormat, Identity, identity
from gateway.openai.relay import Finish, StreamRelay
from gateway.openai.request import ChatRequest
from gateway.telemetry.events import call_event
from gateway.telemetry.recording import ClientInfo, build_record, cost_of, secrets_of, usage_with_cost
from routing.call import Call
from routing.errors import RoutingError
from routing.limits.admission import settled_tokens
from routing.limits.ratelimit import Denial, Reservation, client_limit, estimate_tokens
from routing.limits.streams import Lease
from routing.manager import ModelRoute
from routing.stream import UpstreamStream, total_tokens

log = logging.getLogger("gateway.calls")

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def client_info(request: Request, endpoint: str) -> ClientInfo:
    headers = request.headers
    return ClientInfo(
        ip=request.client.host if request.client else "",
        api_key_name=request.scope.get("state", {}).get("api_key_name", ""),
        endpoint=endpoint,
        referer=headers.get("http-referer", "") or headers.get("referer", ""),
        title=headers.get("x-title", ""),
        session_id=headers.get("x-session-id", ""),
    )


def unroutable(services: Services, name: str) -> APIError:
    """404 for a model nobody configured; 503 for a configured one whose deployments are all disabled."""
    model = services.config.resolve(name)
    if model is None:
        return APIError(
            404, f"model {name!r} does not exist; see GET /v1/models", code="model_not_found", param="model"
        )
    why = "; ".join(f"{d.name}: {d.disabled_reason or 'disabled'}" for d in model.deployments) or "none configured"
    return APIError(503, f"no deployment of model {model.id} is available: {why}", code="no_deployment_available")


def _clamp(payload: dict[str, Any], route: ModelRoute) -> dict[str, Any]:
    limit = route.model.max_output_length
    for name in ("max_tokens", "max_completion_tokens"):
        value = payload.get(name)
        if isinstance(value, int) and value > limit:
            payload[name] = limit
    return payload


def _deployment_headers(call: Call, committed_stream: bool = False) -> dict[str, str]:
    """Who served and after how many attempts; a committed stream records its own attempt only when it ends."""
    dep = call.deployment
    headers = {"x-gateway-attempts": str(len(call.attempts) + committed_stream)}
    if dep is not None:
        headers["x-gateway-deployment"] = dep.name
        headers["x-gateway-provider"] = dep.provider
    return headers


async def reserve_client(services: Services, holder: str, chat: ChatRequest) -> Reservation | None:
    """Client-side limits (CLIENT_RPM / CLIENT_TPM) per API key name, else per client IP."""
    settings = services.settings
    if not (settings.client_rpm or settings.client_tpm):
        return None
    limit = client_limit(holder or "anonymous", settings.client_rpm, settings.client_tpm)
    max_tokens = chat.payload.get("max_tokens") or chat.payload.get("max_completion_tokens")
    tokens = estimate_tokens(chat.payload.get("messages") or (), max_tokens if isinstance(max_tokens, int) else None)
    outcome = await services.limiter.reserve([limit], tokens)
    if isinstance(outcome, Denial):
        services.metrics.rate_limited("client", "")
        raise APIError(
            429,
            f"rate limit for this client reached ({outcome.exhausted} per minute); retry in {outcome.retry_after:.1f}s",
            code="rate_limit_exceeded",
            headers=outcome.headers(),
        )
    return outcome


async def settle_client(services: Services, reservation: Reservation, call: Call, status: int) -> None:
    """The deployments' rule (`settled_tokens`): nothing delivered releases, reported usage settles, no usage
    lets the reservation stand."""
    tokens = settled_tokens(total_tokens(call), status == 200 or call.first_token_at is not None)
    try:
        if tokens == 0:
            await services.limiter.release(reservation)
        elif tokens is not None:
            await services.limiter.settle(reservation, tokens)
    except Exception as exc:  # the limiter's store being down must not fail a finished call
        log.warning("client rate limit settle failed: %s", type(exc).__name__)


async def run_chat(request: Request, services: Services, chat: ChatRequest, fmt: ChatFormat, endpoint: str) -> Any:
    """Execute a checked request and build the response (JSON, or the SSE relay); every call leaves one row.

    Bodies that are not JSON, too large or fail parse_chat are answered before this and leave no row: there is
    no checked model to attribute them to.
    """
    request_id = request.scope["state"]["request_id"]
    route = services.manager.route(chat.model)
    model = route.model if route else services.config.resolve(chat.model)
    # a made-up model name goes in the row (what was asked) but never in a metric label (unbounded)
    call = Call(request_id=request_id, model_id=model.id if model else chat.model[:200], stream=chat.stream)
    client = client_info(request, endpoint)
    settings = services.settings
    holder = client.api_key_name or client.ip
    secrets = secrets_of(model.deployments) if model else ()
    finished, executed = False, False
    stream_lease: Lease | None = None
    client_reservation: Reservation | None = None
    priced: list[float] = []

    def cost() -> float:
        if not priced:  # priced once, after the serving attempt: the response and the row show one figure
            priced.append(cost_of(call))
        return priced[0]

    async def finish(status: int, error: str) -> None:
        nonlocal finished
        if finished:
            return
        finished = True
        if stream_lease is not None:
            services.stream_cap.release(stream_lease)
        record = build_record(call, chat.original, status, error, client, settings.log_content, cost(), secrets)
        services.metrics.observe_call(record if model else replace(record, model_id=""), call.upstream_wait)
        if status == 429 and executed and model:
            services.metrics.rate_limited("deployment", model.id)
        if services.events.subscribers:
            services.events.publish(call_event(record))
        if services.call_log.settings.sync or client_reservation is not None:
            # these awaits can suspend: a client leaving meanwhile must not cancel the row (or the settle)
            await asyncio.shield(persist(record, status))
        else:
            await services.call_log.write(record)  # a non-blocking enqueue: nothing here can be cancelled
        log.log(
            logging.WARNING if status >= 500 else logging.INFO,
            "call",
            extra={
                "request_id": request_id,
                "model": record.model_id,
                "deployment": record.deployment,
                "provider": record.provider,
                "status": status,
                "stream": record.stream,
                "latency_ms": round(record.latency_ms, 2),
                "ttft_ms": None if record.ttft_ms is None else round(record.ttft_ms, 2),
                "attempts": len(record.attempts),
                "tokens": record.total_tokens,
                "error": record.error or None,
            },
        )

    async def persist(record: CallRecord, status: int) -> None:
        try:
            await services.call_log.write(record)
        finally:  # the reservation is given back on every path, or the client's budget leaks
            if client_reservation is not None:
                await settle_client(services, client_reservation, call, status)

    try:
        if route is None:
            raise unroutable(services, chat.model)
        # the stream cap first: a refused stream must not hold a rate-limit reservation
        if chat.stream:
            stream_lease = await services.stream_cap.acquire(holder)
            if stream_lease is None:
                raise APIError(
                    429,
                    f"too many concurrent streams for this client (limit {services.stream_cap.limit})",
                    code="too_many_streams",
                    type_="rate_limit_error",
                )
        client_reservation = await reserve_client(services, holder, chat)
    except APIError as refused:
        await finish(refused.status, refused.message)
        raise
    except asyncio.CancelledError:
        await asyncio.shield(finish(503, "call cancelled before routing: the gateway was shutting down"))
        raise
    except Exception as exc:
        raise await _internal_error(finish, request_id, exc) from None
    payload = _clamp(chat.payload, route)
    executed = True
    if chat.stream:
        return _relay(services, route, payload, call, fmt, chat, cost, finish, secrets)
    try:
        result = await services.executor.complete(route, payload, call)
        dep = call.deployment
        who = identity(request_id, route.model.id, dep.provider if dep else "")
        body = fmt.response(result, who, usage_with_cost(call, cost()))
    except RoutingError as exc:
        error = from_routing(_redacted(exc, secrets))
        await finish(error.status, error.message)
        error.headers.update(_deployment_headers(call))
        raise error from None
    except asyncio.CancelledError:
        # uvicorn cancels a plain handler only at shutdown (it does not watch disconnects for it)
        call.cancelled = True
        await asyncio.shield(finish(503, "call cancelled: the gateway was shutting down"))
        raise
    except Exception as exc:
        raise await _internal_error(finish, request_id, exc) from None
    content, headers = orjson.dumps(body), _deployment_headers(call)
    if services.call_log.settings.sync:
        await finish(200, "")  # sync mode (tests): the row exists before the client has its answer
        return Response(content, 200, headers, media_type="application/json")
    return AnsweredFirst(content, headers, lambda: finish(200, ""))


class AnsweredFirst(Response):
    """A JSON answer that does the call's bookkeeping (row, metrics, log line) right after handing its bytes to the
    server, in the same task and without yielding, so the client is not kept waiting for it."""

    def __init__(self, content: bytes, headers: dict[str, str], after: Callable[[], Awaitable[None]]) -> None:
        super().__init__(content, 200, headers, media_type="application/json")
        self._after = after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:  # a client gone mid-send still gets its row
            await self._after()


async def _internal_error(finish: Finish, request_id: str, exc: Exception) -> APIError:
    """A task boundary: the log gets the traceback, the row a short error, the client OpenAI error JSON."""
    log.error("call failed unexpectedly (request %s)", request_id, exc_info=exc)
    await asyncio.shield(finish(500, f"internal error ({type(exc).__name__})"))
    return APIError(500, f"internal error (request {request_id})", code="internal_error")


def _redacted(exc: RoutingError, secrets: tuple[str, ...]) -> RoutingError:
    """The error with the model's known secrets masked (adapters mask what looks like a key, not every key)."""
    exc.message = redact(exc.message, secrets)
    exc.args = (exc.message,)
    return exc


def _relay(
    services: Services,
    route: ModelRoute,
    payload: dict[str, Any],
    call: Call,
    fmt: ChatFormat,
    chat: ChatRequest,
    cost: Callable[[], float],
    finish: Finish,
    secrets: tuple[str, ...],
) -> StreamRelay:
    request_id = call.request_id

    async def opener() -> UpstreamStream:
        try:
            return await services.executor.stream(route, payload, call)
        except RoutingError as exc:
            raise _redacted(exc, secrets) from None

    def who(stream: UpstreamStream | None) -> Identity:
        dep = stream.deployment if stream else call.deployment
        return identity(request_id, route.model.id, dep.provider if dep else "")

    def headers(stream: UpstreamStream | None) -> list[tuple[bytes, bytes]]:
        extra = _deployment_headers(call, committed_stream=True) if stream else {}
        return [*SSE_HEADERS, *((k.encode(), v.encode()) for k, v in extra.items())]

    return StreamRelay(
        opener=opener,
        call=call,
        fmt=fmt,
        who=who,
        usage=lambda: usage_with_cost(call, cost()) if chat.include_usage else None,
        finish=finish,
        keepalive=services.settings.keepalive_interval,
        headers=headers,
    )
