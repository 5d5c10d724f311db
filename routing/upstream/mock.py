"""The in-process mock deployment: the same results and events an upstream would give, with no network."""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import AsyncIterator
from typing import Any

from adapters.tokens import count_tokens, prompt_text, split_tokens
from routing.config.schema import DeploymentConfig, MockOptions

_WORDS = (
    "the gateway routes each request to a deployment by weight and falls back when one fails while "
    "every call is logged with its tokens cost and latency so operators can see what happened"
).split()


def _plan(dep: DeploymentConfig, payload: dict[str, Any]) -> tuple[str, list[str], str]:
    prompt = prompt_text(payload.get("messages"))
    limit = payload.get("max_tokens") or payload.get("max_completion_tokens")
    pieces, finish = reply_pieces(prompt, dep.mock, int(limit) if isinstance(limit, int | float) else None)
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
        "usage": usage_for(prompt, pieces),
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
    final["usage"] = usage_for(prompt, pieces)
    yield final


def reply_pieces(prompt: str, options: MockOptions, max_tokens: int | None) -> tuple[list[str], str]:
    """The reply as one-token pieces (joined they form the text) and its finish reason."""
    if options.reply:
        tokens = split_tokens(options.reply)
    else:
        start = zlib.crc32(prompt.encode()) % len(_WORDS)
        tokens = [_WORDS[(start + i) % len(_WORDS)] for i in range(options.completion_tokens)]
    finish = "stop"
    if max_tokens is not None and 0 < max_tokens < len(tokens):
        tokens, finish = tokens[:max_tokens], "length"
    pieces = [t if i == 0 or not t[0].isalnum() else " " + t for i, t in enumerate(tokens)]
    return pieces, finish


def usage_for(prompt: str, pieces: list[str]) -> dict[str, int]:
    prompt_tokens = count_tokens(prompt)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": len(pieces),
        "total_tokens": prompt_tokens + len(pieces),
    }
