"""The fake Golem, Modal and RunPod upstreams, through real loopback sockets, driven by the Beacon adapters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
import pytest

from adapters.base import ProtocolError
from adapters.beacon import GolemAdapter, ModalAdapter, RunPodAdapter, RunPodJobPending
from routing.config.schema import DeploymentConfig
from tests.support.beacon_upstreams import FakeGolem, FakeModal, FakeRunPod

Fake = FakeGolem | FakeModal | FakeRunPod
PAYLOAD: dict[str, Any] = {"model": "pub", "messages": [{"role": "user", "content": "Hi there"}]}
ADAPTERS = {"golem": GolemAdapter(), "modal": ModalAdapter(), "runpod": RunPodAdapter()}


def dep_for(fake: Fake, key: str | None = None) -> DeploymentConfig:
    return DeploymentConfig(
        name=fake.name,
        model_id="pub",
        kind=fake.kind,
        provider=fake.kind,
        base_url=fake.base_url,
        provider_model_id="llama3.2-1b",
        weight=1,
        api_key=key,
        region=fake.region,
    )


async def call(http: aiohttp.ClientSession, fake: Fake, key: str | None = None) -> dict[str, Any]:
    """One inference the way the executor does it: adapter.build, a real POST, adapter.parse_response."""
    adapter = ADAPTERS[fake.kind]
    req = adapter.build(dep_for(fake, key), PAYLOAD, stream=False)
    async with http.request(req.method, req.url, data=req.body, headers=req.headers) as resp:
        body = await resp.read()
        if resp.status >= 400:
            raise RuntimeError(f"HTTP {resp.status}: {adapter.error_message(resp.status, body)}")
        return adapter.parse_response(body, req)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


@pytest.fixture(params=[FakeGolem, FakeModal, FakeRunPod], ids=["golem", "modal", "runpod"])
async def fake(request: pytest.FixtureRequest) -> AsyncIterator[Fake]:
    async with request.param(name=f"{request.param.kind}-us", region="us-east") as server:
        yield server


async def test_each_fake_answers_its_adapter_naming_itself(fake: Fake, http: aiohttp.ClientSession) -> None:
    result = await call(http, fake)
    assert result["choices"][0]["message"]["content"] == f"[{fake.kind}-us] echo: Hi there"
    assert result["beacon"]["usage_estimated"] is True and result["usage"]["prompt_tokens"] == 2
    [record] = fake.inference_requests
    assert record.finished and record.headers["content-type"] == "application/json"
    fields = record.body["input"] if fake.kind == "runpod" else record.body
    assert fields["prompt"] == "Hi there" and fields["model"] == "llama3.2-1b"
    assert ("region" in fields) == (fake.kind == "modal")


async def test_extras_reach_the_result(http: aiohttp.ClientSession) -> None:
    async with FakeGolem("g", "eu-west") as golem, FakeModal("m", "eu-west") as modal, FakeRunPod("r") as runpod:
        assert (await call(http, golem))["beacon"]["receipt"]["region"] == "eu-west"
        assert (await call(http, modal))["beacon"]["receipt"]["provider"] == "m"
        assert modal.inference_requests[0].body["region"] == "eu-west"
        assert (await call(http, runpod))["beacon"]["job_id"].endswith("-r")
        golem.behaviour = {"usage": True}
        assert "usage_estimated" not in (await call(http, golem))["beacon"]


async def test_runpod_uses_runsync_and_run_only_queues(http: aiohttp.ClientSession) -> None:
    async with FakeRunPod("rp", api_key="rp-key", endpoint_id="abc") as runpod:
        assert runpod.base_url.endswith("/v2/abc")
        await call(http, runpod, key="rp-key")
        assert [r.path for r in runpod.requests] == ["/v2/abc/runsync"]
        assert runpod.requests[0].headers["authorization"] == "Bearer rp-key"
        with pytest.raises(RuntimeError, match="HTTP 401: unauthorized"):
            await call(http, runpod, key="wrong")
        async with http.post(
            f"{runpod.base_url}/run", json={"input": {}}, headers={"Authorization": "Bearer rp-key"}
        ) as r:
            assert (await r.json())["status"] == "IN_QUEUE"
        for shape in ("str", "list"):
            runpod.behaviour = {"runpod_output": shape}
            result = await call(http, runpod, key="rp-key")
            assert result["choices"][0]["message"]["content"] == "[rp] echo: Hi there"


@pytest.mark.parametrize(
    ("fake_cls", "behaviour", "error"),
    [
        (FakeGolem, {"fail": True}, "golem reply reported failure: [g] simulated failure"),
        (FakeGolem, {"no_success": True}, "golem reply has no `success` field"),
        (FakeModal, {"fail": True}, "modal reply: status 'error': [g] simulated failure"),
        (FakeRunPod, {"fail": True}, "runpod job FAILED: [g] simulated failure"),
        (FakeRunPod, {"runpod_status": "IN_PROGRESS"}, "job not finished within runsync (status IN_PROGRESS)"),
        (FakeModal, {"malformed": True}, "modal returned a body that is not JSON"),
    ],
)
async def test_failure_behaviours(
    fake_cls: type[Fake], behaviour: dict[str, Any], error: str, http: aiohttp.ClientSession
) -> None:
    async with fake_cls("g", behaviour=behaviour) as fake:
        with pytest.raises(ProtocolError) as info:
            await call(http, fake)
        assert str(info.value) == error
        assert isinstance(info.value, RunPodJobPending) == ("runpod_status" in behaviour)


async def test_status_and_health_behaviours(fake: Fake, http: aiohttp.ClientSession) -> None:
    fake.behaviour = {"status": 503}
    with pytest.raises(RuntimeError, match=rf"HTTP 503: \[{fake.name}\] simulated 503"):
        await call(http, fake)
    async with http.get(f"{fake.base_url}/health") as resp:
        assert resp.status == 200 and (await resp.json())["status"] == "healthy"
        assert (await resp.json())["region"] == "us-east"
    fake.behaviour = {"health_status": 503}
    async with http.get(f"{fake.base_url}/health") as resp:
        assert resp.status == 503


async def test_max_in_flight_counts_concurrent_requests(fake: Fake, http: aiohttp.ClientSession) -> None:
    fake.behaviour = {"delay": 0.2}
    results = await asyncio.gather(*(call(http, fake) for _ in range(4)))
    assert len(results) == 4 and fake.count == 4
    assert fake.max_in_flight == 4 and fake.in_flight == 0
    fake.reset()
    await call(http, fake)
    assert fake.max_in_flight == 1


async def test_stop_refuses_connections_and_start_reuses_the_port(fake: Fake, http: aiohttp.ClientSession) -> None:
    port = fake.port
    await fake.stop()
    with pytest.raises(aiohttp.ClientConnectorError):
        await call(http, fake)
    await fake.start()
    assert fake.port == port
    assert (await call(http, fake))["choices"][0]["message"]["content"].startswith(f"[{fake.name}]")


def test_in_thread_with_sync_controls() -> None:
    with FakeGolem.in_thread(name="golem-us", region="us-east") as golem, httpx.Client(timeout=5) as client:
        body = {"model": "m", "prompt": "ping", "temperature": 0.1, "max_tokens": 8}
        reply = client.post(f"{golem.base_url}/inference", json=body).json()
        assert reply["success"] is True and reply["response"] == "[golem-us] echo: ping"
        golem.stop_sync()
        with pytest.raises(httpx.ConnectError):
            client.post(f"{golem.base_url}/inference", json=body)
        golem.start_sync()
        assert client.get(f"{golem.base_url}/health").json()["region"] == "us-east"
    with FakeRunPod.in_thread(name="rp", endpoint_id="e1") as runpod, httpx.Client(timeout=5) as client:
        reply = client.post(f"{runpod.base_url}/runsync", json={"input": body}).json()
        assert reply["status"] == "COMPLETED" and reply["output"] == {"response": "[rp] echo: ping"}


def test_unknown_behaviour_keys_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown behaviour"):
        FakeModal("m", behaviour={"explode": True})
