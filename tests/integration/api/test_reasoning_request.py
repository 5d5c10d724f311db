"""OpenRouter's request `reasoning` object through the gateway with the OpenAI SDK: mapped to what each
deployment takes (`reasoning_effort`, vLLM's `chat_template_kwargs`, or as it came), checked, and
`exclude: true` honoured on streamed and whole answers."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import GatewayFactory
from tests.integration.api.conftest import Client
from tests.integration.core.conftest import models, route

MESSAGES = [{"role": "user", "content": "Think, then answer."}]
THINK = "Weigh it up, then decide."


def vllm(up, **extra) -> dict:
    return {"kind": "vllm", "name": up.name, "base_url": up.base_url, "provider_model_id": "qwen3", **extra}


def test_effort_reaches_an_openai_compatible_upstream_as_reasoning_effort(
    gateway_factory: GatewayFactory, upstreams, client: Client
) -> None:
    a, _ = upstreams
    gw = gateway_factory(models(route(a)))
    c = client(gw.url)
    c.chat.completions.create(model="m", messages=MESSAGES, extra_body={"reasoning": {"effort": "high"}})
    sent = a.requests[-1].body
    assert sent["reasoning_effort"] == "high" and "reasoning" not in sent
    c.chat.completions.create(model="m", messages=MESSAGES, extra_body={"reasoning": {"enabled": False}})
    assert a.requests[-1].body["reasoning_effort"] == "none"
    c.chat.completions.create(model="m", messages=MESSAGES, reasoning_effort="low")  # OpenAI's own field: as it is
    assert a.requests[-1].body["reasoning_effort"] == "low"


def test_a_vllm_deployment_configured_for_it_gets_chat_template_kwargs(
    gateway_factory: GatewayFactory, upstreams, client: Client
) -> None:
    a, b = upstreams
    config = {
        "models": [
            {"id": "qwen", "route": [vllm(a, reasoning="chat_template_kwargs")]},
            {"id": "v31", "route": [vllm(b, reasoning="chat_template_kwargs", thinking_switch="thinking")]},
        ]
    }
    gw = gateway_factory(config)
    c = client(gw.url)
    stream = c.chat.completions.create(
        model="qwen", messages=MESSAGES, stream=True, extra_body={"reasoning": {"effort": "high"}}
    )
    assert "".join(ch.choices[0].delta.content or "" for ch in stream if ch.choices).startswith("[a]")
    sent = a.requests[-1].body
    assert sent["chat_template_kwargs"] == {"enable_thinking": True}
    assert "reasoning" not in sent and "reasoning_effort" not in sent
    c.chat.completions.create(
        model="qwen",
        messages=MESSAGES,
        extra_body={"reasoning": {"effort": "none"}, "chat_template_kwargs": {"custom": 1}},
    )
    assert a.requests[-1].body["chat_template_kwargs"] == {"custom": 1, "enable_thinking": False}
    c.chat.completions.create(model="v31", messages=MESSAGES, reasoning_effort="medium")
    sent = b.requests[-1].body
    assert sent["chat_template_kwargs"] == {"thinking": True} and "reasoning_effort" not in sent


def test_openrouter_style_forwards_the_object_and_drop_sends_neither(
    gateway_factory: GatewayFactory, upstreams, client: Client
) -> None:
    a, b = upstreams
    config = {
        "models": [
            {"id": "or", "route": [route(a, reasoning="openrouter")]},
            {"id": "plain", "route": [route(b, reasoning="drop")]},
        ]
    }
    gw = gateway_factory(config)
    c = client(gw.url)
    asked = {"effort": "low", "exclude": False}
    c.chat.completions.create(model="or", messages=MESSAGES, extra_body={"reasoning": asked})
    assert a.requests[-1].body["reasoning"] == asked and "reasoning_effort" not in a.requests[-1].body
    c.chat.completions.create(
        model="plain", messages=MESSAGES, reasoning_effort="high", extra_body={"reasoning": asked}
    )
    assert "reasoning" not in b.requests[-1].body and "reasoning_effort" not in b.requests[-1].body


@pytest.mark.parametrize("field", ["reasoning", "reasoning_content"])
def test_exclude_strips_reasoning_streamed_and_whole(
    gateway_factory: GatewayFactory, upstreams, field: str, client: Client
) -> None:
    a, _ = upstreams
    a.behaviour = {"reasoning": THINK, "reasoning_field": field, "reasoning_tokens": 4}
    gw = gateway_factory(models(route(a)))
    c = client(gw.url)
    hidden = {"reasoning": {"effort": "high", "exclude": True}}
    whole = c.chat.completions.create(model="m", messages=MESSAGES, extra_body=hidden)
    message = whole.choices[0].message
    assert field not in (message.model_extra or {}) and message.content.startswith("[a]")
    assert whole.usage.completion_tokens_details.reasoning_tokens == 4  # billed all the same
    assert a.requests[-1].body["reasoning_effort"] == "high"
    chunks = list(c.chat.completions.create(model="m", messages=MESSAGES, stream=True, extra_body=hidden))
    deltas = [ch.choices[0].delta for ch in chunks if ch.choices]
    assert not [d for d in deltas if field in (d.model_extra or {})]
    assert "".join(d.content or "" for d in deltas).startswith("[a]")
    shown = list(c.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert "".join((ch.choices[0].delta.model_extra or {}).get(field) or "" for ch in shown if ch.choices) == THINK


@pytest.mark.parametrize(
    ("reasoning", "param"),
    [("high", "reasoning"), ({"effort": "max"}, "reasoning.effort"), ({"exclude": "yes"}, "reasoning.exclude")],
)
def test_a_malformed_reasoning_object_is_a_400_naming_it(
    gateway_factory: GatewayFactory, upstreams, reasoning: object, param: str, client: Client
) -> None:
    a, _ = upstreams
    gw = gateway_factory(models(route(a)))
    c = client(gw.url)
    with pytest.raises(openai.BadRequestError) as caught:
        c.chat.completions.create(model="m", messages=MESSAGES, extra_body={"reasoning": reasoning})
    assert caught.value.param == param and a.count == 0
