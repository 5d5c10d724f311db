"""One deployment's answer to one attempt: the adapter for its kind, a whole completion, or its stream as batches
of chunks, each batch what one upstream read carried. The executor decides what to try; this reads what came."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from adapters.base import Adapter, ProtocolError
from adapters.kinds import kind_spec
from adapters.redact import redact
from adapters.registry import adapter_for
from adapters.responses_api import ResponsesAdapter
from routing.config.schema import DeploymentConfig
from routing.errors import NoDeploymentAvailable, UpstreamError
from routing.stream import chunks_from_completion
from routing.upstream.transport import HttpTransport

# the payload key under which a /v1/responses call carries the client's Responses body (gateway/responses)
RESPONSES_BODY = "__responses_body__"


class Answers:
    """Reads answers through the transport, with one adapter per deployment kind."""

    def __init__(self, transport: HttpTransport) -> None:
        self.transport = transport
        self._adapters: dict[str, Adapter] = {}
        self._responses: ResponsesAdapter | None = None

    def adapter(self, dep: DeploymentConfig) -> Adapter:
        adapter = self._adapters.get(dep.kind)
        if adapter is None:
            spec = kind_spec(dep.kind)
            if spec is None:
                raise NoDeploymentAvailable(f"deployment {dep.name} has unknown kind {dep.kind}")
            adapter = adapter_for(spec)
            self._adapters[dep.kind] = adapter
        return adapter

    def _speaking(self, dep: DeploymentConfig, payload: dict[str, Any]) -> tuple[Adapter, dict[str, Any]]:
        """The adapter and body for one attempt: a /v1/responses call carries its own body under RESPONSES_BODY,
        sent as it is to a `responses: native` deployment, while every other deployment gets the chat payload."""
        native = payload.get(RESPONSES_BODY)
        if native is None:
            return self.adapter(dep), payload
        spec = kind_spec(dep.kind)
        if dep.responses == "native" and spec is not None and spec.schema == "openai" and not spec.in_process:
            if self._responses is None:
                self._responses = ResponsesAdapter(spec)
            return self._responses, native
        return self.adapter(dep), {k: v for k, v in payload.items() if k != RESPONSES_BODY}

    async def complete(self, dep: DeploymentConfig, payload: dict[str, Any], budget: float) -> dict[str, Any]:
        adapter, payload = self._speaking(dep, payload)
        request = adapter.build(dep, payload, stream=False)
        resp = await self.transport.open(dep, request, adapter, budget)
        return await self.transport.read_json(dep, resp, adapter, request)

    async def batches(
        self, dep: DeploymentConfig, payload: dict[str, Any], budget: float
    ) -> AsyncGenerator[list[dict[str, Any]]]:
        """The upstream's chunks, grouped as they arrived: one non-empty list per upstream read."""
        adapter, payload = self._speaking(dep, payload)
        if not adapter.streams:
            chunks = chunks_from_completion(await self.complete(dep, payload, budget))
            if chunks:
                yield chunks
            return
        resp = await self.transport.open(dep, adapter.build(dep, payload, stream=True), adapter, budget)
        parse = adapter.parse_event
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
