"""Session and prompt-prefix affinity, pure: which key a call carries, and the rendezvous order of replicas for it.

A call's key is its session (`X-Session-Id` or `x-claude-code-session-id`, read at the edge), else the body's
`prompt_cache_key`, else its `user`, else a hash of the first `prefix_chars` characters of its messages, so calls
that share a long prompt prefix meet the engine's prefix cache on one replica. A prompt shorter than that has no
prefix key: it is cheap to prefill anywhere, and identical short prompts (a health ping) would otherwise all pile
onto one replica. Rendezvous (highest random weight)
hashing orders the replicas per key: removing one moves only the keys that were on it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any


def affinity_key(session: str, payload: Mapping[str, Any], prefix_chars: int) -> str:
    """The call's affinity key ("" when it has none)."""
    if session:
        return f"s:{session}"
    for field in ("prompt_cache_key", "user"):
        value = payload.get(field)
        if isinstance(value, str) and value:
            return f"{field[0]}:{value}"
    if prefix_chars <= 0:
        return ""
    text = _messages_text(payload.get("messages"), prefix_chars)
    return f"p:{_digest(text[:prefix_chars])}" if len(text) >= prefix_chars else ""


def rendezvous(key: str, names: Sequence[str]) -> list[int]:
    """Indices of `names` in the key's rendezvous order (its preferred replica first)."""
    scores = [_digest(f"{key}\x00{name}") for name in names]
    return sorted(range(len(names)), key=lambda i: scores[i], reverse=True)


def _messages_text(messages: Any, enough: int) -> str:
    """The messages' text, up to at least `enough` characters (a long conversation is not joined whole)."""
    if not isinstance(messages, list):
        return ""
    parts: list[str] = []
    size = 0
    for message in messages:
        if size >= enough:
            break
        if not isinstance(message, Mapping):
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
        parts.append("\x1e")  # a message boundary, so ["ab"] and ["a", "b"] differ
        size = sum(map(len, parts))
    return "".join(parts)


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big")
