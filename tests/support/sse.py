"""Read server-sent events from raw HTTP bytes, keeping comment lines (`: keep-alive`) apart from events."""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import AsyncIterable, Iterable
from dataclasses import dataclass
from typing import Any

_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event: its data lines joined by newlines."""

    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None

    @property
    def is_done(self) -> bool:
        return self.data == "[DONE]"

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass(frozen=True, slots=True)
class SSEComment:
    """One comment line, without its leading colon and one optional space."""

    text: str


@dataclass(frozen=True, slots=True)
class SSEStream:
    """Everything read from one stream, in order, and whether it ended inside an event."""

    items: tuple[SSEEvent | SSEComment, ...]
    truncated: bool

    @property
    def events(self) -> list[SSEEvent]:
        return [item for item in self.items if isinstance(item, SSEEvent)]

    @property
    def comments(self) -> list[str]:
        return [item.text for item in self.items if isinstance(item, SSEComment)]

    @property
    def data(self) -> list[str]:
        return [event.data for event in self.events]

    @property
    def done(self) -> bool:
        """True when the last event is `[DONE]`."""
        return bool(self.events) and self.events[-1].is_done

    def chunks(self) -> list[Any]:
        """Every event but `[DONE]` parsed as JSON; raises on an event that is not JSON."""
        return [event.json() for event in self.events if not event.is_done]

    def content(self) -> str:
        """The concatenated `choices[0].delta.content` of all chunks."""
        parts = []
        for chunk in self.chunks():
            for choice in chunk.get("choices") or []:
                if choice.get("index", 0) == 0:
                    parts.append((choice.get("delta") or {}).get("content") or "")
        return "".join(parts)

    def usage(self) -> dict[str, Any] | None:
        """The last non-null `usage` seen in the stream."""
        found = [chunk["usage"] for chunk in self.chunks() if chunk.get("usage")]
        return found[-1] if found else None


class SSEParser:
    """Incremental SSE parser (WHATWG rules) fed with bytes or text split anywhere."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._buffer = ""
        self._data: list[str] | None = None
        self._event: str | None = None
        self._id: str | None = None
        self._retry: int | None = None

    @property
    def pending(self) -> bool:
        """True when an event or line has started but not been terminated."""
        return bool(self._buffer) or self._data is not None or self._event is not None

    def feed(self, chunk: bytes | str) -> list[SSEEvent | SSEComment]:
        """Feed raw stream bytes; return the events and comments they completed."""
        self._buffer += self._decoder.decode(chunk) if isinstance(chunk, bytes) else chunk
        items: list[SSEEvent | SSEComment] = []
        while match := _LINE_END.search(self._buffer):
            if match.group() == "\r" and match.end() == len(self._buffer):
                break  # may be the first half of "\r\n"
            line, self._buffer = self._buffer[: match.start()], self._buffer[match.end() :]
            if (item := self.feed_line(line)) is not None:
                items.append(item)
        return items

    def close(self) -> list[SSEEvent | SSEComment]:
        """Flush the decoder at end of stream; an unterminated event stays pending and is not dispatched."""
        items = self.feed(self._decoder.decode(b"", final=True))
        if self._buffer.endswith("\r"):
            items.extend(self.feed("\n"))
        return items

    def feed_line(self, line: str | bytes) -> SSEEvent | SSEComment | None:
        """Feed one line without its terminator (as from `httpx.Response.iter_lines`)."""
        if isinstance(line, bytes):
            line = line.decode()
        line = line.rstrip("\r\n")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return SSEComment(line[1:].removeprefix(" "))
        name, colon, value = line.partition(":")
        value = value.removeprefix(" ") if colon else ""
        if name == "data":
            self._data = [*(self._data or []), value]
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> SSEEvent | None:
        data, event, self._data, self._event = self._data, self._event, None, None
        if data is None:
            return None
        return SSEEvent("\n".join(data), event, self._id, self._retry)


def parse_sse(source: Iterable[bytes | str] | bytes | str, *, lines: bool = False) -> SSEStream:
    """Parse a whole stream from raw chunks (or from single lines when `lines=True`)."""
    parser = SSEParser()
    items: list[SSEEvent | SSEComment] = []
    for chunk in [source] if isinstance(source, bytes | str) else source:
        items.extend(_feed(parser, chunk, lines))
    items.extend(parser.close())
    return SSEStream(tuple(items), parser.pending)


async def aparse_sse(source: AsyncIterable[bytes | str], *, lines: bool = False) -> SSEStream:
    """Parse a whole stream from an async iterator such as `httpx.Response.aiter_bytes()`."""
    parser = SSEParser()
    items: list[SSEEvent | SSEComment] = []
    async for chunk in source:
        items.extend(_feed(parser, chunk, lines))
    items.extend(parser.close())
    return SSEStream(tuple(items), parser.pending)


def _feed(parser: SSEParser, chunk: bytes | str, lines: bool) -> list[SSEEvent | SSEComment]:
    if not lines:
        return parser.feed(chunk)
    item = parser.feed_line(chunk)
    return [] if item is None else [item]
