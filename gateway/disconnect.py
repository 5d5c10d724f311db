"""Stop a call's work when its client goes away: uvicorn cancels a plain handler only at shutdown, never on a
disconnect, so without this a non-streamed call runs its upstream request to the end for nobody."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.types import Receive

T = TypeVar("T")


class ClientGone(Exception):
    """The client disconnected before its answer was ready; the work was cancelled."""


async def unless_gone(receive: Receive, work: Awaitable[T]) -> T:
    """Await `work` in this task while watching `receive` (the body already read); a disconnect cancels the work
    (closing its upstream request) and raises ClientGone. A cancellation from elsewhere (shutdown) propagates."""
    main = asyncio.current_task()
    assert main is not None
    state = {"gone": False, "done": False}

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        if not state["done"]:
            state["gone"] = True
            main.cancel()

    watcher = asyncio.create_task(watch())
    try:
        return await work
    except asyncio.CancelledError:
        if not state["gone"]:
            raise
        main.uncancel()
        raise ClientGone() from None
    finally:
        state["done"] = True
        # not awaited: a cancelled call books its row at once, before a shutdown goes on to close the call log
        watcher.cancel()
