"""What huge calls cost the gateway: call-log size and RSS after eight 19 MiB prompts and one 64 MiB stream.

`python -m bench.row_size [--root CHECKOUT]` starts `gateway serve` from the checkout (default: this one) as its
own process, in front of a raw SSE upstream in this process that generates its stream on the fly (so only the
gateway holds what it holds), and prints the gateway's RSS (and peak) and the SQLite call log's size. Issue 19
item 2: before CALL_LOG_MAX_TEXT the rows kept every prompt and the whole stream.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import yaml

from gateway.settings import ROOT

PIECE = "x" * 8191 + " "
STREAM_BYTES = 64 * 1024 * 1024
PROMPT_BYTES = 19 * 1024 * 1024
CALLS = 8


def _chunk(delta: dict[str, str], finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    body = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m", "choices": [choice]}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    request = json.loads(await reader.readexactly(length))
    if not request.get("stream"):
        message = {"role": "assistant", "content": "ok"}
        body = json.dumps(
            {
                "id": "c",
                "object": "chat.completion",
                "created": 0,
                "model": "m",
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
            }
        ).encode()
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body))
        writer.write(body)
    else:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
        pieces = STREAM_BYTES // len(PIECE)
        for i in range(pieces):
            writer.write(_chunk({"content": PIECE}))
            if i % 64 == 0:
                await writer.drain()
        writer.write(_chunk({}, "stop"))
        usage = {"prompt_tokens": 1, "completion_tokens": pieces, "total_tokens": pieces + 1}
        writer.write(b"data: " + json.dumps({"id": "c", "choices": [], "usage": usage}).encode() + b"\n\n")
        writer.write(b"data: [DONE]\n\n")
    await writer.drain()
    writer.close()


def _upstream() -> int:
    """Start the raw upstream on a daemon thread; returns its port."""
    ports: list[int] = []

    async def main() -> None:
        server = await asyncio.start_server(_answer, "127.0.0.1", 0)
        ports.append(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    threading.Thread(target=lambda: asyncio.run(main()), daemon=True).start()
    while not ports:
        time.sleep(0.05)
    return ports[0]


def _memory(pid: int) -> tuple[int, int]:
    """(RSS, peak RSS) of a process in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS", "VmHWM")):
            fields[line.split(":")[0]] = int(line.split()[1]) // 1024
    return fields["VmRSS"], fields["VmHWM"]


def measure(root: Path) -> str:
    work = Path(tempfile.mkdtemp(prefix="row-size-"))
    route = {"kind": "vllm", "name": "up", "base_url": f"http://127.0.0.1:{_upstream()}/v1", "health_path": "none"}
    (work / "models.yaml").write_text(yaml.safe_dump({"models": [{"id": "m", "route": [route]}]}))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "MODELS_CONFIG": str(work / "models.yaml"),
        "ROUTING_CONFIG": str(work / "routing.yaml"),
        "SQLITE_DB_PATH": str(work / "calls.db"),
        "CALL_LOG_SPOOL_DIR": str(work / "spool"),
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "gateway", "serve", "--host", "127.0.0.1", "--port", str(port)]
    gateway = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    try:
        for _ in range(200):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=0.5).status_code == 200:
                    break
            time.sleep(0.1)
        with httpx.Client(timeout=300) as client:
            client.post(url, json={"model": "m", "messages": [{"role": "user", "content": "warm up"}]})
            start = _memory(gateway.pid)
            prompt = {"model": "m", "messages": [{"role": "user", "content": "p" * PROMPT_BYTES}]}
            raw = json.dumps(prompt).encode()
            for _ in range(CALLS):
                answer = client.post(url, content=raw, headers={"content-type": "application/json"})
                answer.raise_for_status()
            body = {"model": "m", "messages": [{"role": "user", "content": "stream"}], "stream": True}
            received = 0
            with client.stream("POST", url, json=body) as resp:
                for part in resp.iter_raw():
                    received += len(part)
            time.sleep(1.5)  # the writer's batch interval: the rows are on disk
            end = _memory(gateway.pid)
    finally:
        gateway.terminate()
        gateway.wait(30)
    size = sum(p.stat().st_size for p in work.glob("calls.db*")) / 1e6
    return (
        f"{root.name}: {CALLS} x {PROMPT_BYTES >> 20} MiB prompts + a {received / 2**20:.0f} MiB stream: "
        f"RSS {start[0]} -> {end[0]} MiB (peak {end[1]}), call log {size:.1f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout whose gateway to measure (default: this)")
    print(measure(parser.parse_args().root.resolve()))


if __name__ == "__main__":
    main()
