"""Who may call what: client API keys for the model API, an admin key for operator routes. Pure decisions."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

CLIENT_PREFIXES = ("/v1/", "/api/v1/chat/", "/api/v1/models")
CLIENT_PATHS = frozenset({"/chat/completions", "/completion", "/models", "/inference", "/ws", "/providers"})
ADMIN_PREFIXES = ("/routing", "/stats", "/api/v1/generation", "/metrics", "/admin")
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
# Headers a reverse proxy adds: a call that carries one came from elsewhere, even when the socket is loopback.
PROXY_HEADERS = frozenset({b"x-forwarded-for", b"x-real-ip", b"forwarded", b"cf-connecting-ip"})


def hash_key(key: str) -> str:
    return hashlib.sha256(key.strip().encode()).hexdigest()


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

    @property
    def open(self) -> bool:
        return not self.client_keys

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AccessPolicy:
        keys: list[tuple[str, str]] = []
        for i, item in enumerate(p for p in env.get("GATEWAY_API_KEYS", "").split(",") if p.strip()):
            name, sep, key = item.strip().partition(":")
            if not sep or not name or not key:
                raise AccessConfigError(f"GATEWAY_API_KEYS entry {i + 1} must be name:key")
            keys.append((name, hash_key(key)))
        path = env.get("GATEWAY_KEYS_FILE", "").strip()
        if path:
            keys.extend(_read_keys_file(Path(path)))
        admin = env.get("ADMIN_API_KEY", "").strip()
        public = env.get("METRICS_PUBLIC", "false").strip().lower() in {"1", "true", "yes"}
        return cls(client_keys=tuple(keys), admin_key_hash=hash_key(admin) if admin else "", metrics_public=public)

    def decide(
        self, path: str, authorization: str, client_ip: str, headers: Iterable[tuple[bytes, bytes]] = ()
    ) -> Decision:
        """Allow or refuse one call; `headers` are the raw ASGI request headers (read only for keyless admin)."""
        if path.startswith(ADMIN_PREFIXES):
            if path.startswith("/metrics") and self.metrics_public:
                return Decision(True)
            return self._admin(authorization, client_ip, headers)
        if path in CLIENT_PATHS or path.startswith(CLIENT_PREFIXES):
            return self._client(authorization)
        return Decision(True)

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

    def _admin(self, authorization: str, client_ip: str, headers: Iterable[tuple[bytes, bytes]]) -> Decision:
        if not self.admin_key_hash:
            if is_local(client_ip, headers):
                return Decision(True, key_name="local-admin")
            return Decision(
                False,
                status=403,
                code="admin_disabled",
                message="admin routes need ADMIN_API_KEY to be set (or a direct call from this host, not via a proxy)",
            )
        token = bearer(authorization)
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


def bearer(authorization: str) -> str:
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _read_keys_file(path: Path) -> list[tuple[str, str]]:
    """Lines `name sha256:<hex>` (comments with #); keys are stored hashed, never in plain text."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise AccessConfigError(f"GATEWAY_KEYS_FILE {path}: cannot read ({exc.strerror})") from None
    keys: list[tuple[str, str]] = []
    for number, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, digest = line.partition(" ")
        digest = digest.strip().removeprefix("sha256:")
        if not name or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise AccessConfigError(
                f"{path}:{number}: expected `name sha256:<64 hex>`; make one with `gateway hash-key NAME`"
            )
        keys.append((name, digest))
    return keys
