"""A fake upstream that also serves the OpenAI Responses API (`POST /v1/responses`), as vLLM 0.17+ and OpenAI do.

It records each request as received and answers with its own `resp_<name>_<n>` ids and a reply that starts with
`[<name>] responses`, whole or as Responses' event stream (created ... output_text.delta ... completed, each with
a sequence_number). Behaviour comes from the instance and the request's `x_test`, as for FakeUpstream (status,
chunks, reply, cut_after).
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from tests.support.upstream import Behaviour, FakeUpstream, count_tokens, split_reply

RESPONSES_PATH = "/v1/responses"


def _event(kind: str, seq: int, **fields: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, 'sequence_number': seq, **fields})}\n\n".encode()


class FakeResponsesUpstream(FakeUpstream):
    """FakeUpstream plus `/v1/responses`."""

    @property
    def responses_count(self) -> int:
        return sum(1 for record in self.requests if record.path == RESPONSES_PATH)

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_post(RESPONSES_PATH, self._responses)

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        record = self._record(request, body)
        try:
            x_test = body.get("x_test") or {}
            b = Behaviour.merge(self._behaviour, x_test.get("*"), x_test.get(self.name))
            if b.status >= 400:
                return self._error(b.status, f"simulated {b.status}")
            reply = b.reply if b.reply is not None else f"[{self.name}] responses reply"
            n = len(self.requests)
            item_id = f"msg_{self.name}_{n}"
            usage = {
                "input_tokens": 7,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": count_tokens(reply),
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": 7 + count_tokens(reply),
            }
            part = {"type": "output_text", "text": reply, "annotations": []}
            item = {"id": item_id, "type": "message", "status": "completed", "role": "assistant", "content": [part]}
            response = {
                "id": f"resp_{self.name}_{n}",
                "object": "response",
                "created_at": int(time.time()),
                "status": "completed",
                "model": body.get("model"),
                "output": [item],
                "parallel_tool_calls": True,
                "tool_choice": "auto",
                "tools": [],
                "usage": usage,
            }
            if not body.get("stream"):
                record.finished = True
                return web.json_response(response, headers=self._headers())
            headers = self._headers({"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
            out = web.StreamResponse(headers=headers)
            await out.prepare(request)
            started = {**response, "status": "in_progress", "output": [], "usage": None}
            seq = 0
            for kind in ("response.created", "response.in_progress"):
                await out.write(_event(kind, seq, response=started))
                seq += 1
            opened = {**item, "status": "in_progress", "content": []}
            await out.write(_event("response.output_item.added", seq, output_index=0, item=opened))
            seq += 1
            for i, piece in enumerate(split_reply(reply, b.chunks)):
                if b.cut_after is not None and i == b.cut_after:
                    if request.transport is not None:
                        request.transport.abort()
                    return out
                fields = {"item_id": item_id, "output_index": 0, "content_index": 0, "delta": piece}
                await out.write(_event("response.output_text.delta", seq, **fields))
                seq += 1
            await out.write(_event("response.output_item.done", seq, output_index=0, item=item))
            await out.write(_event("response.completed", seq + 1, response=response))
            record.finished = True
            return out
        finally:
            record.ended.set()
