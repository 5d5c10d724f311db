"""One deployment's answer to one attempt: the adapter for its kind, a whole completion, or its stream as batches
of chunks, each batch what one upstream read carried. The executor decides what to try; this reads what came."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import Any

from adapters.anthropic import AnthropicAdapter, MessagesPayload
from adapters.base import Adapter, ProtocolError
from adapters.kinds import kind_spec
from adapters.redact import redact
from adapters.registry import adapter_for, completions_adapter_for
from adapters.responses_api import ResponsesAdapter
from routing.config.schema import DeploymentConfig
from routing.errors import NoDeploymentAvailable, UpstreamError
from routing.legacy import translated, translated_batches
from routing.stream import chunks_from_completion
from routing.upstream.transport import HttpTransport

# the payload key under which a /v1/responses call carries the client's Responses body (gateway/responses)
RESPONSES_BODY = "__responses_body__"


def speaks_messages(dep: DeploymentConfig) -> bool:
    """Whether a deployment serves Anthropic's Messages API itself (`kind: anthropic`, or `messages: native`)."""
    spec = kind_spec(dep.kind)
    return dep.messages == "native" or (spec is not None and spec.schema == "anthropic")


class Answers:
    """Reads answers through the transport, with one adapter per deployment kind."""

    def __init__(self, transport: HttpTransport) -> None:
        self.transport = transport
        self._adapters: dict[tuple[str, bool], Adapter] = {}
        self._responses: ResponsesAdapter | None = None

    def adapter(self, dep: DeploymentConfig, text: bool = False) -> Adapter:
        """The deployment's adapter; `text`: the one for its own `/completions` (a native legacy completion)."""
        adapter = self._adapters.get((dep.kind, text))
        if adapter is None:
            spec = kind_spec(dep.kind)
            if spec is None:
                raise NoDeploymentAvailable(f"deployment {dep.name} has unknown kind {dep.kind}")
            adapter = completions_adapter_for(spec) if text else adapter_for(spec)
            self._adapters[(dep.kind, text)] = adapter
        return adapter

    def adapter_for(self, dep: DeploymentConfig, payload: dict[str, Any], text: bool = False) -> Adapter:
        """The adapter for this call: a Messages call to a deployment that serves Messages itself goes native."""
        if isinstance(payload, MessagesPayload) and dep.messages == "native":
            native = self._adapters.get((f"{dep.kind}+messages", False))
            if native is None:
                spec = kind_spec(dep.kind)
                if spec is None:
                    raise NoDeploymentAvailable(f"deployment {dep.name} has unknown kind {dep.kind}")
                native = self._adapters[(f"{dep.kind}+messages", False)] = AnthropicAdapter(spec)
            return native
        return self.adapter(dep, text)

    def _speaking(
        self, dep: DeploymentConfig, payload: dict[str, Any], text: bool = False
    ) -> tuple[Adapter, dict[str, Any]]:
        """The adapter and body for one attempt: a /v1/responses call carries its own body under RESPONSES_BODY,
        sent as it is to a `responses: native` deployment, while every other deployment gets the chat payload."""
        native = payload.get(RESPONSES_BODY)
        if native is None:
            return self.adapter_for(dep, payload, text), payload
        spec = kind_spec(dep.kind)
        if dep.responses == "native" and spec is not None and spec.schema == "openai" and not spec.in_process:
            if self._responses is None:
                self._responses = ResponsesAdapter(spec)
            return self._responses, native
        return self.adapter(dep), {k: v for k, v in payload.items() if k != RESPONSES_BODY}

    async def complete(
        self, dep: DeploymentConfig, payload: dict[str, Any], budget: float, text: bool = False
    ) -> dict[str, Any]:
        if text and dep.completions != "native":
            return await translated(self.complete, dep, payload, budget)
        adapter, payload = self._speaking(dep, payload, text)
        request = adapter.build(dep, payload, stream=False)
        resp = await self.transport.open(dep, request, adapter, budget)
        return await self.transport.read_json(dep, resp, adapter, request)

    async def batches(
        self, dep: DeploymentConfig, payload: dict[str, Any], budget: float, text: bool = False
    ) -> AsyncGenerator[list[dict[str, Any]]]:
        """The upstream's chunks, grouped as they arrived: one non-empty list per upstream read."""
        if text and dep.completions != "native":
            async with contextlib.aclosing(translated_batches(self.batches, dep, payload, budget)) as translations:
                async for shaped in translations:
                    yield shaped
            return
        adapter, payload = self._speaking(dep, payload, text)
        if not adapter.streams:
            chunks = chunks_from_completion(await self.complete(dep, payload, budget))
            if chunks:
                yield chunks
            return
        resp = await self.transport.open(dep, adapter.build(dep, payload, stream=True), adapter, budget)
        fresh = getattr(adapter, "event_parser", None)  # a schema whose events carry state gets one per stream
        parse = fresh() if fresh is not None else adapter.parse_event
        clean, finished, stop = False, False, False
        try:
            async for events in self.transport.sse_batches(dep, resp, dep.timeouts):
                batch: list[dict[str, Any]] = []
                failure: UpstreamError | None = None
                for data in events:
                    try:
                        event = parse(data)
                    except ProtocolError as exc:
                        failure = UpstreamError("protocol", f"{dep.name}: {exc}")
                        break
                    if event.error:
                        if event.chunk is not None:  # the upstream's own error event, for a client of its schema
                            batch.append(event.chunk)
                        failure = UpstreamError("stream", f"{dep.name}: {redact(event.error, (dep.api_key,))}")
                        break
                    if event.done:
                        clean = stop = True
                        break
                    parsed = event.chunk
                    if parsed is None:
                        continue
                    if not finished and any(c.get("finish_reason") for c in parsed.get("choices") or ()):
                        finished = True
                    batch.append(parsed)
                    if finished and parsed.get("usage"):
                        clean = stop = True  # some never send [DONE]: usage after the finish is the end
                        break
                if batch:
                    yield batch  # what arrived before a failure still reaches the client first
                if failure is not None:
                    raise failure
                if stop:
                    return
            if not finished:
                raise UpstreamError("stream", f"{dep.name}: stream ended before it finished")
            clean = True
        except UpstreamError as exc:
            if not (finished and exc.kind == "timeout"):
                raise
        finally:
            if clean:
                resp.release()
            else:
                resp.close()
