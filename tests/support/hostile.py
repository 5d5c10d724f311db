"""What a hostile or broken upstream sends, as exact bytes: interim responses, stray messages, header floods, bombs.

Raw loopback servers (tests/integration/transport/conftest.py `serve`) write these as given, so a test decides
where one read ends and the next begins.
"""

from __future__ import annotations

import zlib

import orjson

REASONS = {100: "Continue", 102: "Processing", 103: "Early Hints", 200: "OK", 302: "Found", 500: "Internal Error"}


def head(status: int, *fields: str) -> bytes:
    """A status line and header fields, through the blank line that ends them."""
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Whatever')}", *fields]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def early_hints(*links: str) -> bytes:
    """A `103 Early Hints` interim response (RFC 8297) with one Link field per hint."""
    return head(103, *(f"Link: {link}" for link in links or ("</style.css>; rel=preload",)))


def response(body: bytes, *fields: str, status: int = 200) -> bytes:
    """A whole response delimited by Content-Length."""
    return head(status, f"Content-Length: {len(body)}", *fields) + body


def chat_completion(content: str, model: str = "upstream-model") -> bytes:
    """An OpenAI chat completion whose one choice says `content`."""
    return orjson.dumps(
        {
            "id": f"chatcmpl-{content}",
            "object": "chat.completion",
            "created": 1,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        }
    )


def gzip_bomb(decoded_mib: int) -> bytes:
    """`decoded_mib` MiB of zeros, gzip-compressed (about 1000:1)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    parts = [packer.compress(block) for _ in range(decoded_mib)]
    return b"".join(parts) + packer.flush()
