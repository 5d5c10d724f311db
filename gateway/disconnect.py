"""Stop a call's work when its client goes away: uvicorn cancels a plain handler only at shutdown, never on a
disconnect, so without this a non-streamed call runs its upstream request to the end for nobody.

Under `gateway serve` the server protocol (http_protocol.py) calls the hooks a request's scope holds under
DISCONNECT_HOOKS when its connection is lost: nothing runs per call. Under another server (plain uvicorn) a
watcher task reads `receive` for the disconnect instead, which costs a task per call (about 10 % of a pinned
gateway's CPU at 64 clients).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from starlette.types import Receive, Scope

T = TypeVar("T")


DISCONNECT_HOOKS = "gateway.disconnect_hooks"  # scope key: callables the server protocol calls on a disconnect


class ClientGone(Exception):
    """The client disconnected before its answer was ready; the work was cancelled."""


async def unless_gone(receive: Receive, work: Awaitable[T], scope: Scope | None = None) -> T:
    """Await `work` in this task while watching for the client's disconnect (the body already read); a disconnect
    cancels the work (closing its upstream request) and raises ClientGone. A cancellation from elsewhere
    (shutdown) propagates."""
    main = asyncio.current_task()
    assert main is not None
    state = {"gone": False, "done": False}

    def gone() -> None:
        if not state["done"]:
            state["gone"] = True
            main.cancel()

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        gone()

    hooks: list[Callable[[], None]] | None = scope.get(DISCONNECT_HOOKS) if scope is not None else None
    watcher = None
    if hooks is not None:
        hooks.append(gone)
    else:
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
        if watcher is not None:
            # not awaited: a cancelled call books its row at once, before a shutdown goes on to close the call log
            watcher.cancel()
