"""A minimal server-sent-events decoder: lines in, `data` payloads out."""

from __future__ import annotations


class SSEDecoder:
    """Feeds raw lines; returns the data of each complete event (multi-line data joined by newlines)."""

    __slots__ = ("_data",)

    def __init__(self) -> None:
        self._data: list[bytes] = []

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

    def flush(self) -> bytes | None:
        """The pending event when the stream ended without its blank line."""
        if not self._data:
            return None
        data = b"\n".join(self._data)
        self._data = []
        return data
