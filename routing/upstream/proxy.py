"""Forward proxies from HTTPS_PROXY / HTTP_PROXY / NO_PROXY, read the way curl reads them.

`Proxies.from_env` takes the environment as a mapping (never os.environ itself), prefers the lower-case names,
accepts a proxy URL with or without `http://`, with userinfo for Basic auth (port 1080 when none is given, as in
curl); `https://` and SOCKS proxies are refused
at start-up rather than ignored. NO_PROXY is `*` (every host) or a comma list of host names (matching the name
and every subdomain, with or without a leading dot), IP literals or CIDR ranges, each with an optional `:port`.
Loopback targets (`localhost`, 127.0.0.0/8, ::1) never use a proxy.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Proxy:
    """One forward proxy: where it listens and the Proxy-Authorization to send (secret, never shown)."""

    host: str
    port: int
    authorization: str = field(default="", repr=False)

    @property
    def display(self) -> str:
        """host:port, never the credentials."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @classmethod
    def from_url(cls, url: str, name: str = "proxy") -> Proxy:
        """Parse `[http://][user:pass@]host[:port]`; ValueError naming `name` for anything else."""
        text = url.strip()
        parts = urlsplit(text if "://" in text else f"http://{text}")
        if parts.scheme.lower() != "http":
            raise ValueError(f"{name}: only http:// proxies are supported, not {parts.scheme}://")
        try:
            port = parts.port or 1080  # curl's default proxy port
        except ValueError:
            raise ValueError(f"{name}: the proxy port is not a number") from None
        if not parts.hostname:
            raise ValueError(f"{name}: the proxy URL names no host")
        authorization = ""
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        return cls(parts.hostname, port, authorization)


@dataclass(frozen=True, slots=True)
class Bypass:
    """One NO_PROXY entry: every host (`*`), a domain and its subdomains, or an IP network; `port` 0 is any."""

    domain: str = ""
    network: IPNetwork | None = None
    port: int = 0
    everything: bool = False


@dataclass(frozen=True, slots=True)
class Proxies:
    """Which proxy, if any, each target goes through. The default is no proxy at all."""

    http: Proxy | None = None
    https: Proxy | None = None
    no_proxy: tuple[Bypass, ...] = ()

    @property
    def configured(self) -> bool:
        return self.http is not None or self.https is not None

    def for_target(self, scheme: str, host: str, port: int) -> Proxy | None:
        """The proxy for one target, or None to connect directly. Loopback hosts always go direct (as in Go's
        net/http): a local vLLM must not be sent through a corporate proxy that cannot reach this host."""
        proxy = self.https if scheme == "https" else self.http
        if proxy is None or is_loopback(host) or bypasses(self.no_proxy, host, port):
            return None
        return proxy

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Proxies:
        """Proxies from https_proxy / http_proxy / no_proxy (lower case first, then upper case)."""
        found: dict[str, Proxy | None] = {}
        for scheme in ("http", "https"):
            name, value = _lookup(env, f"{scheme}_proxy")
            found[scheme] = Proxy.from_url(value, name) if value else None
        _, no_proxy = _lookup(env, "no_proxy")
        return cls(found["http"], found["https"], parse_no_proxy(no_proxy))


def _lookup(env: Mapping[str, str], lower: str) -> tuple[str, str]:
    for name in (lower, lower.upper()):
        value = env.get(name, "").strip()
        if value:
            return name, value
    return lower.upper(), ""


def parse_no_proxy(value: str) -> tuple[Bypass, ...]:
    """The entries of a NO_PROXY value; blank entries are skipped. Only a whole value of `*` matches every host."""
    if value.strip() == "*":
        return (Bypass(everything=True),)
    rules: list[Bypass] = []
    for raw in value.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        host, port = _split_port(entry)
        try:
            rules.append(Bypass(network=ipaddress.ip_network(host, strict=False), port=port))
        except ValueError:
            domain = host.lstrip("*").lstrip(".").rstrip(".")  # "*.example.com", ".example.com", "example.com"
            if domain:
                rules.append(Bypass(domain=domain, port=port))
    return tuple(rules)


def _split_port(entry: str) -> tuple[str, int]:
    if entry.startswith("["):  # [::1] or [::1]:8080
        host, _, rest = entry[1:].partition("]")
        return host, _port(rest[1:]) if rest.startswith(":") else 0
    if entry.count(":") == 1:  # host:port (a bare IPv6 literal has several colons)
        host, _, port = entry.partition(":")
        return host, _port(port)
    return entry, 0


def _port(text: str) -> int:
    return int(text) if text.isdigit() else 0


def is_loopback(host: str) -> bool:
    """`localhost` (and its subdomains) or a loopback IP literal."""
    name = host.lower().strip("[]").rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def bypasses(rules: tuple[Bypass, ...], host: str, port: int) -> bool:
    """Whether NO_PROXY sends this host and port direct."""
    if not rules:
        return False
    name = host.lower().strip("[]").rstrip(".")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(name)
    except ValueError:
        address = None
    for rule in rules:
        if rule.everything:
            return True
        if rule.port and rule.port != port:
            continue
        if rule.network is not None:
            if address is not None and address.version == rule.network.version and address in rule.network:
                return True
        elif address is None and (name == rule.domain or name.endswith("." + rule.domain)):
            return True
    return False
