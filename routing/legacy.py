"""Legacy completions on deployments that serve only chat: the chat calls a `/v1/completions` request becomes.

The executor calls these for a deployment with `completions: translate` and hands them its own one-attempt
primitives, so a translated attempt is timed, bounded and failed over like any other; the translation itself is
pure (adapters/completions.py).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from adapters import completions as legacy
from routing.config.schema import DeploymentConfig
from routing.errors import ClientRequestError

CompleteOnce = Callable[[DeploymentConfig, dict[str, Any], float], Awaitable[dict[str, Any]]]
Batches = Callable[[DeploymentConfig, dict[str, Any], float], AsyncGenerator[list[dict[str, Any]]]]


def completions_mode(dep: DeploymentConfig, text: bool) -> str:
    """What a call records of how it was served: "" (chat), `native` or `translated`."""
    return "" if not text else "native" if dep.completions == "native" else "translated"


def chat_payloads(dep: DeploymentConfig, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The chat requests a legacy completion becomes; a 400 naming the field when chat cannot carry it."""
    try:
        return legacy.chat_payloads(payload)
    except legacy.Untranslatable as exc:
        message = f"{dep.name} serves /v1/completions by translation onto chat: {exc}"
        raise ClientRequestError(400, message, code="unsupported_parameter", param=exc.param) from None


async def translated(
    complete_once: CompleteOnce, dep: DeploymentConfig, payload: dict[str, Any], budget: float
) -> dict[str, Any]:
    """One chat request per prompt, in turn, within the one budget; their answers as one `text_completion`."""
    ends = time.monotonic() + budget
    results = [await complete_once(dep, body, ends - time.monotonic()) for body in chat_payloads(dep, payload)]
    return legacy.text_completion(results, payload)


async def translated_batches(
    batches: Batches, dep: DeploymentConfig, payload: dict[str, Any], budget: float
) -> AsyncGenerator[list[dict[str, Any]]]:
    """Each prompt's chat stream in turn, its chunks as `text_completion` chunks, then the usage of them all."""
    ends = time.monotonic() + budget
    usage: dict[str, Any] | None = None
    last: dict[str, Any] = {}
    offsets: dict[int, int] = {}
    for i, body in enumerate(chat_payloads(dep, payload)):
        echo = legacy.echo_chunk(payload, i)
        if echo is not None:
            yield [echo]
        async with contextlib.aclosing(batches(dep, body, ends - time.monotonic())) as chat:
            async for batch in chat:
                shaped = []
                for chunk in batch:
                    usage = legacy.add_usage(usage, chunk.get("usage"))
                    if (one := legacy.text_chunk(chunk, payload, i, offsets)) is not None:
                        shaped.append(one)
                        last = one
                if shaped:
                    yield shaped
    if usage is not None:
        head: dict[str, Any] = {k: last[k] for k in ("id", "created", "model") if k in last}
        yield [{**head, "object": "text_completion", "choices": [], "usage": usage}]
