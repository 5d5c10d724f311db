"""`python -m bench.compare` (what `make bench` runs): the gateway against its peers, one pinned core each, one run.

Every target is pinned to core 1 with `taskset`; this process, the canned upstream and the load generators run on
core 0. Every target proxies the same canned upstream (bench/upstream.py, `--realistic`: a ~1 kB completion) and
gets the same realistic chat request (bench/load.py `realistic_body`, ~1.5 kB). Targets, in order:

- the gateway with every feature on: API keys, client rpm/tpm and stream limits, Prometheus metrics, the SQLite
  call log; then the same with one feature off at a time (call log, metrics, access, limits), so each has a cost;
- the bare Starlette + aiohttp passthrough (bench/stacks.py: no routing, no log): the Python floor;
- TensorZero (its PyPI wheel serves its Rust HTTP gateway in-process) and vllm-router (Rust), installed by
  bench/peers/*/setup.sh into `${PEERS_CACHE:-~/.cache/gateway-peers}` when missing; a peer whose install or
  start fails is skipped with one line, never the whole bench.

Per target: p50 at 1 client (and the added p50 over calling the upstream directly), added TTFT p50 of a stream
at 1 client, req/s at 64 clients (wrk when installed, else the Python client), the target's CPU time per request
from /proc (its whole process tree, over the 64-client run) and its RSS after it. Then one unpinned row pair:
the gateway with one worker and with two (labelled: load generator and upstream share the two cores with it).
The table goes to stdout, bench/out/compare.{md,json}, and is appended to bench/RESULTS.md (`--no-append`).
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bench import load
from bench.procs import OUT, ROOT, Proc, _spawn, free_port, start_gateway, start_upstream
from bench.scenarios import new_workdir

CHAT = "/v1/chat/completions"
BODY = "realistic"
PEERS_DIR = ROOT / "bench" / "peers"
GATEWAY_CORE = "1"
BENCH_KEY = "bench-key"  # what bench/load.py and wrk send as the bearer token

# Every feature on, and what turns each off (an empty value unsets the variable).
ALL_ON = {
    "GATEWAY_API_KEYS": f"bench:{BENCH_KEY}",
    "CLIENT_RPM": "100000000",
    "CLIENT_TPM": "100000000000",
    "MAX_STREAMS_PER_CLIENT": "512",
    "METRICS_ENABLED": "true",
}
FEATURES_OFF: dict[str, tuple[str, dict[str, str]]] = {
    "call log off": ("off", {}),
    "metrics off": ("sqlite", {"METRICS_ENABLED": "false"}),
    "access off": ("sqlite", {"GATEWAY_API_KEYS": ""}),
    "limits off": ("sqlite", {"CLIENT_RPM": "0", "CLIENT_TPM": "0", "MAX_STREAMS_PER_CLIENT": "0"}),
}


def peers_cache() -> Path:
    return Path(os.environ.get("PEERS_CACHE") or Path.home() / ".cache" / "gateway-peers")


def tree_cpu_seconds(pid: int) -> float:
    """utime + stime of a process and every descendant still alive, in seconds."""
    total = 0.0
    todo = [pid]
    tick = os.sysconf("SC_CLK_TCK")
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total


def tree_rss_mib(pid: int) -> float:
    total = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total


@dataclass(slots=True)
class Target:
    """One thing to measure: how to start it (pinned) and how to call it."""

    name: str
    start: Callable[[], Proc]
    path: str = CHAT
    model: str = "bench-model"
    note: str = ""


@dataclass(slots=True)
class Run:
    upstream: Proc
    workdir: Path
    duration: float
    wrk: str | None
    direct: dict[str, float] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    root: Path = ROOT  # the checkout whose gateway the gateway rows run (before/after figures)


def _pinned(cmd: list[str]) -> list[str]:
    return ["taskset", "-c", GATEWAY_CORE, *cmd]


def gateway_target(run: Run, name: str, call_log: str, env: dict[str, str]) -> Target:
    def start() -> Proc:
        slug = name.replace(" ", "-").replace(",", "")
        settings = {**ALL_ON, **env}
        port = run.upstream.port
        return start_gateway(
            f"cmp-{slug}", run.workdir / slug, port, call_log, root=run.root, cpus=GATEWAY_CORE, extra_env=settings
        )

    return Target(name, start)


def stack_target(run: Run) -> Target:
    def start() -> Proc:
        port = free_port()
        upstream = f"http://127.0.0.1:{run.upstream.port}{CHAT}"
        cmd = [sys.executable, "-m", "bench.stacks", "--client", "aiohttp", "--port", str(port), "--upstream", upstream]
        return _spawn("cmp-starlette-aiohttp", _pinned(cmd), port, dict(os.environ), "/ready")

    return Target("bare Starlette + aiohttp (no routing, no log)", start)


INSTALLED = {"tensorzero": ("venv/bin/python", "bindport.so"), "vllm-router": ("venv/bin/vllm-router",)}


def setup_peer(name: str) -> str:
    """Run the peer's setup.sh (idempotent) unless it is installed; '' when ready, else why it is not."""
    if all((peers_cache() / name / part).exists() for part in INSTALLED[name]):
        return ""
    script = PEERS_DIR / name / "setup.sh"
    log = OUT / f"peer-setup-{name}.log"
    env = dict(os.environ, PEERS_CACHE=str(peers_cache()))
    try:
        with log.open("wb") as fh:
            done = subprocess.run(["bash", str(script)], stdout=fh, stderr=subprocess.STDOUT, env=env, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"setup failed ({exc}); see {log}"
    return "" if done.returncode == 0 else f"setup.sh exited {done.returncode}; see {log}"


TENSORZERO_TOML = """[gateway]
disable_pseudonymous_usage_analytics = true

[gateway.observability]
enabled = false

[models.bench-model]
routing = ["mock"]

[models.bench-model.providers.mock]
type = "openai"
model_name = "bench-model"
api_base = "http://127.0.0.1:{port}/v1"
api_key_location = "none"
"""


def tensorzero_target(run: Run) -> Target:
    def start() -> Proc:
        venv = peers_cache() / "tensorzero" / "venv" / "bin" / "python"
        if not venv.exists() or not (peers_cache() / "tensorzero" / "bindport.so").exists():
            raise RuntimeError("not installed")
        config = run.workdir / "tensorzero.toml"
        config.write_text(TENSORZERO_TOML.format(port=run.upstream.port))
        port = free_port()
        env = dict(
            os.environ,
            PEERS_CACHE=str(peers_cache()),
            RUST_LOG="error",
            TENSORZERO_DISABLE_PSEUDONYMOUS_USAGE_ANALYTICS="1",
        )
        serve = PEERS_DIR / "tensorzero" / "serve.py"
        cmd = [str(venv), str(serve), "--config", str(config), "--port", str(port)]
        # no health route: any HTTP answer means it listens
        return _spawn("cmp-tensorzero", _pinned(cmd), port, env, "/", any_status=True)

    model = "tensorzero::model_name::bench-model"
    return Target("TensorZero 2026.6.0 (Rust)", start, "/openai/v1/chat/completions", model)


def vllm_router_target(run: Run) -> Target:
    def start() -> Proc:
        binary = peers_cache() / "vllm-router" / "venv" / "bin" / "vllm-router"
        if not binary.exists():
            raise RuntimeError("not installed")
        port = free_port()
        cmd = [str(binary), "--host", "127.0.0.1", "--port", str(port)]
        cmd += ["--worker-urls", f"http://127.0.0.1:{run.upstream.port}", "--policy", "round_robin"]
        cmd += ["--prometheus-host", "127.0.0.1", "--prometheus-port", str(free_port()), "--log-level", "warning"]
        return _spawn("cmp-vllm-router", _pinned(cmd), port, dict(os.environ), "/health")

    return Target("vllm-router 0.1.17 (Rust)", start)


def one_client(url: str, model: str, mode: str, seconds: float) -> dict[str, Any]:
    return load.run_in_process(url, model, mode, 1, seconds, 0, 0.5, body=BODY)


def many_clients(run: Run, url: str, model: str, duration: float, warmup: float) -> dict[str, Any]:
    if run.wrk:
        return load.run_wrk(run.wrk, url, model, False, 64, duration, warmup, OUT, body=BODY)
    return load.run_in_process(url, model, "json", 64, duration, 0, warmup, body=BODY)


def measure(run: Run, target: Target) -> dict[str, Any]:
    """Start the target pinned, measure it, stop it; a row (with `skipped` when it could not run)."""
    row: dict[str, Any] = {"target": target.name}
    try:
        proc = target.start()
    except Exception as exc:
        row["skipped"] = f"could not start: {str(exc)[:200]}"
        return row
    url = f"http://127.0.0.1:{proc.port}{target.path}"
    try:
        one = one_client(url, target.model, "json", 3.0)
        if one["errors"] or not one["latency_ms"]:
            raise RuntimeError(f"1-client run failed: statuses {one['statuses']}, {one['errors']} errors")
        row["p50_ms"] = one["latency_ms"]["p50"]
        row["added_p50_ms"] = one["latency_ms"]["p50"] - run.direct["p50"]
        try:
            stream = one_client(url, target.model, "stream", 2.0)
            if stream["ttft_ms"] and not stream["errors"]:
                row["added_ttft_ms"] = stream["ttft_ms"]["p50"] - run.direct["ttft"]
        except RuntimeError:
            pass
        many_clients(run, url, target.model, 1.0, 0)  # warm up before counting CPU
        before = tree_cpu_seconds(proc.pid)
        many = many_clients(run, url, target.model, run.duration, 0)
        used = tree_cpu_seconds(proc.pid) - before
        row.update(
            rps_64=many["rps"],
            errors_64=many["errors"],
            p99_64_ms=many["latency_ms"].get("p99", 0.0),
            cpu_ms=1000.0 * used / max(many["sent"], 1),
            rss_mib=tree_rss_mib(proc.pid),
        )
    except Exception as exc:
        row["skipped"] = f"failed: {str(exc)[:200]}"
    finally:
        proc.stop(10)
    return row


def scaling(run: Run) -> list[dict[str, Any]]:
    """One worker and two, unpinned (the load generator and upstream share the two cores): a labelled aside."""
    rows = []
    for workers in (1, 2):
        os.sched_setaffinity(0, set(range(os.cpu_count() or 2)))
        name = f"gateway everything on, {workers} worker{'s' if workers > 1 else ''}, UNPINNED"
        try:
            proc = start_gateway(
                f"cmp-unpinned-{workers}", run.workdir / f"w{workers}", run.upstream.port, "sqlite",
                extra_env=ALL_ON, workers=workers,
            )  # fmt: skip
        except Exception as exc:
            rows.append({"target": name, "skipped": f"could not start: {exc}"})
            continue
        url = f"http://127.0.0.1:{proc.port}{CHAT}"
        try:
            many_clients(run, url, "bench-model", 1.0, 0)
            before = tree_cpu_seconds(proc.pid)
            many = many_clients(run, url, "bench-model", run.duration, 0)
            used = tree_cpu_seconds(proc.pid) - before
            rows.append(
                {
                    "target": name,
                    "rps_64": many["rps"],
                    "errors_64": many["errors"],
                    "p99_64_ms": many["latency_ms"].get("p99", 0.0),
                    "cpu_ms": 1000.0 * used / max(many["sent"], 1),
                    "rss_mib": tree_rss_mib(proc.pid),
                }
            )
        except Exception as exc:
            rows.append({"target": name, "skipped": f"failed: {str(exc)[:200]}"})
        finally:
            proc.stop(10)
    os.sched_setaffinity(0, {0})
    return rows


def _cell(row: dict[str, Any], key: str, fmt: str) -> str:
    return format(row[key], fmt) if key in row else "-"


def render(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        f"### `make bench` (bench.compare), {meta['date']}",
        "",
        f"Each target pinned to core {GATEWAY_CORE}; upstream (bench/upstream.py --realistic) and load generators on "
        f"core 0; throughput with {meta['load_generator']}, {meta['duration']:g} s at 64 clients; the realistic "
        "chat request for every target. Added = over calling the upstream directly "
        f"(direct p50 {meta['direct_p50_ms']:.3f} ms, TTFT {meta['direct_ttft_ms']:.3f} ms). Load on the machine: "
        f"{meta['loadavg']}.",
        "",
        "| target | req/s, 64 clients | CPU ms / request | p50 ms, 1 client | added p50 ms | added TTFT p50 ms "
        "| p99 ms, 64 clients | RSS MiB | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['target']} | skipped: {r['skipped']} | | | | | | | |")
            continue
        lines.append(
            f"| {r['target']} | {_cell(r, 'rps_64', ',.0f')} | {_cell(r, 'cpu_ms', '.3f')} | "
            f"{_cell(r, 'p50_ms', '.3f')} | {_cell(r, 'added_p50_ms', '.3f')} | {_cell(r, 'added_ttft_ms', '.3f')} | "
            f"{_cell(r, 'p99_64_ms', '.2f')} | {_cell(r, 'rss_mib', '.1f')} | {r.get('errors_64', '-')} |"
        )
    one = next((r for r in rows if r["target"].endswith("1 worker, UNPINNED") and "rps_64" in r), None)
    two = next((r for r in rows if r["target"].endswith("2 workers, UNPINNED") and "rps_64" in r), None)
    if one and two:
        lines += ["", f"Two workers / one worker (unpinned): {two['rps_64'] / one['rps_64']:.2f}x."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__)
    parser.add_argument("--duration", type=float, default=6.0, help="seconds of each 64-client run")
    parser.add_argument("--no-peers", action="store_true", help="skip TensorZero and vllm-router")
    parser.add_argument("--no-scaling", action="store_true", help="skip the unpinned one/two-worker rows")
    parser.add_argument("--only-gateway", action="store_true", help="only the everything-on gateway row")
    parser.add_argument("--only", default="", help="comma-separated words: measure only targets whose name has one")
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout whose gateway to measure (default: this)")
    parser.add_argument("--no-append", action="store_true", help="do not append the table to bench/RESULTS.md")
    args = parser.parse_args(argv)
    if len(os.sched_getaffinity(0)) < 2 or shutil.which("taskset") is None:
        print("bench.compare needs two cores and taskset (util-linux)", file=sys.stderr)
        return 2
    began = time.monotonic()
    OUT.mkdir(parents=True, exist_ok=True)
    os.sched_setaffinity(0, {0})  # this process and every child not pinned elsewhere stay on core 0
    wrk = load.ensure_wrk()
    print(f"bench: throughput with {'wrk' if wrk else 'the Python load generator'}", flush=True)
    peers = [] if args.no_peers or args.only_gateway else ["tensorzero", "vllm-router"]
    unavailable = {}
    for peer in peers:
        print(f"bench: setting up {peer} (bench/peers/{peer}/setup.sh) ...", flush=True)
        why = setup_peer(peer)
        if why:
            print(f"bench: SKIPPING {peer}: {why}", flush=True)
            unavailable[peer] = why
    upstream = start_upstream(16, realistic=True)
    run = Run(upstream, new_workdir() / "compare", args.duration, wrk)
    run.workdir.mkdir(parents=True, exist_ok=True)
    run.root = args.root.resolve()
    try:
        direct_url = f"http://127.0.0.1:{upstream.port}{CHAT}"
        run.direct = {
            "p50": one_client(direct_url, "bench-model", "json", 2.0)["latency_ms"]["p50"],
            "ttft": one_client(direct_url, "bench-model", "stream", 2.0)["ttft_ms"]["p50"],
        }
        targets = [gateway_target(run, "gateway, everything on", "sqlite", {})]
        if not args.only_gateway:
            targets += [gateway_target(run, f"gateway, {name}", log, env) for name, (log, env) in FEATURES_OFF.items()]
            targets.append(stack_target(run))
        builders = {"tensorzero": tensorzero_target, "vllm-router": vllm_router_target}
        for peer in peers:
            target = builders[peer](run)
            if peer in unavailable:
                run.rows.append({"target": target.name, "skipped": unavailable[peer]})
                continue
            targets.append(target)
        words = [w.strip().lower() for w in args.only.split(",") if w.strip()]
        if words:
            targets = [t for t in targets if any(w in t.name.lower() for w in words)]
        for target in targets:
            print(f"bench: {target.name} ...", flush=True)
            row = measure(run, target)
            run.rows.append(row)
            print(f"bench:   {row}", flush=True)
        if not args.no_scaling and not args.only_gateway:
            run.rows += scaling(run)
    finally:
        upstream.stop()
    meta = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_generator": "wrk" if wrk else "the Python client (bench/load.py; wrk not installed)",
        "duration": args.duration,
        "direct_p50_ms": run.direct["p50"],
        "direct_ttft_ms": run.direct["ttft"],
        "loadavg": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        "seconds": round(time.monotonic() - began, 1),
    }
    table = render(run.rows, meta)
    print("\n" + table)
    (OUT / "compare.md").write_text(table)
    (OUT / "compare.json").write_bytes(orjson.dumps({"meta": meta, "rows": run.rows}, option=orjson.OPT_INDENT_2))
    if not args.no_append:
        with (ROOT / "bench" / "RESULTS.md").open("a") as fh:
            fh.write("\n" + table)
    shutil.rmtree(run.workdir, ignore_errors=True)
    print(f"bench: done in {meta['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
