"""The text a call carried, bounded: its head and its tail, the full length, and whether the middle was cut.

A 64 MiB stream must not become 64 MiB of held text (nor a 64 MiB row): pieces are appended as they arrive and
the transcript keeps at most `cap` characters (half at the head, half at the tail), so memory per call is bounded
whatever the upstream sends. `cap` 0 keeps everything.
"""

from __future__ import annotations

from collections import deque

from adapters.tokens import count_tokens


def cut_marker(omitted: int) -> str:
    """What stands where text was cut, in the row, so a reader cannot take the halves for one text."""
    return f"\n[... {omitted} characters cut ...]\n"


def head_and_tail(text: str, cap: int) -> str:
    """`text` itself when it fits in `cap` characters (or cap is 0), else its head and tail around the marker."""
    if not cap or len(text) <= cap:
        return text
    head = cap - cap // 2
    tail = cap // 2
    return text[:head] + cut_marker(len(text) - head - tail) + (text[-tail:] if tail else "")


class Transcript:
    """Append-only text kept to `cap` characters; `length` counts everything appended."""

    __slots__ = ("_head", "_head_room", "_tail", "_tail_len", "_tail_room", "length")

    def __init__(self, cap: int = 0) -> None:
        self._head: list[str] = []
        self._head_room = cap - cap // 2 if cap else -1  # -1: no cap
        self._tail: deque[str] = deque()
        self._tail_len = 0
        self._tail_room = cap // 2
        self.length = 0

    def append(self, piece: str) -> None:
        self.length += len(piece)
        room = self._head_room
        if room < 0:
            self._head.append(piece)
            return
        if room:
            taken = piece[:room]
            self._head.append(taken)
            self._head_room = room - len(taken)
            piece = piece[len(taken) :]
            if not piece:
                return
        if not self._tail_room:
            return
        if len(piece) > self._tail_room:
            piece = piece[-self._tail_room :]  # one huge piece (a whole completion) is cut before it is held
        self._tail.append(piece)
        self._tail_len += len(piece)
        while self._tail_len - len(self._tail[0]) >= self._tail_room:  # whole pieces that fell out of the tail
            self._tail_len -= len(self._tail.popleft())

    @property
    def kept(self) -> int:
        """Characters held (the head and the tail)."""
        return self.length - self.omitted

    @property
    def omitted(self) -> int:
        """Characters appended but not held."""
        tail = min(self._tail_len, self._tail_room)
        return max(0, self.length - sum(map(len, self._head)) - tail)

    @property
    def cut(self) -> bool:
        return self.omitted > 0

    def __bool__(self) -> bool:
        return self.length > 0

    def text(self) -> str:
        """All of it when nothing was cut, else the head and the tail around the cut marker."""
        head = "".join(self._head)
        tail = "".join(self._tail)[-self._tail_room :] if self._tail else ""
        omitted = self.length - len(head) - len(tail)
        return head + cut_marker(omitted) + tail if omitted else head + tail

    def estimate_tokens(self) -> int:
        """Tokens of everything appended: counted over what is held, the cut middle at the same density."""
        head = "".join(self._head)
        tail = "".join(self._tail)[-self._tail_room :] if self._tail else ""
        counted = count_tokens(head) + count_tokens(tail)
        held = len(head) + len(tail)
        if held == 0 or held >= self.length:
            return counted
        return counted + round(counted * (self.length - held) / held)
