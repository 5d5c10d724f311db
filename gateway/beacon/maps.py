"""GET /maps/api.js: seed 000's key-holding proxy for the Google Maps script, cached; 404 unless configured.

Only the Maps JS bootstrap's own parameters are forwarded (`PARAMETERS`: `callback`, `libraries`, `v`...), each
checked against its length and characters (400 names the one that is wrong), one value per name, comma lists
sorted, the whole query sorted: anything else, `key` included, is dropped, so a client cannot invent queries
past the cache. The server's GOOGLE_MAPS_API_KEY is always the key. The route is public, so cache misses (each an
upstream fetch with the server's key) are rate-limited per client IP and in all (`MissBudget`): a refused miss
gets the stale copy when there is one, else 429 with Retry-After. The Maps bootstrap it serves still makes the
browser call Google with the key, so use a referrer-restricted key: this proxy keeps the key out of the page
source, not out of the browser.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections import OrderedDict, deque
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import APIError
from gateway.lifespan import Services
from routing.errors import UpstreamError

log = logging.getLogger("gateway.maps")

STALE_MAX_AGE = 60  # a stale copy tells the browser to come back soon, when the upstream may be back
MAX_ENTRIES = 32  # distinct queries kept; a client inventing queries evicts, it cannot grow memory
DEFAULT_LIBRARIES = "geometry"
MISSES_PER_CLIENT = 10  # upstream fetches per client IP per MISS_WINDOW_S
MISSES_TOTAL = 30  # upstream fetches from every client together per MISS_WINDOW_S
MISS_WINDOW_S = 60.0

Query = tuple[tuple[str, str], ...]

_WORD = r"[A-Za-z0-9_-]+"
_IDENTIFIER = r"[A-Za-z_$][\w$]*"
# The Maps JS API's bootstrap parameters (developers.google.com/maps/documentation/javascript/load-maps-js-api):
# the longest value kept and the characters it may hold. Comma lists (LISTS) are sorted and deduplicated.
PARAMETERS: dict[str, tuple[int, re.Pattern[str]]] = {
    "callback": (64, re.compile(rf"{_IDENTIFIER}(?:\.{_IDENTIFIER})*", re.ASCII)),
    "libraries": (128, re.compile(r"[a-z_]+(?:,[a-z_]+)*")),
    "v": (16, re.compile(r"[A-Za-z0-9._-]+")),
    "language": (16, re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")),
    "region": (3, re.compile(r"[A-Za-z0-9]{2,3}")),
    "loading": (16, re.compile(r"[a-z]+")),
    "channel": (64, re.compile(r"[A-Za-z0-9._-]+")),
    "solution_channel": (64, re.compile(r"[A-Za-z0-9._-]+")),
    "auth_referrer_policy": (32, re.compile(r"[a-z_-]+")),
    "map_ids": (256, re.compile(rf"{_WORD}(?:,{_WORD})*")),
}
LISTS = frozenset({"libraries", "map_ids"})


class MapsEntry:
    """One query's fetched script; its lock makes concurrent misses fetch once."""

    def __init__(self) -> None:
        self.body = b""
        self.fetched_at = 0.0
        self.lock = asyncio.Lock()


class MissBudget:
    """Upstream fetches allowed in a sliding window, per client IP and in all; the clock is passed in."""

    def __init__(
        self, per_client: int = MISSES_PER_CLIENT, total: int = MISSES_TOTAL, window: float = MISS_WINDOW_S
    ) -> None:
        self.per_client, self.total, self.window = per_client, total, window
        self._all: deque[float] = deque()
        self._by_client: dict[str, deque[float]] = {}

    def take(self, client: str, now: float) -> float:
        """0 when a fetch for `client` may go ahead now (and it is counted), else the seconds until one may."""
        edge = now - self.window
        while self._all and self._all[0] <= edge:
            self._all.popleft()
        # every fetch still counted is in `_all` too, so at most `total` clients are kept
        for name in [name for name, times in self._by_client.items() if times[-1] <= edge]:
            del self._by_client[name]
        mine = self._by_client.get(client, deque())
        while mine and mine[0] <= edge:
            mine.popleft()
        waits = [self._all[0] + self.window - now] if len(self._all) >= self.total else []
        if len(mine) >= self.per_client:
            waits.append(mine[0] + self.window - now)
        if waits:
            return max(waits)
        self._all.append(now)
        mine.append(now)
        self._by_client[client] = mine
        return 0.0


class MapsCache:
    """Fetched scripts by client query, least recently used evicted past `max_entries`; misses on a budget."""

    def __init__(self, max_entries: int = MAX_ENTRIES, budget: MissBudget | None = None) -> None:
        self.max_entries = max_entries
        self.entries: OrderedDict[Query, MapsEntry] = OrderedDict()
        self.budget = budget or MissBudget()

    def entry(self, query: Query) -> MapsEntry:
        found = self.entries.get(query)
        if found is None:
            found = self.entries[query] = MapsEntry()
            while len(self.entries) > self.max_entries:
                self.entries.popitem(last=False)
        else:
            self.entries.move_to_end(query)
        return found


def client_query(request: Request) -> Query:
    """The client's Maps parameters, checked and normalised (see PARAMETERS), sorted by name, with
    `libraries=geometry` when it names no libraries; raises a 400 APIError naming a malformed one."""
    chosen: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        rule = PARAMETERS.get(name)
        if rule is None or name in chosen or not value:
            continue  # not a bootstrap parameter (`key` among them), a repeat (the first counts), or empty
        longest, pattern = rule
        if len(value) > longest or not pattern.fullmatch(value):
            raise APIError(
                400,
                f"Maps parameter `{name}` must be at most {longest} characters matching {pattern.pattern}",
                code="invalid_maps_parameter",
                param=name,
            )
        chosen[name] = ",".join(sorted(set(value.split(",")))) if name in LISTS else value
    chosen.setdefault("libraries", DEFAULT_LIBRARIES)
    return tuple(sorted(chosen.items()))


async def maps_script(request: Request) -> Response:
    services: Services = request.app.state.services
    maps = services.settings.maps
    if not maps.key.strip():
        raise APIError(
            404, "the Maps proxy is disabled: set GOOGLE_MAPS_API_KEY to enable /maps/api.js", code="maps_disabled"
        )
    ttl = maps.cache_seconds
    query = client_query(request)
    state = request.app.state
    cache: MapsCache | None = getattr(state, "maps_cache", None)
    if cache is None:
        cache = state.maps_cache = MapsCache()
    entry = cache.entry(query)
    fresh = True
    async with entry.lock:
        if not entry.body or time.monotonic() - entry.fetched_at > ttl:
            fresh = await _refresh(services, cache, entry, query, request.client.host if request.client else "")
    headers = {"Cache-Control": f"public, max-age={int(ttl)}"}
    if not fresh:
        headers = {"Cache-Control": f"public, max-age={STALE_MAX_AGE}", "X-Maps-Cache": "stale"}
    return Response(entry.body, 200, headers, media_type="application/javascript")


async def _refresh(services: Services, cache: MapsCache, entry: MapsEntry, query: Query, client: str) -> bool:
    """Fetch the script into `entry` if the miss budget allows; False when the stale copy must do. Raises 429
    (over budget) or 502 (upstream failed) when there is no copy at all."""
    maps = services.settings.maps
    wait = cache.budget.take(client, time.monotonic())
    if wait:
        if entry.body:
            return False
        raise APIError(
            429,
            "too many distinct Maps script requests; retry later",
            code="maps_rate_limited",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    try:
        entry.body = await _fetch(services, maps.url, query, maps.key.strip())
    except APIError:
        if not entry.body:
            raise
        return False
    entry.fetched_at = time.monotonic()
    return True


async def _fetch(services: Services, url: str, query: Query, key: str) -> bytes:
    """The script from Google through the upstream pool; failures become a 502 whose message and log line never
    carry the key."""
    full = f"{url}{'&' if '?' in url else '?'}{urlencode([*query, ('key', key)])}"
    try:
        # the script is about 200 KB; 8 MiB leaves room for any growth and still bounds what a bad upstream costs
        status, _, body = await services.transport.get(full, {}, 10.0, 8 * 1024 * 1024)
    except UpstreamError as exc:
        # only the failure's kind is logged: nothing that could hold the request URL, key included
        log.warning("Maps script upstream could not be reached (%s)", exc.kind)
        raise APIError(502, "the Maps script upstream could not be reached", code="maps_upstream_error") from None
    if status != 200:
        log.warning("Maps script upstream answered HTTP %d", status)
        raise APIError(502, f"the Maps script upstream answered HTTP {status}", code="maps_upstream_error")
    return body
