"""WS /ws: Beacon's real-time channel (inference streamed as chunks, health and call events); GET /ws: a hint.

Browsers let any page open a WebSocket to any host (CORS does not apply), so a handshake that carries an
`Origin` is accepted only from the gateway's own origin (its dashboard) or CORS_ORIGINS (or with `*` in it);
others get 403 before the socket opens.
Clients that send no Origin (servers, CLIs) are not browsers and are let through. Messages are JSON text: a
binary frame closes the socket with 1003 (unsupported data). A subscription streams `provider_health` to
everyone, and `call_completed` only for the subscriber's own API key (every call for the admin key, and for
everyone on an open gateway, where every caller is anonymous).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway.access import AccessPolicy
from gateway.beacon.flow import InferenceRequest, failure, parse_inference, run_inference
from gateway.lifespan import Services
from gateway.middleware import new_request_id
from gateway.requests import client_info
from gateway.session import same_origin
from gateway.telemetry.recording import ClientInfo
from routing.errors import GatewayError

log = logging.getLogger("gateway.ws")

ADMIN_KEY_NAMES = frozenset({"admin", "local-admin"})  # the names gateway.access gives the admin key
UNSUPPORTED_DATA = 1003  # RFC 6455 7.4.1: a type of data the endpoint cannot accept


async def ws_hint(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "status": "ok",
            "message": "This is a WebSocket endpoint. Connect with a WebSocket client to ws(s)://<host>/ws; send "
            '{"type": "inference", "model": ..., "prompt": ...} or {"type": "subscribe"}.',
        }
    )


def origin_allowed(origin: str | None, allowed: tuple[str, ...]) -> bool:
    """Whether a handshake's Origin may open the socket: none (not a browser), or one CORS_ORIGINS lists."""
    return origin is None or "*" in allowed or origin in allowed


async def websocket(ws: WebSocket) -> None:
    services: Services = ws.app.state.services
    if not (same_origin(ws.scope) or origin_allowed(ws.headers.get("origin"), services.settings.cors_origins)):
        await ws.close(code=1008)  # before accept(): the server answers the handshake with 403
        return
    await ws.accept()
    await ws.send_json({"type": "connection", "status": "connected", "timestamp": time.time()})
    tasks: set[asyncio.Task[None]] = set()
    client = client_info(ws, "/ws")
    policy: AccessPolicy = ws.app.state.access
    sees_all = policy.open or client.api_key_name in ADMIN_KEY_NAMES
    lock = asyncio.Lock()  # one writer at a time: inference chunks and subscription events interleave

    async def send(message: dict[str, Any]) -> None:
        async with lock:
            await ws.send_text(orjson.dumps(message).decode())

    try:
        while True:
            frame = await ws.receive()
            if frame["type"] == "websocket.disconnect":
                break
            text = frame.get("text")
            if text is None:
                async with lock:
                    await ws.close(UNSUPPORTED_DATA, "binary frames are not supported: send JSON text")
                break
            try:
                message = orjson.loads(text)
            except orjson.JSONDecodeError:
                message = None
            kind = message.get("type") if isinstance(message, dict) else None
            if kind == "inference":
                await _start_inference(services, tasks, message, client, send)
            elif kind == "subscribe" and not any(t.get_name() == "subscription" for t in tasks):
                _spawn(tasks, _subscription(services, client.api_key_name, sees_all, send), name="subscription")
                await send(
                    {"type": "subscribed", "events": ["provider_health", "call_completed"], "timestamp": time.time()}
                )
            elif kind == "ping":
                await send({"type": "pong", "timestamp": time.time()})
            else:
                await send({"type": "echo", "data": text, "timestamp": time.time()})
    except WebSocketDisconnect:
        pass
    finally:
        for task in tasks:
            task.cancel()
        for task in list(tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _spawn(tasks: set[asyncio.Task[None]], coro: Any, name: str | None = None) -> asyncio.Task[None]:
    task = asyncio.get_running_loop().create_task(coro, name=name)
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return task


async def _start_inference(
    services: Services, tasks: set[asyncio.Task[None]], message: dict[str, Any], client: ClientInfo, send: Any
) -> None:
    """Check the message, then run it as a task; its ledger takes a slot of the client's stream budget (shared
    with HTTP streams) and its client rate limits, and gives the slot back before the result goes out."""
    request_id = new_request_id()
    try:
        req = parse_inference(message)
    except GatewayError as exc:
        await send({"type": "result", **failure(exc, request_id, "")})
        return
    _spawn(tasks, _inference(services, req, request_id, client, send))


async def _inference(services: Services, req: InferenceRequest, request_id: str, client: ClientInfo, send: Any) -> None:
    async def on_chunk(piece: str) -> None:
        await send({"type": "chunk", "request_id": request_id, "content": piece})

    answer = await run_inference(services, req, request_id, client, on_chunk=on_chunk)
    await send({"type": "result", **answer.body})


async def _subscription(services: Services, key_name: str, sees_all: bool, send: Any) -> None:
    sub = services.events.subscribe(key_name, sees_all=sees_all)
    try:
        while True:
            await send(await sub.get())
    finally:
        sub.close()
