"""A cap on concurrent streams per client (API key name, else client IP), counted in this worker."""

from __future__ import annotations


class StreamCap:
    """acquire() before a stream starts, release() when it ends; refuses past `limit` (0 = unlimited)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}

    def acquire(self, client: str) -> bool:
        count = self._open.get(client, 0)
        if self.limit and count >= self.limit:
            return False
        self._open[client] = count + 1
        return True

    def release(self, client: str) -> None:
        count = self._open.get(client, 0) - 1
        if count > 0:
            self._open[client] = count
        else:
            self._open.pop(client, None)

    def open_streams(self, client: str) -> int:
        return self._open.get(client, 0)
