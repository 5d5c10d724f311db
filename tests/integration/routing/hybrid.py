"""A hybrid pool for tests: vLLM twins as local deployments, fake upstreams as remote ones, `local_first` routing."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from tests.support.upstream import FakeUpstream
from tests.support.vllm_twin import VllmTwin

MODEL = "m"
MESSAGES = [{"role": "user", "content": "Ping"}]


def hybrid_config(
    twins: Sequence[VllmTwin], clouds: Sequence[FakeUpstream], **local_first: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """models.yaml and routing.yaml: each twin a local `kind: vllm` deployment, each cloud a priced remote one."""
    route: list[dict[str, Any]] = [
        {"kind": "vllm", "name": t.name, "base_url": t.base_url, "provider_model_id": t.spec.model} for t in twins
    ]
    route += [
        {
            "kind": "openai",
            "name": c.name,
            "base_url": c.base_url,
            "api_key": f"sk-{c.name}",
            "pricing": {"prompt": "1000", "completion": "1000"},
            "weight": 1.0,
        }
        for c in clouds
    ]
    models = {"models": [{"id": MODEL, "route": route}]}
    affinity = local_first.pop("affinity", None)
    routing: dict[str, Any] = {
        "routing_strategy": "local_first",
        "local_first": {"scrape_interval": 0.05, "scrape_timeout": 0.05, **local_first},
        "local_deployment": [{"endpoint": t.url, "models": [MODEL]} for t in twins],
        "remote_deployment": [{"endpoint": c.url, "models": [MODEL]} for c in clouds],
    }
    if affinity is not None:
        routing["affinity"] = affinity
    return models, routing


def eventually(check: Callable[[], Any], timeout: float = 3.0) -> Any:
    """Poll `check` until it returns something truthy (scrapes run every 50 ms); fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value {value!r})")
        time.sleep(0.01)


def chat(url: str, headers: dict[str, str] | None = None, **body: Any) -> httpx.Response:
    payload = {"model": MODEL, "messages": MESSAGES, "max_tokens": 4, **body}
    return httpx.post(f"{url}/v1/chat/completions", json=payload, headers=headers or {}, timeout=15)


def served_by(url: str, headers: dict[str, str] | None = None, **body: Any) -> str:
    resp = chat(url, headers, **body)
    assert resp.status_code == 200, resp.text
    return str(resp.headers["x-gateway-deployment"])


def reasons(gw: Any) -> list[str]:
    """The routing reason of every call-log row, oldest first."""
    db = Path(gw.settings.env["SQLITE_DB_PATH"])
    with sqlite3.connect(db) as conn:
        return [str(r[0]) for r in conn.execute("select routing_reason from api_logs order by id")]


def scraped(gw: Any, twin: VllmTwin, **figures: float) -> None:
    """Wait until the gateway's latest scrape of `twin` shows these figures (set them with twin.override)."""

    def seen() -> bool:
        state = gw.services.deployments.scrape_state(f"{MODEL}/{twin.name}")
        sample = state.sample if state is not None and not state.error else None
        return sample is not None and all(getattr(sample, k) == v for k, v in figures.items())

    eventually(seen)
