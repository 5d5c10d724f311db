"""The processes a benchmark run starts (canned upstream, gateway, stack passthroughs) and how to stop them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
PYDEPS = OUT / "pydeps"  # optional packages installed with `pip --target`, never into the project venv


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(slots=True)
class Proc:
    """A child process we started, with its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def memory(self) -> dict[str, float]:
        """VmRSS and VmHWM (peak RSS) in MiB, from /proc."""
        fields: dict[str, float] = {}
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    fields[key] = int(value.split()[0]) / 1024
        except OSError:
            pass
        return {"rss_mib": fields.get("VmRSS", 0.0), "hwm_mib": fields.get("VmHWM", 0.0)}

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, wait; SIGKILL only if it does not exit in time. Returns the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                print(f"bench: {self.name} (pid {self.pid}) ignored SIGTERM for {timeout:g}s; killing it", flush=True)
                self.popen.kill()
                self.popen.wait()
        return int(self.popen.returncode)


def wait_ready(proc: Proc, path: str, timeout: float = 30.0, any_status: bool = False) -> None:
    """Until GET path answers 200 (any HTTP status with `any_status`: a peer with no health route)."""
    url = f"http://127.0.0.1:{proc.port}{path}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}; see {proc.log}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except urllib.error.HTTPError:
            if any_status:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name} not ready at {url} after {timeout:g}s; see {proc.log}")


def _spawn(
    name: str, cmd: list[str], port: int, env: dict[str, str], ready: str, cwd: Path = ROOT, any_status: bool = False
) -> Proc:
    OUT.mkdir(parents=True, exist_ok=True)
    log = OUT / f"{name}.log"
    with log.open("wb") as fh:
        popen = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT)
    proc = Proc(name, popen, port, log)
    try:
        wait_ready(proc, ready, any_status=any_status)
    except Exception:
        proc.stop(5)
        raise
    return proc


def start_upstream(chunks: int, realistic: bool = False) -> Proc:
    port = free_port()
    cmd = [sys.executable, "-m", "bench.upstream", "--port", str(port), "--chunks", str(chunks)]
    if realistic:
        cmd.append("--realistic")
    return _spawn("upstream", cmd, port, dict(os.environ), "/health")


def models_yaml(workdir: Path, upstream_port: int) -> Path:
    """One model through the canned upstream, one served by the in-process mock (no network)."""
    path = workdir / "models.yaml"
    path.write_text(
        "models:\n"
        "  - id: bench-model\n"
        "    route:\n"
        f'      - {{kind: openai, name: fast, base_url: "http://127.0.0.1:{upstream_port}/v1", '
        'api_key: "bench-key", weight: 1}\n'
        "  - id: bench-mock\n"
        "    route:\n"
        "      - {kind: mock, name: m, mock: {completion_tokens: 16}}\n"
    )
    return path


def start_gateway(
    name: str,
    workdir: Path,
    upstream_port: int,
    call_log: str,
    root: Path = ROOT,
    cpus: str | None = None,
    extra_env: Mapping[str, str] | None = None,
    workers: int = 1,
) -> Proc:
    """`python -m gateway serve --workers N`; call_log is "sqlite", "off" or a PostgreSQL URL. `root` is the
    checkout to run (its own .venv), `cpus` a `taskset -c` list to pin the gateway to, `extra_env` settings on
    top (an empty value removes the variable)."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "USE_SQLITE_LOG", "SQLITE_DB_PATH")}
    env.update(
        MODELS_CONFIG=str(models_yaml(workdir, upstream_port)),
        ROUTING_CONFIG="/nonexistent.yaml",
        LOG_LEVEL="WARNING",
        VAR_DIR=str(workdir),
        CALL_LOG_SPOOL_DIR=str(workdir / "spool"),
        SQLITE_DB_PATH=str(workdir / "calls.db"),
    )
    if call_log == "off":
        env["USE_SQLITE_LOG"] = "false"
    elif call_log != "sqlite":
        env.update(USE_SQLITE_LOG="false", DATABASE_URL=call_log)
    for key, value in (extra_env or {}).items():
        if value:
            env[key] = value
        else:
            env.pop(key, None)
    port = free_port()
    python = str(root / ".venv" / "bin" / "python") if root != ROOT else sys.executable
    cmd = [python, "-m", "gateway", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    if cpus is not None:
        cmd = ["taskset", "-c", cpus, *cmd]
    return _spawn(name, cmd, port, env, "/ready", cwd=root)


def start_stack(client: str, upstream_url: str) -> Proc:
    """`python -m bench.stacks`: the bare passthrough over one HTTP client."""
    port = free_port()
    env = dict(os.environ)
    if PYDEPS.is_dir():
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PYDEPS), env.get("PYTHONPATH", "")) if p)
    cmd = [sys.executable, "-m", "bench.stacks", "--client", client, "--port", str(port), "--upstream", upstream_url]
    return _spawn(f"stack-{client}", cmd, port, env, "/ready")


def start_sse_stack(relay: str, upstream_url: str) -> Proc:
    """`python -m bench.sse_stacks`: the bare streamed relay with one SSE response layer."""
    port = free_port()
    cmd = [sys.executable, "-m", "bench.sse_stacks", "--relay", relay, "--port", str(port), "--upstream", upstream_url]
    return _spawn(f"sse-stack-{relay}", cmd, port, dict(os.environ), "/ready")


def have_httpx_aiohttp() -> bool:
    """Whether httpx-aiohttp is importable (from the venv or bench/out/pydeps); tries a --target install once."""
    probe = [sys.executable, "-c", "import httpx_aiohttp"]
    env = dict(os.environ, PYTHONPATH=str(PYDEPS))
    if subprocess.run(probe, env=env, capture_output=True, check=False).returncode == 0:
        return True
    pip = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps"]
    subprocess.run([*pip, "--target", str(PYDEPS), "httpx-aiohttp"], capture_output=True, check=False, timeout=120)
    return subprocess.run(probe, env=env, capture_output=True, check=False).returncode == 0
