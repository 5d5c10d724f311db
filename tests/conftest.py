"""Shared fixtures: a factory for real gateways on loopback, each with its own config and call log."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.gateway import ThreadGateway, base_env, write_config
from tests.support.upstream import FakeUpstream

IN_CI = bool(os.environ.get("CI"))

GatewayFactory = Callable[..., ThreadGateway]


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[GatewayFactory]:
    """start(models, routing=None, **env) -> a running ThreadGateway; all are stopped at teardown."""
    started: list[ThreadGateway] = []

    def start(models: Any, routing: Any | None = None, **env: str) -> ThreadGateway:
        directory = tmp_path / f"gw{len(started)}"
        full = {**base_env(directory), **write_config(directory, models, routing), **env}
        gateway = ThreadGateway(full).start()
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.stop()


@pytest.fixture
def upstreams() -> Iterator[tuple[FakeUpstream, FakeUpstream]]:
    """Two fake OpenAI-compatible upstreams, `a` and `b`, each in its own thread on a loopback port."""
    with FakeUpstream.in_thread("a") as a, FakeUpstream.in_thread("b") as b:
        yield a, b
