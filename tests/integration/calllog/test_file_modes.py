"""The SQLite call log holds prompts, client IPs and key names: its files are the owner's alone."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import GatewayFactory
from tests.integration.core.conftest import models, route


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The common default, under which sqlite3 would create the file 0644."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_the_database_and_its_wal_and_shm_are_created_0600(
    gateway_factory: GatewayFactory, upstreams, usual_umask: None
) -> None:
    """PostgreSQL refuses to start on a data directory others can read (0700 or 0750 only), and the spool
    beside this file is already 0600: the database gets the same, whatever the umask outside systemd."""
    a, _ = upstreams
    gw = gateway_factory(models(route(a)))
    db = Path(gw.settings.env["SQLITE_DB_PATH"])
    body = {"model": "m", "messages": [{"role": "user", "content": "a private prompt"}]}
    assert httpx.post(f"{gw.url}/v1/chat/completions", json=body).status_code == 200
    files = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
    assert all(f.exists() for f in files), "WAL mode: the row is in the -wal file while the gateway runs"
    assert {f.name: oct(f.stat().st_mode & 0o777) for f in files} == {f.name: "0o600" for f in files}
