"""Call-log settings, read once from the environment at start-up."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from pydantic import Field
from sqlalchemy.engine import make_url

from gateway.envvars import EnvGroup, Flag, SettingsError, read_env

Backend = Literal["sqlite", "postgresql", "disabled"]

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
        e = read_env(_StorageEnv, env)
        var_dir = _path(e.var_dir, root)
        base = cls(
            backend="disabled",
            spool_dir=_path(e.spool_dir or str(var_dir / "spool"), root),
            log_content=e.log_content,
            sync=e.sync,
            queue_max=e.queue_max,
            batch_size=e.batch_size,
            flush_interval_s=e.flush_ms / 1000,
            retry_min_s=e.retry_min_ms / 1000,
            retry_max_s=e.retry_max_ms / 1000,
            pool_size=e.pg_pool,
        )
        if e.use_sqlite:
            raw = e.sqlite_path or e.legacy_sqlite_path or str(var_dir / "db/openrouter_logs.db")
            path = _path(raw, root)
            return replace(base, backend="sqlite", url=f"sqlite+aiosqlite:///{path}", sqlite_path=path)
        if e.database_url:
            return replace(base, backend="postgresql", url=postgres_async_url(e.database_url))
        return base


class _StorageEnv(EnvGroup):
    """The call log's variables."""

    var_dir: str = Field("var", alias="VAR_DIR")
    spool_dir: str = Field("", alias="CALL_LOG_SPOOL_DIR")
    log_content: Flag = Field(True, alias="LOG_CONTENT")
    sync: Flag = Field(False, alias="CALL_LOG_SYNC")
    queue_max: int = Field(10_000, alias="CALL_LOG_QUEUE_MAX", gt=0)
    batch_size: int = Field(500, alias="CALL_LOG_BATCH", gt=0)
    flush_ms: int = Field(200, alias="CALL_LOG_FLUSH_MS", gt=0)
    retry_min_ms: int = Field(500, alias="CALL_LOG_RETRY_MIN_MS", gt=0)
    retry_max_ms: int = Field(30_000, alias="CALL_LOG_RETRY_MAX_MS", gt=0)
    pg_pool: int = Field(2, alias="CALL_LOG_PG_POOL", gt=0)
    use_sqlite: Flag = Field(True, alias="USE_SQLITE_LOG")
    sqlite_path: str = Field("", alias="SQLITE_DB_PATH")
    legacy_sqlite_path: str = Field("", alias="OPENROUTER_SQLITE_DB")
    database_url: str = Field("", alias="DATABASE_URL", repr=False)


def postgres_async_url(url: str) -> str:
    """Rewrite a PostgreSQL URL for SQLAlchemy's asyncpg driver."""
    for scheme in _PG_SCHEMES:
        if url.startswith(scheme):
            return "postgresql+asyncpg://" + url[len(scheme) :]
    # Never echo the URL itself: it usually carries a password.
    scheme = url.split("://", 1)[0] if "://" in url else "(none)"
    raise SettingsError(
        f"environment variable DATABASE_URL: unsupported scheme {scheme!r}. "
        "Fix: use postgresql://user:pass@host:5432/db"
    )


def _path(raw: str, root: Path) -> Path:
    path = Path(raw).expanduser()
    return path if path.is_absolute() else root / path
