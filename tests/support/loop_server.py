"""A test server living on an event loop: started and stopped from any loop, or from sync code when it runs on
its own loop in a background thread (the gateway under test often runs in another thread or process)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, Self


class LoopServer:
    """Subclasses implement `_start()` and `_stop()` (listen / close every socket) on the server's loop."""

    _loop: asyncio.AbstractEventLoop | None = None
    _port: int = 0

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError(f"{type(self).__name__} was never started")
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _start(self) -> None:
        raise NotImplementedError

    async def _stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Listen (again) on the same port; a no-op when already listening."""
        await self._on_own_loop(self._start())

    async def stop(self) -> None:
        """Close the listening socket and every connection, so new connections are refused."""
        await self._on_own_loop(self._stop())

    def start_sync(self) -> None:
        """Thread-safe `start` for a server running in its own thread."""
        self._run_threadsafe(self._start())

    def stop_sync(self) -> None:
        """Thread-safe `stop` for a server running in its own thread."""
        self._run_threadsafe(self._stop())

    @contextlib.contextmanager
    def threaded(self, thread_name: str) -> Iterator[Self]:
        """Run this server on a new event loop in a daemon thread for the duration of the block."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name=thread_name, daemon=True)
        thread.start()
        self._loop = loop
        try:
            self.start_sync()
            yield self
        finally:
            try:
                self.stop_sync()
            finally:
                asyncio.run_coroutine_threadsafe(loop.shutdown_asyncgens(), loop).result(timeout=10)
                loop.call_soon_threadsafe(loop.stop)
                thread.join()
                loop.close()

    async def _on_own_loop(self, coro: Coroutine[Any, Any, None]) -> None:
        running = asyncio.get_running_loop()
        if self._loop is None or self._loop is running or self._loop.is_closed():
            self._loop = running
            await coro
        else:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    def _run_threadsafe(self, coro: Coroutine[Any, Any, None]) -> None:
        if self._loop is None:
            coro.close()
            raise RuntimeError("start_sync/stop_sync need a server started with in_thread")
        with contextlib.suppress(RuntimeError):
            if asyncio.get_running_loop() is self._loop:
                coro.close()
                raise RuntimeError("use `await start()`/`await stop()` on the server's own loop")
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)
