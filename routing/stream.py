"""A committed upstream stream and the accounting of what it carries into the call."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from routing.call import Call
from routing.config.schema import DeploymentConfig
from routing.cost import usage_numbers
from routing.errors import UpstreamError
from routing.limits.admission import Admission, Guards


class UpstreamStream:
    """A committed stream: the buffered head, then the rest, accounting text, usage and finish into the call."""

    def __init__(
        self,
        dep: DeploymentConfig,
        head: list[dict[str, Any]],
        batches: AsyncGenerator[list[dict[str, Any]]],
        call: Call,
        began: float,
        guards: Guards,
        admitted: Admission,
        on_served: Callable[[DeploymentConfig, Call], None] | None = None,
    ) -> None:
        self.deployment, self._head, self._batches, self._call, self._began = dep, head, batches, call, began
        self._guards, self._admitted, self._on_served = guards, admitted, on_served
        self._recorded = False
        self._delivered = False  # a batch reached the consumer: the upstream's tokens were used, even if it fails

    async def chunks(self) -> AsyncIterator[dict[str, Any]]:
        """Each chunk, as it arrives."""
        async with contextlib.aclosing(self.batches()) as batches:
            async for batch in batches:
                for chunk in batch:
                    yield chunk

    async def batches(self) -> AsyncGenerator[list[dict[str, Any]]]:
        """The chunks in the groups they arrived in, the buffered head first; a relay sends each group at once."""
        call = self._call
        try:
            if self._head:
                head, self._head = self._head, []
                call.response_model = str(head[0].get("model") or "")
                for chunk in head:
                    account_chunk(call, chunk)
                yield head
                self._delivered = True
            async for batch in self._batches:
                for chunk in batch:
                    account_chunk(call, chunk)
                yield batch
                self._delivered = True
        except UpstreamError as exc:
            await self._record("timeout" if exc.kind == "timeout" else "error", exc.message, exc)
            raise
        except BaseException:
            await self._record("cancelled", "client went away", None)
            raise
        finally:
            await self._batches.aclose()
            call.upstream_wait += time.perf_counter() - self._began
        await self._record("ok", "", None)

    async def aclose(self) -> None:
        await self._batches.aclose()
        await self._record("cancelled", "closed before the end", None)

    async def _record(self, outcome: str, error: str, exc: UpstreamError | None) -> None:
        if self._recorded:
            return
        self._recorded = True
        self._call.add_attempt(self.deployment, outcome, 200, self._began, error)
        tokens = total_tokens(self._call)
        if outcome == "ok":
            if self._on_served is not None:
                self._on_served(self.deployment, self._call)
            await self._guards.succeeded(self._admitted, tokens)
        elif exc is not None:
            await self._guards.failed(self._admitted, exc, tokens, delivered=self._delivered)
        else:
            await self._guards.abandoned(self._admitted, tokens, delivered=self._delivered)


def account_chunk(call: Call, chunk: dict[str, Any]) -> None:
    usage = chunk.get("usage")
    if usage:
        call.usage = usage
    fingerprint = chunk.get("system_fingerprint")
    if fingerprint:
        call.system_fingerprint = fingerprint
    elif call.system_fingerprint:  # upstreams that name it on some chunks only: the client sees it on all
        chunk["system_fingerprint"] = call.system_fingerprint
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta")
        content = delta.get("content") if delta else choice.get("text")  # chat, or legacy completions
        if content:
            call.add_text(int(choice.get("index") or 0), content)
        if choice.get("finish_reason"):
            call.finish_reason = choice["finish_reason"]


def account_completion(call: Call, result: dict[str, Any]) -> None:
    call.usage = result.get("usage") or None
    call.response_model = str(result.get("model") or "")
    choices = result.get("choices") or []
    if choices:
        call.finish_reason = choices[0].get("finish_reason") or ""
    for choice in choices:  # with n > 1 every choice's text, not only the first's
        content = (choice.get("message") or {}).get("content", choice.get("text"))
        if isinstance(content, str):
            call.add_text(int(choice.get("index") or 0), content)


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


def total_tokens(call: Call) -> int | None:
    """The tokens the upstream reported for the call, or None when it reported no usage."""
    usage = call.usage or {}
    total, prompt, completion = (usage.get(k) for k in ("total_tokens", "prompt_tokens", "completion_tokens"))
    if total is None and prompt is None and completion is None:
        return None
    return usage_numbers(usage)[4]
