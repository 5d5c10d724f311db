"""The executor: the one place that does upstream I/O, retries and fallback, bounded by attempts and a deadline."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from adapters.base import Adapter, ProtocolError
from adapters.kinds import kind_spec
from adapters.openai_compat import OpenAIAdapter
from routing import mock_backend
from routing.call import Call
from routing.config import DeploymentConfig
from routing.errors import AllAttemptsFailed, ClientRequestError, NoDeploymentAvailable, UpstreamError
from routing.manager import ModelRoute
from routing.selection import attempt_order
from routing.transport import HttpTransport


@dataclass(frozen=True, slots=True)
class ExecutorSettings:
    """Bounds of one call: how many upstream attempts and how long in all."""

    max_attempts: int = 3
    deadline: float = 600.0


def _outcome(exc: UpstreamError) -> str:
    if exc.kind == "timeout":
        return "timeout"
    return "rate_limited" if exc.upstream_status == 429 else "error"


def _meaningful(chunk: dict[str, Any]) -> bool:
    """A chunk worth committing the stream for: content, a tool call, a finish reason or usage."""
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if (
            delta.get("content")
            or delta.get("tool_calls")
            or delta.get("reasoning_content")
            or choice.get("finish_reason")
        ):
            return True
    return bool(chunk.get("usage"))


class Executor:
    """Runs a call against a model's deployments: weighted first pick, fallback by weight, one deadline."""

    def __init__(
        self,
        transport: HttpTransport,
        settings: ExecutorSettings = ExecutorSettings(),
        draw: Callable[[], float] | None = None,
    ) -> None:
        self.transport, self.settings = transport, settings
        self._draw = draw or random.Random().random
        self._adapters: dict[str, Adapter] = {}

    def adapter(self, dep: DeploymentConfig) -> Adapter:
        adapter = self._adapters.get(dep.kind)
        if adapter is None:
            spec = kind_spec(dep.kind)
            if spec is None:
                raise NoDeploymentAvailable(f"deployment {dep.name} has unknown kind {dep.kind}")
            adapter = OpenAIAdapter(spec)
            self._adapters[dep.kind] = adapter
        return adapter

    def register_adapter(self, kind: str, adapter: Adapter) -> None:
        self._adapters[kind] = adapter

    def plan(self, route: ModelRoute) -> list[DeploymentConfig]:
        """Deployments to try, in order: a weighted draw first, then the others by weight."""
        if not route.entries:
            raise NoDeploymentAvailable(f"model {route.model.id} has no enabled deployment")
        order = attempt_order(route.entries, route.weights, self._draw())
        return [e.deployment for e in order][: self.settings.max_attempts]

    async def complete(self, route: ModelRoute, payload: dict[str, Any], call: Call) -> dict[str, Any]:
        """A non-streamed completion, falling back before anything reached the client."""
        deadline = time.monotonic() + self.settings.deadline
        last: UpstreamError | None = None
        for dep in self.plan(route):
            budget = deadline - time.monotonic()
            if budget <= 0:
                break
            began = time.perf_counter()
            try:
                result = await self._complete_once(dep, payload, budget)
            except ClientRequestError as exc:
                call.upstream_wait += time.perf_counter() - began
                call.add_attempt(dep, "client_error", exc.status, began, exc.message)
                raise
            except UpstreamError as exc:
                call.upstream_wait += time.perf_counter() - began
                call.add_attempt(dep, _outcome(exc), exc.upstream_status, began, exc.message)
                last = exc
                continue
            call.upstream_wait += time.perf_counter() - began
            call.add_attempt(dep, "ok", 200, began)
            call.deployment = dep
            call.first_token_at = time.perf_counter()
            _account_completion(call, result)
            return result
        raise AllAttemptsFailed(_summary(route, call), last)

    async def _complete_once(self, dep: DeploymentConfig, payload: dict[str, Any], budget: float) -> dict[str, Any]:
        if dep.kind == "mock":
            async with asyncio.timeout(min(dep.timeouts.total, budget)):
                return await mock_backend.complete(dep, payload)
        adapter = self.adapter(dep)
        request = adapter.build(dep, payload, stream=False)
        resp = await self.transport.open(dep, request, adapter, budget)
        return await self.transport.read_json(dep, resp, adapter)

    async def stream(self, route: ModelRoute, payload: dict[str, Any], call: Call) -> UpstreamStream:
        """Open a stream, falling back until one deployment sends its first meaningful chunk (the commit point)."""
        deadline = time.monotonic() + self.settings.deadline
        last: UpstreamError | None = None
        for dep in self.plan(route):
            budget = deadline - time.monotonic()
            if budget <= 0:
                break
            began = time.perf_counter()
            events = self._events(dep, payload, budget)
            head: list[dict[str, Any]] = []
            try:
                async with asyncio.timeout(min(dep.timeouts.first_token, budget)):
                    while True:
                        chunk = await anext(events, None)
                        if chunk is None:
                            raise UpstreamError("protocol", f"{dep.name}: stream ended before any content")
                        head.append(chunk)
                        if _meaningful(chunk):
                            break
            except TimeoutError:
                await events.aclose()
                exc = UpstreamError("timeout", f"{dep.name}: no first token within {dep.timeouts.first_token:g}s")
                call.upstream_wait += time.perf_counter() - began
                call.add_attempt(dep, "timeout", None, began, exc.message)
                last = exc
                continue
            except UpstreamError as exc:
                await events.aclose()
                call.upstream_wait += time.perf_counter() - began
                call.add_attempt(dep, _outcome(exc), exc.upstream_status, began, exc.message)
                last = exc
                continue
            except BaseException as exc:
                await events.aclose()
                if isinstance(exc, ClientRequestError):
                    call.add_attempt(dep, "client_error", exc.status, began, exc.message)
                raise
            call.deployment = dep
            call.first_token_at = time.perf_counter()
            return UpstreamStream(dep, head, events, call, began)
        raise AllAttemptsFailed(_summary(route, call), last)

    async def _events(
        self, dep: DeploymentConfig, payload: dict[str, Any], budget: float
    ) -> AsyncGenerator[dict[str, Any]]:
        if dep.kind == "mock":
            async for chunk in mock_backend.stream(dep, payload):
                yield chunk
            return
        adapter = self.adapter(dep)
        if not adapter.streams:
            result = await self._complete_once(dep, payload, budget)
            for chunk in chunks_from_completion(result):
                yield chunk
            return
        resp = await self.transport.open(dep, adapter.build(dep, payload, stream=True), adapter, budget)
        clean, finished = False, False
        try:
            async for data in self.transport.sse_data(dep, resp, dep.timeouts):
                try:
                    event = adapter.parse_event(data)
                except ProtocolError as exc:
                    raise UpstreamError("protocol", f"{dep.name}: {exc}") from None
                if event.error:
                    raise UpstreamError("stream", f"{dep.name}: {event.error}")
                if event.done:
                    clean = True
                    return
                if event.chunk is None:
                    continue
                if any(c.get("finish_reason") for c in event.chunk.get("choices") or ()):
                    finished = True
                yield event.chunk
                if finished and event.chunk.get("usage"):
                    return  # some upstreams never send [DONE]; usage after the finish is the real end
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


class UpstreamStream:
    """A committed stream: the buffered head, then the rest, accounting text, usage and finish into the call."""

    def __init__(
        self,
        dep: DeploymentConfig,
        head: list[dict[str, Any]],
        events: AsyncGenerator[dict[str, Any]],
        call: Call,
        began: float,
    ) -> None:
        self.deployment, self._head, self._events, self._call, self._began = dep, head, events, call, began
        self._recorded = False

    async def chunks(self) -> AsyncIterator[dict[str, Any]]:
        call = self._call
        try:
            for chunk in self._head:
                _account_chunk(call, chunk)
                yield chunk
            self._head = []
            async for chunk in self._events:
                _account_chunk(call, chunk)
                yield chunk
        except UpstreamError as exc:
            self._record("timeout" if exc.kind == "timeout" else "error", exc.message)
            raise
        except BaseException:
            self._record("cancelled", "client went away")
            raise
        finally:
            await self._events.aclose()
            call.upstream_wait += time.perf_counter() - self._began
        self._record("ok", "")

    async def aclose(self) -> None:
        await self._events.aclose()

    def _record(self, outcome: str, error: str) -> None:
        if not self._recorded:
            self._recorded = True
            self._call.add_attempt(self.deployment, outcome, 200, self._began, error)


def _account_chunk(call: Call, chunk: dict[str, Any]) -> None:
    usage = chunk.get("usage")
    if usage:
        call.usage = usage
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta")
        if delta:
            content = delta.get("content")
            if content:
                call.text.append(content)
        if choice.get("finish_reason"):
            call.finish_reason = choice["finish_reason"]


def _account_completion(call: Call, result: dict[str, Any]) -> None:
    call.usage = result.get("usage") or None
    choices = result.get("choices") or []
    if choices:
        first = choices[0]
        call.finish_reason = first.get("finish_reason") or ""
        content = (first.get("message") or {}).get("content")
        if isinstance(content, str):
            call.text.append(content)


def chunks_from_completion(result: dict[str, Any]) -> list[dict[str, Any]]:
    """A whole completion as stream chunks, for upstreams that cannot stream."""
    base = {"id": result.get("id", ""), "object": "chat.completion.chunk", "created": result.get("created", 0)}
    chunks: list[dict[str, Any]] = []
    for choice in result.get("choices") or []:
        message = dict(choice.get("message") or {})
        delta = {"role": "assistant", **{k: v for k, v in message.items() if k != "role"}}
        chunks.append({**base, "choices": [{"index": choice.get("index", 0), "delta": delta, "finish_reason": None}]})
        chunks.append(
            {
                **base,
                "choices": [
                    {
                        "index": choice.get("index", 0),
                        "delta": {},
                        "finish_reason": choice.get("finish_reason") or "stop",
                    }
                ],
            }
        )
    if result.get("usage"):
        chunks.append({**base, "choices": [], "usage": result["usage"]})
    return chunks


def _summary(route: ModelRoute, call: Call) -> str:
    if not call.attempts:
        return f"no deployment of {route.model.id} could be tried within the deadline"
    tried = "; ".join(f"{a.deployment}: {a.error or a.outcome}" for a in call.attempts)
    return f"all {len(call.attempts)} attempt(s) for {route.model.id} failed ({tried})"
