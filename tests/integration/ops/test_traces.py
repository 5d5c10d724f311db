"""OpenTelemetry GenAI traces, exported over OTLP/HTTP to a receiver this test starts: one SERVER span per call,
one CLIENT child per upstream attempt, the client's traceparent honoured and each attempt's sent upstream; with
the endpoint unset, the gateway process never imports OpenTelemetry."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.conftest import GatewayFactory
from tests.integration.core.conftest import models, route
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.support.served import GATEWAY_SERVE, isolated_env
from tests.support.upstream import FakeUpstream

MESSAGES = [{"role": "user", "content": "Tell me something."}]
CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as r:
        yield r


def traced_env(receiver: OtlpReceiver) -> dict[str, str]:
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "50"}


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0, timeout=30)


def trace_of(receiver: OtlpReceiver, attempts: int) -> tuple[ReceivedSpan, list[ReceivedSpan]]:
    """The one call span and its attempt spans (in start order), once all have arrived."""
    spans = receiver.wait_for(
        lambda s: sum(x.kind == "client" for x in s) >= attempts and any(x.kind == "server" for x in s)
    )
    calls = [s for s in spans if s.kind == "server"]
    assert len(calls) == 1, spans
    tries = sorted((s for s in spans if s.kind == "client"), key=lambda s: s.start_ns)
    assert len(tries) == attempts, spans
    for attempt in tries:
        assert (attempt.trace_id, attempt.parent_span_id) == (calls[0].trace_id, calls[0].span_id)
    return calls[0], tries


def sent_traceparent(upstream: FakeUpstream, index: int = -1) -> tuple[str, str]:
    match = TRACEPARENT.match(upstream.requests[index].headers.get("traceparent", ""))
    assert match, upstream.requests[index].headers
    return match.group(1), match.group(2)


def test_a_non_streamed_call_and_its_attempt(gateway_factory: GatewayFactory, upstreams, receiver) -> None:
    a, _ = upstreams
    a.behaviour = {"cached_tokens": 3, "reasoning_tokens": 2}
    gw = gateway_factory(models(route(a)), **traced_env(receiver))
    answer = client(gw.url).chat.completions.create(model="m", messages=MESSAGES)
    call, (attempt,) = trace_of(receiver, 1)
    assert call.name == "chat m" and call.parent_span_id == "" and call.service == "hybrid-gateway"
    usage = answer.usage
    assert usage is not None
    assert call.attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "m",
        "gen_ai.request.stream": False,
        "gen_ai.provider.name": "openai",
        "gen_ai.response.model": "m",
        "gen_ai.usage.input_tokens": usage.prompt_tokens,
        "gen_ai.usage.output_tokens": usage.completion_tokens,
        "gen_ai.usage.cache_read.input_tokens": 3,
        "gen_ai.usage.reasoning.output_tokens": 2,
    }
    assert attempt.name == "chat upstream-a" and not attempt.error
    assert attempt.attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "upstream-a",
        "gen_ai.request.stream": False,
        "gen_ai.response.model": "upstream-a",
        "gateway.deployment": "a",
        "server.address": "127.0.0.1",
        "server.port": a.port,
        "gen_ai.usage.input_tokens": usage.prompt_tokens,
        "gen_ai.usage.output_tokens": usage.completion_tokens,
        "gen_ai.usage.cache_read.input_tokens": 3,
        "gen_ai.usage.reasoning.output_tokens": 2,
    }
    assert call.start_ns <= attempt.start_ns <= attempt.end_ns <= call.end_ns
    assert sent_traceparent(a) == (call.trace_id, attempt.span_id)


def test_a_streamed_call_times_its_first_chunk(gateway_factory: GatewayFactory, upstreams, receiver) -> None:
    a, _ = upstreams
    a.behaviour = {"delay_first_chunk": 0.2}
    gw = gateway_factory(models(route(a)), **traced_env(receiver))
    stream = client(gw.url).chat.completions.create(
        model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    usage = chunks[-1].usage
    assert usage is not None
    call, (attempt,) = trace_of(receiver, 1)
    for span in (call, attempt):
        assert span.attributes["gen_ai.request.stream"] is True
        assert 0.2 <= span.attributes["gen_ai.response.time_to_first_chunk"] < 5
        assert span.attributes["gen_ai.usage.output_tokens"] == usage.completion_tokens
        assert span.attributes["gen_ai.usage.input_tokens"] == usage.prompt_tokens
    assert attempt.attributes["gen_ai.response.model"] == "upstream-a"
    assert attempt.end_ns >= attempt.start_ns + 200_000_000
    assert sent_traceparent(a) == (call.trace_id, attempt.span_id)


def test_a_failed_first_deployment_leaves_two_attempt_spans(
    gateway_factory: GatewayFactory, upstreams, receiver
) -> None:
    a, b = upstreams
    a.behaviour = {"status": 500}
    gw = gateway_factory(models(route(a, 1.0), route(b, 0.0)), **traced_env(receiver))
    answer = client(gw.url).chat.completions.create(model="m", messages=MESSAGES)
    assert (answer.choices[0].message.content or "").startswith("[b]")
    call, (failed, served) = trace_of(receiver, 2)
    assert failed.error and failed.attributes["error.type"] == "500"
    assert failed.attributes["gateway.deployment"] == "a" and "gen_ai.response.model" not in failed.attributes
    assert not served.error and "error.type" not in served.attributes
    assert served.attributes["gateway.deployment"] == "b"
    assert served.attributes["gen_ai.response.model"] == "upstream-b"
    assert not call.error and "error.type" not in call.attributes
    # each attempt sent its own span as the parent of what the upstream does
    assert sent_traceparent(a) == (call.trace_id, failed.span_id)
    assert sent_traceparent(b) == (call.trace_id, served.span_id)


def test_a_call_that_fails_everywhere(gateway_factory: GatewayFactory, upstreams, receiver) -> None:
    a, b = upstreams
    a.behaviour = b.behaviour = {"status": 503}
    gw = gateway_factory(models(route(a, 1.0), route(b, 0.0)), ROUTER_MAX_ATTEMPTS="2", **traced_env(receiver))
    with pytest.raises(openai.APIStatusError) as refused:
        client(gw.url).chat.completions.create(model="m", messages=MESSAGES)
    call, tries = trace_of(receiver, 2)
    assert [t.attributes["error.type"] for t in tries] == ["503", "503"]
    assert call.error and call.attributes["error.type"] == str(refused.value.status_code)
    assert "gen_ai.response.model" not in call.attributes


def test_the_clients_traceparent_is_honoured_and_propagated(
    gateway_factory: GatewayFactory, upstreams, receiver
) -> None:
    a, _ = upstreams
    gw = gateway_factory(models(route(a)), **traced_env(receiver))
    parent = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"
    for stream in (False, True):
        created: Any = client(gw.url).chat.completions.create(
            model="m", messages=MESSAGES, stream=stream, extra_headers={"traceparent": parent, "tracestate": "k=v"}
        )
        if stream:
            list(created)
        call, (attempt,) = trace_of(receiver, 1)
        assert (call.trace_id, call.parent_span_id) == (CLIENT_TRACE, CLIENT_SPAN)
        trace_id, span_id = sent_traceparent(a)
        assert (trace_id, span_id) == (CLIENT_TRACE, attempt.span_id)
        assert span_id != CLIENT_SPAN  # the gateway's own hop, never the client's header passed on
        assert a.requests[-1].headers["tracestate"] == "k=v"  # the client's vendor state rides along
        receiver.spans.clear()


def test_embeddings_and_legacy_completions_name_their_operation(
    gateway_factory: GatewayFactory, upstreams, receiver
) -> None:
    a, _ = upstreams
    config = models(route(a), endpoints=["chat", "embeddings"])
    gw = gateway_factory(config, **traced_env(receiver))
    client(gw.url).embeddings.create(model="m", input="one text")
    call, (attempt,) = trace_of(receiver, 1)
    assert (call.name, attempt.name) == ("embeddings m", "embeddings upstream-a")
    assert call.attributes["gen_ai.usage.input_tokens"] > 0
    receiver.spans.clear()
    client(gw.url).completions.create(model="m", prompt="Once upon a time")
    call, (attempt,) = trace_of(receiver, 1)
    assert (call.name, attempt.name) == ("text_completion m", "text_completion upstream-a")


def test_anthropic_messages_share_the_hooks(gateway_factory: GatewayFactory, upstreams, receiver) -> None:
    a, _ = upstreams
    gw = gateway_factory(models(route(a)), **traced_env(receiver))
    sdk = anthropic.Anthropic(base_url=gw.url, api_key="k", max_retries=0, timeout=20)
    answer = sdk.messages.create(model="m", max_tokens=16, messages=MESSAGES)  # type: ignore[arg-type]
    call, (attempt,) = trace_of(receiver, 1)
    assert (call.name, attempt.name) == ("chat m", "chat upstream-a")
    assert call.attributes["gen_ai.usage.output_tokens"] == answer.usage.output_tokens
    assert sent_traceparent(a) == (call.trace_id, attempt.span_id)


# what the gateway's tracing imports; redis-py 8 imports OpenTelemetry's *metrics* SDK by itself when installed
TRACING_MODULES = ("gateway.telemetry.otel", "opentelemetry.sdk.trace", "opentelemetry.exporter", "opentelemetry.proto")
# first on a gateway process's PYTHONPATH: writes the modules it ended with to $MODULES_OUT when it exits and,
# with $HIDE_OTEL set, makes OpenTelemetry uninstalled for it
SITECUSTOMIZE = """
import atexit, importlib.abc, os, sys

class _Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

if os.environ.get("HIDE_OTEL"):
    sys.meta_path.insert(0, _Missing())

@atexit.register
def _write():
    with open(os.environ["MODULES_OUT"], "w") as out:
        out.write("\\n".join(sorted(sys.modules)))
"""


def _gateway_env(tmp_path: Path, name: str, upstream: FakeUpstream, **env: str) -> dict[str, str]:
    directory = tmp_path / name
    directory.mkdir()
    (directory / "models.yaml").write_text(
        "models:\n  - id: m\n    route:\n      - kind: openai\n        name: a\n"
        f"        base_url: {upstream.base_url}\n        provider_model_id: upstream-a\n        api_key: sk-test\n"
    )
    full = isolated_env(directory, MODELS_CONFIG=str(directory / "models.yaml"), **env)
    full["ROUTING_CONFIG"] = str(directory / "routing.yaml")
    return full


def _watched_env(tmp_path: Path, name: str, upstream: FakeUpstream, **env: str) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return _gateway_env(
        tmp_path, name, upstream, PYTHONPATH=str(site), MODULES_OUT=str(tmp_path / name / "modules.txt"), **env
    )


def _loaded(tmp_path: Path, name: str) -> set[str]:
    """The modules the gateway process `name` held when it exited."""
    return set((tmp_path / name / "modules.txt").read_text().split())


def _chat_both_ways(url: str) -> None:
    for stream in (False, True):
        created: Any = client(url).chat.completions.create(model="m", messages=MESSAGES, stream=stream)
        if stream:
            list(created)


def test_an_untraced_gateway_imports_none_of_its_tracing(serve, tmp_path: Path, upstreams, receiver) -> None:
    a, _ = upstreams
    plain = serve(GATEWAY_SERVE, _watched_env(tmp_path, "plain", a))
    _chat_both_ways(plain.url)
    assert "traceparent" not in a.requests[-1].headers  # off: nothing of the kind is sent upstream
    assert plain.terminate()[0] == 0
    loaded = _loaded(tmp_path, "plain")
    assert {"gateway.telemetry.ledger", "routing.tracing", "gateway.telemetry.tracing"} <= loaded
    assert [m for m in loaded if m.startswith(TRACING_MODULES)] == []
    assert receiver.spans == []

    env = _watched_env(tmp_path, "traced", a, OTEL_SERVICE_NAME="gw", **traced_env(receiver))
    traced = serve(GATEWAY_SERVE, env)
    client(traced.url).chat.completions.create(model="m", messages=MESSAGES)
    assert traced.terminate()[0] == 0
    assert {"gateway.telemetry.otel", "opentelemetry.sdk.trace"} <= _loaded(tmp_path, "traced")
    spans = receiver.wait_for(lambda s: len(s) >= 2)
    assert sorted(s.kind for s in spans) == ["client", "server"]
    assert {s.service for s in spans} == {"gw"}


def test_without_the_otel_extra(serve, tmp_path: Path, upstreams, receiver) -> None:
    a, _ = upstreams
    plain = serve(GATEWAY_SERVE, _watched_env(tmp_path, "plain", a, HIDE_OTEL="1"))
    _chat_both_ways(plain.url)  # redis and everything else do without it
    assert plain.terminate()[0] == 0
    assert not any(m.startswith("opentelemetry") for m in _loaded(tmp_path, "plain"))

    env = _watched_env(tmp_path, "traced", a, HIDE_OTEL="1", **traced_env(receiver))
    with pytest.raises(RuntimeError, match="exited") as failed:
        serve(GATEWAY_SERVE, env)
    message = str(failed.value)
    assert "OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed" in message
    assert "pip install 'hybrid-gateway[otel]'" in message
    assert "Traceback" not in message
