"""Plan, execute and respond for one chat call (shared by /v1/chat/completions and /v1/completions)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from functools import partial
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.disconnect import ClientGone, unless_gone
from gateway.errors import APIError
from gateway.lifespan import Services
from gateway.openai.formats import ChatFormat, identity
from gateway.openai.reasoning import WithoutReasoning
from gateway.openai.relay import StreamRelay
from gateway.openai.request import ChatRequest
from gateway.requests import apply_routing_hints, client_info, refuse_unserved, unroutable
from gateway.telemetry.ledger import CallLedger
from routing.errors import GatewayError, UpstreamError
from routing.executor import Leg
from routing.manager import ModelRoute
from routing.request_routing import ProviderRouting, unsupported_dropped


def _clamp(payload: dict[str, Any], route: ModelRoute) -> dict[str, Any]:
    """max_tokens above the model's max_output_length is clamped; a whole float (`2048.0`, `1e300`: parse_chat
    checked it is whole) is made an int first, so it cannot slip past the comparison or reach the upstream."""
    limit = route.model.max_output_length
    for name in ("max_tokens", "max_completion_tokens"):
        value = payload.get(name)
        if isinstance(value, float):
            value = payload[name] = int(value) if value < limit else limit
        if isinstance(value, int) and not isinstance(value, bool) and value > limit:
            payload[name] = limit
    return payload


def _shaped(payload: dict[str, Any], route: ModelRoute, wants: ProviderRouting | None) -> dict[str, Any]:
    """The body as one model is sent it: max_tokens clamped to it, and (unless `provider.require_parameters`
    chose only models that take them all) without the parameters it declares it does not support."""
    shaped = _clamp(dict(payload), route)
    return shaped if wants is not None and wants.require_parameters else unsupported_dropped(route.model, shaped)


def fallback_routes(services: Services, names: Sequence[str], route: ModelRoute | None) -> list[ModelRoute]:
    """The models a call may be served by, in order: the one asked for, then its `models` list (a listed model
    that cannot serve now is passed over; one that does not exist is the client's mistake)."""
    routes = [route] if route is not None else []
    for name in names:
        other = services.manager.route(name)
        if other is None and services.config.resolve(name) is None:
            raise APIError(
                400, f"`models` names an unknown model: {name[:200]!r}", code="model_not_found", param="models"
            )
        if other is not None and all(other.model.id != r.model.id for r in routes):
            routes.append(other)
    return routes


def fallback_legs(services: Services, names: Sequence[str], route: ModelRoute, payload: dict[str, Any]) -> list[Leg]:
    """The `models` after the first, each sent the same payload (a surface whose payload is not chat's)."""
    return [Leg(other, payload) for other in fallback_routes(services, names, route)[1:]]


def _legs(services: Services, chat: ChatRequest, route: ModelRoute | None) -> list[Leg]:
    routes = fallback_routes(services, chat.fallbacks, route)
    return [Leg(r, _shaped(chat.payload, r, chat.wants)) for r in routes]


def _as_sent(original: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """The body the row records: the client's, with the output limits as the upstream got them (clamped)."""
    return {**original, **{k: payload[k] for k in ("max_tokens", "max_completion_tokens") if k in payload}}


async def run_chat(request: Request, services: Services, chat: ChatRequest, fmt: ChatFormat, endpoint: str) -> Any:
    """Execute a checked request and build the response (JSON, or the SSE relay); every call leaves one row.

    Bodies that are not JSON, too large or fail parse_chat are answered before this and leave no row: there is
    no checked model to attribute them to.
    """
    route = services.manager.route(chat.model)
    model = route.model if route else services.config.resolve(chat.model)
    request_id = request.scope["state"]["request_id"]
    ledger = services.books.open(
        request_id, chat.model, model, chat.original, client_info(request, endpoint), chat.stream
    )
    async with ledger.on_record(before_routing=True):
        legs = _legs(services, chat, route)
        if not legs:
            raise unroutable(model, chat.model)
        for leg in legs:
            refuse_unserved(leg.route.model, "chat")
        ledger.also_masks(leg.route.model for leg in legs[1:])
        await ledger.admit(chat.payload)
    first, then = legs[0], legs[1:]
    ledger.body = _as_sent(chat.original, first.payload)
    apply_routing_hints(request, ledger.call)
    ledger.dispatched = True
    if chat.hide_reasoning:
        fmt = WithoutReasoning(fmt)
    if chat.stream:
        opener = partial(
            services.executor.stream, first.route, first.payload, ledger.call, None, chat.wants, then, fmt.legacy
        )
        return StreamRelay(opener, fmt, ledger, services.settings.keepalive_interval, chat.include_usage)
    call = ledger.call
    try:
        work = services.executor.complete(first.route, first.payload, call, None, chat.wants, then, fmt.legacy)
        result = await unless_gone(request.receive, work, request.scope)
        dep = call.deployment  # the model that answered names the response (a `models` fallback's own)
        body = fmt.response(result, identity(request_id, call.model_id, dep.provider if dep else ""), ledger.usage())
        content = orjson.dumps(body)
    except orjson.JSONEncodeError:  # the upstream's answer nests deeper than JSON can be written back: on record
        raise await ledger.fail(UpstreamError("protocol", "the upstream's answer is nested too deeply")) from None
    except GatewayError as exc:
        raise await ledger.fail(exc) from None
    except ClientGone:  # its upstream request is cancelled (closed) already; the row says what was spent
        call.cancelled = True
        gone = APIError(499, "client disconnected before the answer", code="client_disconnected")
        raise await ledger.fail(gone) from None
    except asyncio.CancelledError:
        # not the client (unless_gone turns a disconnect into ClientGone): the server is shutting down
        await ledger.cancelled("call cancelled: the gateway was shutting down")
        raise
    except Exception as exc:
        raise await ledger.crash(exc) from None
    if services.call_log.settings.sync:
        await ledger.finish(200)  # sync mode (tests): the row exists before the client has its answer
        return Response(content, 200, ledger.headers(), media_type="application/json")
    return AnsweredFirst(content, ledger)


class AnsweredFirst(Response):
    """A JSON answer that does the call's bookkeeping (row, metrics, log line) right after handing its bytes to the
    server, in the same task and without yielding, so the client is not kept waiting for it."""

    def __init__(self, content: bytes, ledger: CallLedger) -> None:
        super().__init__(content, 200, ledger.headers(), media_type="application/json")
        self._ledger = ledger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:  # a client gone mid-send still gets its row
            await self._ledger.finish(200)
