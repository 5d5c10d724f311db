"""`python -m bench.run` (what `make bench` runs): every scenario, a table, and bench/out/results.json.

Starts a canned upstream and a gateway (one worker, routing and SQLite call log on) on loopback, runs the
scenarios, stops everything it started (no gateway when only the bare-stack scenarios run). Exits non-zero if
a check fails (e.g. logged rows != calls sent).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import sys
import time
from typing import Any

import orjson

from bench import load
from bench.procs import OUT, start_gateway, start_upstream
from bench.report import render
from bench.scenarios import SCENARIOS, STANDALONE, Bench, Plan, new_workdir


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs and 10,000 logged calls (under a minute)")
    parser.add_argument("--duration", type=float, help="measured seconds per throughput run (default 8, quick 2)")
    parser.add_argument("--only", help=f"comma-separated scenarios: {', '.join(SCENARIOS)}")
    parser.add_argument("--calls", type=int, help="calls for the logged-calls check (default 100000, quick 10000)")
    parser.add_argument("--chunks", type=int, default=16, help="content chunks per streamed upstream reply")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--postgres", default="", help="also measure the call log on this PostgreSQL URL")
    parser.add_argument("--no-wrk", action="store_true", help="use the Python load generator for throughput too")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = [n.strip() for n in args.only.split(",")] if args.only else list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s) {unknown}; choose from {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    plan = Plan(
        duration=args.duration or (2.0 if args.quick else 8.0),
        latency_duration=2.0 if args.quick else 5.0,
        warmup=0.5 if args.quick else 1.0,
        calls=args.calls or (10_000 if args.quick else 100_000),
        concurrency=args.concurrency,
        postgres_url=args.postgres,
    )
    if args.no_wrk:
        os.environ["BENCH_NO_WRK"] = "1"
    wrk = load.ensure_wrk()
    print(
        f"bench: throughput with {'wrk (' + wrk + ')' if wrk else 'the Python load generator'}; "
        f"latency and TTFT with the Python raw-asyncio client; upstream: raw asyncio + uvloop",
        flush=True,
    )
    OUT.mkdir(parents=True, exist_ok=True)
    workdir = new_workdir()
    began = time.monotonic()
    upstream = start_upstream(args.chunks)
    gateway = None
    try:
        if not STANDALONE.issuperset(names):
            gateway = start_gateway("gateway", workdir / "main", upstream.port, "sqlite")
        bench = Bench(plan, upstream, gateway, wrk, workdir)
        bench.sample_memory("start")
        for name in names:
            t0 = time.monotonic()
            print(f"bench: {name} ...", flush=True)
            SCENARIOS[name](bench)
            bench.sample_memory(name)
            print(f"bench: {name} done in {time.monotonic() - t0:.0f}s", flush=True)
    finally:
        if gateway is not None:
            gateway.stop()
        upstream.stop()
    report = render(bench.results, bench.memory)
    print("\n" + report)
    meta: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench.run", *(argv if argv is not None else sys.argv[1:])]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "plan": plan.__dict__ if hasattr(plan, "__dict__") else {f: getattr(plan, f) for f in plan.__slots__},
        "load_generator": {"throughput": "wrk" if wrk else "python", "latency": "python"},
        "seconds": round(time.monotonic() - began, 1),
    }
    payload = {"meta": meta, "results": bench.results, "memory": bench.memory, "failures": bench.failures}
    (OUT / "results.json").write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
    (OUT / "results.md").write_text(report)
    print(f"bench: wrote {OUT / 'results.json'} in {meta['seconds']}s total")
    shutil.rmtree(workdir, ignore_errors=True)
    if bench.failures:
        print("\nBENCH FAILED:\n  " + "\n  ".join(bench.failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
