"""A canned OpenAI-compatible upstream: a raw asyncio HTTP/1.1 server on uvloop that never becomes the bottleneck.

`POST .../chat/completions` answers a fixed `chat.completion` JSON, or (when the body says `"stream": true`) a
chunked SSE stream of N content chunks, a finish chunk, a usage chunk and `[DONE]`, all in one write.
Any other request gets a small 200. Keep-alive and pipelining are supported; nothing is parsed beyond what is
needed to find the end of a request.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal

import orjson

_STREAM_MARKERS = (b'"stream":true', b'"stream": true')


REALISTIC_REPLY = (
    "Thanks, I found order NW-2291-7731: both novels left our warehouse on Thursday with standard delivery, "
    "which takes 2-4 working days, so they should reach you by Wednesday at the latest. "
    "And yes, you can return either book within 30 days of delivery, free of charge, as long as it is unread "
    "and in its original condition: just keep it in its wrapping until you have decided. "
    "If the parcel has not arrived by Wednesday, write to me again and I will open a claim with the carrier."
)


def realistic_body() -> bytes:
    """A realistic non-streamed reply (bench.compare): ~90 tokens of content, the fields a real OpenAI-compatible
    server sends (system_fingerprint, logprobs, refusal, usage details), about 1 kB."""
    return orjson.dumps(
        {
            "id": "chatcmpl-9f3c2a1b7d6e4f5a8b0c1d2e3f4a5b6c",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": "bench-upstream",
            "system_fingerprint": "fp_bench_0001",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": REALISTIC_REPLY, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": 231,
                "completion_tokens": 92,
                "total_tokens": 323,
                "prompt_tokens_details": {"cached_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0},
            },
        }
    )


def completion_body(tokens: int) -> bytes:
    """The non-streamed reply."""
    return orjson.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": "bench-upstream",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Hello" + " tok" * (tokens - 1)},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": tokens, "total_tokens": 12 + tokens},
        }
    )


def stream_events(chunks: int) -> list[bytes]:
    """The SSE events of a streamed reply: content chunks, the finish chunk, the usage chunk, `[DONE]`."""
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": "bench"}
    events = []
    for i in range(chunks):
        delta = {"role": "assistant", "content": "Hello"} if i == 0 else {"content": " tok"}
        events.append({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
    events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    usage = {"prompt_tokens": 12, "completion_tokens": chunks, "total_tokens": 12 + chunks}
    events.append({**base, "choices": [], "usage": usage})
    out = [b"data: " + orjson.dumps(e) + b"\n\n" for e in events]
    out.append(b"data: [DONE]\n\n")
    return out


def canned_responses(chunks: int, realistic: bool = False) -> tuple[bytes, bytes, bytes]:
    """Full HTTP responses: (JSON completion, SSE stream, plain 200)."""
    body = realistic_body() if realistic else completion_body(chunks)
    json_resp = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
    parts = [b"%x\r\n%s\r\n" % (len(e), e) for e in stream_events(chunks)]
    sse_resp = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
        b"transfer-encoding: chunked\r\n\r\n" + b"".join(parts) + b"0\r\n\r\n"
    )
    ok_resp = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok"
    return json_resp, sse_resp, ok_resp


class CannedProtocol(asyncio.Protocol):
    """One keep-alive connection: find each request's end, write the canned response."""

    __slots__ = ("_buf", "_responses", "_transport")

    def __init__(self, responses: tuple[bytes, bytes, bytes]) -> None:
        self._responses = responses
        self._buf = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self._buf + data if self._buf else data
        out = []
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[:end].lower()
            length = 0
            at = head.find(b"content-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at)
                length = int(head[at + 15 : stop if stop > 0 else None])
            total = end + 4 + length
            if len(buf) < total:
                break
            body = buf[end + 4 : total]
            buf = buf[total:]
            if not head.startswith(b"post"):
                out.append(self._responses[2])
            elif any(m in body for m in _STREAM_MARKERS):
                out.append(self._responses[1])
            else:
                out.append(self._responses[0])
        self._buf = buf
        if out and self._transport is not None:
            self._transport.write(b"".join(out) if len(out) > 1 else out[0])


async def serve(host: str, port: int, chunks: int, realistic: bool = False) -> None:
    loop = asyncio.get_running_loop()
    responses = canned_responses(chunks, realistic)
    server = await loop.create_server(lambda: CannedProtocol(responses), host, port, backlog=4096, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"upstream listening on {host}:{port} pid={os.getpid()}", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="canned OpenAI-compatible upstream")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chunks", type=int, default=16, help="content chunks per streamed reply")
    parser.add_argument("--realistic", action="store_true", help="answer the realistic ~1 kB completion")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(serve(args.host, args.port, args.chunks, args.realistic))
    except ImportError:
        asyncio.run(serve(args.host, args.port, args.chunks, args.realistic))


if __name__ == "__main__":
    main()
