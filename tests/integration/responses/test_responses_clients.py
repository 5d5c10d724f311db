"""The clients that speak the Responses API, unmodified, through the gateway: the OpenAI Agents SDK (its default
Responses model and OpenAIChatCompletionsModel) and langchain-openai's ChatOpenAI (with and without
use_responses_api), each running a function tool round trip against a chat-only fake upstream."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from agents import Agent, OpenAIChatCompletionsModel, RunConfig, Runner, function_tool, set_tracing_disabled
from agents.models.openai_provider import OpenAIProvider
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from openai import AsyncOpenAI

from tests.conftest import GatewayFactory
from tests.integration.core.conftest import models, route
from tests.support.upstream import FakeUpstream


@pytest.fixture
def gateway(gateway_factory: GatewayFactory) -> Iterator[tuple[Any, FakeUpstream]]:
    with FakeUpstream.in_thread("a", {"tool_calls": True}) as a:
        yield gateway_factory(models(route(a, responses="translate"))), a


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


@pytest.mark.parametrize("surface", ["responses", "chat"])
def test_agents_sdk_function_tool(gateway: tuple[Any, FakeUpstream], surface: str) -> None:
    gw, a = gateway
    set_tracing_disabled(True)

    async def run() -> Any:
        async with AsyncOpenAI(base_url=f"{gw.url}/v1", api_key="client-key", max_retries=0) as client:
            model: Any = "m" if surface == "responses" else OpenAIChatCompletionsModel(model="m", openai_client=client)
            agent = Agent(name="weather", instructions="Use the tool.", tools=[get_weather], model=model)
            config = RunConfig(model_provider=OpenAIProvider(openai_client=client))
            return (await Runner.run(agent, "Weather in Paris?", run_config=config)).final_output

    assert asyncio.run(run()) == "[a] the tool said: sunny in Paris"
    paths = [r.path for r in a.requests if r.method == "POST"]
    assert paths == ["/v1/chat/completions", "/v1/chat/completions"]
    rows = sqlite3.connect(gw.settings.storage.sqlite_path).execute("SELECT endpoint FROM api_logs").fetchall()
    expected = "/v1/responses" if surface == "responses" else "/v1/chat/completions"
    assert rows == [(expected,), (expected,)]


@tool
def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


@pytest.mark.parametrize("use_responses_api", [True, False])
def test_langchain_bind_tools_round_trip(gateway: tuple[Any, FakeUpstream], use_responses_api: bool) -> None:
    gw, _ = gateway
    llm = ChatOpenAI(
        model="m", base_url=f"{gw.url}/v1", api_key="client-key", max_retries=0, use_responses_api=use_responses_api
    )
    bound = llm.bind_tools([weather])
    question = HumanMessage("Weather in Paris?")
    first = bound.invoke([question])
    assert first.tool_calls and first.tool_calls[0]["name"] == "weather"
    call = first.tool_calls[0]
    answer = ToolMessage(weather.invoke(call["args"]), tool_call_id=call["id"])
    second = bound.invoke([question, first, answer])
    assert second.text == "[a] the tool said: sunny in Paris"
