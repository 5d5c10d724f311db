"""`python -m bench.pinned`: the gateway on one core, everything else on the other, as gateways are compared.

The gateway (one worker, routing, metrics and the SQLite call log on) is pinned to core 1 with `taskset`; this
process, the canned upstream, wrk and the Python load generator run on core 0. Reported: req/s at 64 clients
(wrk), added p50/p99 latency at 1 client, added TTFT p50 of a stream at 1 client, and the gateway's own CPU
time per request (utime + stime from /proc during the 64-client run). `--root` measures another checkout of the
gateway (e.g. a `git worktree` of an older commit) with this same harness, for before/after figures.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import orjson

from bench import load
from bench.procs import OUT, ROOT, start_gateway, start_upstream
from bench.scenarios import new_workdir

CHAT = "/v1/chat/completions"


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(root: Path, duration: float, label: str) -> dict[str, Any]:
    os.sched_setaffinity(0, {0})  # this process and every child but the gateway stay on core 0
    wrk = load.ensure_wrk()
    if wrk is None:
        raise SystemExit("bench.pinned needs wrk (apt-get install wrk)")
    upstream = start_upstream(16)
    gateway = start_gateway("gateway-pinned", new_workdir() / "pinned", upstream.port, "sqlite", root=root, cpus="1")
    try:
        direct = f"http://127.0.0.1:{upstream.port}{CHAT}"
        url = f"http://127.0.0.1:{gateway.port}{CHAT}"
        one_direct = load.run_in_process(direct, "bench-model", "json", 1, 5.0, 0, 1.0)
        one = load.run_in_process(url, "bench-model", "json", 1, 5.0, 0, 1.0)
        stream_direct = load.run_in_process(direct, "bench-model", "stream", 1, 5.0, 0, 1.0)
        stream = load.run_in_process(url, "bench-model", "stream", 1, 5.0, 0, 1.0)
        load.run_wrk(wrk, url, "bench-model", False, 64, 2.0, 0, OUT)  # warm up before counting CPU
        before = cpu_seconds(gateway.pid)
        many = load.run_wrk(wrk, url, "bench-model", False, 64, duration, 0, OUT)
        used = cpu_seconds(gateway.pid) - before
        rss = gateway.memory()["rss_mib"]
    finally:
        gateway.stop()
        upstream.stop()
    return {
        "label": label,
        "root": str(root),
        "rps_64": many["rps"],
        "errors_64": many["errors"],
        "cpu_ms_per_request": 1000.0 * used / max(many["requests"], 1),
        "added_p50_ms": one["latency_ms"]["p50"] - one_direct["latency_ms"]["p50"],
        "added_p99_ms": one["latency_ms"]["p99"] - one_direct["latency_ms"]["p99"],
        "added_ttft_p50_ms": stream["ttft_ms"]["p50"] - stream_direct["ttft_ms"]["p50"],
        "rss_mib": rss,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pinned", description=__doc__)
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout whose gateway to measure (default: this)")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of the 64-client run")
    parser.add_argument("--label", default="", help="name of the row (default: the root's folder)")
    args = parser.parse_args(argv)
    if len(os.sched_getaffinity(0)) < 2:
        print("bench.pinned needs two cores", file=sys.stderr)
        return 2
    result = measure(args.root.resolve(), args.duration, args.label or args.root.resolve().name)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"pinned-{result['label']}.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(
        f"{result['label']}: {result['rps_64']:,.0f} req/s at 64 clients ({result['errors_64']} errors), "
        f"{result['cpu_ms_per_request']:.3f} ms gateway CPU per request, added p50 {result['added_p50_ms']:.3f} ms "
        f"(p99 {result['added_p99_ms']:.3f}), added TTFT p50 {result['added_ttft_p50_ms']:.3f} ms, "
        f"RSS {result['rss_mib']:.1f} MiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
