"""`python -m bench.hybrid` (what `make bench-routing` runs): routing strategies on one simulated hybrid pool.

For each strategy it starts the pool (`bench.hybrid_pool`: two vLLM twins, one remote deployment) and a gateway
(`gateway serve`, one worker, SQLite call log), replays the same open-loop trace (`bench.hybrid_trace`) as
streamed chat calls, and reports TTFT p50/p99 overall and during the burst, the share served locally, cloud
cost, errors and the twins' prefix-cache hit rate. Figures go to bench/out/routing.json and as a table to stdout.
The simulation is time-compressed (see bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.hybrid_pool import MODEL, TWIN
from bench.hybrid_report import Outcome, summarize, table
from bench.hybrid_trace import Request, Shape, build
from bench.procs import OUT, ROOT, Proc, free_port, wait_ready
from routing.upstream.engine_metrics import parse_signals

PREFIX = "You are the assistant of a support desk. Keep the customer's history in mind. " * 30  # ~2,400 chars
STRATEGIES = ("fixed-60/40", "local-only", "least-in-flight", "local_first", "local_first+affinity")


def configs(name: str, ports: dict[str, int]) -> tuple[dict[str, Any], dict[str, Any]]:
    """models.yaml and routing.yaml for one strategy over the pool at `ports`."""
    url = {k: f"http://127.0.0.1:{p}" for k, p in ports.items()}
    no_metrics = {"metrics_url": "none"} if name == "least-in-flight" else {}
    route: list[dict[str, Any]] = [
        {"kind": "vllm", "name": gpu, "base_url": f"{url[gpu]}/v1", "provider_model_id": MODEL, **no_metrics}
        for gpu in ("gpu-a", "gpu-b")
    ]
    route.append(
        {
            "kind": "openai",
            "name": "cloud",
            "base_url": f"{url['cloud']}/v1",
            "api_key": "bench",
            "provider_model_id": MODEL,
            "pricing": {"prompt": "3", "completion": "15"},  # USD per 1M tokens
        }
    )
    models = {"models": [{"id": MODEL, "pricing": {"prompt": "0", "completion": "0"}, "route": route}]}
    local = [{"endpoint": url["gpu-a"], "models": [MODEL]}, {"endpoint": url["gpu-b"], "models": [MODEL]}]
    remote = [{"endpoint": url["cloud"], "models": [MODEL]}]
    routing: dict[str, Any] = {"local_deployment": local, "remote_deployment": remote, "health_check": 0}
    if name == "fixed-60/40":
        routing.update(routing_strategy="fixed", routing_parameter={"local_fraction": 0.6})
    elif name == "local-only":
        routing.update(routing_strategy="fixed", routing_parameter={"local_fraction": 1.0})
    elif name == "least-in-flight":
        # every deployment as "local" without engine metrics: the less busy of two by in-flight count, no spill
        routing.update(
            routing_strategy="local_first",
            local_deployment=local + remote,
            remote_deployment=[],
            affinity={"enabled": False},
        )
    else:
        routing.update(
            routing_strategy="local_first",
            local_first={"max_waiting": 2, "max_kv_usage": 0.95, "resume_below": 0.5, "scrape_interval": 0.25},
            affinity={"enabled": name.endswith("affinity")},
        )
    return models, routing


class Run:
    """The pool and the gateway of one strategy's run."""

    def __init__(self, name: str, workdir: Path) -> None:
        self.name, self.workdir = name, workdir
        workdir.mkdir(parents=True, exist_ok=True)
        ports_file = workdir / "ports.json"
        log = (OUT / f"routing-pool-{_slug(name)}.log").open("wb")
        self.pool = subprocess.Popen(
            [sys.executable, "-m", "bench.hybrid_pool", str(ports_file)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 20
        while not ports_file.exists():
            if time.monotonic() > deadline or self.pool.poll() is not None:
                raise RuntimeError(f"the pool did not start; see {log.name}")
            time.sleep(0.05)
        time.sleep(0.05)
        self.ports: dict[str, int] = json.loads(ports_file.read_text())
        models, routing = configs(name, self.ports)
        (workdir / "models.yaml").write_text(json.dumps(models))
        (workdir / "routing.yaml").write_text(json.dumps(routing))
        self.gateway = self._start_gateway()

    def _start_gateway(self) -> Proc:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "USE_SQLITE_LOG")}
        env.update(
            MODELS_CONFIG=str(self.workdir / "models.yaml"),
            ROUTING_CONFIG=str(self.workdir / "routing.yaml"),
            LOG_LEVEL="WARNING",
            SQLITE_DB_PATH=str(self.workdir / "calls.db"),
            CALL_LOG_SPOOL_DIR=str(self.workdir / "spool"),
            MAX_STREAMS_PER_CLIENT="0",
            HOST="127.0.0.1",
        )
        port = free_port()
        cmd = [sys.executable, "-m", "gateway", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
        log = OUT / f"routing-gateway-{_slug(self.name)}.log"
        with log.open("wb") as fh:
            popen = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
        proc = Proc(f"gateway-{self.name}", popen, port, log)
        wait_ready(proc, "/ready")
        return proc

    def close(self) -> None:
        self.gateway.stop()
        self.pool.terminate()
        self.pool.wait(10)


async def replay(url: str, trace: list[Request]) -> list[Outcome]:
    """Send every call of the trace at its time (open loop: a slow answer never delays the next call)."""
    outcomes: list[Outcome] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as http:
        began = time.perf_counter()
        tasks = []
        for req in trace:
            delay = req.at - (time.perf_counter() - began)
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_one(http, url, req, outcomes)))
        await asyncio.gather(*tasks)
    return outcomes


async def _one(http: aiohttp.ClientSession, url: str, req: Request, outcomes: list[Outcome]) -> None:
    messages = [{"role": "system", "content": f"Customer {req.session}. {PREFIX}"}]
    for turn in range(req.turn):
        messages += [{"role": "user", "content": f"Question {turn}?"}, {"role": "assistant", "content": "Answer."}]
    messages.append({"role": "user", "content": f"Question {req.turn}?"})
    body = {
        "model": MODEL,
        "messages": messages,
        "max_tokens": req.max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    sent = time.perf_counter()
    ttft, cost, provider, ok, error = None, 0.0, "", False, ""
    try:
        async with http.post(f"{url}/v1/chat/completions", json=body, headers={"X-Session-Id": req.session}) as resp:
            async for line in resp.content:
                if not line.startswith(b"data: ") or line.startswith(b"data: [DONE]"):
                    continue
                chunk = json.loads(line[6:])
                # the provider, not the x-gateway-deployment header: a stream that waits past the keep-alive
                # interval has sent its headers before a deployment was chosen
                provider = provider or str(chunk.get("provider") or "")
                if ttft is None and any((c.get("delta") or {}).get("content") for c in chunk.get("choices") or ()):
                    ttft = time.perf_counter() - sent
                if chunk.get("usage"):
                    cost = float(chunk["usage"].get("cost") or 0.0)
                if chunk.get("error"):
                    ttft, error = None, f"stream error: {str(chunk['error'])[:80]}"
                    break
            ok = resp.status == 200 and ttft is not None
            error = error or ("" if ok else f"HTTP {resp.status}" if resp.status != 200 else "no content")
    except (aiohttp.ClientError, TimeoutError) as exc:
        ok, error = False, type(exc).__name__
    outcomes.append(Outcome(req.burst, provider == "local", ttft if ok else None, cost, ok, error))


def prefix_hit_rate(ports: dict[str, int]) -> float | None:
    import urllib.request

    hits = queries = 0.0
    for gpu in ("gpu-a", "gpu-b"):
        with urllib.request.urlopen(f"http://127.0.0.1:{ports[gpu]}/metrics", timeout=5) as resp:
            signals = parse_signals(resp.read().decode(), "vllm", MODEL)
        hits += signals.get("prefix_hits", 0.0)
        queries += signals.get("prefix_queries", 0.0)
    return hits / queries if queries else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hybrid", description=__doc__)
    parser.add_argument("--only", help=f"comma-separated strategies: {', '.join(STRATEGIES)}")
    parser.add_argument("--duration", type=float, default=70.0, help="trace seconds (the burst starts at 25 s)")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(STRATEGIES)
    # the local pool's capacity: 2 twins x 8 slots / (cold prefill + a mean reply of 120 tokens)
    capacity = 2 * TWIN["capacity"] / (TWIN["prefill"] + 120 * TWIN["per_token"])
    trace = build(Shape(capacity=capacity, duration=args.duration))
    print(
        f"bench-routing: {len(trace)} calls over {args.duration:g}s, local capacity ~{capacity:.1f} calls/s", flush=True
    )
    OUT.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-routing-") as tmp:
        for name in names:
            run = Run(name, Path(tmp) / _slug(name))
            try:
                t0 = time.monotonic()
                outcomes = asyncio.run(replay(f"http://127.0.0.1:{run.gateway.port}", trace))
                results[name] = summarize(outcomes, prefix_hit_rate(run.ports))
                print(f"bench-routing: {name} done in {time.monotonic() - t0:.0f}s", flush=True)
            finally:
                run.close()
    (OUT / "routing.json").write_text(
        json.dumps({"calls": len(trace), "capacity": capacity, "results": results}, indent=2)
    )
    print(table(results))
    return 0


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name)


if __name__ == "__main__":
    sys.exit(main())
