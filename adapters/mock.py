"""The mock schema: deterministic replies with honest token counts, computed without any network."""

from __future__ import annotations

import re
import zlib
from typing import Any

from routing.config import MockOptions

_TOKEN = re.compile(r"\w+|[^\w\s]")
_WORDS = (
    "the gateway routes each request to a deployment by weight and falls back when one fails while "
    "every call is logged with its tokens cost and latency so operators can see what happened"
).split()


def count_tokens(text: str) -> int:
    """Tokens as this mock counts them: words and single punctuation marks."""
    return len(_TOKEN.findall(text))


def prompt_text(messages: Any) -> str:
    """All text of a chat `messages` list, including text parts of multimodal content."""
    parts: list[str] = []
    if not isinstance(messages, list):
        return ""
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "\n".join(parts)


def reply_pieces(prompt: str, options: MockOptions, max_tokens: int | None) -> tuple[list[str], str]:
    """The reply as one-token pieces (joined they form the text) and its finish reason."""
    if options.reply:
        tokens = _TOKEN.findall(options.reply)
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
