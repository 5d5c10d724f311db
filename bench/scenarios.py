"""The benchmark scenarios. Each measures the canned upstream directly and through the gateway."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import load
from bench.procs import OUT, Proc, have_httpx_aiohttp, start_gateway, start_sse_stack, start_stack
from bench.stats_rows import build_postgres_log, build_sqlite_log

CHAT = "/v1/chat/completions"


@dataclass(slots=True)
class Plan:
    """Durations and sizes of one run."""

    duration: float  # measured seconds of a throughput run
    latency_duration: float  # measured seconds of a 1-client run
    warmup: float
    calls: int  # scenario calls100k
    concurrency: int = 64
    postgres_url: str = ""


@dataclass(slots=True)
class Bench:
    """What the scenarios share: the upstream, the main gateway (SQLite log on), results and memory samples.

    The main gateway is None when only STANDALONE scenarios run: they start their own servers.
    """

    plan: Plan
    upstream: Proc
    main_gateway: Proc | None
    wrk: str | None
    workdir: Path
    results: dict[str, Any] = field(default_factory=dict)
    memory: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def gateway(self) -> Proc:
        if self.main_gateway is None:
            raise RuntimeError("this scenario needs the main gateway, which was not started")
        return self.main_gateway

    @property
    def direct(self) -> str:
        return f"http://127.0.0.1:{self.upstream.port}{CHAT}"

    def url(self, proc: Proc) -> str:
        return f"http://127.0.0.1:{proc.port}{CHAT}"

    def sample_memory(self, label: str, proc: Proc | None = None) -> None:
        proc = proc or self.main_gateway
        if proc is None:
            return
        self.memory.append({"when": label, "process": proc.name, **proc.memory()})

    def one_client(self, url: str, mode: str, model: str = "bench-model") -> dict[str, Any]:
        p = self.plan
        return load.run_in_process(url, model, mode, 1, p.latency_duration, 0, p.warmup)

    def throughput(self, url: str, stream: bool, model: str = "bench-model") -> dict[str, Any]:
        p = self.plan
        if self.wrk:
            return load.run_wrk(self.wrk, url, model, stream, p.concurrency, p.duration, p.warmup, OUT)
        mode = "stream" if stream else "json"
        return load.run_in_process(url, model, mode, p.concurrency, p.duration, 0, p.warmup)

    def check(self, name: str, result: dict[str, Any]) -> None:
        if result["errors"]:
            self.failures.append(f"{name}: {result['errors']} failed requests")


def _added(gw: dict[str, float], direct: dict[str, float]) -> dict[str, float]:
    return {k: gw[k] - direct[k] for k in ("p50", "p90", "p99") if k in gw and k in direct}


def _in_app_overhead(db: Path, after_id: int, stream: bool) -> dict[str, float]:
    """Gateway's own time as its call log sees it: latency_ms minus the upstream attempt's duration_ms."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT latency_ms, attempts FROM api_logs WHERE id > ? AND stream = ? AND status_code = 200",
            (after_id, 1 if stream else 0),
        ).fetchall()
    values = [int((lat - sum(a["duration_ms"] for a in json.loads(att))) * 1e6) for lat, att in rows]
    return load.percentiles(values)


def _max_id(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM api_logs").fetchone()[0])


def latency1(b: Bench) -> None:
    """Non-streamed, 1 client: latency percentiles direct vs gateway, and the gateway alone (mock deployment)."""
    db = b.workdir / "main" / "calls.db"
    direct = b.one_client(b.direct, "json")
    before = _max_id(db)
    gw = b.one_client(b.url(b.gateway), "json")
    time.sleep(0.6)  # the writer flushes every 200 ms
    mock = b.one_client(b.url(b.gateway), "json", model="bench-mock")
    for name, r in (("direct", direct), ("gateway", gw), ("gateway-mock", mock)):
        b.check(f"latency1/{name}", r)
    b.results["latency1"] = {
        "direct": direct,
        "gateway": gw,
        "gateway_mock": mock,
        "added_ms": _added(gw["latency_ms"], direct["latency_ms"]),
        "in_app_overhead_ms": _in_app_overhead(db, before, stream=False),
    }


def throughput64(b: Bench) -> None:
    """Non-streamed, 64 clients: requests/s and latency, direct vs gateway vs gateway alone (mock)."""
    direct = b.throughput(b.direct, False)
    gw = b.throughput(b.url(b.gateway), False)
    mock = b.throughput(b.url(b.gateway), False, model="bench-mock")
    for name, r in (("direct", direct), ("gateway", gw), ("gateway-mock", mock)):
        b.check(f"throughput64/{name}", r)
    b.results["throughput64"] = {
        "direct": direct,
        "gateway": gw,
        "gateway_mock": mock,
        "added_ms": _added(gw["latency_ms"], direct["latency_ms"]),
    }


def stream1(b: Bench) -> None:
    """Streamed, 1 client: time to first content chunk and total time, direct vs gateway."""
    db = b.workdir / "main" / "calls.db"
    direct = b.one_client(b.direct, "stream")
    before = _max_id(db)
    gw = b.one_client(b.url(b.gateway), "stream")
    time.sleep(0.6)
    for name, r in (("direct", direct), ("gateway", gw)):
        b.check(f"stream1/{name}", r)
    b.results["stream1"] = {
        "direct": direct,
        "gateway": gw,
        "added_ttft_ms": _added(gw["ttft_ms"], direct["ttft_ms"]),
        "added_total_ms": _added(gw["latency_ms"], direct["latency_ms"]),
        "in_app_overhead_ms": _in_app_overhead(db, before, stream=True),
    }


def stream64(b: Bench) -> None:
    """Streamed, 64 clients: requests/s direct vs gateway."""
    direct = b.throughput(b.direct, True)
    gw = b.throughput(b.url(b.gateway), True)
    for name, r in (("direct", direct), ("gateway", gw)):
        b.check(f"stream64/{name}", r)
    b.results["stream64"] = {"direct": direct, "gateway": gw}


def logging(b: Bench) -> None:
    """Call log on (SQLite) vs off, non-streamed, 64 clients, measured back to back."""
    on = b.throughput(b.url(b.gateway), False)
    off_gw = start_gateway("gateway-nolog", b.workdir / "nolog", b.upstream.port, "off")
    try:
        off = b.throughput(b.url(off_gw), False)
    finally:
        off_gw.stop()
    out: dict[str, Any] = {"sqlite": on, "off": off}
    if b.plan.postgres_url:
        pg_gw = start_gateway("gateway-pg", b.workdir / "pg", b.upstream.port, b.plan.postgres_url)
        try:
            out["postgresql"] = b.throughput(b.url(pg_gw), False)
        finally:
            pg_gw.stop()
    for name, r in out.items():
        b.check(f"logging/{name}", r)
    out["cost_pct"] = 100.0 * (1 - on["rps"] / off["rps"]) if off["rps"] else 0.0
    b.results["logging"] = out


def calls100k(b: Bench) -> None:
    """Exactly N calls (every 10th streamed, 64 clients), SIGTERM, then count api_logs rows."""
    n = b.plan.calls
    workdir = b.workdir / "calls"
    gw = start_gateway("gateway-calls", workdir, b.upstream.port, "sqlite")
    samples: list[dict[str, Any]] = [{"t": 0.0, **gw.memory()}]
    stop = threading.Event()

    def sampler() -> None:
        began = time.monotonic()
        while not stop.wait(2.0):
            samples.append({"t": round(time.monotonic() - began, 1), **gw.memory()})

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    try:
        result = load.run_in_process(b.url(gw), "bench-model", "mixed", b.plan.concurrency, count=n, stream_every=10)
    finally:
        stop.set()
        thread.join()
        samples.append({"t": "end", **gw.memory()})
        code = gw.stop(timeout=120)
    with sqlite3.connect(workdir / "calls.db") as conn:
        rows = int(conn.execute("SELECT COUNT(*) FROM api_logs").fetchone()[0])
        by_status = dict(conn.execute("SELECT status_code, COUNT(*) FROM api_logs GROUP BY status_code").fetchall())
    spool = sorted((workdir / "spool").glob("*")) if (workdir / "spool").is_dir() else []
    spooled_rows = sum(len(p.read_bytes().splitlines()) for p in spool if p.is_file())
    ok = rows == n and result["sent"] == n
    if not ok:
        b.failures.append(
            f"calls100k: sent {result['sent']}, api_logs has {rows} rows, expected exactly {n} "
            f"({spooled_rows} lines left in the spool {[p.name for p in spool]}, not in the database)"
        )
    b.check("calls100k", result)
    b.results["calls100k"] = {
        "expected": n,
        "sent": result["sent"],
        "rows": rows,
        "rows_by_status": {str(k): v for k, v in by_status.items()},
        "spool_files": [p.name for p in spool],
        "spool_lines": spooled_rows,
        "exit_code": code,
        "ok": ok,
        "load": result,
        "memory": samples,
    }


def stacks(b: Bench) -> None:
    """Bare Starlette passthrough over each HTTP client, 64 clients and 1 client, plus the upstream alone.

    The 1-client p50 of a bare passthrough is the floor the gateway's added latency cannot go below on this
    server stack: the gateway's own work is what it adds on top.
    """
    out: dict[str, Any] = {"upstream direct": b.throughput(b.direct, False)}
    out["upstream direct"]["one_client"] = b.one_client(b.direct, "json")
    clients = ["httpx", "httpx2", "aiohttp", "pyreqwest", "http1"] + (["httpx-aiohttp"] if have_httpx_aiohttp() else [])
    for client in clients:
        proc = start_stack(client, b.direct)
        try:
            out[client] = b.throughput(b.url(proc), False)
            out[client]["one_client"] = b.one_client(b.url(proc), "json")
            out[client]["rss_mib"] = proc.memory()["rss_mib"]
        finally:
            proc.stop()
        b.check(f"stacks/{client}", out[client])
    b.results["stacks"] = out


def sse_stacks(b: Bench) -> None:
    """Bare Starlette relay of a streamed upstream reply over the gateway's client, per SSE response layer:
    1-client TTFT and total time, and 64-client req/s, plus the upstream alone (as stream1/stream64 measure)."""
    from bench.sse_stacks import RELAYS  # imports starlette and routing: only when this scenario runs

    out: dict[str, Any] = {"upstream direct": b.throughput(b.direct, True)}
    out["upstream direct"]["one_client"] = b.one_client(b.direct, "stream")
    for relay in RELAYS:
        proc = start_sse_stack(relay, b.direct)
        try:
            out[relay] = b.throughput(b.url(proc), True)
            out[relay]["one_client"] = b.one_client(b.url(proc), "stream")
            out[relay]["rss_mib"] = proc.memory()["rss_mib"]
        finally:
            proc.stop()
        b.check(f"sse_stacks/{relay}", out[relay])
        b.check(f"sse_stacks/{relay} (1 client)", out[relay]["one_client"])
    b.results["sse_stacks"] = out


def stats1m(b: Bench) -> None:
    """GET /stats over a call log of a million rows (SQLite; PostgreSQL too with --postgres): the aggregation
    runs in the database. The PostgreSQL table is dropped and rebuilt, so point --postgres at a bench database."""
    rows = 1_000_000 if b.plan.calls >= 100_000 else 100_000
    workdir = b.workdir / "stats"
    built = build_sqlite_log(workdir / "calls.db", rows)
    b.results["stats1m"] = {"rows": rows, "build_s": round(built, 1), **_time_stats(b, workdir, "sqlite")}
    if b.plan.postgres_url:
        built = asyncio.run(build_postgres_log(b.plan.postgres_url, rows))
        pg = _time_stats(b, b.workdir / "stats-pg", b.plan.postgres_url)
        b.results["stats1m_postgresql"] = {"rows": rows, "build_s": round(built, 1), **pg}


def _time_stats(b: Bench, workdir: Path, call_log: str) -> dict[str, Any]:
    gw = start_gateway(
        f"gateway-stats-{'sqlite' if call_log == 'sqlite' else 'pg'}", workdir, b.upstream.port, call_log
    )
    out: dict[str, Any] = {}
    try:
        for name, query in (("all, 24 h", "hours=24"), ("one model, 24 h", "hours=24&model=deepseek-chat")):
            times, body = [], b""
            for _ in range(5):
                t0 = time.perf_counter()
                with urllib.request.urlopen(f"http://127.0.0.1:{gw.port}/stats?{query}", timeout=300) as resp:
                    body = resp.read()
                times.append((time.perf_counter() - t0) * 1000)
            groups = json.loads(body)["stats"]
            out[name] = {"ms_median": round(sorted(times)[2], 1), "ms_max": round(max(times), 1), "groups": len(groups)}
            if not groups:
                b.failures.append(f"stats1m ({call_log.split(':')[0]}): {name} returned no groups")
    finally:
        gw.stop()
    return out


STANDALONE = frozenset({"stacks", "sse_stacks"})  # need no main gateway: they measure bare stacks
SCENARIOS = {
    "latency1": latency1,
    "throughput64": throughput64,
    "stream1": stream1,
    "stream64": stream64,
    "logging": logging,
    "calls100k": calls100k,
    "stacks": stacks,
    "sse_stacks": sse_stacks,
    "stats1m": stats1m,
}


def new_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="gateway-bench-"))
