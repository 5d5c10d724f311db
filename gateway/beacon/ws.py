"""WS /ws: Beacon's real-time channel (inference streamed as chunks, health and call events); GET /ws: a hint."""

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

from gateway.beacon.flow import InferenceRequest, failure, parse_inference, run_inference
from gateway.lifespan import Services
from gateway.middleware import new_request_id
from gateway.requests import client_info
from gateway.telemetry.recording import ClientInfo
from routing.errors import GatewayError

log = logging.getLogger("gateway.ws")


async def ws_hint(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "status": "ok",
            "message": "This is a WebSocket endpoint. Connect with a WebSocket client to ws(s)://<host>/ws; send "
            '{"type": "inference", "model": ..., "prompt": ...} or {"type": "subscribe"}.',
        }
    )


async def websocket(ws: WebSocket) -> None:
    services: Services = ws.app.state.services
    await ws.accept()
    await ws.send_json({"type": "connection", "status": "connected", "timestamp": time.time()})
    tasks: set[asyncio.Task[None]] = set()
    client = client_info(ws, "/ws")
    lock = asyncio.Lock()  # one writer at a time: inference chunks and subscription events interleave

    async def send(message: dict[str, Any]) -> None:
        async with lock:
            await ws.send_text(orjson.dumps(message).decode())

    try:
        while True:
            text = await ws.receive_text()
            try:
                message = orjson.loads(text)
            except orjson.JSONDecodeError:
                message = None
            kind = message.get("type") if isinstance(message, dict) else None
            if kind == "inference":
                await _start_inference(services, tasks, message, client, send)
            elif kind == "subscribe" and not any(t.get_name() == "subscription" for t in tasks):
                _spawn(tasks, _subscription(services, send), name="subscription")
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


async def _subscription(services: Services, send: Any) -> None:
    sub = services.events.subscribe()
    try:
        while True:
            await send(await sub.get())
    finally:
        sub.close()
