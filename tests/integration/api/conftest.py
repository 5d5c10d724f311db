"""The OpenAI SDK client for the API tests, closed at teardown (an unclosed one leaks its sockets)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import openai
import pytest

Client = Callable[[str], openai.OpenAI]


@pytest.fixture
def client() -> Iterator[Client]:
    """client(gateway_url) -> an OpenAI SDK client on `/v1`, without retries."""
    made: list[openai.OpenAI] = []

    def make(url: str) -> openai.OpenAI:
        made.append(openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0, timeout=20))
        return made[-1]

    yield make
    for c in made:
        c.close()
