"""Beacon test fixtures: the fleet (two Golem nodes, Modal, RunPod) and a fake Maps script URL, on loopback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.support.beacon_upstreams import FakeGolem, FakeModal, FakeRunPod


@pytest.fixture
def fleet() -> Iterator[dict[str, Any]]:
    with (
        FakeGolem.in_thread("golem-us", "us-east") as golem_us,
        FakeGolem.in_thread("golem-eu", "eu-west") as golem_eu,
        FakeModal.in_thread("modal-us", "us-east") as modal,
        FakeRunPod.in_thread("runpod-eu", "eu-west", api_key="rp-secret-key", endpoint_id="ep1") as runpod,
    ):
        yield {"golem-us": golem_us, "golem-eu": golem_eu, "modal-us": modal, "runpod-eu": runpod}


class FakeMaps:
    """A stand-in for Google's Maps script URL: records each query, answers 200 or `status` when set."""

    def __init__(self) -> None:
        self.queries: list[list[tuple[str, str]]] = []
        self.status = 200
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qsl(urlsplit(self.path).query, keep_blank_values=True)
                fake.queries.append(query)
                body = f"/* {len(fake.queries)} */ window.google = {{maps: {{}}}};".encode()
                self.send_response(fake.status)
                self.send_header("Content-Type", "application/javascript")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/maps/api/js"

    def __enter__(self) -> FakeMaps:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def maps() -> Iterator[FakeMaps]:
    with FakeMaps() as fake:
        yield fake
