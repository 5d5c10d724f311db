"""Who may call what: each route declares an access level, and these pure decisions apply it.

Levels: `public` (health, readiness, the Maps script), `client` (the model APIs: a client key when any is
configured), `admin` (operator routes: the admin key, or with none configured a direct call from this host),
`metrics` (admin, unless METRICS_PUBLIC opens it to scrapers). Without an admin key, admin routes answer only
when the gateway listens on loopback alone (HOST=127.0.0.1 or ::1) and the call is direct: a gateway on 0.0.0.0
behind nginx's default proxy_pass, socat, `ssh -L` or `kubectl port-forward` sees every caller as loopback
with no proxy header, so there "local" proves nothing and the admin key is required. A route that declares no
level cannot be added to the app (gateway/routes.py): nothing is public by default.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
# Headers a reverse proxy adds: a call that carries one came from elsewhere, even when the socket is loopback.
PROXY_HEADERS = frozenset({b"x-forwarded-for", b"x-real-ip", b"forwarded", b"cf-connecting-ip"})
_KEY_NAME = re.compile(r"^[A-Za-z0-9._@+-]+$")


class Access(enum.Enum):
    """What a route asks of a caller."""

    PUBLIC = "public"
    CLIENT = "client"
    ADMIN = "admin"
    METRICS = "metrics"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.strip().encode()).hexdigest()


def key_label(digest: str) -> str:
    """The name a bare key goes by in logs and rows: a short prefix of its hash, never the key."""
    return f"key-{digest[:8]}"


class AccessConfigError(ValueError):
    """The keys configuration is malformed."""


@dataclass(frozen=True, slots=True)
class Decision:
    """Allowed (with the key's name), or refused with an HTTP status and a message."""

    allowed: bool
    key_name: str = ""
    status: int = 200
    message: str = ""
    code: str = ""


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """Client keys (name -> sha256 hex), the admin key hash, and whether /metrics is open to scrapers."""

    client_keys: tuple[tuple[str, str], ...] = ()
    admin_key_hash: str = ""
    metrics_public: bool = False
    loopback_only: bool = True  # the gateway listens on loopback alone, so a direct local call is the operator

    @property
    def open(self) -> bool:
        return not self.client_keys

    @classmethod
    def build(
        cls, api_keys: str, keys_file: str, admin_key: str, metrics_public: bool, listen_host: str = "127.0.0.1"
    ) -> AccessPolicy:
        """From GATEWAY_API_KEYS (`key` or `name:key`, comma separated), GATEWAY_KEYS_FILE and ADMIN_API_KEY."""
        keys = [_client_key(i, item.strip()) for i, item in enumerate(p for p in api_keys.split(",") if p.strip())]
        if keys_file.strip():
            keys.extend(_read_keys_file(Path(keys_file.strip())))
        admin = admin_key.strip()
        return cls(
            client_keys=tuple(keys),
            admin_key_hash=hash_key(admin) if admin else "",
            metrics_public=metrics_public,
            loopback_only=is_loopback_address(listen_host),
        )

    def decide(
        self,
        access: Access,
        authorization: str,
        client_ip: str,
        headers: Iterable[tuple[bytes, bytes]] = (),
        *,
        session: bool = False,
    ) -> Decision:
        """Allow or refuse one call to a route of level `access`; `headers` are the raw ASGI request headers
        (read only for keyless admin). `session`: the call carries a valid dashboard session cookie where one
        may count (gateway/session.py); it stands for the admin key on admin routes, never on client routes."""
        if access is Access.PUBLIC:
            return Decision(True)
        if access is Access.CLIENT:
            return self._client(authorization)
        if access is Access.METRICS and self.metrics_public:
            return Decision(True)
        return self._admin(authorization, client_ip, headers, session)

    def _client(self, authorization: str) -> Decision:
        if self.open:
            return Decision(True)
        token = bearer(authorization)
        if not token:
            return Decision(
                False, status=401, code="missing_api_key", message="missing API key: send `Authorization: Bearer <key>`"
            )
        digest = hash_key(token)
        for name, stored in self.client_keys:
            if hmac.compare_digest(stored, digest):
                return Decision(True, key_name=name)
        if self.admin_key_hash and hmac.compare_digest(self.admin_key_hash, digest):
            return Decision(True, key_name="admin")
        return Decision(False, status=401, code="invalid_api_key", message="invalid API key")

    def _admin(
        self, authorization: str, client_ip: str, headers: Iterable[tuple[bytes, bytes]], session: bool = False
    ) -> Decision:
        if not self.admin_key_hash:
            if self.loopback_only and is_local(client_ip, headers):
                return Decision(True, key_name="local-admin")
            where = "a direct call from this host" if self.loopback_only else "the gateway listening on loopback only"
            return Decision(
                False,
                status=403,
                code="admin_disabled",
                message=f"admin routes need ADMIN_API_KEY to be set (or {where})",
            )
        token = bearer(authorization)
        if not token and session:
            return Decision(True, key_name="admin")
        if not token:
            return Decision(
                False,
                status=401,
                code="missing_api_key",
                message="admin route: send `Authorization: Bearer <admin key>`",
            )
        if hmac.compare_digest(self.admin_key_hash, hash_key(token)):
            return Decision(True, key_name="admin")
        return Decision(False, status=403, code="invalid_admin_key", message="this key may not use admin routes")


def is_local(client_ip: str, headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """A call from this host itself: a loopback socket and no header a reverse proxy would add."""
    # Behind cloudflared or nginx on the same host every call arrives on loopback; only these headers tell a
    # forwarded call from a local operator's.
    return client_ip in LOOPBACK and not any(name.lower() in PROXY_HEADERS for name, _ in headers)


def is_loopback_address(host: str) -> bool:
    """A listen address that only this host can reach."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def bearer(authorization: str) -> str:
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _client_key(index: int, item: str) -> tuple[str, str]:
    """One GATEWAY_API_KEYS entry: `name:key`, or a bare key (the form vLLM's --api-key and most gateways take),
    named by its hash prefix."""
    name, sep, key = item.partition(":")
    if sep and _KEY_NAME.match(name) and key.strip():
        return name, hash_key(key)
    if sep and (not name or not key.strip()):
        raise AccessConfigError(
            f"environment variable GATEWAY_API_KEYS: entry {index + 1} has an empty name or key. "
            "Fix: write `key` or `name:key`, comma separated"
        )
    digest = hash_key(item)
    return key_label(digest), digest


def _read_keys_file(path: Path) -> list[tuple[str, str]]:
    """Lines `name sha256:<hex>` (comments with #); keys are stored hashed, never in plain text."""
    return [(name, digest) for _, name, digest, _ in keys_file_lines(path)]


def keys_file_lines(path: Path) -> list[tuple[int, str, str, str]]:
    """(line number, name, sha256 hex, budget column or "") of each `name sha256:<hex> [budget]` line."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise AccessConfigError(
            f"environment variable GATEWAY_KEYS_FILE: cannot read {path} ({exc.strerror}). Fix: check the path"
        ) from None
    keys: list[tuple[int, str, str, str]] = []
    for number, line in enumerate(lines, 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        name, digest = fields[0], (fields[1] if len(fields) > 1 else "").removeprefix("sha256:")
        if len(fields) > 3 or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise AccessConfigError(
                f"{path}:{number}: expected `name sha256:<64 hex> [budget, e.g. 50/day]`. "
                "Fix: make the line with `gateway hash-key NAME`"
            )
        keys.append((number, name, digest, fields[2] if len(fields) == 3 else ""))
    return keys
