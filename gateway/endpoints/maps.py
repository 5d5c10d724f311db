"""GET /maps/api.js: seed 000's key-holding proxy for the Google Maps script, cached; 404 unless configured.

The Maps bootstrap it serves still makes the browser call Google with the key, so use a referrer-restricted
key: this proxy keeps the key out of the page source, not out of the browser.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import APIError
from gateway.services import Services

DEFAULT_URL = "https://maps.googleapis.com/maps/api/js"
CACHE_SECONDS = 3600.0


class MapsCache:
    """The fetched script, shared by all requests until it expires."""

    def __init__(self) -> None:
        self.body = b""
        self.fetched_at = 0.0
        self.lock = asyncio.Lock()


async def maps_script(request: Request) -> Response:
    services: Services = request.app.state.services
    env = services.settings.env
    key = env.get("GOOGLE_MAPS_API_KEY", "").strip()
    if not key:
        raise APIError(
            404, "the Maps proxy is disabled: set GOOGLE_MAPS_API_KEY to enable /maps/api.js", code="maps_disabled"
        )
    cache: MapsCache = request.app.state.__dict__.setdefault("maps_cache", MapsCache())
    async with cache.lock:
        if not cache.body or time.monotonic() - cache.fetched_at > CACHE_SECONDS:
            url = env.get("MAPS_API_URL", DEFAULT_URL)
            try:
                async with services.transport.session.get(
                    url, params={"key": key, "libraries": "geometry"}, timeout=aiohttp.ClientTimeout(total=10)
                ) as resp:
                    if resp.status != 200:
                        raise APIError(
                            502, f"the Maps script upstream answered HTTP {resp.status}", code="maps_upstream_error"
                        )
                    cache.body = await resp.read()
                    cache.fetched_at = time.monotonic()
            except (aiohttp.ClientError, TimeoutError, OSError):
                raise APIError(
                    502, "the Maps script upstream could not be reached", code="maps_upstream_error"
                ) from None
    return Response(
        cache.body, 200, {"Cache-Control": f"public, max-age={int(CACHE_SECONDS)}"}, media_type="application/javascript"
    )
