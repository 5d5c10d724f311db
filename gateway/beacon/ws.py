"""WS /ws: Beacon's real-time channel (inference streamed as chunks, health and call events); GET /ws: a hint."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway.beacon.flow import BeaconError, InferenceRequest, failure, parse_inference, run_inference
from gateway.lifespan import Services
from gateway.middleware import new_request_id
from gateway.telemetry.recording import ClientInfo

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
    client = ClientInfo(
        ip=ws.client.host if ws.client else "",
        endpoint="/ws",
        api_key_name=ws.scope.get("state", {}).get("api_key_name", ""),
    )
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
    """Check the message and the client's stream budget (shared with HTTP streams), then run it as a task."""
    request_id = new_request_id()
    try:
        req = parse_inference(message)
    except BeaconError as exc:
        await send({"type": "result", **failure("INVALID_REQUEST", exc.message, request_id, "")})
        return
    cap = services.stream_cap
    holder = client.api_key_name or client.ip  # the key chat_flow uses, so both paths draw on one budget
    lease = await cap.acquire(holder)
    if lease is None:
        error = f"too many concurrent streams for this client (limit {cap.limit})"
        await send({"type": "result", **failure("NO_PROVIDER_AVAILABLE", error, request_id, req.trace_id)})
        return
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            released = True
            cap.release(lease)

    task = _spawn(tasks, _inference(services, req, request_id, client, send, release))
    # also a done callback: a task cancelled before its first step never runs its body
    task.add_done_callback(lambda _: release())


async def _inference(
    services: Services,
    req: InferenceRequest,
    request_id: str,
    client: ClientInfo,
    send: Any,
    release: Callable[[], None],
) -> None:
    async def on_chunk(piece: str) -> None:
        await send({"type": "chunk", "request_id": request_id, "content": piece})

    try:
        _, result = await run_inference(services, req, request_id, client, on_chunk=on_chunk)
    finally:
        release()  # before the result goes out: a client answering it at once finds its slot free
    await send({"type": "result", **result})


async def _subscription(services: Services, send: Any) -> None:
    sub = services.events.subscribe()
    try:
        while True:
            await send(await sub.get())
    finally:
        sub.close()
