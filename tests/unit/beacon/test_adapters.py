"""Beacon adapters: request building and every reply shape, without sockets."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from adapters.base import ProtocolError, UpstreamRequest
from adapters.beacon import GolemAdapter, ModalAdapter, RunPodAdapter, RunPodJobPending, beacon_prompt
from adapters.kinds import KINDS
from adapters.openai_compat import OpenAIAdapter
from adapters.registry import adapter_for
from adapters.tokens import count_tokens
from routing.config.schema import DeploymentConfig

USER = [{"role": "user", "content": "Hello, world!"}]
PAYLOAD: dict[str, Any] = {"model": "pub", "messages": USER, "temperature": 0.3, "max_tokens": 64}


def dep(kind: str, base_url: str = "http://h:1", key: str | None = "secret-key", region: str = "") -> DeploymentConfig:
    return DeploymentConfig(
        name=f"{kind}-1",
        model_id="pub",
        kind=kind,
        provider=kind,
        base_url=base_url,
        provider_model_id="llama3.2:1b",
        weight=1,
        api_key=key,
        region=region,
    )


def body_of(req: UpstreamRequest) -> Any:
    return orjson.loads(req.body)


def reply(obj: Any) -> bytes:
    return orjson.dumps(obj)


def test_prompt_is_the_single_message_or_role_lines() -> None:
    assert beacon_prompt(USER) == "Hello, world!"
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "image_url"}]},
        {"role": "assistant", "content": None, "tool_calls": []},
        {"role": "assistant", "content": "Hello."},
    ]
    assert beacon_prompt(messages) == "System: Be brief.\nUser: Hi\nAssistant: Hello."
    assert beacon_prompt(None) == "" and beacon_prompt([]) == ""


def test_golem_build() -> None:
    req = GolemAdapter().build(dep("golem", "http://h:1/"), PAYLOAD, stream=True)
    assert (req.method, req.url, req.stream) == ("POST", "http://h:1/inference", False)
    assert body_of(req) == {"model": "llama3.2:1b", "prompt": "Hello, world!", "temperature": 0.3, "max_tokens": 64}
    assert req.headers["Authorization"] == "Bearer secret-key" and "secret-key" not in req.url
    assert PAYLOAD["model"] == "pub"


def test_defaults_are_beacons_when_the_client_gives_none() -> None:
    req = GolemAdapter().build(dep("golem", key=None), {"messages": USER}, stream=False)
    assert body_of(req)["temperature"] == 0.1 and body_of(req)["max_tokens"] == 512
    assert "Authorization" not in req.headers
    req = GolemAdapter().build(dep("golem"), {"messages": USER, "max_completion_tokens": 9}, stream=False)
    assert body_of(req)["max_tokens"] == 9


def test_golem_success_keeps_extras_and_estimates_usage() -> None:
    adapter = GolemAdapter()
    req = adapter.build(dep("golem"), PAYLOAD, stream=False)
    receipt = {"provider": "golem-us", "hash": "abc"}
    result = adapter.parse_response(reply({"success": True, "response": "Hi there.", "receipt": receipt}), req)
    assert result["object"] == "chat.completion" and result["id"].startswith("chatcmpl-golem-")
    assert isinstance(result["created"], int) and result["created"] > 0
    assert result["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": "Hi there."}, "finish_reason": "stop"}
    ]
    prompt, completion = count_tokens("Hello, world!"), count_tokens("Hi there.")
    assert result["usage"] == {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": 7}
    assert result["beacon"] == {"schema": "golem", "receipt": receipt, "usage_estimated": True}


def test_upstream_usage_wins_over_the_estimate() -> None:
    body = reply({"success": True, "response": "x", "usage": {"prompt_tokens": 11, "completion_tokens": 2}})
    result = GolemAdapter().parse_response(body)
    assert result["usage"] == {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}
    assert "usage_estimated" not in result["beacon"]


def test_without_the_request_only_the_reply_is_counted() -> None:
    result = GolemAdapter().parse_response(reply({"success": True, "response": "one two"}))
    assert result["usage"] == {"prompt_tokens": 0, "completion_tokens": 2, "total_tokens": 2}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"response": "hi"}, "golem reply has no `success` field"),
        ({"success": False, "error": "GPU on fire"}, "golem reply reported failure: GPU on fire"),
        ({"success": False}, "golem reply reported failure"),
        ({"success": "yes", "response": "hi"}, "golem reply reported failure"),
        ({"success": True}, "golem reply has no `response` text"),
        ([1, 2], "golem reply is not a JSON object"),
    ],
)
def test_golem_failures(body: Any, message: str) -> None:
    with pytest.raises(ProtocolError) as info:
        GolemAdapter().parse_response(reply(body))
    assert str(info.value) == message


def test_not_json_is_a_protocol_error() -> None:
    for adapter in (GolemAdapter(), ModalAdapter(), RunPodAdapter()):
        with pytest.raises(ProtocolError, match="not JSON"):
            adapter.parse_response(b"<html>")


def test_modal_build_posts_to_the_endpoint_with_the_deployments_region() -> None:
    payload = {**PAYLOAD, "region": "asia-pacific"}
    req = ModalAdapter().build(dep("modal", "https://x--inference.modal.run", region="eu-west"), payload, False)
    assert req.url == "https://x--inference.modal.run"
    assert body_of(req)["region"] == "eu-west" and body_of(req)["prompt"] == "Hello, world!"
    assert req.headers["Authorization"] == "Bearer secret-key"
    unregioned = ModalAdapter().build(dep("modal", key=None), payload, False)
    assert "region" not in body_of(unregioned) and "Authorization" not in unregioned.headers


@pytest.mark.parametrize(
    "body",
    [
        {"status": "success", "response": "ok text"},
        {"status": "SUCCESS", "output": "ok text"},
        {"text": "ok text"},
        {"status": "Success", "output": {"response": "ok text"}},
    ],
)
def test_modal_success_shapes(body: dict[str, Any]) -> None:
    result = ModalAdapter().parse_response(reply({**body, "receipt": {"r": 1}}))
    assert result["choices"][0]["message"]["content"] == "ok text"
    assert result["beacon"]["receipt"] == {"r": 1}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"status": "error", "error": "model not loaded"}, "modal reply: status 'error': model not loaded"),
        ({"status": "error", "response": "partial"}, "modal reply: status 'error'"),
        ({"text": "hi", "error": "boom"}, "modal reply: no text: boom"),
        ({"text": ""}, "modal reply: no text"),
        ({"status": "success"}, "modal reply: status 'success'"),
    ],
)
def test_modal_failures(body: dict[str, Any], message: str) -> None:
    with pytest.raises(ProtocolError) as info:
        ModalAdapter().parse_response(reply(body))
    assert str(info.value) == message


def test_runpod_build_uses_runsync_and_wraps_input() -> None:
    req = RunPodAdapter().build(dep("runpod", "https://api.runpod.ai/v2/abc123"), PAYLOAD, stream=True)
    assert req.url == "https://api.runpod.ai/v2/abc123/runsync" and not req.url.endswith("/run")
    assert body_of(req) == {
        "input": {"model": "llama3.2:1b", "prompt": "Hello, world!", "temperature": 0.3, "max_tokens": 64}
    }
    assert req.headers["Authorization"] == "Bearer secret-key" and "secret-key" not in req.url


@pytest.mark.parametrize(
    ("output", "usage"),
    [
        ("done text", None),
        ({"response": "done text"}, None),
        ({"text": "done text", "usage": {"input_tokens": 3, "output_tokens": 2}}, (3, 2)),
        ({"output": "done text"}, None),
        ([{"choices": [{"tokens": ["done ", "text"]}], "usage": {"input": 4, "output": 2}}], (4, 2)),
        ([{"choices": [{"text": "done text"}]}], None),
    ],
)
def test_runpod_completed_shapes(output: Any, usage: tuple[int, int] | None) -> None:
    adapter = RunPodAdapter()
    req = adapter.build(dep("runpod"), PAYLOAD, stream=False)
    body = {"id": "job-1", "status": "COMPLETED", "output": output, "delayTime": 5}
    result = adapter.parse_response(reply(body), req)
    assert result["choices"][0]["message"]["content"] == "done text"
    assert result["beacon"] == {"schema": "runpod", "job_id": "job-1", "status": "COMPLETED", "delayTime": 5} | (
        {"usage_estimated": True} if usage is None else {}
    )
    prompt, completion = usage or (count_tokens("Hello, world!"), count_tokens("done text"))
    assert result["usage"] == {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


@pytest.mark.parametrize("status", ["IN_QUEUE", "IN_PROGRESS"])
def test_runpod_unfinished_job_is_a_retryable_protocol_error(status: str) -> None:
    with pytest.raises(RunPodJobPending) as info:
        RunPodAdapter().parse_response(reply({"id": "job-9", "status": status}))
    assert isinstance(info.value, ProtocolError)
    assert (info.value.job_id, info.value.status) == ("job-9", status)
    assert str(info.value) == f"job not finished within runsync (status {status})"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"id": "j", "status": "FAILED", "error": "CUDA out of memory"}, "runpod job FAILED: CUDA out of memory"),
        ({"id": "j", "status": "TIMED_OUT"}, "runpod job TIMED_OUT"),
        ({"id": "j"}, "runpod job without status"),
        ({"id": "j", "status": "COMPLETED"}, "runpod job completed without output text"),
        (
            {"id": "j", "status": "COMPLETED", "output": {"error": "bad input"}},
            "runpod job completed with an error: bad input",
        ),
    ],
)
def test_runpod_failures(body: dict[str, Any], message: str) -> None:
    with pytest.raises(ProtocolError) as info:
        RunPodAdapter().parse_response(reply(body))
    assert str(info.value) == message


def test_no_adapter_streams() -> None:
    for adapter in (GolemAdapter(), ModalAdapter(), RunPodAdapter()):
        assert adapter.streams is False
        with pytest.raises(ProtocolError):
            adapter.parse_event(b"{}")


def test_error_message_is_short_and_secret_free() -> None:
    adapter = RunPodAdapter()
    masked = adapter.error_message(401, reply({"error": "Invalid API key: Bearer rpa_ABCDEFGH12345678"}))
    assert masked.startswith("Invalid API key: ***") and "ABCDEFGH" not in masked
    assert adapter.error_message(500, reply({"error": {"message": "worker crashed"}})) == "worker crashed"
    assert adapter.error_message(422, reply({"detail": "bad\n  field"})) == "bad field"
    assert adapter.error_message(502, b"<html>Authorization: Bearer x</html>") == "runpod returned HTTP 502"
    assert len(GolemAdapter().error_message(500, reply({"message": "x" * 5000}))) <= 300
    stopped = b"modal-http: app for invoked web endpoint is stopped"
    assert ModalAdapter().error_message(404, stopped) == "modal app for this endpoint is stopped"


def test_kinds_and_registry() -> None:
    for kind in ("golem", "modal", "runpod"):
        spec = KINDS[kind]
        assert (spec.schema, spec.provider, spec.health_path, spec.streams) == (kind, kind, "health", False)
        assert spec.default_base_url == ""
    assert KINDS["runpod"].key_required and not KINDS["golem"].key_required and not KINDS["modal"].key_required
    adapters: dict[str, type[object]] = {"golem": GolemAdapter, "modal": ModalAdapter, "runpod": RunPodAdapter}
    for kind, cls in adapters.items():
        assert isinstance(adapter_for(KINDS[kind]), cls)
    assert isinstance(adapter_for(KINDS["deepseek"]), OpenAIAdapter)
    # the mock speaks the OpenAI schema; what makes it in-process is its transport, not its adapter
    assert isinstance(adapter_for(KINDS["mock"]), OpenAIAdapter) and KINDS["mock"].in_process
    with pytest.raises(KeyError, match="no adapter"):
        adapter_for(type(KINDS["mock"])("x", "soap", "x"))
