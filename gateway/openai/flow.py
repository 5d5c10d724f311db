"""Plan, execute and respond for one chat call (shared by /v1/chat/completions and /v1/completions)."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.lifespan import Services
from gateway.openai.formats import ChatFormat, identity
from gateway.openai.relay import StreamRelay
from gateway.openai.request import ChatRequest
from gateway.requests import apply_routing_hints, client_info, unroutable
from gateway.telemetry.ledger import CallLedger
from routing.errors import GatewayError
from routing.manager import ModelRoute


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
    try:
        if route is None:
            raise unroutable(model, chat.model)
        await ledger.admit(chat.payload)
    except GatewayError as refused:
        raise await ledger.fail(refused) from None
    except asyncio.CancelledError:
        await ledger.cancelled("call cancelled before routing: the gateway was shutting down")
        raise
    except Exception as exc:
        raise await ledger.crash(exc) from None
    payload = _clamp(chat.payload, route)
    apply_routing_hints(request, ledger.call)
    ledger.dispatched = True
    if chat.stream:
        opener = partial(services.executor.stream, route, payload, ledger.call)
        return StreamRelay(opener, fmt, ledger, services.settings.keepalive_interval, chat.include_usage)
    call = ledger.call
    try:
        result = await services.executor.complete(route, payload, call)
        dep = call.deployment
        body = fmt.response(result, identity(request_id, route.model.id, dep.provider if dep else ""), ledger.usage())
    except GatewayError as exc:
        raise await ledger.fail(exc) from None
    except asyncio.CancelledError:
        # uvicorn cancels a plain handler only at shutdown (it does not watch disconnects for it)
        await ledger.cancelled("call cancelled: the gateway was shutting down")
        raise
    except Exception as exc:
        raise await ledger.crash(exc) from None
    content = orjson.dumps(body)
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
