"""A minimal server-sent-events decoder: lines or raw reads in, `data` payloads out."""

from __future__ import annotations

from adapters.base import ProtocolError

# A line this long without a newline is not SSE; bounds the memory one upstream can make us hold.
MAX_LINE = 16 * 1024 * 1024


class SSEDecoder:
    """Feeds raw lines (`feed`) or raw reads (`feed_bytes`); returns the data of each complete event."""

    __slots__ = ("_data", "_partial")

    def __init__(self) -> None:
        self._data: list[bytes] = []
        self._partial = b""

    def feed(self, line: bytes) -> bytes | None:
        line = line.rstrip(b"\r\n")
        if not line:
            if not self._data:
                return None
            data = b"\n".join(self._data)
            self._data = []
            return data
        if line.startswith(b":"):
            return None
        field, _, value = line.partition(b":")
        if field == b"data":
            self._data.append(value[1:] if value.startswith(b" ") else value)
        return None

    def feed_bytes(self, chunk: bytes) -> list[bytes]:
        """The events completed by one read of any size; a trailing partial line is kept for the next read."""
        if self._partial:
            chunk = self._partial + chunk
        lines = chunk.split(b"\n")
        self._partial = lines.pop()
        if len(self._partial) > MAX_LINE:
            raise ProtocolError(f"upstream sent a stream line longer than {MAX_LINE} bytes")
        events: list[bytes] = []
        feed = self.feed
        for line in lines:
            data = feed(line)
            if data is not None:
                events.append(data)
        return events

    def flush(self) -> bytes | None:
        """The pending event when the stream ended without its blank line."""
        if self._partial:
            self.feed(self._partial)
            self._partial = b""
        if not self._data:
            return None
        data = b"\n".join(self._data)
        self._data = []
        return data
