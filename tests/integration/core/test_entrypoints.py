"""Entry points as real processes: `uvicorn gateway.app:app`, `.env` loading, LOG_LEVEL, the no-keys warning."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from gateway.settings import ROOT, Settings
from routing.config.load import load_config
from tests.integration.core.conftest import models
from tests.support.gateway import write_config
from tests.support.served import GATEWAY_SERVE, STOP_WITHIN_S, Served, isolated_env, json_lines
from tests.support.upstream import FakeUpstream

MESSAGES = [{"role": "user", "content": "Say something."}]

# one deployment whose URL and key come only from variables, as a .env file gives them
FROM_DOTENV = {
    "kind": "openai",
    "name": "a",
    "base_url": "${GW_TEST_DOTENV_URL}",
    "api_key": "${GW_TEST_DEPLOY_KEY}",
    "provider_model_id": "up",
}


def sdk(url: str, key: str = "k") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=10)


def test_plain_uvicorn_serves_the_shipped_config_and_stops_on_sigterm(serve: Any, tmp_path: Path) -> None:
    env = isolated_env(tmp_path)
    uvicorn_bin = str(ROOT / ".venv" / "bin" / "uvicorn")
    server = serve([uvicorn_bin, "gateway.app:app", "--host", "127.0.0.1"], env)
    client = sdk(server.url)
    ids = [m.id for m in client.models.list()]
    assert "mock-gpt" in ids
    raw = client.chat.completions.with_raw_response.create(model="mock-gpt", messages=MESSAGES)
    reply = raw.parse()
    assert reply.model == "mock-gpt"
    assert raw.headers["x-gateway-deployment"] in {"mock-a", "mock-b"}
    assert reply.choices[0].message.content and reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.completion_tokens == 24  # the shipped mock's setting
    code, took = server.terminate()
    # uvicorn re-raises a captured SIGTERM after its graceful shutdown: the process ends by that signal.
    # (`gateway serve` turns that into exit 0; see gateway/server.py GracefulServer.)
    assert code == -signal.SIGTERM, server.stderr
    assert took < STOP_WITHIN_S
    assert "Application shutdown complete." in server.stderr
    assert "NO CLIENT API KEYS CONFIGURED" in server.stderr  # no logging config here, still said out loud
    # the temp call log was used, and the row queued by the async writer was flushed before exit
    with sqlite3.connect(tmp_path / "calls.db") as conn:
        rows = conn.execute("select request_id, model_id, deployment from api_logs").fetchall()
    assert rows == [(raw.headers["x-request-id"], "mock-gpt", raw.headers["x-gateway-deployment"])]


def test_dotenv_fills_settings_and_config_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    paths = write_config(
        root / "cfg",
        models(FROM_DOTENV),
    )
    (root / ".env").write_text(
        f"MODELS_CONFIG={paths['MODELS_CONFIG']}\n"
        "GW_TEST_DOTENV_URL=http://127.0.0.1:9/v1\n"
        "GW_TEST_DEPLOY_KEY=sk-from-dotenv\n"
    )
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("MODELS_CONFIG", raising=False)
    monkeypatch.delenv("GW_TEST_DOTENV_URL", raising=False)
    monkeypatch.setenv("GW_TEST_DEPLOY_KEY", "sk-from-environ")

    settings = Settings.from_env(root=root)
    assert settings.models_path == Path(paths["MODELS_CONFIG"])
    assert settings.env["GW_TEST_DOTENV_URL"] == "http://127.0.0.1:9/v1"
    assert settings.env["GW_TEST_DEPLOY_KEY"] == "sk-from-environ"
    config = load_config(settings.models_path, settings.routing_path, settings.env)
    (deployment,) = config.models[0].deployments
    assert deployment.enabled, deployment.disabled_reason
    assert deployment.base_url.rstrip("/") == "http://127.0.0.1:9/v1"
    assert deployment.api_key == "sk-from-environ"


def test_dotenv_in_the_working_directory_configures_a_real_gateway(serve: Any, tmp_path: Path) -> None:
    workdir = tmp_path / "workdir"
    with FakeUpstream.in_thread("a") as upstream:
        write_config(
            workdir,
            models(FROM_DOTENV),
        )
        # relative paths in .env are relative to the working directory, like the shell's
        (workdir / ".env").write_text(
            "MODELS_CONFIG=models.yaml\n"
            f"GW_TEST_DOTENV_URL={upstream.base_url}\n"
            "GW_TEST_DEPLOY_KEY=sk-from-dotenv\n"
            "LOG_LEVEL=WARNING\n"
        )
        env = isolated_env(tmp_path, PYTHONPATH=str(ROOT), GW_TEST_DEPLOY_KEY="sk-from-environ")
        server = serve(GATEWAY_SERVE, env, cwd=workdir)
        raw = sdk(server.url).chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
        assert raw.headers["x-gateway-deployment"] == "a"
        assert raw.parse().choices[0].message.content.startswith("[a]")
        chats = [r for r in upstream.requests if r.path == "/v1/chat/completions"]
        assert [r.headers["authorization"] for r in chats] == ["Bearer sk-from-environ"]
        server.terminate()


def test_view_logs_help_lists_its_options() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/view_logs.py", "--help"],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: view_logs.py")
    for option in ("--db", "--limit", "--hours"):
        assert option in result.stdout
    assert "Show the call log" in result.stdout


def _calls(server: Served, n: int) -> list[httpx.Headers]:
    client = sdk(server.url)
    return [
        client.chat.completions.with_raw_response.create(model="mock-gpt", messages=MESSAGES).headers for _ in range(n)
    ]


def test_log_level_warning_suppresses_the_per_call_line(serve: Any, tmp_path: Path) -> None:
    server = serve(GATEWAY_SERVE, isolated_env(tmp_path, LOG_LEVEL="WARNING"))
    _calls(server, 2)
    code, _ = server.terminate()
    assert code == 0
    lines = json_lines(server.stderr)
    assert lines, f"expected JSON log lines on stderr:\n{server.stderr}"
    assert {line["level"] for line in lines} <= {"warning", "error", "critical"}
    assert [line for line in lines if line["logger"] == "gateway.calls"] == []


def test_log_level_info_writes_one_json_line_per_call(serve: Any, tmp_path: Path) -> None:
    server = serve(GATEWAY_SERVE, isolated_env(tmp_path, LOG_LEVEL="INFO"))
    headers = _calls(server, 3)
    code, _ = server.terminate()
    assert code == 0
    calls = [line for line in json_lines(server.stderr) if line["logger"] == "gateway.calls"]
    assert [line["request_id"] for line in calls] == [h["x-request-id"] for h in headers]
    for line, h in zip(calls, headers, strict=True):
        assert line["level"] == "info" and line["msg"] == "call"
        assert line["model"] == "mock-gpt"
        assert line["deployment"] == h["x-gateway-deployment"]
        assert line["status"] == 200
        assert isinstance(line["latency_ms"], float | int) and line["latency_ms"] > 0


def test_no_client_keys_is_a_startup_warning_naming_the_variable(serve: Any, tmp_path: Path) -> None:
    server = serve(GATEWAY_SERVE, isolated_env(tmp_path, LOG_LEVEL="WARNING"))
    server.terminate()
    warnings = [line for line in json_lines(server.stderr) if "GATEWAY_API_KEYS" in line["msg"]]
    assert len(warnings) == 1, server.stderr
    assert warnings[0]["level"] == "warning" and warnings[0]["logger"] == "gateway"
    assert "NO CLIENT API KEYS CONFIGURED" in warnings[0]["msg"]


def test_configured_client_keys_give_no_such_warning(serve: Any, tmp_path: Path) -> None:
    key = "sk-gw-test-0123456789abcdef"
    server = serve(GATEWAY_SERVE, isolated_env(tmp_path, LOG_LEVEL="INFO", GATEWAY_API_KEYS=f"ci:{key}"))
    server.terminate()
    lines = json_lines(server.stderr)
    assert "client API keys: 1 configured" in [line["msg"] for line in lines], server.stderr
    assert [line for line in lines if "GATEWAY_API_KEYS" in line["msg"]] == []
    assert key not in server.stderr
