"""GET /maps/api.js: seed 000's key-holding proxy for the Google Maps script, cached; 404 unless configured.

The client's query (`callback`, `libraries`, `v`...) is forwarded, except `key`: the server's GOOGLE_MAPS_API_KEY
is always the key. The Maps bootstrap it serves still makes the browser call Google with the key, so use a
referrer-restricted key: this proxy keeps the key out of the page source, not out of the browser.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
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

Query = tuple[tuple[str, str], ...]


class MapsEntry:
    """One query's fetched script; its lock makes concurrent misses fetch once."""

    def __init__(self) -> None:
        self.body = b""
        self.fetched_at = 0.0
        self.lock = asyncio.Lock()


class MapsCache:
    """Fetched scripts by client query, least recently used evicted past `max_entries`."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self.entries: OrderedDict[Query, MapsEntry] = OrderedDict()

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
    """The client's parameters minus any `key`, with `libraries=geometry` when it names no libraries."""
    items = [(k, v) for k, v in request.query_params.multi_items() if k.lower() != "key"]
    if not any(k == "libraries" for k, _ in items):
        items.append(("libraries", DEFAULT_LIBRARIES))
    return tuple(items)


async def maps_script(request: Request) -> Response:
    services: Services = request.app.state.services
    maps = services.settings.maps
    key = maps.key.strip()
    if not key:
        raise APIError(
            404, "the Maps proxy is disabled: set GOOGLE_MAPS_API_KEY to enable /maps/api.js", code="maps_disabled"
        )
    ttl = maps.cache_seconds
    query = client_query(request)
    cache: MapsCache = request.app.state.__dict__.setdefault("maps_cache", MapsCache())
    entry = cache.entry(tuple(sorted(query)))
    headers = {"Cache-Control": f"public, max-age={int(ttl)}"}
    async with entry.lock:
        if not entry.body or time.monotonic() - entry.fetched_at > ttl:
            try:
                entry.body = await _fetch(services, maps.url, query, key)
                entry.fetched_at = time.monotonic()
            except APIError:
                if not entry.body:
                    raise
                headers = {"Cache-Control": f"public, max-age={STALE_MAX_AGE}", "X-Maps-Cache": "stale"}
    return Response(entry.body, 200, headers, media_type="application/javascript")


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
