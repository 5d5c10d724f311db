"""OpenRouter's request-level routing through real sockets: `models` fallback, the `provider` object and the
`:floor` / `:nitro` variants change which upstream answers, as the upstreams' own counters show (issue 12)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import GatewayFactory
from tests.integration.core.conftest import route
from tests.support.upstream import FakeUpstream

MESSAGES: Any = [{"role": "user", "content": "Say hello, please."}]


@pytest.fixture
def trio() -> Iterator[tuple[FakeUpstream, FakeUpstream, FakeUpstream]]:
    with (
        FakeUpstream.in_thread("gpu") as gpu,
        FakeUpstream.in_thread("a") as a,
        FakeUpstream.in_thread("b") as b,
    ):
        yield gpu, a, b


def hybrid(gpu: FakeUpstream, a: FakeUpstream, b: FakeUpstream, **model: Any) -> dict[str, Any]:
    """One model: our own GPU (vllm: keeps no data, cheapest) and two clouds at the model's per-token price."""
    local = {**route(gpu), "kind": "vllm", "provider": "ours", "pricing": {"prompt": 0.1, "completion": 0.1}}
    local.pop("api_key")
    clouds = [{**route(a), "provider": "alpha"}, {**route(b), "provider": "beta", "quantization": "fp8"}]
    return {"models": [{"id": "m", "pricing": {"prompt": 1, "completion": 2}, "route": [local, *clouds], **model}]}


def client(url: str, surface: str = "/v1") -> openai.OpenAI:
    return openai.OpenAI(base_url=url + surface, api_key="k", max_retries=0, timeout=20)


def served_by(url: str, times: int = 1, **extra: Any) -> list[str]:
    """Who answered each of `times` calls (x-gateway-deployment), the request carrying `extra` as extra_body."""
    model = extra.pop("model", "m")
    who = []
    for _ in range(times):
        raw = client(url).chat.completions.with_raw_response.create(model=model, messages=MESSAGES, extra_body=extra)
        who.append(raw.headers["x-gateway-deployment"])
    return who


def row(gw: Any, request_id: str) -> dict[str, Any]:
    with sqlite3.connect(gw.settings.env["SQLITE_DB_PATH"]) as db:
        db.row_factory = sqlite3.Row
        found = db.execute("select * from api_logs where request_id = ?", (request_id,)).fetchone()
    assert found is not None
    return dict(found)


def test_models_falls_back_to_the_next_model_and_names_it(gateway_factory: GatewayFactory, upstreams) -> None:
    a, b = upstreams
    a.behaviour = {"status": 500}
    config = {
        "models": [
            {"id": "first", "route": [route(a)], "pricing": {"prompt": 1, "completion": 1}},
            {"id": "second", "route": [route(b)], "pricing": {"prompt": 3, "completion": 5}},
        ]
    }
    gw = gateway_factory(config)
    raw = client(gw.url).chat.completions.with_raw_response.create(
        model="first", messages=MESSAGES, extra_body={"models": ["first", "second"]}
    )
    answer = raw.parse()
    assert answer.model == "second" and raw.headers["x-gateway-deployment"] == "b" and a.count >= 1 and b.count == 1
    logged = row(gw, answer.id)
    assert logged["model_id"] == "second" and logged["deployment"] == "b" and logged["fallback_used"]
    usage = answer.model_dump()["usage"]
    prompt, completion = usage["prompt_tokens"], usage["completion_tokens"]
    assert usage["cost"] == pytest.approx((prompt * 3 + completion * 5) / 1e6)  # the answering model's price
    details = usage["cost_details"]
    assert details["upstream_inference_prompt_cost"] == pytest.approx(prompt * 3 / 1e6)
    assert details["upstream_inference_completions_cost"] == pytest.approx(completion * 5 / 1e6)
    # `model` may be left out: the first of `models` is the one asked for; a streamed call falls back alike
    streamed = httpx.post(
        f"{gw.url}/v1/chat/completions",
        json={"models": ["first", "second"], "messages": MESSAGES, "stream": True},
    )
    chunks = [json.loads(line[6:]) for line in streamed.text.splitlines() if line.startswith("data: {")]
    assert streamed.status_code == 200 and {c["model"] for c in chunks} == {"second"}
    unknown = httpx.post(
        f"{gw.url}/v1/chat/completions", json={"model": "first", "models": ["nope"], "messages": MESSAGES}
    )
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "models"
    # the last model's error comes back when every model fails
    b.behaviour = {"status": 500}
    with pytest.raises(openai.InternalServerError):
        client(gw.url).chat.completions.create(model="first", messages=MESSAGES, extra_body={"models": ["second"]})


def test_order_only_and_ignore_pick_the_upstream(gateway_factory: GatewayFactory, trio) -> None:
    gpu, a, b = trio
    gw = gateway_factory(hybrid(gpu, a, b))
    assert served_by(gw.url, 5, provider={"order": ["beta", "alpha"]}) == ["b"] * 5  # no weighted draw
    assert served_by(gw.url, 3, provider={"only": ["alpha"]}) == ["a"] * 3
    assert served_by(gw.url, 3, provider={"ignore": ["ours", "beta"]}) == ["a"] * 3
    assert served_by(gw.url, 2, provider={"order": ["gpu"]}) == ["gpu"] * 2  # a deployment's own name works too
    assert gpu.count == 2 and a.count == 6 and b.count == 5


def test_allow_fallbacks_false_returns_the_listed_provider_s_error(gateway_factory: GatewayFactory, trio) -> None:
    gpu, a, b = trio
    b.behaviour = {"status": 500}
    gw = gateway_factory(hybrid(gpu, a, b))
    with pytest.raises(openai.InternalServerError) as failed:
        client(gw.url).chat.completions.create(
            model="m", messages=MESSAGES, extra_body={"provider": {"order": ["beta"], "allow_fallbacks": False}}
        )
    assert failed.value.status_code == 502 and gpu.count == 0 and a.count == 0 and b.count >= 1
    assert served_by(gw.url, 1, provider={"order": ["beta"]}) in (["gpu"], ["a"])  # fallbacks allowed by default


def test_max_price_and_data_collection_keep_hosted_deployments_out(gateway_factory: GatewayFactory, trio) -> None:
    gpu, a, b = trio
    config = hybrid(gpu, a, b)
    config["models"][0]["route"][0]["weight"] = 0.01  # the strategy hardly offers the GPU first
    gw = gateway_factory(config)
    assert served_by(gw.url, 4, provider={"max_price": {"prompt": 0.5, "completion": 0.5}}) == ["gpu"] * 4
    assert served_by(gw.url, 4, provider={"data_collection": "deny"}) == ["gpu"] * 4
    assert served_by(gw.url, 2, provider={"zdr": True}) == ["gpu"] * 2
    assert a.count == b.count == 0
    gpu.behaviour = {"status": 500}  # our GPU down: a data-deny call fails rather than go to the cloud
    with pytest.raises(openai.InternalServerError):
        client(gw.url).chat.completions.create(model="m", messages=MESSAGES, extra_body={"provider": {"zdr": True}})
    assert a.count == b.count == 0


def test_constraints_that_leave_nothing_answer_404_naming_them(gateway_factory: GatewayFactory, trio) -> None:
    gpu, a, b = trio
    gw = gateway_factory(hybrid(gpu, a, b, supported_params=["temperature", "max_tokens"]))
    cases = [
        ({"max_price": {"prompt": 0.01}}, "provider.max_price"),
        ({"only": ["nobody"]}, "provider.only"),
        ({"quantizations": ["int4"]}, "provider.quantizations"),
        ({"require_parameters": True}, "provider.require_parameters"),
    ]
    for provider, named in cases:
        resp = httpx.post(
            f"{gw.url}/v1/chat/completions",
            json={"model": "m", "messages": MESSAGES, "tools": [{"type": "function", "function": {"name": "f"}}],
                  "provider": provider},
        )  # fmt: skip
        error = resp.json()["error"]
        assert resp.status_code == 404 and named in error["message"] and error["code"] == "no_matching_deployment"
        assert row(gw, resp.headers["x-request-id"])["status_code"] == 404
    assert gpu.count == a.count == b.count == 0
    bad = httpx.post(
        f"{gw.url}/v1/chat/completions", json={"model": "m", "messages": MESSAGES, "provider": {"sort": "x"}}
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "provider.sort"
    openrouter = httpx.post(
        f"{gw.url}/api/v1/chat/completions", json={"model": "m", "messages": MESSAGES, "provider": {"only": ["x"]}}
    )
    assert openrouter.status_code == 404 and openrouter.json()["error"]["code"] == 404  # OpenRouter's own shape


def test_quantizations_and_unsupported_parameters(gateway_factory: GatewayFactory, trio) -> None:
    gpu, a, b = trio
    gw = gateway_factory(hybrid(gpu, a, b, supported_params=["temperature", "max_tokens"]))
    assert served_by(gw.url, 3, provider={"quantizations": ["fp8"]}) == ["b"] * 3
    # a parameter the model says it does not support is dropped for it, never sent to fail
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    served_by(gw.url, 1, tools=tools, temperature=0.3, provider={"only": ["alpha"]})
    sent = a.requests[-1].body
    assert "tools" not in sent and sent["temperature"] == 0.3


def test_floor_picks_the_cheapest_and_the_suffix_is_not_the_model(gateway_factory: GatewayFactory, trio) -> None:
    gpu, a, b = trio
    config = hybrid(gpu, a, b)
    config["models"][0]["route"][0]["weight"] = 0.01
    gw = gateway_factory(config)
    raw = client(gw.url).chat.completions.with_raw_response.create(model="m:floor", messages=MESSAGES)
    assert raw.headers["x-gateway-deployment"] == "gpu" and raw.parse().model == "m"
    assert row(gw, raw.parse().id)["model_id"] == "m"
    assert served_by(gw.url, 4, model="m:floor") == ["gpu"] * 4
    assert served_by(gw.url, 2, provider={"sort": {"by": "price", "partition": "model"}}) == ["gpu"] * 2


def test_sort_latency_and_nitro_follow_what_was_measured(gateway_factory: GatewayFactory, trio) -> None:
    gpu, a, b = trio
    gpu.behaviour = {"status": 500}
    a.behaviour = {"delay_headers": 0.25}
    gw = gateway_factory(hybrid(gpu, a, b))
    for name in ("alpha", "beta"):  # measure each once
        served_by(gw.url, 1, provider={"only": [name]})
    assert served_by(gw.url, 3, provider={"sort": "latency", "ignore": ["ours"]}) == ["b"] * 3
    assert served_by(gw.url, 2, model="m:nitro", provider={"ignore": ["ours"]}) == ["b"] * 2  # more tokens a second
    slowest_last = served_by(gw.url, 2, provider={"preferred_max_latency": 0.1, "only": ["alpha", "beta"]})
    assert slowest_last == ["b"] * 2
    table = httpx.get(f"{gw.url}/routing").json()["models"]["m"]["deployments"]
    assert {d["deployment"] for d in table} == {"gpu", "a", "b"}  # the strategy's table is untouched


def test_openrouter_streams_always_end_with_usage_and_its_cost(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    gw = gateway_factory({"models": [{"id": "m", "route": [route(a)], "pricing": {"prompt": 1, "completion": 2}}]})
    streamed = httpx.post(
        f"{gw.url}/api/v1/chat/completions", json={"model": "m", "messages": MESSAGES, "stream": True}
    )
    chunks = [json.loads(line[6:]) for line in streamed.text.splitlines() if line.startswith("data: {")]
    usage = chunks[-1]["usage"]
    assert usage["cost"] > 0 and usage["cost_details"]["upstream_inference_cost"] == usage["cost"]
    plain = httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "m", "messages": MESSAGES, "stream": True})
    assert '"usage"' not in plain.text  # OpenAI's surface sends usage in a stream only when asked


def test_the_responses_and_messages_surfaces_take_the_provider_object(gateway_factory: GatewayFactory, trio) -> None:
    import anthropic

    gpu, a, b = trio
    config = hybrid(gpu, a, b)
    for deployment in config["models"][0]["route"]:
        deployment["responses"] = "translate"  # the fakes speak chat; Responses is translated onto it
    gw = gateway_factory(config)
    sdk = client(gw.url)
    for _ in range(3):
        raw = sdk.responses.with_raw_response.create(model="m", input="hi", extra_body={"provider": {"only": ["beta"]}})
        assert raw.headers["x-gateway-deployment"] == "b" and raw.parse().output_text.startswith("[b]")
    floor = sdk.responses.with_raw_response.create(model="m:floor", input="hi")
    assert floor.headers["x-gateway-deployment"] == "gpu"
    with anthropic.Anthropic(base_url=gw.url, api_key="k", max_retries=0, timeout=20) as claude:
        for _ in range(3):
            raw_message = claude.messages.with_raw_response.create(
                model="m", max_tokens=16, messages=MESSAGES, extra_body={"provider": {"order": ["alpha"]}}
            )
            assert raw_message.headers["x-gateway-deployment"] == "a"
        with pytest.raises(anthropic.NotFoundError) as refused:
            claude.messages.create(
                model="m", max_tokens=16, messages=MESSAGES, extra_body={"provider": {"only": ["x"]}}
            )
        assert "provider.only" in refused.value.message
    assert "provider" not in b.requests[-1].body and "provider" not in a.requests[-1].body  # never sent upstream
    assert gpu.count == 1 and a.count == 3 and b.count == 3


def test_messages_fall_back_along_models_and_name_the_answering_model(
    gateway_factory: GatewayFactory, upstreams
) -> None:
    import anthropic

    a, b = upstreams
    a.behaviour = {"status": 500}
    gw = gateway_factory({"models": [{"id": "first", "route": [route(a)]}, {"id": "second", "route": [route(b)]}]})
    with anthropic.Anthropic(base_url=gw.url, api_key="k", max_retries=0, timeout=20) as claude:
        message = claude.messages.create(
            model="first", max_tokens=16, messages=MESSAGES, extra_body={"models": ["first", "second"]}
        )
        assert message.model == "second" and b.count == 1 and a.count >= 1
        assert "models" not in b.requests[-1].body
        with pytest.raises(anthropic.BadRequestError):
            claude.messages.create(model="first", max_tokens=16, messages=MESSAGES, extra_body={"models": ["nope"]})
    with sqlite3.connect(gw.settings.env["SQLITE_DB_PATH"]) as db:
        logged = db.execute("select model_id, status_code from api_logs where endpoint = '/v1/messages'").fetchall()
    assert sorted(logged) == [("first", 400), ("second", 200)]  # the refusal has its row too


def test_responses_fall_back_along_models_and_name_the_answering_model(
    gateway_factory: GatewayFactory, upstreams
) -> None:
    a, b = upstreams
    a.behaviour = {"status": 500}
    deployments = [{**route(up), "responses": "translate"} for up in (a, b)]
    gw = gateway_factory(
        {"models": [{"id": "first", "route": [deployments[0]]}, {"id": "second", "route": [deployments[1]]}]}
    )
    sdk = client(gw.url)
    answer = sdk.responses.create(model="first", input="hi", extra_body={"models": ["first", "second"]})
    assert answer.model == "second" and answer.output_text.startswith("[b]") and a.count >= 1
    assert sdk.responses.retrieve(answer.id).model == "second"  # stored as the model that answered
    with sdk.responses.stream(model="first", input="hi", extra_body={"models": ["second"]}) as events:
        final = events.get_final_response()
    assert final.model == "second" and "models" not in b.requests[-1].body
    assert b.count == 2
