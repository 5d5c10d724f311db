"""OpenAI's embeddings schema (`POST {base_url}/embeddings`), spoken by vLLM (`--task embed`), OpenAI, Gemini's
compatible endpoint and the other OpenAI-compatible brands. The body goes through untouched (`input` as a string,
strings or token arrays, `encoding_format`, `dimensions`) but for `model` and the kind's dropped parameters."""

from __future__ import annotations

from typing import Any

import orjson

from adapters.base import Endpoint, ErrorFields, ProtocolError, StreamEvent, UpstreamRequest
from adapters.kinds import KindSpec
from adapters.openai_compat import OpenAIAdapter, normalize_usage


class EmbeddingsAdapter:
    """Builds an embeddings request and reads its answer; errors are read as the kind's chat adapter reads them."""

    streams = False

    def __init__(self, spec: KindSpec) -> None:
        self.spec = spec
        self._chat = OpenAIAdapter(spec)

    def build(self, dep: Endpoint, payload: dict[str, Any], stream: bool = False) -> UpstreamRequest:
        body = {k: v for k, v in payload.items() if k not in self.spec.drop_params}
        body["model"] = dep.provider_model_id
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if dep.api_key:
            headers["Authorization"] = f"Bearer {dep.api_key}"
        headers.update(dep.headers)
        return UpstreamRequest("POST", f"{dep.base_url}/embeddings", headers, orjson.dumps(body), False)

    def parse_response(self, body: bytes, request: UpstreamRequest | None = None) -> dict[str, Any]:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise ProtocolError("upstream returned a body that is not JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise ProtocolError("upstream embeddings response has no `data` list")
        if data.get("usage"):
            usage = normalize_usage(data["usage"])
            usage.pop("completion_tokens", None)  # embeddings have none; OpenAI's usage here is prompt + total
            data["usage"] = usage
        return data

    def parse_event(self, data: bytes) -> StreamEvent:
        raise ProtocolError("embeddings are not streamed")

    def error_message(self, status: int, body: bytes) -> str:
        return self._chat.error_message(status, body)

    def error_fields(self, body: bytes) -> ErrorFields:
        return self._chat.error_fields(body)
