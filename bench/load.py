"""Load generators, each run in its own process: a raw-asyncio HTTP/1.1 client (latency, TTFT, exact counts)
and a wrapper around `wrk` (throughput).

The Python client keeps N keep-alive connections busy, one request in flight per connection, and records each
request's latency (send to last byte) and, for streams, the time to the first content chunk (TTFT). It parses
only what it must (status, content-length, chunked framing), so on uvloop it costs a few tens of microseconds
per request. Run `python -m bench.load --help`; it prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

_CONTENT = re.compile(rb'"content":"[^"]')


SYSTEM_PROMPT = (
    "You are the support assistant of Northwind Books, an online bookshop. Answer in the customer's language, "
    "in at most three short paragraphs. Be precise about prices, delivery times and return rules; never invent "
    "an order number or a tracking link. Standard delivery takes 2-4 working days, express delivery 1 day "
    "(ordered before 14:00). Returns are free within 30 days for unread books in their original condition. "
    "If a question is about an order, ask for the order number first. If you are not sure, say so and offer "
    "to hand the conversation over to a human colleague."
)


def realistic_body(model: str, stream: bool, max_tokens: int = 256) -> bytes:
    """A realistic chat request (issue 16): a system prompt, three turns of history, sampling parameters and a
    user id, about 1.5 kB; streamed calls ask for the usage chunk. Every target in `bench.compare` gets it."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": "Hi! I ordered two novels last Tuesday and they have not arrived yet."},
            {
                "role": "assistant",
                "content": "I'm sorry to hear that. Could you give me your order number so I can look it up?",
            },
            {
                "role": "user",
                "content": "It's NW-2291-7731. Also, can I still return one of them if I don't like it? "
                "I'd rather know before I open it.",
            },
        ],
        "temperature": 0.7,
        "top_p": 0.95,
        "max_tokens": max_tokens,
        "user": "customer-58213",
    }
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return orjson.dumps(body)


BODIES = ("short", "realistic")


def request_body(kind: str, model: str, stream: bool) -> bytes:
    """The body of the named kind: "short" (every scenario of bench.run) or "realistic" (bench.compare)."""
    return realistic_body(model, stream) if kind == "realistic" else chat_body(model, stream)


def chat_body(model: str, stream: bool, max_tokens: int = 16) -> bytes:
    """The request body every scenario sends."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": "Say hello to the benchmark."}],
        "max_tokens": max_tokens,
    }
    if stream:
        body["stream"] = True
    return orjson.dumps(body)


def http_request(url: str, body: bytes, api_key: str = "bench-key") -> bytes:
    parts = urlsplit(url)
    return (
        f"POST {parts.path} HTTP/1.1\r\nhost: {parts.netloc}\r\ncontent-type: application/json\r\n"
        f"authorization: Bearer {api_key}\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode() + body


def percentiles(values_ns: list[int]) -> dict[str, float]:
    """p50/p90/p99/mean/max in milliseconds (nearest-rank)."""
    if not values_ns:
        return {}
    s = sorted(values_ns)
    n = len(s)

    def at(q: float) -> float:
        return s[min(n - 1, max(0, int(q * n + 0.5) - 1))] / 1e6

    return {
        "p50": at(0.50),
        "p90": at(0.90),
        "p99": at(0.99),
        "mean": sum(s) / n / 1e6,
        "max": s[-1] / 1e6,
    }


class _Response(asyncio.Protocol):
    """One client connection; `fire` sends a request and returns a future for (status, ttft_ns, end_ns)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.lost = asyncio.get_running_loop().create_future()
        self._reset()

    def _reset(self) -> None:
        self.buf = bytearray()
        self.head_end = -1
        self.status = 0
        self.length = -1  # -1: chunked
        self.pos = 0  # chunked: next size line
        self.scan = 0  # TTFT: where to search next
        self.ttft = 0
        self.want_ttft = False
        self.future: asyncio.Future[tuple[int, int, int]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.future is not None and not self.future.done():
            self.future.set_exception(ConnectionError("connection closed by server"))
        if not self.lost.done():
            self.lost.set_result(None)

    def fire(self, request: bytes, stream: bool) -> asyncio.Future[tuple[int, int, int]]:
        self._reset()
        self.want_ttft = stream
        self.future = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(request)
        return self.future

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter_ns()
        buf = self.buf
        buf += data
        if self.head_end < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self.head_end = end + 4
            head = bytes(buf[:end]).lower()
            self.status = int(head[9:12])
            at = head.find(b"content-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at)
                self.length = int(head[at + 15 : stop if stop > 0 else None])
            self.pos = self.scan = self.head_end
        if self.want_ttft and not self.ttft:
            if _CONTENT.search(buf, max(self.head_end, self.scan - 16)):
                self.ttft = now
            self.scan = len(buf)
        if self._complete() and self.future is not None and not self.future.done():
            self.future.set_result((self.status, self.ttft, now))

    def _complete(self) -> bool:
        buf = self.buf
        if self.length >= 0:
            return len(buf) >= self.head_end + self.length
        while True:
            eol = buf.find(b"\r\n", self.pos)
            if eol < 0:
                return False
            size = int(bytes(buf[self.pos : eol]).split(b";")[0], 16)
            if size == 0:
                return len(buf) >= eol + 4
            nxt = eol + 2 + size + 2
            if len(buf) < nxt:
                return False
            self.pos = nxt


@dataclass(slots=True)
class _Tally:
    latencies: list[int] = field(default_factory=list)
    ttfts: list[int] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    done: int = 0


async def _client(
    host: str,
    port: int,
    requests: tuple[bytes, bytes],
    mode: str,
    tally: _Tally,
    budget: list[int],
    record_from: int,
    deadline: int,
    stream_every: int,
) -> None:
    loop = asyncio.get_running_loop()
    conn: _Response | None = None
    i = 0
    while True:
        if budget[0] == 0 or time.perf_counter_ns() >= deadline:
            break
        if budget[0] > 0:
            budget[0] -= 1
        stream = mode == "stream" or (mode == "mixed" and i % stream_every == stream_every - 1)
        i += 1
        try:
            if conn is None or conn.lost.done():
                _, conn = await loop.create_connection(_Response, host, port)
            start = time.perf_counter_ns()
            status, ttft, end = await conn.fire(requests[1 if stream else 0], stream)
        except (OSError, ConnectionError):
            tally.errors += 1
            conn = None
            await asyncio.sleep(0.01)
            continue
        tally.done += 1
        tally.statuses[status] = tally.statuses.get(status, 0) + 1
        if start >= record_from and end <= deadline:
            tally.latencies.append(end - start)
            if ttft:
                tally.ttfts.append(ttft - start)
    if conn is not None and conn.transport is not None:
        conn.transport.close()


async def run_python(
    url: str,
    model: str,
    mode: str,
    concurrency: int,
    duration: float,
    count: int,
    warmup: float,
    stream_every: int = 2,
    body: str = "short",
) -> dict[str, Any]:
    """Drive `url` for `duration` seconds (after `warmup`) or exactly `count` requests (count > 0)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    requests = (http_request(url, request_body(body, model, False)), http_request(url, request_body(body, model, True)))
    tally = _Tally()
    begin = time.perf_counter_ns()
    if count > 0:
        budget, record_from, deadline = [count], begin, begin + 3600 * 10**9
    else:
        record_from = begin + int(warmup * 1e9)
        budget, deadline = [-1], record_from + int(duration * 1e9)
    tasks = [
        asyncio.create_task(_client(host, port, requests, mode, tally, budget, record_from, deadline, stream_every))
        for _ in range(concurrency)
    ]
    await asyncio.gather(*tasks)
    elapsed = (time.perf_counter_ns() - (begin if count > 0 else record_from)) / 1e9
    measured = len(tally.latencies)
    return {
        "tool": "python",
        "requests": measured,
        "sent": tally.done,
        "seconds": elapsed,
        "rps": measured / elapsed if elapsed > 0 else 0.0,
        "errors": tally.errors + sum(v for k, v in tally.statuses.items() if k != 200),
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "latency_ms": percentiles(tally.latencies),
        "ttft_ms": percentiles(tally.ttfts),
    }


_WRK_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer bench-key"
wrk.body = [==[%s]==]
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\\"requests\\":%%d,\\"duration_us\\":%%d,\\"status\\":%%d,\\"connect\\":%%d,\\"read\\":%%d," ..
    "\\"write\\":%%d,\\"timeout\\":%%d,\\"p50\\":%%d,\\"p90\\":%%d,\\"p99\\":%%d,\\"mean\\":%%f,\\"max\\":%%d}\\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
"""


def ensure_wrk() -> str | None:
    """The wrk binary; installed with apt-get when missing and possible, else None (use the Python client)."""
    found = shutil.which("wrk")
    if found or os.environ.get("BENCH_NO_WRK"):
        return None if os.environ.get("BENCH_NO_WRK") else found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("bench: wrk not found; installing it with apt-get (non-interactive)", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (
            ["apt-get", "install", "-y", "-q", "wrk"],
            ["apt-get", "update", "-q"],
            ["apt-get", "install", "-y", "-q", "wrk"],
        ):
            try:
                subprocess.run(cmd, env=env, check=False, capture_output=True, timeout=180)
            except (OSError, subprocess.TimeoutExpired):
                break
            if cmd[1] == "install" and shutil.which("wrk"):
                return shutil.which("wrk")
    print("bench: wrk unavailable; falling back to the Python load generator for throughput", flush=True)
    return None


def run_wrk(
    wrk: str,
    url: str,
    model: str,
    stream: bool,
    concurrency: int,
    duration: float,
    warmup: float,
    workdir: Path,
    body: str = "short",
) -> dict[str, Any]:
    """Throughput with wrk (one thread: a second would only steal CPU from the system under test)."""
    workdir.mkdir(parents=True, exist_ok=True)
    script = workdir / ("wrk_stream.lua" if stream else "wrk_json.lua")
    script.write_text(_WRK_LUA % request_body(body, model, stream).decode())
    base = [wrk, "-t1", f"-c{concurrency}", "--timeout", "30s", "-s", str(script), url]
    if warmup > 0:
        subprocess.run([*base[:1], f"-d{max(1, round(warmup))}s", *base[1:]], capture_output=True, check=False)
    out = subprocess.run([*base[:1], f"-d{max(1, round(duration))}s", *base[1:]], capture_output=True, text=True)
    line = next((x for x in out.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {out.stdout[-500:]} {out.stderr[-500:]}")
    r = orjson.loads(line[8:])
    seconds = r["duration_us"] / 1e6
    errors = r["status"] + r["connect"] + r["read"] + r["write"] + r["timeout"]
    return {
        "tool": "wrk",
        "requests": r["requests"],
        "sent": r["requests"],
        "seconds": seconds,
        "rps": r["requests"] / seconds,
        "errors": errors,
        "statuses": {},
        "latency_ms": {k: r[k] / 1000 for k in ("p50", "p90", "p99", "mean", "max")},
        "ttft_ms": {},
    }


def run_in_process(
    url: str,
    model: str,
    mode: str,
    concurrency: int,
    duration: float = 5.0,
    count: int = 0,
    warmup: float = 1.0,
    stream_every: int = 2,
    body: str = "short",
) -> dict[str, Any]:
    """Run the Python client in a separate process and return its JSON report."""
    cmd = [sys.executable, "-m", "bench.load", "--url", url, "--model", model, "--mode", mode]
    cmd += ["-c", str(concurrency), "--duration", str(duration), "--count", str(count), "--warmup", str(warmup)]
    cmd += ["--stream-every", str(stream_every), "--body", body]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"load generator failed: {out.stderr[-2000:]}")
    return dict(orjson.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description="raw-asyncio HTTP load generator (prints one JSON object)")
    parser.add_argument("--url", required=True)
    parser.add_argument("--model", default="bench-model")
    parser.add_argument("--mode", choices=("json", "stream", "mixed"), default="json")
    parser.add_argument("-c", "--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds (after --warmup)")
    parser.add_argument("--count", type=int, default=0, help="send exactly this many requests instead")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--stream-every", type=int, default=2, help="mixed mode: every Nth request is streamed")
    parser.add_argument("--body", choices=BODIES, default="short", help="request body: short or realistic")
    args = parser.parse_args()
    coro = run_python(
        args.url,
        args.model,
        args.mode,
        args.concurrency,
        args.duration,
        args.count,
        args.warmup,
        args.stream_every,
        args.body,
    )
    try:
        import uvloop

        result = uvloop.run(coro)
    except ImportError:
        result = asyncio.run(coro)
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
