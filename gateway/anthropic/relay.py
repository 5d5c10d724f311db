"""The Messages stream relay: the chat surface's SSE relay (headers held to the commit point, keep-alives, client
disconnects) speaking Anthropic's events. A native deployment's own events (its `error` event too) are relayed as
they came; chat chunks
from any other deployment are translated as they arrive (EventWriter). A failure before the commit is an HTTP
error in Anthropic's shape, after it one `error` event, never a silent end."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.types import Send

from adapters.chat_messages import Relayed
from adapters.messages_chat import EventWriter
from gateway.anthropic.formats import as_upstream_wrote, error_body, error_event, event
from gateway.errors import error_headers
from gateway.openai.formats import ChatFormat
from gateway.openai.relay import StreamRelay
from gateway.telemetry.ledger import CallLedger
from routing.errors import GatewayError, UpstreamError
from routing.stream import UpstreamStream


class MessagesRelay(StreamRelay):
    """Relays one Messages stream to one client, booked by `ledger`."""

    def __init__(self, opener: Callable[[], Awaitable[UpstreamStream]], ledger: CallLedger, keepalive: float) -> None:
        super().__init__(opener, ChatFormat(), ledger, keepalive, include_usage=False)

    async def _fail_before_commit(self, send: Send, error: GatewayError) -> None:
        error = as_upstream_wrote(error, self.ledger)
        if self._started:  # keep-alives went out: the status is sent, so the error is an event
            await self._body(send, error_event(error), more=False)
            return
        extra = ((k.encode(), v.encode()) for k, v in error_headers(error).items())
        await self._start(send, error.status, [(b"content-type", b"application/json"), *extra])
        await self._body(send, orjson.dumps(error_body(error)), more=False)

    async def _forward(self, send: Send, upstream: UpstreamStream) -> None:
        call = self.ledger.call
        writer = EventWriter(call.request_id, call.model_id)
        if not self._started:
            await self._start(send, 200, self._headers(committed=True))
        translating = relayed_error = False
        try:
            async with contextlib.aclosing(upstream.batches()) as batches:
                async for batch in batches:
                    events: list[dict[str, Any]] = []
                    for chunk in batch:
                        if isinstance(chunk, Relayed):
                            events.append(self._named(chunk.event, call.model_id))
                            relayed_error = relayed_error or chunk.event.get("type") == "error"
                            continue
                        if not translating:
                            translating = True
                            events += writer.start()
                        events += writer.chunk(chunk)
                    if events:  # what arrived in one upstream read leaves in one write
                        await self._body(send, b"".join(event(e) for e in events))
        except UpstreamError as exc:
            await self.ledger.finish(exc.status, f"stream interrupted: {exc.message}")
            if relayed_error:  # the upstream's own error event went out, as it wrote it: no second one
                await self._body(send, b"", more=False)
                return
            exc.message = f"upstream stream interrupted: {exc.message}"
            await self._body(send, error_event(exc), more=False)
            return
        tail = b"".join(event(e) for e in writer.finish(call.usage)) if translating else b""
        await self.ledger.finish(200, "")
        await self._body(send, tail, more=False)

    @staticmethod
    def _named(raw: dict[str, Any], model: str) -> dict[str, Any]:
        """The upstream's event, its message named by the public model the client asked for."""
        if raw.get("type") == "message_start" and isinstance(raw.get("message"), dict):
            return {**raw, "message": {**raw["message"], "model": model}}
        return raw
