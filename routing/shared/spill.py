"""The `local_first` spill budget, shared by the fleet: one hour's spend per minute bucket in Redis.

Each process adds what it spilled since its last sync to the current minute's bucket and reads the last 60
buckets' sum back, in one Lua round trip every `interval_s` (1 s), off the request path. Its window then counts
the others' spend (`others` = the fleet's sum less its own), so every process sees the same budget within about a
second and a cap of 10 USD/hour is 10 for the fleet, not 10 per worker. Minute buckets make the fleet's window
end up to a minute late, which errs on the side of spending less. Redis down: each process keeps its own spend,
the others' last reading stands, and what it spilled meanwhile is added once Redis is back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from routing.budget import SpendWindow
from routing.shared.link import REDIS_ERRORS, SharedLink

# KEYS[1] the buckets' prefix; ARGV[1] USD to add now. Returns the sum of the current and the 59 minutes before.
SYNC_LUA = """
local t = redis.call('TIME')
local minute = math.floor(tonumber(t[1]) / 60)
local add = tonumber(ARGV[1])
if add > 0 then
  local key = KEYS[1] .. ':' .. minute
  redis.call('INCRBYFLOAT', key, ARGV[1])
  redis.call('EXPIRE', key, 3720)
end
local total = 0
for m = minute - 59, minute do
  local v = redis.call('GET', KEYS[1] .. ':' .. m)
  if v then total = total + tonumber(v) end
end
return tostring(total)
"""


class SharedSpill:
    """Keeps one process's spill window in step with the fleet's (`run` until cancelled)."""

    def __init__(self, link: SharedLink, interval_s: float = 1.0) -> None:
        self.link, self.interval_s = link, interval_s
        self.key = f"{link.prefix}:spill"
        self._sync = link.redis.register_script(SYNC_LUA)

    async def sync(self, window: SpendWindow, now: float) -> None:
        """Tell the fleet what this process spilled since the last sync, and read the fleet's total."""
        if not self.link.up:
            return
        pending = window.unsynced
        try:
            total = float(await self._sync(keys=[self.key], args=[repr(pending)]))
        except REDIS_ERRORS as exc:
            self.link.failed(exc, "spill budget")
            return
        window.unsynced -= pending
        # what spilled here during the round trip is in own() but not yet in the fleet's total
        window.others = max(0.0, total - (window.own(now) - window.unsynced))

    async def run(self, window: Callable[[], SpendWindow], clock: Callable[[], float]) -> None:
        """Sync every `interval_s`; `window()` is read each time (a config reload replaces the window)."""
        while True:
            await self.sync(window(), clock())
            await asyncio.sleep(self.interval_s)
