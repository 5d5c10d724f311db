"""Fake Project Beacon upstreams (Golem node, Modal web endpoint, RunPod serverless) on real loopback sockets.

Each speaks its protocol as `adapters.beacon` expects it, answers with text that names itself
(`"[<name>] echo: <prompt>"`), records every request and counts the most inference requests it had in flight at
once (`max_in_flight`). `behaviour` (instance-wide, settable at run time, unknown keys raise ValueError):
status (HTTP error status with `{"error": ...}`), delay (seconds before answering), fail (Golem `success:false`,
Modal `status:"error"`, RunPod `FAILED`), reply (the text), usage (report `{prompt_tokens, completion_tokens}`),
no_success (Golem: leave `success` out), malformed (a non-JSON body), runpod_status (e.g. "IN_PROGRESS"),
runpod_output ("dict" = `{"response": text}`, "str", "list"), receipt_depth (Golem: the receipt nested that many
lists deep), health_status and health_delay (GET /health).
With `api_key` set, requests without `Authorization: Bearer <api_key>` get 401.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from aiohttp import web

from tests.support.loop_server import LoopServer
from tests.support.upstream import RequestRecord


@dataclass(frozen=True, slots=True)
class BeaconBehaviour:
    """How a fake Beacon upstream answers; the module docstring describes each key."""

    status: int = 200
    delay: float = 0.0
    fail: bool = False
    reply: str | None = None
    usage: bool = False
    no_success: bool = False
    malformed: bool = False
    runpod_status: str = "COMPLETED"
    runpod_output: str = "dict"
    health_status: int = 200
    health_delay: float = 0.0
    receipt_depth: int = 0

    @classmethod
    def of(cls, behaviour: Mapping[str, Any]) -> BeaconBehaviour:
        known = {f.name for f in dataclasses.fields(cls)}
        if unknown := sorted(set(behaviour) - known):
            raise ValueError(f"unknown behaviour key(s) {unknown}; known: {sorted(known)}")
        return cls(**behaviour)


class _FakeBeacon(LoopServer):
    """Socket, thread and recording machinery shared by the three fakes (the approach of tests.support.upstream)."""

    kind: ClassVar[str] = ""

    def __init__(
        self,
        name: str = "",
        region: str = "",
        behaviour: Mapping[str, Any] | None = None,
        *,
        api_key: str | None = None,
        port: int = 0,
    ) -> None:
        self.name = name or self.kind
        self.region = region
        self.api_key = api_key
        self.behaviour = behaviour or {}
        self.requests: list[RequestRecord] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._port = port
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ids = itertools.count(1)

    @property
    def behaviour(self) -> dict[str, Any]:
        return self._behaviour

    @behaviour.setter
    def behaviour(self, value: Mapping[str, Any]) -> None:
        BeaconBehaviour.of(value)
        self._behaviour = dict(value)

    @property
    def base_url(self) -> str:
        """What a deployment's `base_url` is set to for this upstream."""
        return self.url

    @property
    def inference_path(self) -> str:
        raise NotImplementedError

    @property
    def inference_requests(self) -> list[RequestRecord]:
        return [r for r in self.requests if r.method == "POST" and r.path == self.inference_path]

    @property
    def count(self) -> int:
        """Number of inference requests received."""
        return len(self.inference_requests)

    def reset(self) -> None:
        """Forget recorded requests and the in-flight maximum."""
        self.requests.clear()
        self.max_in_flight = self.in_flight

    @classmethod
    @contextlib.contextmanager
    def in_thread(
        cls, name: str = "", region: str = "", behaviour: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> Iterator[Self]:
        """Run the fake on its own event loop in a background thread for the duration of the block."""
        fake = cls(name, region, behaviour, **kwargs)
        with fake.threaded(f"fake-{cls.kind}-{fake.name}"):
            yield fake

    def _routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def _start(self) -> None:
        if self._runner is not None:
            return
        app = web.Application()
        self._routes(app)
        runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.1, access_log=None)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", self._port))
            await web.SockSite(runner, sock).start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self._port = sock.getsockname()[1]
        self._runner = runner

    async def _stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _record(self, request: web.Request) -> RequestRecord:
        try:
            body = await request.json() if request.can_read_body else None
        except ValueError:
            body = None
        headers = {key.lower(): value for key, value in request.headers.items()}
        record = RequestRecord(request.method, request.path, headers, body)
        self.requests.append(record)
        return record

    def _unauthorized(self, request: web.Request) -> web.Response | None:
        if self.api_key and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response({"error": "unauthorized"}, status=401, headers=self._headers())
        return None

    def _headers(self) -> dict[str, str]:
        return {"x-upstream-name": self.name}

    async def _health(self, request: web.Request) -> web.Response:
        b = BeaconBehaviour.of(self._behaviour)
        (await self._record(request)).ended.set()
        await asyncio.sleep(b.health_delay)
        if denied := self._unauthorized(request):
            return denied
        payload: dict[str, Any] = {"status": "healthy" if b.health_status < 400 else "unhealthy", "region": self.region}
        payload |= {"timestamp": time.time(), "service": f"fake-{self.kind}"}
        return web.json_response(payload, status=b.health_status, headers=self._headers())

    async def _inference(self, request: web.Request) -> web.Response:
        b = BeaconBehaviour.of(self._behaviour)
        record = await self._record(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(b.delay)
            if denied := self._unauthorized(request):
                return denied
            if b.status >= 400:
                error = {"error": f"[{self.name}] simulated {b.status}"}
                return web.json_response(error, status=b.status, headers=self._headers())
            if b.malformed:
                return web.Response(text="<html>upstream exploded", content_type="text/html", headers=self._headers())
            fields = self._fields(record.body)
            if fields is None:
                return web.json_response({"error": "bad request body"}, status=400, headers=self._headers())
            prompt = str(fields.get("prompt", ""))
            text = b.reply if b.reply is not None else f"[{self.name}] echo: {prompt}"
            usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split())}
            payload = self._reply(text, usage if b.usage else None, b, str(fields.get("model", "")))
            record.finished = True
            return web.json_response(payload, headers=self._headers())
        finally:
            self.in_flight -= 1
            record.ended.set()

    def _fields(self, body: Any) -> dict[str, Any] | None:
        return body if isinstance(body, dict) and isinstance(body.get("prompt"), str) else None

    def _receipt(self, model: str) -> dict[str, Any]:
        return {"provider": self.name, "region": self.region, "model": model, "request": next(self._ids)}

    def _reply(self, text: str, usage: dict[str, int] | None, b: BeaconBehaviour, model: str) -> dict[str, Any]:
        raise NotImplementedError


class FakeGolem(_FakeBeacon):
    """A Golem provider node: `POST /inference` -> `{success, response, error?, receipt}`, `GET /health`."""

    kind = "golem"

    @property
    def inference_path(self) -> str:
        return "/inference"

    def _routes(self, app: web.Application) -> None:
        app.router.add_post("/inference", self._inference)
        app.router.add_get("/health", self._health)

    def _reply(self, text: str, usage: dict[str, int] | None, b: BeaconBehaviour, model: str) -> dict[str, Any]:
        payload: dict[str, Any] = {"success": not b.fail}
        payload |= {"error": f"[{self.name}] simulated failure"} if b.fail else {"response": text}
        if b.no_success:
            del payload["success"]
        receipt: Any = self._receipt(model)
        for _ in range(b.receipt_depth):
            receipt = [receipt]
        payload["receipt"] = receipt
        return payload | ({"usage": usage} if usage else {})


class FakeModal(_FakeBeacon):
    """A Modal web endpoint: `POST /` -> `{status, response, region, receipt}`, `GET /health`."""

    kind = "modal"

    @property
    def inference_path(self) -> str:
        return "/"

    def _routes(self, app: web.Application) -> None:
        app.router.add_post("/", self._inference)
        app.router.add_get("/health", self._health)

    def _reply(self, text: str, usage: dict[str, int] | None, b: BeaconBehaviour, model: str) -> dict[str, Any]:
        if b.fail:
            return {"status": "error", "error": f"[{self.name}] simulated failure"}
        payload = {"status": "success", "response": text, "region": self.region, "receipt": self._receipt(model)}
        return payload | ({"usage": usage} if usage else {})


class FakeRunPod(_FakeBeacon):
    """A RunPod serverless endpoint under `/v2/<endpoint_id>`: `/runsync` answers, `/run` only queues, `/health`."""

    kind = "runpod"

    def __init__(self, *args: Any, endpoint_id: str = "fake-endpoint", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.endpoint_id = endpoint_id

    @property
    def base_url(self) -> str:
        return f"{self.url}/v2/{self.endpoint_id}"

    @property
    def inference_path(self) -> str:
        return f"/v2/{self.endpoint_id}/runsync"

    def _routes(self, app: web.Application) -> None:
        root = f"/v2/{self.endpoint_id}"
        app.router.add_post(f"{root}/runsync", self._inference)
        app.router.add_post(f"{root}/run", self._run)
        app.router.add_get(f"{root}/health", self._health)

    async def _run(self, request: web.Request) -> web.Response:
        """The asynchronous API: it only queues, which is why the adapter must never call it."""
        (await self._record(request)).ended.set()
        if denied := self._unauthorized(request):
            return denied
        return web.json_response({"id": f"job-{next(self._ids)}", "status": "IN_QUEUE"}, headers=self._headers())

    def _fields(self, body: Any) -> dict[str, Any] | None:
        return super()._fields(body.get("input")) if isinstance(body, dict) else None

    def _reply(self, text: str, usage: dict[str, int] | None, b: BeaconBehaviour, model: str) -> dict[str, Any]:
        job: dict[str, Any] = {"id": f"job-{next(self._ids)}-{self.name}", "delayTime": 12, "executionTime": 34}
        if b.fail:
            return job | {"status": "FAILED", "error": f"[{self.name}] simulated failure"}
        if b.runpod_status != "COMPLETED":
            return job | {"status": b.runpod_status}
        output: Any = {"response": text}
        if b.runpod_output == "str":
            output = text
        elif b.runpod_output == "list":
            output = [{"choices": [{"tokens": [text]}]}]
        return job | {"status": "COMPLETED", "output": output} | ({"usage": usage} if usage else {})
