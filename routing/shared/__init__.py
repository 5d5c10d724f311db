"""State shared by every worker and replica through Redis (REDIS_URL): in-flight leases, circuits, health, load.

One process's view is a cache of the fleet's; Redis is where the processes meet, never a dependency of a call:

- `link.SharedLink` owns the connection's health: the first failure is logged once, the gauge
  `gateway_shared_state_up` drops to 0, `/health` says "degraded: shared state unavailable", and a reconnect loop
  pings until Redis answers again, when every shared part resumes (resubscribes, re-reads) by itself. While it is
  down every call runs on this process's own state.
- `leases.InFlightLeases`: `max_concurrent` across the fleet, one sorted set per deployment scored by lease expiry
  (as `routing/limits/streams.py`), renewed in the background, so a killed process's leases expire in seconds.
- `board.FleetBoard`: a circuit opening or closing and every health probe or load scrape result is published on
  one pub/sub channel and applied by every process to its local breaker, health tracker and scrape state; the
  latest of each is also kept in a key, read by a process that (re)joins. A half-open trial is one `SET NX PX`
  token per deployment across the fleet.
- `leader.Leadership`: the prober of a deployment and the scraper of a metrics page are elected (`SET NX PX`,
  renewed while held), so each is fetched once per interval by the fleet, not once per process.
"""
