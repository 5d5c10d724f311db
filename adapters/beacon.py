"""Project Beacon's upstream schemas: Golem provider nodes, Modal web endpoints and RunPod serverless (`/runsync`).

None of them speaks OpenAI or streams, so each adapter turns the chat payload into the upstream's prompt body
and its reply into a whole `chat.completion`; the executor makes stream chunks of it. The prompt is the text of
the messages: one message is sent as its content exactly; several become one `Role: text` line each (system,
user, assistant...), in order, so the single-prompt upstreams still see the whole conversation. `temperature`
and `max_tokens` default to Beacon's own defaults (0.1 and 512) when the client gives none. A client `region`
is a routing hint and is not forwarded; Modal gets the deployment's configured `region`.

Usage comes from the upstream when it reports any. Otherwise it is estimated with the mock tokenizer
(`adapters.tokens.count_tokens`: words and punctuation marks) over the prompt and the reply, and the result says
`beacon.usage_estimated: true`. The prompt side needs the request: pass `request=` to `parse_response`.
Upstream extras (Golem/Modal `receipt`, RunPod job id, upstream status...) go under the result's `beacon` key.
"""

from __future__ import annotations

import time
import zlib
from typing import Any

import orjson

from adapters.base import Endpoint, ErrorFields, ProtocolError, StreamEvent, UpstreamRequest
from adapters.kinds import KindSpec
from adapters.redact import one_line
from adapters.tokens import count_tokens

DEFAULT_TEMPERATURE = 0.1
DEFAULT_MAX_TOKENS = 512
_TEXT_KEYS = ("response", "text", "output")
_MAX_MESSAGE = 300
_USAGE_KEYS = (("prompt_tokens", "completion_tokens"), ("input_tokens", "output_tokens"), ("input", "output"))


class RunPodJobPending(ProtocolError):
    """`/runsync` returned before the job finished; the executor treats it like any failed attempt and falls back."""

    def __init__(self, job_id: str, status: str) -> None:
        self.job_id, self.status = job_id, status
        super().__init__(f"job not finished within runsync (status {status})")


def beacon_prompt(messages: Any) -> str:
    """The single prompt string for a chat `messages` list (see the module docstring)."""
    turns: list[tuple[str, str]] = []
    for message in messages if isinstance(messages, list) else ():
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, list):
            content = "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("text"))
        if isinstance(content, str) and content:
            turns.append((str(message.get("role") or "user"), content))
    if len(turns) == 1:
        return turns[0][1]
    return "\n".join(f"{role.capitalize()}: {text}" for role, text in turns)


class _BeaconAdapter:
    """What the three schemas share: the prompt body, JSON headers, the completion shape and error text."""

    streams = False
    schema = ""

    def __init__(self, spec: KindSpec | None = None) -> None:
        self.spec = spec

    def build(self, dep: Endpoint, payload: dict[str, Any], stream: bool) -> UpstreamRequest:
        fields = {
            "model": dep.provider_model_id,
            "prompt": beacon_prompt(payload.get("messages")) or str(payload.get("prompt") or ""),
            "temperature": _number(payload.get("temperature"), DEFAULT_TEMPERATURE),
            "max_tokens": int(
                _number(payload.get("max_tokens") or payload.get("max_completion_tokens"), DEFAULT_MAX_TOKENS)
            ),
        }
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if dep.api_key:
            headers["Authorization"] = f"Bearer {dep.api_key}"
        headers.update(dep.headers)
        body = orjson.dumps(self._body(dep, fields))
        return UpstreamRequest("POST", self._url(dep.base_url.rstrip("/")), headers, body, False)

    def parse_response(self, body: bytes, request: UpstreamRequest | None = None) -> dict[str, Any]:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise ProtocolError(f"{self.schema} returned a body that is not JSON") from None
        if not isinstance(data, dict):
            raise ProtocolError(f"{self.schema} reply is not a JSON object")
        text, usage, extras = self._extract(data)
        beacon: dict[str, Any] = {"schema": self.schema, **extras}
        if usage is None:
            # Estimates: the mock tokenizer over the prompt we sent and the reply, not the model's tokenizer.
            prompt_tokens = count_tokens(_sent_prompt(request)) if request is not None else 0
            usage = _usage(prompt_tokens, count_tokens(text))
            beacon["usage_estimated"] = True
        model = data.get("model")
        return {
            "id": f"chatcmpl-{self.schema}-{zlib.crc32(body):08x}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model if isinstance(model, str) else "",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": usage,
            "beacon": beacon,
        }

    def parse_event(self, data: bytes) -> StreamEvent:
        raise ProtocolError(f"{self.schema} does not stream")

    def error_message(self, status: int, body: bytes) -> str:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            for key in ("error", "message", "detail"):
                if data.get(key):
                    return _short(data[key])
        return f"{self.schema} returned HTTP {status}"

    def error_fields(self, body: bytes) -> ErrorFields:
        return ErrorFields()  # Beacon's protocols name no error type, code or param

    def _url(self, base_url: str) -> str:
        raise NotImplementedError

    def _body(self, dep: Endpoint, fields: dict[str, Any]) -> dict[str, Any]:
        return fields

    def _extract(self, data: dict[str, Any]) -> tuple[str, dict[str, int] | None, dict[str, Any]]:
        """The reply text, the upstream's usage (None when it reports none) and the extras; raises ProtocolError."""
        raise NotImplementedError


class GolemAdapter(_BeaconAdapter):
    """`POST {base_url}/inference` -> `{success, response, error?, receipt?...}`; no `success` is a failure."""

    schema = "golem"

    def _url(self, base_url: str) -> str:
        return f"{base_url}/inference"

    def _extract(self, data: dict[str, Any]) -> tuple[str, dict[str, int] | None, dict[str, Any]]:
        success = data.get("success")
        if success is not True:
            problem = "has no `success` field" if success is None else "reported failure"
            raise ProtocolError(_failure(f"golem reply {problem}", data.get("error")))
        text = _text(data.get("response"))
        if text is None:
            raise ProtocolError("golem reply has no `response` text")
        return text, _upstream_usage(data.get("usage")), _extras(data, "success", "response", "error", "usage")


class ModalAdapter(_BeaconAdapter):
    """`POST {base_url}` (the endpoint itself), plus the deployment's `region` -> `{status, response|output|text}`."""

    schema = "modal"

    def _url(self, base_url: str) -> str:
        return base_url

    def _body(self, dep: Endpoint, fields: dict[str, Any]) -> dict[str, Any]:
        return {**fields, "region": dep.region} if dep.region else fields

    def _extract(self, data: dict[str, Any]) -> tuple[str, dict[str, int] | None, dict[str, Any]]:
        status = data.get("status")
        text = next((t for t in (_text(data.get(k)) for k in _TEXT_KEYS) if t is not None), None)
        error = data.get("error")
        # A reply without `status` counts when it has text and no error; any status but "success" is a failure.
        if isinstance(status, str) and status.lower() == "success":
            ok = text is not None
        else:
            ok = status is None and bool(text) and not error
        if not ok or text is None:
            problem = f"status {_short(status)!r}" if status is not None else "no text"
            raise ProtocolError(_failure(f"modal reply: {problem}", error))
        return text, _upstream_usage(data.get("usage")), _extras(data, *_TEXT_KEYS, "error", "usage")

    def error_message(self, status: int, body: bytes) -> str:
        if b"app for invoked web endpoint is stopped" in body:
            return "modal app for this endpoint is stopped"
        return super().error_message(status, body)


class RunPodAdapter(_BeaconAdapter):
    """`POST {base_url}/runsync` (never `/run`, which only queues) with `{"input": {...}}` -> `{id, status, output}`."""

    schema = "runpod"

    def _url(self, base_url: str) -> str:
        return f"{base_url}/runsync"

    def _body(self, dep: Endpoint, fields: dict[str, Any]) -> dict[str, Any]:
        return {"input": fields}

    def _extract(self, data: dict[str, Any]) -> tuple[str, dict[str, int] | None, dict[str, Any]]:
        status = str(data.get("status") or "").upper()
        job_id = str(data.get("id") or "")
        if status in ("IN_QUEUE", "IN_PROGRESS"):
            raise RunPodJobPending(job_id, status)
        output = data.get("output")
        if status != "COMPLETED":
            error = data.get("error") or (output.get("error") if isinstance(output, dict) else None)
            raise ProtocolError(_failure(f"runpod job {status or 'without status'}", error))
        if isinstance(output, dict) and output.get("error"):
            raise ProtocolError(_failure("runpod job completed with an error", output["error"]))
        text = _text(output)
        if text is None:
            raise ProtocolError("runpod job completed without output text")
        usage = _upstream_usage(data.get("usage"))
        if usage is None and isinstance(output, dict):
            usage = _upstream_usage(output.get("usage"))
        if usage is None and isinstance(output, list):
            usage = _sum_usage(_upstream_usage(o.get("usage")) for o in output if isinstance(o, dict))
        return text, usage, {"job_id": job_id, **_extras(data, "id", "output", "error", "usage")}


def _text(value: Any) -> str | None:
    """Reply text from the shapes these upstreams use: a string, `{response|text|output}`, OpenAI-like choices
    (vLLM workers: `choices[].tokens` or `.text`), or a list of any of those (joined)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        pieces = [_text(v) for v in value]
        return "".join(p for p in pieces if p is not None) if any(p is not None for p in pieces) else None
    if not isinstance(value, dict):
        return None
    for key in _TEXT_KEYS:
        if key in value and (text := _text(value[key])) is not None:
            return text
    choices = value.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        first = choices[0]
        if isinstance(first.get("tokens"), list):
            return "".join(str(t) for t in first["tokens"])
        if "text" in first:
            return _text(first["text"])
        message = first.get("message")
        return _text(message.get("content")) if isinstance(message, dict) else None
    return None


def _upstream_usage(usage: Any) -> dict[str, int] | None:
    """OpenAI-shaped usage from `{prompt_tokens, completion_tokens}`, `{input_tokens, output_tokens}` or RunPod's
    vLLM `{input, output}`; None when there is none."""
    if not isinstance(usage, dict):
        return None
    for prompt_key, completion_key in _USAGE_KEYS:
        if _is_count(usage.get(prompt_key)) or _is_count(usage.get(completion_key)):
            return _usage(_count(usage.get(prompt_key)), _count(usage.get(completion_key)))
    return None


def _sum_usage(usages: Any) -> dict[str, int] | None:
    found = [u for u in usages if u is not None]
    return _usage(sum(u["prompt_tokens"] for u in found), sum(u["completion_tokens"] for u in found)) if found else None


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _is_count(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def _count(value: Any) -> int:
    return int(value) if _is_count(value) else 0


def _number(value: Any, default: float) -> float:
    return float(value) if _is_count(value) else default


def _sent_prompt(request: UpstreamRequest) -> str:
    try:
        body = orjson.loads(request.body)
    except orjson.JSONDecodeError:
        return ""
    fields = body.get("input", body) if isinstance(body, dict) else {}
    prompt = fields.get("prompt") if isinstance(fields, dict) else None
    return prompt if isinstance(prompt, str) else ""


def _extras(data: dict[str, Any], *known: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in known}


def _failure(what: str, error: Any) -> str:
    return f"{what}: {_short(error)}" if error else what


def _short(value: Any) -> str:
    """One short line fit for logs and clients: an error's message, secrets-looking words masked."""
    if isinstance(value, dict):
        value = value.get("message") or value.get("error") or value.get("code") or "upstream error"
    return one_line(value, _MAX_MESSAGE)
