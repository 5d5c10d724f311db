"""Shared fixtures: a factory for real gateways on loopback, each with its own config and call log."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from gateway.settings import ROOT
from tests.support.gateway import ThreadGateway, base_env, free_port, write_config
from tests.support.served import Served
from tests.support.upstream import FakeUpstream

IN_CI = bool(os.environ.get("CI"))

GatewayFactory = Callable[..., ThreadGateway]


@pytest.fixture(autouse=True)
def _sdk_clients_closed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every sync openai / anthropic client a test makes (itself, or through LangChain) is closed when the test
    ends. Left to the garbage collector, a client in a reference cycle can be finalised after its socket, which
    then warns unclosed inside whichever later test is running: a failure blamed on the wrong test."""
    import anthropic
    import openai

    opened: list[Any] = []
    for cls in (openai.OpenAI, anthropic.Anthropic):
        original = cls.__init__

        def tracked(self: Any, *args: Any, __init: Any = original, **kwargs: Any) -> None:
            __init(self, *args, **kwargs)
            opened.append(self)

        monkeypatch.setattr(cls, "__init__", tracked)
    yield
    for client in opened:
        client.close()


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


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """serve(args_after_port, env, cwd=ROOT) -> a ready Served; any process still running is killed at teardown."""
    started: list[Served] = []

    def start(command: list[str], env: Mapping[str, str], cwd: Path = ROOT) -> Served:
        port = free_port()
        args = [*command, "--port", str(port)]
        served = Served(args, env, cwd, tmp_path / f"proc{len(started)}", port)
        started.append(served)
        return served.wait_ready()

    yield start
    for served in started:
        served.kill()
