"""Environment parsing for the call log (seed 004 rules)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.calllog.settings import StorageSettings, postgres_async_url

ROOT = Path("/srv/gw")


def test_sqlite_is_the_default_under_var_db() -> None:
    s = StorageSettings.from_env({}, ROOT)
    assert s.backend == "sqlite"
    assert s.sqlite_path == ROOT / "var/db/openrouter_logs.db"
    assert s.url == f"sqlite+aiosqlite:///{ROOT}/var/db/openrouter_logs.db"
    assert s.spool_dir == ROOT / "var/spool"
    assert (s.log_content, s.sync, s.enabled) == (True, False, True)


def test_sqlite_path_precedence() -> None:
    both = {"SQLITE_DB_PATH": "/data/a.db", "OPENROUTER_SQLITE_DB": "/data/b.db"}
    assert StorageSettings.from_env(both, ROOT).sqlite_path == Path("/data/a.db")
    assert StorageSettings.from_env({"OPENROUTER_SQLITE_DB": "b.db"}, ROOT).sqlite_path == ROOT / "b.db"


def test_postgres_when_sqlite_is_off() -> None:
    env = {"USE_SQLITE_LOG": "false", "DATABASE_URL": "postgres://u:pw@db:5432/logs"}
    s = StorageSettings.from_env(env, ROOT)
    assert s.backend == "postgresql"
    assert s.url == "postgresql+asyncpg://u:pw@db:5432/logs"
    assert "pw" not in repr(s)
    assert s.describe() == "postgresql+asyncpg://u:***@db:5432/logs"


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+asyncpg"])
def test_postgres_schemes(scheme: str) -> None:
    assert postgres_async_url(f"{scheme}://h/db") == "postgresql+asyncpg://h/db"


def test_unsupported_scheme_names_the_variable_not_the_secret() -> None:
    with pytest.raises(ValueError, match="DATABASE_URL") as info:
        postgres_async_url("mysql://u:hunter2@h/db")
    assert "hunter2" not in str(info.value)


def test_disabled_without_database_url() -> None:
    s = StorageSettings.from_env({"USE_SQLITE_LOG": "0"}, ROOT)
    assert s.backend == "disabled"
    assert not s.enabled
    assert s.describe() == "disabled"


def test_tuning_overrides() -> None:
    env = {
        "LOG_CONTENT": "false",
        "CALL_LOG_SYNC": "yes",
        "CALL_LOG_QUEUE_MAX": "50",
        "CALL_LOG_BATCH": "7",
        "CALL_LOG_FLUSH_MS": "1500",
        "CALL_LOG_SPOOL_DIR": "spool2",
    }
    s = StorageSettings.from_env(env, ROOT)
    assert (s.log_content, s.sync, s.queue_max, s.batch_size) == (False, True, 50, 7)
    assert s.flush_interval_s == 1.5
    assert s.spool_dir == ROOT / "spool2"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"USE_SQLITE_LOG": "maybe"}, "USE_SQLITE_LOG"),
        ({"CALL_LOG_BATCH": "0"}, "CALL_LOG_BATCH"),
        ({"CALL_LOG_QUEUE_MAX": "lots"}, "CALL_LOG_QUEUE_MAX"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StorageSettings.from_env(env, ROOT)
