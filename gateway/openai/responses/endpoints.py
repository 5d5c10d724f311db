"""`/v1/responses`: create (translated to chat, or passed through to a native deployment), get, delete and
input_items of stored responses. Every create goes through the one call ledger and the executor, like chat."""

from __future__ import annotations

import time
from dataclasses import replace
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from adapters.responses_api import NATIVE
from gateway.calllog.responses import ResponseStore, StoredResponse
from gateway.errors import APIError
from gateway.lifespan import Services
from gateway.openai.flow import _shaped, fallback_routes
from gateway.openai.request import parse_chat
from gateway.openai.responses.events import EventTranslator
from gateway.openai.responses.inbound import chat_payload, input_items
from gateway.openai.responses.outbound import envelope, new_id, response_of
from gateway.openai.responses.relay import ResponsesRelay
from gateway.requests import client_info, read_json, unroutable
from routing.answers import RESPONSES_BODY
from routing.executor import Leg

ENDPOINT = "/v1/responses"


def _store(services: Services) -> ResponseStore:
    assert services.responses is not None  # built in the lifespan
    return services.responses


def _not_found(response_id: str) -> APIError:
    return APIError(404, f"Response with id '{response_id[:200]}' not found.", code="not_found", param="response_id")


async def _history(store: ResponseStore, body: dict[str, Any]) -> list[dict[str, Any]]:
    previous = body.get("previous_response_id")
    if previous is None:
        return []
    if not isinstance(previous, str):
        raise APIError(
            400, "`previous_response_id` must be a string", code="invalid_value", param="previous_response_id"
        )
    stored = await store.get(previous)
    if stored is None:
        raise APIError(
            404,
            f"Previous response with id '{previous[:200]}' not found.",
            code="previous_response_not_found",
            param="previous_response_id",
        )
    return stored.conversation()


_GATEWAY_ONLY = ("stream", "provider", "models")  # the gateway's to act on, never an upstream's to refuse


def _native_body(body: dict[str, Any], history: list[dict[str, Any]]) -> dict[str, Any]:
    """The body for a native deployment: the client's, but with any previous turns the gateway keeps inlined
    (the upstream may never have seen them: the first turn may have been served elsewhere)."""
    native = {k: v for k, v in body.items() if k not in _GATEWAY_ONLY}
    if history:
        native.pop("previous_response_id", None)
        native["input"] = [*(p for item in history if (p := _portable(item)) is not None), *input_items(body)]
    return native


def _portable(item: dict[str, Any]) -> dict[str, Any] | None:
    """A stored item as any upstream takes it back: without the item id and status another deployment (or the
    gateway) gave it, which this one would look up and not find; reasoning only when it is encrypted_content (the
    one form an upstream can verify), never another model's plain text."""
    if item.get("type") == "reasoning":
        return item if item.get("encrypted_content") else None
    return {k: v for k, v in item.items() if k not in ("id", "status")}


async def create_response(request: Request) -> Any:
    services: Services = request.app.state.services
    body = await read_json(request, services.settings.max_body_bytes)
    store = _store(services)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise APIError(400, "`stream` must be true or false", code="invalid_value", param="stream")
    this_turn = input_items(body)
    history = await _history(store, body)
    steering: dict[str, Any] = {k: body[k] for k in ("provider", "models") if k in body}  # OpenRouter's fields
    chat = parse_chat({**chat_payload(body, history), **steering, "stream": stream})
    route = services.manager.route(chat.model)
    model = route.model if route else services.config.resolve(chat.model)
    request_id = request.scope["state"]["request_id"]
    ledger = services.books.open(request_id, chat.model, model, chat.original, client_info(request, ENDPOINT), stream)
    async with ledger.on_record(before_routing=True):
        if route is None:
            raise unroutable(model, chat.model)
        routes = fallback_routes(services, chat.fallbacks, route)  # `models`: the ones to try next, in order
        await ledger.admit(chat.payload)
    native_body = _native_body(body, history)
    legs = [Leg(r, {**_shaped(chat.payload, r, chat.wants), RESPONSES_BODY: native_body}) for r in routes]
    payload, then = legs[0].payload, legs[1:]
    env = envelope(body, new_id("resp"), route.model.id, int(time.time()))  # the answering model, once known
    keep = body.get("store") is not False

    async def finished(response: dict[str, Any]) -> None:
        if keep and isinstance(response.get("id"), str):
            await store.put(StoredResponse(response["id"], call.model_id, request_id, history, this_turn, response))

    ledger.dispatched = True
    call = ledger.call
    if stream:
        opener = partial(services.executor.stream, route, payload, call, None, chat.wants, then)
        return ResponsesRelay(opener, ledger, services.settings.keepalive_interval, EventTranslator(env), finished)
    async with ledger.on_record():
        result = await services.executor.complete(route, payload, call, None, chat.wants, then)
    native = result.get(NATIVE)
    answered = replace(env, model=call.model_id)
    response = native if isinstance(native, dict) else response_of({**result, "usage": ledger.usage()}, answered)
    await finished(response)
    await ledger.finish(200)
    return JSONResponse(response, headers=ledger.headers())


async def get_response(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    response_id = request.path_params["response_id"]
    stored = await _store(services).get(response_id)
    if stored is None:
        raise _not_found(response_id)
    return JSONResponse(stored.response)


async def delete_response(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    response_id = request.path_params["response_id"]
    if not await _store(services).delete(response_id):
        raise _not_found(response_id)
    return JSONResponse({"id": response_id, "object": "response.deleted", "deleted": True})


def _listed(item: dict[str, Any], i: int, response_id: str) -> dict[str, Any]:
    """An input item as input_items lists it: with an id, and a message's text as an `input_text` part."""
    listed = {"id": f"msg_{response_id}_{i}", **item}
    if "role" in listed:
        listed.setdefault("type", "message")
        if isinstance(listed.get("content"), str):
            listed["content"] = [{"type": "input_text", "text": listed["content"]}]
    return listed


async def input_items_of(request: Request) -> Response:
    services: Services = request.app.state.services
    response_id = request.path_params["response_id"]
    stored = await _store(services).get(response_id)
    if stored is None:
        raise _not_found(response_id)
    data = [_listed(item, i, response_id) for i, item in enumerate(stored.input)]
    if request.query_params.get("order", "desc") == "desc":
        data.reverse()
    return JSONResponse(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": False,
        }
    )
