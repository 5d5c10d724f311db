"""Start-up as a new user meets it, through real processes: a bad variable or config file stops the gateway with
one line (file or variable, field, fix) and a non-zero exit, never a traceback; plain uvicorn logs every call;
bare client keys work."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from gateway.settings import ROOT
from tests.support.gateway import free_port, write_config
from tests.support.served import GATEWAY_SERVE, isolated_env, json_lines

UVICORN = str(ROOT / ".venv" / "bin" / "uvicorn")
MOCK = {"models": [{"id": "m", "route": [{"kind": "mock", "name": "mock-a"}]}]}
TYPO = {"models": [{"id": "m", "route": [{"kind": "mock", "name": "mock-a", "wieght": 5}]}]}
MESSAGES = [{"role": "user", "content": "hello"}]


def run_until_exit(command: list[str], env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Start a server that is expected to fail at start-up; its exit code, stdout and stderr."""
    args = [*command, "--port", str(free_port())]
    return subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def error_lines(output: str) -> list[str]:
    """Lines that say something went wrong (JSON log lines at error level, or plain text)."""
    lines = []
    for line in output.splitlines():
        parsed = json_lines(line)
        if parsed:
            if parsed[0]["level"] in ("error", "critical"):
                lines.append(parsed[0]["msg"])
        elif "error" in line.lower():
            lines.append(line)
    return lines


COMMANDS = {
    "gateway serve": GATEWAY_SERVE,
    "uvicorn gateway.app:app": [UVICORN, "gateway.app:app", "--host", "127.0.0.1"],
    "uvicorn --factory": [UVICORN, "--factory", "gateway.app:create_app", "--host", "127.0.0.1"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_typo_in_models_yaml_stops_start_up_with_one_line(command: str, tmp_path: Path) -> None:
    env = isolated_env(tmp_path, **write_config(tmp_path, TYPO))
    result = run_until_exit(COMMANDS[command], env)
    output = result.stdout + result.stderr
    assert result.returncode == 3, output
    assert "Traceback" not in output
    errors = error_lines(output)
    assert len(errors) == 1, output
    assert "models.yaml" in errors[0] and "models[0].route[0].wieght" in errors[0]
    assert "did you mean `weight`" in errors[0] and "Fix:" in errors[0]


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("LOG_CONTENT", "maybe", "must be true/false, 1/0, yes/no or on/off"),
        ("USE_SQLITE_LOG", "maybe", "must be true/false, 1/0, yes/no or on/off"),
        ("ROUTER_DEADLINE", "-5", "must be > 0"),
        ("GATEWAY_API_KEYS", "alice:", "empty name or key"),
    ],
)
@pytest.mark.parametrize("command", ["gateway serve", "uvicorn gateway.app:app"])
def test_a_bad_variable_stops_start_up_with_one_line(
    command: str, variable: str, value: str, fragment: str, tmp_path: Path
) -> None:
    env = isolated_env(tmp_path, **write_config(tmp_path, MOCK), **{variable: value})
    result = run_until_exit(COMMANDS[command], env)
    output = result.stdout + result.stderr
    assert result.returncode == 3, output
    assert "Traceback" not in output
    errors = error_lines(output)
    assert len(errors) == 1, output
    assert f"environment variable {variable}" in errors[0] and fragment in errors[0] and "Fix:" in errors[0]


def test_check_config_names_a_bad_variable(tmp_path: Path) -> None:
    env = isolated_env(tmp_path, **write_config(tmp_path, MOCK), OFFLOAD="maybe")
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "check-config"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "OFFLOAD='maybe'" in result.stderr


@pytest.mark.parametrize("command", ["uvicorn gateway.app:app", "uvicorn --factory"])
def test_plain_uvicorn_logs_every_call(command: str, serve: Any, tmp_path: Path) -> None:
    server = serve(COMMANDS[command], isolated_env(tmp_path, LOG_LEVEL="INFO", **write_config(tmp_path, MOCK)))
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="k", max_retries=0, timeout=10)
    ids = [client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES).headers["x-request-id"]]
    stream = client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES, stream=True)
    ids.append(stream.headers["x-request-id"])
    list(stream.parse())
    server.terminate()
    calls = [line for line in json_lines(server.stderr) if line["logger"] == "gateway.calls"]
    assert [line["request_id"] for line in calls] == ids
    assert [line["stream"] for line in calls] == [False, True]
    assert all(line["msg"] == "call" and line["status"] == 200 and line["model"] == "m" for line in calls)


def test_bare_and_named_client_keys_both_work(serve: Any, tmp_path: Path) -> None:
    bare, named = "sk-abc123", "sk-named-456"
    env = isolated_env(tmp_path, GATEWAY_API_KEYS=f"{bare},ci:{named}", **write_config(tmp_path, MOCK))
    server = serve(GATEWAY_SERVE, env)
    for key in (bare, named):
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=10)
        assert client.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content
    refused = httpx.get(f"{server.url}/v1/models", headers={"Authorization": "Bearer sk-wrong"})
    assert refused.status_code == 401
    server.terminate()
    label = "key-" + hashlib.sha256(bare.encode()).hexdigest()[:8]
    with sqlite3.connect(tmp_path / "calls.db") as db:
        names = sorted(name for (name,) in db.execute("select api_key_name from api_logs"))
    assert names == sorted([label, "ci"])
    for path in (tmp_path / "calls.db", server.stderr_path, server.stdout_path):
        assert bare.encode() not in path.read_bytes() and named.encode() not in path.read_bytes()
