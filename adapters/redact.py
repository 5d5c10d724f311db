"""Mask secrets in upstream text before it reaches attempts, the call log or a client.

Upstreams quote what they were sent: an echoed `Authorization` header, a key in a query string, a key in
their own error message, or a piece of one ("key ending in ..."). Text is masked twice over: the secrets we know
(a deployment's api_key and auth-like header values), whole or any 8 consecutive characters of them, and
anything shaped like a credential (`Bearer ...`, `api_key=...`, well-known key prefixes, long opaque tokens with
digits).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"
# Shorter "secrets" (test keys like `k`) would mask ordinary letters everywhere.
_MIN_SECRET = 6
# A cut secret at the end of truncated text still leaks its start; this long a tail of it is masked too.
_MIN_TAIL = 4
# Upstreams quote parts of a key ("...ending in 1a2b3c4d5e6f"): any run of this many of its characters is masked.
_FRAGMENT = 8
_RUN = re.compile(rf"\S{{{_FRAGMENT},}}")
_NAME = r"\b(?:x-)?(?:api[_-]?|access[_-]?|auth[_-]?|refresh[_-]?|client[_-]?|secret[_-]?|private[_-]?)?"
_SECRET = re.compile(
    rf"""(?ix)
    (?P<keep>
        \b(?:bearer|basic)\s+
      | (?:{_NAME}(?:key|token|secret|password|passwd)|\bauthorization)["']?\s*[:=]\s*["']?
    )(?:(?:bearer|basic)\s+)?[^\s"'&,;)\]}}]+
    | \b(?:sk|pk|rk|rpa|ak|hf|ghp|gho|ghs|glpat|xox[abpr])[-_][A-Za-z0-9_\-]{{8,}}
    | \bAIza[A-Za-z0-9_\-]{{20,}}
    | (?<![A-Za-z0-9+/_\-])(?=[A-Za-z_\-+/]*[0-9])[A-Za-z0-9+/_\-]{{32,}}={{0,2}}
    """
)


def _masked(match: re.Match[str]) -> str:
    return (match.group("keep") or "") + MASK


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with the given secrets and anything that looks like a credential replaced by `***`."""
    if not text:  # every successful call's row redacts its empty error: building the windows cost ~60 us
        return text
    known = sorted({s for s in secrets if s and len(s) >= _MIN_SECRET}, key=len, reverse=True)
    for secret in known:
        text = text.replace(secret, MASK)
    if known:
        text = _mask_fragments(text, known)
    for secret in known:
        for size in range(len(secret) - 1, _MIN_TAIL - 1, -1):
            if text.endswith(secret[:size]):
                text = text[:-size] + MASK
                break
    return _SECRET.sub(_masked, text)


def _mask_fragments(text: str, secrets: list[str]) -> str:
    """Every run of `_FRAGMENT` or more consecutive characters of a secret replaced by one mask: each secret's
    windows of that width go in a set, and each window of the text's non-blank runs is looked up once."""
    width = _FRAGMENT
    windows = {s[i : i + width] for s in secrets for i in range(len(s) - width + 1)}
    if not windows:
        return text
    spans: list[list[int]] = []  # [start, end) of masked stretches, in order, merged as they grow
    for run in _RUN.finditer(text):
        for i in range(run.start(), run.end() - width + 1):
            if text[i : i + width] in windows:
                if spans and spans[-1][1] >= i:
                    spans[-1][1] = i + width
                else:
                    spans.append([i, i + width])
    if not spans:
        return text
    parts: list[str] = []
    last = 0
    for start, end in spans:
        parts += (text[last:start], MASK)
        last = end
    parts.append(text[last:])
    return "".join(parts)


def one_line(value: object, limit: int = 300) -> str:
    """A short single line fit for logs and clients: whitespace collapsed, secrets masked, then cut."""
    return redact(" ".join(str(value).split()))[:limit]
