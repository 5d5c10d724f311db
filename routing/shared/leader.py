"""One process per job across the fleet: the prober of a deployment, the scraper of a metrics page.

`lead(job, ttl_s)` is one round trip: the holder of `<prefix>:lead:<job>` renews it, anyone takes it when it is
free (`SET NX PX`), others are told no and read the leader's published results instead. A leader that dies stops
renewing, so another takes over within `ttl_s`. With Redis down every process leads its own jobs (per-process
probing, as without Redis).
"""

from __future__ import annotations

from routing.shared.link import REDIS_ERRORS, SharedLink

# KEYS[1] the job's key; ARGV: me, ttl (ms). 1 when this process holds the job (renewed or just taken).
LEAD_LUA = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

RESIGN_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Leadership:
    """Elects this process (`me`) for jobs; `lead` is True when it should do the job now."""

    def __init__(self, link: SharedLink, me: str) -> None:
        self.link, self.me = link, me
        self._lead = link.redis.register_script(LEAD_LUA)
        self._resign = link.redis.register_script(RESIGN_LUA)
        self._held: set[str] = set()

    def key(self, job: str) -> str:
        return f"{self.link.prefix}:lead:{job}"

    async def lead(self, job: str, ttl_s: float) -> bool:
        if not self.link.up:
            return True
        try:
            held = bool(await self._lead(keys=[self.key(job)], args=[self.me, max(100, int(ttl_s * 1000))]))
        except REDIS_ERRORS as exc:
            self.link.failed(exc, "leader election")
            return True
        if held:
            self._held.add(job)
        else:
            self._held.discard(job)
        return held

    async def resign_all(self) -> None:
        """Hand every job back at shutdown, so another process takes over at its next look, not after the ttl."""
        jobs, self._held = self._held, set()
        if not self.link.up:
            return
        for job in jobs:
            try:
                await self._resign(keys=[self.key(job)], args=[self.me])
            except REDIS_ERRORS:
                return
