"""Pure reasoning translation: the request object per deployment style, the stream gate, and `exclude`."""

from __future__ import annotations

from typing import get_args

import pytest

from adapters.reasoning import STYLES, shape_reasoning, wanted
from gateway.errors import APIError
from gateway.openai.formats import ChatFormat, identity
from gateway.openai.reasoning import WithoutReasoning, hides_reasoning
from routing.config.models_schema import DeploymentFields
from routing.executor import _meaningful


def test_styles_are_the_ones_the_config_accepts() -> None:
    annotation = DeploymentFields.model_fields["reasoning"].annotation
    assert set(get_args(get_args(annotation)[0])) == set(STYLES)


@pytest.mark.parametrize(
    ("asked", "expected"),
    [
        ({"effort": "high"}, (True, "high")),
        ({"effort": "none"}, (False, "none")),
        ({"max_tokens": 2000}, (True, None)),
        ({"enabled": False, "effort": "high"}, (False, "none")),
        ({"enabled": True}, (True, None)),
        ({"exclude": True}, (None, None)),
        ("high", (None, None)),
    ],
)
def test_what_a_reasoning_object_asks_for(asked: object, expected: tuple[object, object]) -> None:
    assert wanted(asked) == expected


def test_each_style_shapes_the_body() -> None:
    def body() -> dict:
        return {"messages": [], "reasoning": {"effort": "low"}}

    assert shape_reasoning(body(), "effort", "enable_thinking") == {"messages": [], "reasoning_effort": "low"}
    assert shape_reasoning(body(), "openrouter", "x") == body()
    assert shape_reasoning({**body(), "reasoning_effort": "high"}, "drop", "x") == {"messages": []}
    templated = shape_reasoning({**body(), "chat_template_kwargs": {"a": 1}}, "chat_template_kwargs", "thinking")
    assert templated == {"messages": [], "chat_template_kwargs": {"a": 1, "thinking": True}}
    own = {"reasoning": {"effort": "high"}, "chat_template_kwargs": {"enable_thinking": False}}
    assert shape_reasoning(own, "chat_template_kwargs", "enable_thinking")["chat_template_kwargs"] == {
        "enable_thinking": False
    }  # the client's own switch wins
    assert "chat_template_kwargs" not in shape_reasoning({"reasoning": {"exclude": True}}, "chat_template_kwargs", "e")


@pytest.mark.parametrize("field", ["reasoning", "reasoning_content", "content"])
def test_any_piece_of_reasoning_commits_a_stream(field: str) -> None:
    assert _meaningful({"choices": [{"delta": {field: "hm"}, "finish_reason": None}]})
    assert not _meaningful({"choices": [{"delta": {field: ""}, "finish_reason": None}]})


def test_exclude_takes_reasoning_out_of_answers_and_chunks() -> None:
    fmt, who = WithoutReasoning(ChatFormat()), identity("r", "m", "p")
    message = {"role": "assistant", "content": "4", "reasoning": "2+2", "reasoning_details": []}
    whole = fmt.response({"choices": [{"message": message}]}, who, None)
    assert whole["choices"][0]["message"] == {"role": "assistant", "content": "4"}
    chunk = fmt.chunk({"choices": [{"delta": {"reasoning_content": "hm"}, "finish_reason": None}]}, who)
    assert chunk is not None and chunk["choices"][0]["delta"] == {} and chunk["object"] == "chat.completion.chunk"


def test_the_reasoning_object_is_checked() -> None:
    assert hides_reasoning({"reasoning": {"exclude": True, "effort": "xhigh"}})
    assert not hides_reasoning({"reasoning_effort": "max"})  # OpenAI's own field goes through unchecked
    for bad in ({"reasoning": []}, {"reasoning": {"max_tokens": -1}}, {"reasoning": {"enabled": 1}}):
        with pytest.raises(APIError):
            hides_reasoning(bad)
