"""The Responses SSE relay: StreamRelay's commit, keep-alive and disconnect handling, with Responses' events.

A translated stream is turned into events chunk by chunk as it arrives (events.py); a native one (the deployment
speaks /v1/responses itself) is relayed event by event as the upstream sent it. A stream that breaks after it
started ends with `response.failed`, never silently; the finished response is stored before the last event goes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from adapters.responses_api import NATIVE
from gateway.openai.formats import ChatFormat
from gateway.openai.relay import Opener, StreamRelay
from gateway.openai.responses.events import EventTranslator, sse_event
from gateway.telemetry.ledger import CallLedger
from routing.errors import GatewayError, UpstreamError
from routing.stream import UpstreamStream

Finished = Callable[[dict[str, Any]], Awaitable[None]]
_ENDS = ("response.completed", "response.incomplete")


class ResponsesRelay(StreamRelay):
    """Relays one call's stream as Responses events; `on_done` gets the finished response (to store it)."""

    def __init__(
        self, opener: Opener, ledger: CallLedger, keepalive: float, events: EventTranslator, on_done: Finished
    ) -> None:
        super().__init__(opener, ChatFormat(), ledger, keepalive, include_usage=False)
        self.events, self.on_done = events, on_done
        self._opened = False  # response.created went out (translated) or the upstream's own events flow (native)

    def _translated(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        out = [] if self._opened else self.events.opening()
        self._opened = True
        return out + self.events.feed(chunk)

    async def _fail_before_commit(self, send: Any, error: GatewayError) -> None:
        if not self._started:  # nothing sent yet: a real HTTP status and OpenAI's error body
            await super()._fail_before_commit(send, error)
            return
        events = self.events.opening() + self.events.failed(error.code or "server_error", error.message)
        await self._body(send, b"".join(sse_event(e) for e in events), more=False)

    async def _forward(self, send: Any, upstream: UpstreamStream) -> None:
        self.events.env = replace(self.events.env, model=self.ledger.call.model_id)  # the model that answered
        if not self._started:
            await self._start(send, 200, self._headers(committed=True))
        native = False
        try:
            async with contextlib.aclosing(upstream.batches()) as batches:
                async for batch in batches:
                    body = bytearray()
                    for chunk in batch:
                        event = chunk.get(NATIVE)
                        if isinstance(event, dict):
                            native = self._opened = True
                            self.events.sequence = int(event.get("sequence_number") or 0) + 1
                            named = (event.get("response") or {}).get("id")
                            if event.get("type") == "response.created" and isinstance(named, str):
                                self.events.env = replace(self.events.env, id=named)  # a failure names it too
                            if event.get("type") in _ENDS and isinstance(event.get("response"), dict):
                                await self.on_done(event["response"])  # stored before the client can ask for it
                            body += sse_event(event)
                        else:
                            body += b"".join(sse_event(e) for e in self._translated(chunk))
                    if body:  # what arrived in one upstream read leaves in one write
                        await self._body(send, bytes(body))
        except UpstreamError as exc:
            await self.ledger.finish(exc.status, f"stream interrupted: {exc.message}")
            events = [] if self._opened else self.events.opening()
            events += self.events.failed(exc.code or "server_error", f"upstream stream interrupted: {exc.message}")
            await self._body(send, b"".join(sse_event(e) for e in events), more=False)
            return
        tail = b""
        if not native:
            events = [] if self._opened else self.events.opening()
            events += self.events.completed(self.ledger.usage())
            tail = b"".join(sse_event(e) for e in events)
            if self.events.response is not None:
                await self.on_done(self.events.response)
        await self.ledger.finish(200, "")
        await self._body(send, tail, more=False)
