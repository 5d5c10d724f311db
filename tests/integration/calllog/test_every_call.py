"""Every call that names a model leaves exactly one row and one request metric, whatever refused or broke it;
the cost a client is shown is the one logged; no upstream error text carries a key. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import GatewayFactory
from tests.integration.calllog.conftest import LogBackend
from tests.integration.core.conftest import models, route
from tests.support.gateway import ThreadGateway
from tests.support.upstream import FakeUpstream

MESSAGES = [{"role": "user", "content": "What is the answer?"}]
SK_KEY = "sk-live-abcdefgh12345678"
PLAIN_KEY = "correct-horse-battery-staple"  # nothing about it looks like a key: only the gateway knows it is one


def attempts(row: dict[str, Any]) -> list[dict[str, Any]]:
    value = row["attempts"]
    parsed: list[dict[str, Any]] = json.loads(value) if isinstance(value, str) else value
    return parsed


def requests_metric(gw: ThreadGateway) -> dict[tuple[str, str], float]:
    """gateway_requests_total by (model, status), scraped from /metrics."""
    totals: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(httpx.get(f"{gw.url}/metrics").text):
        for sample in family.samples:
            if sample.name == "gateway_requests_total":
                key = (sample.labels["model"], sample.labels["status"])
                totals[key] = totals.get(key, 0.0) + sample.value
    return totals


def chat(gw: ThreadGateway, **body: Any) -> httpx.Response:
    return httpx.post(f"{gw.url}/v1/chat/completions", json={"messages": MESSAGES, **body}, timeout=20)


class HeldStream:
    """A slow stream read in a thread, so the test can act while the gateway counts it open."""

    def __init__(self, gw: ThreadGateway, upstream: FakeUpstream, **body: Any) -> None:
        slow = {"*": {"chunks": 20, "chunk_delay": 0.1}}
        payload = {"model": "m", "messages": MESSAGES, "stream": True, "x_test": slow, **body}
        self.status = 0
        self._thread = threading.Thread(target=self._read, args=(gw.url, payload))
        before = upstream.count
        self._thread.start()
        deadline = time.monotonic() + 5
        while upstream.count == before and time.monotonic() < deadline:
            time.sleep(0.02)

    def _read(self, url: str, payload: dict[str, Any]) -> None:
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=payload, timeout=20) as resp:
            self.status = resp.status_code
            resp.read()

    def join(self) -> None:
        self._thread.join(timeout=20)


def test_refused_calls_leave_one_row_and_a_metric(
    gateway_factory: GatewayFactory, upstreams: tuple[FakeUpstream, FakeUpstream], log_backend: LogBackend
) -> None:
    a, _ = upstreams
    config = models(route(a))
    config["models"].append({"id": "off", "route": [{"kind": "deepseek", "name": "ds-off"}]})  # no api_key
    gw = gateway_factory(config, CLIENT_TPM="1500", MAX_STREAMS_PER_CLIENT="1", **log_backend.env)

    unknown = chat(gw, model="no-such-model")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
    disabled = chat(gw, model="off")
    assert disabled.status_code == 503 and disabled.json()["error"]["code"] == "no_deployment_available"
    assert disabled.json()["error"]["message"].startswith("no deployment of model off is available: ds-off: ")
    held = HeldStream(gw, a, max_tokens=1000)  # reserves ~1000 of the client's 1500 tokens a minute meanwhile
    limited = chat(gw, model="m", max_tokens=1000)
    capped = chat(gw, model="m", stream=True, max_tokens=10)
    held.join()
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert capped.status_code == 429 and capped.json()["error"]["code"] == "too_many_streams"
    assert held.status == 200

    expected = {
        unknown: ("no-such-model", 404, "does not exist"),
        disabled: ("off", 503, "no api_key"),
        limited: ("m", 429, "rate limit for this client"),
        capped: ("m", 429, "too many concurrent streams"),
    }
    for resp, (model, status, error) in expected.items():
        row = log_backend.row(resp.headers["x-request-id"])
        assert (row["model_id"], row["status_code"]) == (model, status)
        assert error in row["error"] and len(row["error"]) < 200
        assert float(row["cost_usd"]) == 0.0 and attempts(row) == []
    assert len(log_backend.rows()) == 5  # the four refusals and the held stream: one row per call
    seen = requests_metric(gw)
    # a made-up model name never becomes a label: the call is counted under model ""
    assert seen[("", "404")] == 1 and seen[("off", "503")] == 1 and seen[("m", "429")] == 2
    assert not any(model == "no-such-model" for model, _ in seen)


def test_client_reservation_is_released_on_every_path(
    gateway_factory: GatewayFactory,
    upstreams: tuple[FakeUpstream, FakeUpstream],
    log_backend: LogBackend,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, _ = upstreams
    # one call may reserve ~1000 tokens of 1500 a minute: a second reservation left behind refuses the next call
    gw = gateway_factory(models(route(a)), CLIENT_TPM="1500", MAX_STREAMS_PER_CLIENT="1", **log_backend.env)
    held = HeldStream(gw, a, max_tokens=1000)
    refused = chat(gw, model="m", stream=True, max_tokens=1000)
    held.join()
    # the cheap cap check comes first: the refused stream never reserved, so it is not a rate-limit refusal
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "too_many_streams"

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("executor bug with a secret-free message")

    monkeypatch.setattr(gw.services.executor, "complete", broken)
    failed = chat(gw, model="m", max_tokens=1000)
    monkeypatch.undo()
    assert failed.status_code == 500
    error = failed.json()["error"]
    assert error["code"] == "internal_error" and error["type"] == "server_error"
    assert "Traceback" not in failed.text and "RuntimeError" not in failed.text
    row = log_backend.row(failed.headers["x-request-id"])
    assert row["status_code"] == 500 and row["error"] == "internal error (RuntimeError)"
    for _ in range(2):  # only possible when the failed call gave its reservation back
        ok = chat(gw, model="m", max_tokens=1000)
        assert ok.status_code == 200, ok.text
    assert requests_metric(gw)[("m", "500")] == 1


def test_cancelled_non_streamed_call_leaves_a_row(
    gateway_factory: GatewayFactory, upstreams: tuple[FakeUpstream, FakeUpstream], log_backend: LogBackend
) -> None:
    a, _ = upstreams
    a.behaviour = {"delay_headers": 10}
    gw = gateway_factory(models(route(a)), **log_backend.env)
    gw.server.config.timeout_graceful_shutdown = 1  # uvicorn then cancels the handler still waiting upstream
    done: list[BaseException | httpx.Response] = []

    def call() -> None:
        try:
            done.append(chat(gw, model="m"))
        except httpx.HTTPError as exc:
            done.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    deadline = time.monotonic() + 5
    while a.count == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    gw.stop()
    thread.join(timeout=10)
    rows = log_backend.rows()
    assert len(rows) == 1
    assert rows[0]["status_code"] == 503 and "cancelled" in rows[0]["error"] and rows[0]["model_id"] == "m"
    assert json.loads(rows[0]["metadata"]).get("cancelled") is True


def test_logged_cost_is_the_cost_shown_and_charges_the_serving_attempt(
    gateway_factory: GatewayFactory, upstreams: tuple[FakeUpstream, FakeUpstream], log_backend: LogBackend
) -> None:
    a, b = upstreams
    a.behaviour = {"status": 500, "delay_headers": 0.4}
    b.behaviour = {"delay_headers": 0.1}
    rate = 0.5  # USD per second, no token price: the cost is time, so pricing twice would disagree
    config = models(
        route(a, 1.0, cost_per_second=rate), route(b, 0.0, cost_per_second=rate), pricing={"prompt": 0, "completion": 0}
    )
    gw = gateway_factory(config, **log_backend.env)
    whole = chat(gw, model="m")
    assert whole.status_code == 200 and whole.headers["x-gateway-deployment"] == "b"
    with httpx.stream(
        "POST",
        f"{gw.url}/v1/chat/completions",
        json={"model": "m", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}},
        timeout=20,
    ) as resp:
        streamed_id = resp.headers["x-request-id"]
        events = [json.loads(line[6:]) for line in resp.iter_lines() if line.startswith("data: {")]
    shown = {
        whole.headers["x-request-id"]: whole.json()["usage"]["cost"],
        streamed_id: next(e["usage"]["cost"] for e in events if e.get("usage")),
    }
    for request_id, cost in shown.items():
        row = log_backend.row(request_id)
        assert float(row["cost_usd"]) == cost  # exactly: one figure, priced once
        served, failed = attempts(row)[-1], attempts(row)[0]
        assert served["deployment"] == "b" and failed["deployment"] == "a" and failed["duration_ms"] >= 400
        # b's own seconds, not the whole call with a's failed 0.4 s in it
        assert cost == pytest.approx(served["duration_ms"] / 1000 * rate, rel=1e-3, abs=1e-6)
        assert cost < 0.4 * rate


class EchoingUpstream(FakeUpstream):
    """Refuses every chat call and quotes the credentials it was sent in its error, as careless upstreams do."""

    status = 401

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self._record(request, None).ended.set()
        auth = request.headers.get("Authorization", "")
        key = auth.removeprefix("Bearer ")
        message = f"Incorrect API key provided: {key}. You sent Authorization: {auth}; retry with ?api_key={key}"
        return web.json_response({"error": {"message": message}}, status=self.status, headers=self._headers())


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_error_text_never_carries_a_key(
    gateway_factory: GatewayFactory, log_backend: LogBackend, stream: bool
) -> None:
    with EchoingUpstream.in_thread("e1") as e1, EchoingUpstream.in_thread("e2") as e2:
        config = models(route(e1, 1.0, api_key=SK_KEY), route(e2, 0.0, api_key=PLAIN_KEY))
        gw = gateway_factory(config, **log_backend.env)
        failed = chat(gw, model="m", stream=stream)
        assert failed.status_code == 502 and e1.count >= 1 and e2.count >= 1
        e1.status = 400  # the client's own request refused: the upstream's text goes back to the client
        e2.status = 400
        rejected = chat(gw, model="m", stream=stream)
        assert rejected.status_code == 400 and "Incorrect API key provided: ***" in rejected.text
    for resp in (failed, rejected):
        row = log_backend.row(resp.headers["x-request-id"])
        logged = json.dumps([row["error"], attempts(row)])
        assert "Incorrect API key" in logged and "***" in logged
        for secret in (SK_KEY, PLAIN_KEY, PLAIN_KEY[:12], "abcdefgh1234"):
            assert secret not in resp.text and secret not in logged


def test_beacon_inference_disabled_model_is_503_and_logged(
    gateway_factory: GatewayFactory, upstreams: tuple[FakeUpstream, FakeUpstream], log_backend: LogBackend
) -> None:
    a, _ = upstreams
    config = models(route(a))
    config["models"].append({"id": "rp", "route": [{"kind": "runpod", "name": "rp-off", "base_url": a.url}]})
    gw = gateway_factory(config, **log_backend.env)
    off = httpx.post(f"{gw.url}/inference", json={"model": "rp", "prompt": "hi"})
    assert off.status_code == 503 and off.json()["error_code"] == "NO_PROVIDER_AVAILABLE"
    assert off.json()["error"].startswith("no deployment of model rp is available: rp-off: ")
    unknown = httpx.post(f"{gw.url}/inference", json={"model": "nope", "prompt": "hi"})
    assert unknown.status_code == 404 and unknown.json()["error_code"] == "NO_PROVIDER_AVAILABLE"
    for resp, model, status in ((off, "rp", 503), (unknown, "nope", 404)):
        row = log_backend.row(resp.json()["request_id"])
        assert (row["model_id"], row["status_code"], row["endpoint"]) == (model, status, "/inference")
    seen = requests_metric(gw)
    assert seen[("rp", "503")] == 1 and seen[("", "404")] == 1
