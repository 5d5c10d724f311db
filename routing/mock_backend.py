"""The in-process mock deployment: the same results and events an upstream would give, with no network."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from adapters import mock
from routing.config import DeploymentConfig


def _plan(dep: DeploymentConfig, payload: dict[str, Any]) -> tuple[str, list[str], str]:
    prompt = mock.prompt_text(payload.get("messages"))
    limit = payload.get("max_tokens") or payload.get("max_completion_tokens")
    pieces, finish = mock.reply_pieces(prompt, dep.mock, int(limit) if isinstance(limit, int | float) else None)
    return prompt, pieces, finish


async def complete(dep: DeploymentConfig, payload: dict[str, Any]) -> dict[str, Any]:
    prompt, pieces, finish = _plan(dep, payload)
    delay = (dep.mock.ttft_ms + dep.mock.chunk_delay_ms * len(pieces)) / 1000.0
    if delay > 0:
        await asyncio.sleep(delay)
    return {
        "id": "mock",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": dep.provider_model_id,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "".join(pieces)}, "finish_reason": finish}
        ],
        "usage": mock.usage_for(prompt, pieces),
    }


async def stream(dep: DeploymentConfig, payload: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    prompt, pieces, finish = _plan(dep, payload)
    created = int(time.time())

    def chunk(delta: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": reason}
        return {
            "id": "mock",
            "object": "chat.completion.chunk",
            "created": created,
            "model": dep.provider_model_id,
            "choices": [choice],
        }

    if dep.mock.ttft_ms > 0:
        await asyncio.sleep(dep.mock.ttft_ms / 1000.0)
    yield chunk({"role": "assistant", "content": ""})
    for i, piece in enumerate(pieces):
        if i and dep.mock.chunk_delay_ms > 0:
            await asyncio.sleep(dep.mock.chunk_delay_ms / 1000.0)
        yield chunk({"content": piece})
    yield chunk({}, finish)
    final = chunk({})
    final["choices"] = []
    final["usage"] = mock.usage_for(prompt, pieces)
    yield final
