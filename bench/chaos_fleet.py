"""The fleet `make chaos` and `make soak` run: fake upstreams (in threads of this process, so faults are set
directly on them), gateway replicas (`gateway serve --workers N`, each its own process tree, any checkout), and a
small round-robin TCP load balancer in front of them.

Two models: `chaos-model` over three OpenAI-compatible upstreams (`up-a`, `up-b`, `up-c`, equal weights; faults go
to `up-a`), and `chaos-local` under `local_first` over two vLLM twins (`gpu-a`, `gpu-b`) that spills to `cloud`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.procs import OUT, Proc, free_port, wait_ready
from tests.support.upstream import FakeUpstream
from tests.support.vllm_twin import TwinSpec, VllmTwin

MODEL = "chaos-model"
LOCAL_MODEL = "chaos-local"
TWIN_MODEL = "chaos-llama"
UPSTREAM = {"chunks": 6, "chunk_delay": 0.04}  # a stream of about 0.25 s
TWIN = {"capacity": 8, "prefill": 0.02, "cached_prefill": 0.01, "per_token": 0.01, "completion_tokens": 12}
TIMEOUTS = {"connect": 1, "first_token": 2, "idle": 2, "total": 30}
# never reached at this load: it only makes each attempt hold a `max_concurrent` slot (a lease, with shared state)
MAX_CONCURRENT = 64


@dataclass(slots=True)
class Upstreams:
    """Every fake upstream of the fleet, by deployment name."""

    fakes: dict[str, FakeUpstream] = field(default_factory=dict)
    twins: dict[str, VllmTwin] = field(default_factory=dict)

    def port(self, name: str) -> int:
        return (self.fakes.get(name) or self.twins[name]).port

    def configs(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """models.yaml and routing.yaml (as JSON, which YAML reads) for this fleet."""
        url = {name: f"http://127.0.0.1:{self.port(name)}" for name in [*self.fakes, *self.twins]}
        fakes = [
            {
                "kind": "openai",
                "name": name,
                "base_url": f"{url[name]}/v1",
                "api_key": "chaos",
                "provider_model_id": MODEL,
                "weight": 1,
                "timeouts": TIMEOUTS,
                "max_concurrent": MAX_CONCURRENT,
            }
            for name in ("up-a", "up-b", "up-c")
        ]
        local: list[dict[str, Any]] = [
            {
                "kind": "vllm",
                "name": g,
                "base_url": f"{url[g]}/v1",
                "provider_model_id": TWIN_MODEL,
                "timeouts": TIMEOUTS,
                "max_concurrent": MAX_CONCURRENT,
            }
            for g in ("gpu-a", "gpu-b")
        ]
        cloud = {
            "kind": "openai",
            "name": "cloud",
            "base_url": f"{url['cloud']}/v1",
            "api_key": "chaos",
            "provider_model_id": TWIN_MODEL,
            "timeouts": TIMEOUTS,
            "max_concurrent": MAX_CONCURRENT,
        }
        zero = {"prompt": "0", "completion": "0"}
        models = {
            "models": [
                {"id": MODEL, "pricing": zero, "route": fakes},
                {"id": LOCAL_MODEL, "pricing": zero, "route": [*local, cloud]},
            ]
        }
        routing = {
            "timeout": 0.5,
            "health_check": 1,
            "strategies": {"hybrid": {"kind": "local_first"}},
            "model_strategies": {LOCAL_MODEL: "hybrid"},
            "local_first": {"max_waiting": 2, "max_kv_usage": 0.95, "resume_below": 0.5, "scrape_interval": 0.25},
            "affinity": {"enabled": False},
            "local_deployment": [{"endpoint": url[g], "models": [LOCAL_MODEL]} for g in ("gpu-a", "gpu-b")],
            "remote_deployment": [{"endpoint": url["cloud"], "models": [LOCAL_MODEL]}],
        }
        return models, routing


@contextlib.contextmanager
def upstreams() -> Iterator[Upstreams]:
    """Start every fake upstream, each on its own loop in a thread of this process."""
    fleet = Upstreams()
    with contextlib.ExitStack() as stack:
        for name in ("up-a", "up-b", "up-c"):
            fleet.fakes[name] = stack.enter_context(FakeUpstream.in_thread(name, dict(UPSTREAM), models=(MODEL,)))
        fleet.fakes["cloud"] = stack.enter_context(
            FakeUpstream.in_thread("cloud", dict(UPSTREAM), models=(TWIN_MODEL,))
        )
        for name in ("gpu-a", "gpu-b"):
            spec = TwinSpec(model=TWIN_MODEL, **TWIN)  # type: ignore[arg-type]
            fleet.twins[name] = stack.enter_context(VllmTwin.in_thread(name, spec))
        yield fleet


class Replica:
    """One gateway replica: `python -m gateway serve --workers N` of checkout `root`, on a fixed port so it can
    be restarted behind the load balancer."""

    def __init__(self, name: str, root: Path, workdir: Path, env: dict[str, str], workers: int = 2) -> None:
        self.name, self.root, self.workdir, self.env, self.workers = name, root, workdir, env, workers
        self.port = free_port()
        self.proc: Proc | None = None
        self.starts = 0

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        python = str(self.root / ".venv" / "bin" / "python")
        cmd = [python, "-m", "gateway", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        cmd += ["--workers", str(self.workers)]
        OUT.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        log = OUT / f"chaos-{self.name}.log"
        with log.open("ab") as fh:
            popen = subprocess.Popen(cmd, cwd=self.root, env=self.env, stdout=fh, stderr=subprocess.STDOUT)
        self.proc = Proc(self.name, popen, self.port, log)
        wait_ready(self.proc, "/ready", timeout=60)
        deadline = time.monotonic() + 30
        while len(self.worker_pids()) < self.workers and time.monotonic() < deadline:
            time.sleep(0.1)

    def worker_pids(self) -> list[int]:
        """The supervisor's worker processes (multiprocessing's spawn children, not its resource tracker)."""
        if self.proc is None:
            return []
        pid = self.proc.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return []
        workers = []
        for child in map(int, children):
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"resource_tracker" not in cmdline:
                workers.append(child)
        return workers

    def kill_worker(self) -> int:
        """SIGKILL one worker; returns its pid."""
        pid = self.worker_pids()[0]
        os.kill(pid, signal.SIGKILL)
        return pid

    def terminate(self) -> None:
        if self.proc is not None and self.proc.popen.poll() is None:
            self.proc.popen.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        try:
            return int(self.proc.popen.wait(timeout))
        except subprocess.TimeoutExpired:
            self.proc.popen.kill()
            return int(self.proc.popen.wait())

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(60)

    def memory_fds(self) -> list[tuple[int, float, int]]:
        """(pid, RSS MiB, open fds) of the supervisor and each worker."""
        if self.proc is None:
            return []
        out = []
        for pid in [self.proc.pid, *self.worker_pids()]:
            try:
                rss = 0.0
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        rss = int(line.split()[1]) / 1024
                fds = len(os.listdir(f"/proc/{pid}/fd"))
            except OSError:
                continue
            out.append((pid, rss, fds))
        return out


def gateway_env(
    workdir: Path, models: dict[str, Any], routing: dict[str, Any], extra: dict[str, str]
) -> dict[str, str]:
    """The environment every replica gets: this fleet's config, a quiet log, fast circuit settings."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "models.yaml").write_text(json.dumps(models))
    (workdir / "routing.yaml").write_text(json.dumps(routing))
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TZ")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        MODELS_CONFIG=str(workdir / "models.yaml"),
        ROUTING_CONFIG=str(workdir / "routing.yaml"),
        LOG_LEVEL="WARNING",
        USE_SQLITE_LOG="false",
        GRACEFUL_TIMEOUT="15",
        MAX_STREAMS_PER_CLIENT="0",
    )
    env.update(extra)
    return env


class Balancer:
    """A round-robin TCP proxy: each client connection goes to the next backend that accepts it (a refused
    connect moves on to the next, as nginx's `proxy_next_upstream error` does)."""

    def __init__(self, backends: list[int]) -> None:
        self.backends = backends
        self.next = 0
        self.port = 0
        self.refused = 0  # client connections no backend accepted
        self.empty: list[tuple[float, int]] = []  # (when, backend port): closed without a byte of answer
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _connect(self) -> tuple[int, asyncio.StreamReader, asyncio.StreamWriter] | None:
        for _ in range(len(self.backends)):
            port = self.backends[self.next % len(self.backends)]
            self.next += 1
            try:
                return port, *await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                continue
        return None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = await self._connect()
        if upstream is None:
            self.refused += 1
            writer.close()
            return
        port, up_reader, up_writer = upstream
        _, answered = await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer), return_exceptions=True)
        if answered == 0:
            self.empty.append((time.time(), port))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> int:
    """Copy until EOF or an error; returns the bytes copied."""
    copied = 0
    try:
        while data := await reader.read(65536):
            copied += len(data)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        # a reset on one side is passed on as a close: the client sees the connection end mid-answer
        with contextlib.suppress(Exception):
            writer.close()
    return copied
