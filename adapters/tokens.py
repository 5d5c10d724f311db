"""Token estimates by one simple rule: words and single punctuation marks (Beacon's usage, the mock's replies)."""

from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(r"\w+|[^\w\s]")


def split_tokens(text: str) -> list[str]:
    """The tokens of text by this rule, in order."""
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    """Tokens by this rule: words and single punctuation marks."""
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
