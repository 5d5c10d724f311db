"""URL helpers shared by the config loader, routing and health probes: origins, matching, secret-free display."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def origin(url: str) -> str:
    """scheme://host[:port] of a URL, without credentials."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, "", "", ""))


def redact_url(url: str) -> str:
    """A URL fit for logs and messages: no credentials, query or fragment (some providers put keys in the query)."""
    parts = urlsplit(url)
    if not parts.scheme:
        return url.split("?", 1)[0]
    return origin(url) + parts.path


def normalize_origin(url: str) -> str:
    """Lower-cased URL without trailing slash, for comparing endpoints."""
    return url.rstrip("/").lower()


def endpoint_matches(endpoint: str, base_url: str) -> bool:
    """An endpoint names a deployment when it equals its base URL or that URL's origin (routing.yaml, OFFLOAD)."""
    e, b = normalize_origin(endpoint), normalize_origin(base_url)
    return b == e or b.startswith(e + "/")
