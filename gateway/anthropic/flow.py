"""Plan, execute and respond for one Messages call and one token count, through the one call ledger."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from adapters.chat_messages import Relayed
from adapters.messages_chat import message_from_chat
from adapters.tokens import count_tokens, prompt_text
from gateway.anthropic.formats import as_upstream_wrote
from gateway.anthropic.relay import MessagesRelay
from gateway.anthropic.request import MessagesCall
from gateway.lifespan import Services
from gateway.openai.flow import AnsweredFirst, fallback_legs
from gateway.requests import client_info, unroutable
from gateway.telemetry.ledger import CallLedger
from routing.answers import speaks_messages
from routing.errors import GatewayError
from routing.executor import Leg
from routing.manager import ModelRoute

COUNT_SOURCE = "x-gateway-token-count"  # `upstream` or `estimate`


def _ledger(request: Request, services: Services, call: MessagesCall, endpoint: str) -> tuple[CallLedger, Any]:
    route = services.manager.route(call.model)
    model = route.model if route else services.config.resolve(call.model)
    request_id = request.scope["state"]["request_id"]
    ledger = services.books.open(
        request_id, call.model, model, call.original, client_info(request, endpoint), call.stream
    )
    return ledger, route


async def _admitted(ledger: CallLedger, call: MessagesCall, route: ModelRoute | None) -> ModelRoute:
    async with ledger.on_record(before_routing=True):
        if route is None:
            raise unroutable(ledger.model, call.model)
        await ledger.admit(call.payload)
    ledger.dispatched = True
    limit = route.model.max_output_length
    if isinstance(call.payload.get("max_tokens"), int) and call.payload["max_tokens"] > limit:
        call.payload["max_tokens"] = limit  # as on chat; a native deployment gets the body as the client wrote it
    return route


async def _complete(
    services: Services, ledger: CallLedger, route: ModelRoute, call: MessagesCall, then: Sequence[Leg] = ()
) -> dict[str, Any]:
    try:
        return await services.executor.complete(route, call.payload, ledger.call, None, call.wants, then)
    except GatewayError as exc:
        raise as_upstream_wrote(await ledger.fail(exc), ledger) from None
    except asyncio.CancelledError:
        await ledger.cancelled("call cancelled: the gateway was shutting down")
        raise
    except Exception as exc:
        raise await ledger.crash(exc) from None


async def _answer(services: Services, ledger: CallLedger, body: dict[str, Any], headers: dict[str, str]) -> Response:
    content = orjson.dumps(body)
    if services.call_log.settings.sync:
        await ledger.finish(200)  # sync mode (tests): the row exists before the client has its answer
        return Response(content, 200, {**ledger.headers(), **headers}, media_type="application/json")
    answer = AnsweredFirst(content, ledger)
    answer.headers.update(headers)
    return answer


async def run_messages(request: Request, services: Services, call: MessagesCall, endpoint: str) -> Any:
    """Execute a checked Messages request: a Message, or the SSE relay of Anthropic's events; one row."""
    ledger, found = _ledger(request, services, call, endpoint)
    route = await _admitted(ledger, call, found)
    try:
        then = fallback_legs(services, call.fallbacks, route, call.payload)
    except GatewayError as refused:
        raise as_upstream_wrote(await ledger.fail(refused), ledger) from None
    if call.stream:
        opener = partial(services.executor.stream, route, call.payload, ledger.call, None, call.wants, then)
        return MessagesRelay(opener, ledger, services.settings.keepalive_interval)
    result = await _complete(services, ledger, route, call, then)
    model = ledger.call.model_id
    if isinstance(result, Relayed):
        message = {**result.event, "model": model}
    else:
        message = message_from_chat(result, ledger.call.request_id, model)
    return await _answer(services, ledger, message, {})


def estimate(call: MessagesCall) -> int:
    """The gateway's own count (adapters/tokens.py): the prompt's text, tool calls and the tools' schemas."""
    text = prompt_text(call.payload.get("messages"))
    extra = [call.payload.get("tools") or []] + [m.get("tool_calls") for m in call.payload.get("messages") or ()]
    return count_tokens(text) + sum(count_tokens(orjson.dumps(x).decode()) for x in extra if x)


async def count_messages_tokens(request: Request, services: Services, call: MessagesCall, endpoint: str) -> Response:
    """`{"input_tokens": n}` from a deployment that counts them itself (anthropic kind, `messages: native`), else
    the gateway's estimate; the `x-gateway-token-count` header says which."""
    found = services.manager.route(call.model)
    native = tuple(e for e in found.entries if speaks_messages(e.deployment)) if found else ()
    if found is not None and not native:
        return JSONResponse({"input_tokens": estimate(call)}, headers={COUNT_SOURCE: "estimate"})
    ledger, _ = _ledger(request, services, call, endpoint)
    route = await _admitted(ledger, call, replace(found, entries=native) if found else None)
    result = await _complete(services, ledger, route, call)
    counted = result.event if isinstance(result, Relayed) else {}
    return await _answer(
        services, ledger, {"input_tokens": int(counted.get("input_tokens") or 0)}, {COUNT_SOURCE: "upstream"}
    )
