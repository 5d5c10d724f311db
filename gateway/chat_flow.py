"""Plan, execute and respond for one chat call (shared by /v1/chat/completions and /v1/completions)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.chat_request import ChatRequest
from gateway.errors import APIError, from_routing
from gateway.events import call_event
from gateway.formats import ChatFormat, Identity, identity
from gateway.recording import ClientInfo, build_record, usage_with_cost
from gateway.services import Services
from gateway.storage.record import CallRecord
from gateway.streaming import StreamRelay
from routing.call import Call
from routing.errors import RoutingError
from routing.manager import ModelRoute
from routing.ratelimit import Denial, Reservation, client_limit, estimate_tokens
from routing.stream import UpstreamStream

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


def resolve(services: Services, chat: ChatRequest) -> ModelRoute:
    route = services.manager.route(chat.model)
    if route is None:
        raise APIError(
            404,
            f"model {chat.model!r} does not exist or has no deployment available; see GET /v1/models",
            code="model_not_found",
            param="model",
        )
    return route


def _clamp(payload: dict[str, Any], route: ModelRoute) -> dict[str, Any]:
    limit = route.model.max_output_length
    for name in ("max_tokens", "max_completion_tokens"):
        value = payload.get(name)
        if isinstance(value, int) and value > limit:
            payload[name] = limit
    return payload


def _deployment_headers(call: Call) -> dict[str, str]:
    dep = call.deployment
    headers = {"x-gateway-attempts": str(len(call.attempts))}
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


async def settle_client(services: Services, reservation: Reservation, tokens: int | None) -> None:
    try:
        if tokens is None:
            await services.limiter.release(reservation)
        else:
            await services.limiter.settle(reservation, tokens)
    except Exception as exc:  # the limiter's store being down must not fail a finished call
        log.warning("client rate limit settle failed: %s", type(exc).__name__)


async def run_chat(request: Request, services: Services, chat: ChatRequest, fmt: ChatFormat, endpoint: str) -> Any:
    """Execute a checked request and build the response (JSON, or the SSE relay)."""
    route = resolve(services, chat)
    payload = _clamp(chat.payload, route)
    request_id = request.scope["state"]["request_id"]
    call = Call(request_id=request_id, model_id=route.model.id, stream=chat.stream)
    client = client_info(request, endpoint)
    settings = services.settings
    holder = client.api_key_name or client.ip
    finished = False
    client_reservation = await reserve_client(services, holder, chat)

    async def finish(status: int, error: str) -> None:
        nonlocal finished
        if finished:
            return
        finished = True
        if chat.stream:
            services.stream_cap.release(holder)
        record = build_record(call, chat.original, status, error, client, settings.log_content)
        services.metrics.observe_call(record, call.upstream_wait)
        if status == 429:
            services.metrics.rate_limited("deployment", route.model.id)
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
                "error": error or None,
            },
        )

    async def persist(record: CallRecord, status: int) -> None:
        await services.call_log.write(record)
        if client_reservation is not None:
            await settle_client(services, client_reservation, record.total_tokens if status == 200 else None)

    if chat.stream:
        if not services.stream_cap.acquire(holder):
            raise APIError(
                429,
                f"too many concurrent streams for this client (limit {services.stream_cap.limit})",
                code="too_many_streams",
                type_="rate_limit_error",
            )

        def who(stream: UpstreamStream | None) -> Identity:
            dep = stream.deployment if stream else call.deployment
            return identity(request_id, route.model.id, dep.provider if dep else "")

        def headers(stream: UpstreamStream | None) -> list[tuple[bytes, bytes]]:
            extra = _deployment_headers(call) if stream else {}
            return [*SSE_HEADERS, *((k.encode(), v.encode()) for k, v in extra.items())]

        return StreamRelay(
            opener=lambda: services.executor.stream(route, payload, call),
            call=call,
            fmt=fmt,
            who=who,
            usage=lambda: usage_with_cost(call) if chat.include_usage else None,
            finish=finish,
            keepalive=settings.keepalive_interval,
            headers=headers,
        )
    try:
        result = await services.executor.complete(route, payload, call)
    except RoutingError as exc:
        error = from_routing(exc)
        await finish(error.status, error.message)
        error.headers.update(_deployment_headers(call))
        raise error from None
    dep = call.deployment
    body = fmt.response(
        result, identity(request_id, route.model.id, dep.provider if dep else ""), usage_with_cost(call)
    )
    await finish(200, "")
    return Response(orjson.dumps(body), 200, _deployment_headers(call), media_type="application/json")
