"""Call-log settings, read once from the environment at start-up."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from sqlalchemy.engine import make_url

Backend = Literal["sqlite", "postgresql", "disabled"]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
# Schemes accepted in DATABASE_URL; all of them are served by SQLAlchemy's asyncpg driver.
_PG_SCHEMES = ("postgres://", "postgresql://", "postgresql+asyncpg://")


@dataclass(frozen=True, slots=True)
class StorageSettings:
    """Where and how the call log is written."""

    backend: Backend
    # SQLAlchemy URL; may hold a password, so it is kept out of repr and logs (use `describe()`).
    url: str = field(default="", repr=False)
    sqlite_path: Path | None = None
    spool_dir: Path = Path("var/spool")
    log_content: bool = True
    sync: bool = False
    queue_max: int = 10_000
    batch_size: int = 500
    flush_interval_s: float = 0.2
    retry_min_s: float = 0.5
    retry_max_s: float = 30.0
    # PostgreSQL only: a small pool per gateway process, so N workers never exhaust max_connections.
    pool_size: int = 2
    max_overflow: int = 2
    connect_timeout_s: float = 5.0
    command_timeout_s: float = 30.0
    sqlite_busy_timeout_ms: int = 5_000

    @property
    def enabled(self) -> bool:
        return self.backend != "disabled"

    def describe(self) -> str:
        """The target without secrets, for logs and error messages."""
        if self.backend == "disabled":
            return "disabled"
        return make_url(self.url).render_as_string(hide_password=True)

    @classmethod
    def from_env(cls, env: Mapping[str, str], root: Path) -> StorageSettings:
        """Build settings from environment variables; relative paths are taken from `root`."""
        var_dir = _path(env.get("VAR_DIR") or "var", root)
        base = cls(
            backend="disabled",
            spool_dir=_path(env.get("CALL_LOG_SPOOL_DIR") or str(var_dir / "spool"), root),
            log_content=_bool(env, "LOG_CONTENT", True),
            sync=_bool(env, "CALL_LOG_SYNC", False),
            queue_max=_int(env, "CALL_LOG_QUEUE_MAX", 10_000),
            batch_size=_int(env, "CALL_LOG_BATCH", 500),
            flush_interval_s=_int(env, "CALL_LOG_FLUSH_MS", 200) / 1000,
            retry_min_s=_int(env, "CALL_LOG_RETRY_MIN_MS", 500) / 1000,
            retry_max_s=_int(env, "CALL_LOG_RETRY_MAX_MS", 30_000) / 1000,
            pool_size=_int(env, "CALL_LOG_PG_POOL", 2),
        )
        if _bool(env, "USE_SQLITE_LOG", True):
            raw = env.get("SQLITE_DB_PATH") or env.get("OPENROUTER_SQLITE_DB") or str(var_dir / "db/openrouter_logs.db")
            path = _path(raw, root)
            return replace(base, backend="sqlite", url=f"sqlite+aiosqlite:///{path}", sqlite_path=path)
        database_url = env.get("DATABASE_URL", "").strip()
        if database_url:
            return replace(base, backend="postgresql", url=postgres_async_url(database_url))
        return base


def postgres_async_url(url: str) -> str:
    """Rewrite a PostgreSQL URL for SQLAlchemy's asyncpg driver."""
    for scheme in _PG_SCHEMES:
        if url.startswith(scheme):
            return "postgresql+asyncpg://" + url[len(scheme) :]
    # Never echo the URL itself: it usually carries a password.
    scheme = url.split("://", 1)[0] if "://" in url else "(none)"
    raise ValueError(f"DATABASE_URL: unsupported scheme {scheme!r}; use postgresql://user:pass@host:5432/db")


def _path(raw: str, root: Path) -> Path:
    path = Path(raw).expanduser()
    return path if path.is_absolute() else root / path


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ValueError(f"{name}: expected true or false, got {raw!r}")


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}: expected a positive integer, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name}: must be > 0, got {value}")
    return value
