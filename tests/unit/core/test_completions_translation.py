"""Legacy completions onto chat and back (adapters/completions.py): pure, no sockets."""

from __future__ import annotations

import pytest

from adapters import completions as legacy


def chat_result(text: str, index: int = 0, logprobs: object = None) -> dict[str, object]:
    choice = {"index": index, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
    if logprobs is not None:
        choice["logprobs"] = logprobs
    return {
        "id": "c",
        "created": 1,
        "model": "u",
        "choices": [choice],
        "usage": {"prompt_tokens": 2, "total_tokens": 5},
    }


def test_each_prompt_becomes_one_chat_request_and_logprobs_ask_chat_for_them() -> None:
    bodies = legacy.chat_payloads({"model": "m", "prompt": ["a", "b"], "echo": True, "logprobs": 3, "n": 2})
    assert [b["messages"] for b in bodies] == [[{"role": "user", "content": "a"}], [{"role": "user", "content": "b"}]]
    assert all(b["logprobs"] is True and b["top_logprobs"] == 3 and b["n"] == 2 for b in bodies)
    assert all("prompt" not in b and "echo" not in b for b in bodies)


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"prompt": "x", "suffix": "y"}, "suffix"),
        ({"prompt": "x", "best_of": 3}, "best_of"),
        ({"prompt": [1, 2, 3]}, "prompt"),
    ],
)
def test_what_chat_cannot_carry_is_refused(payload: dict[str, object], param: str) -> None:
    with pytest.raises(legacy.Untranslatable) as caught:
        legacy.chat_payloads(payload)
    assert caught.value.param == param


def test_answers_merge_into_one_text_completion_indexed_by_prompt_and_n() -> None:
    content = [{"token": " hi", "logprob": -0.5, "top_logprobs": [{"token": " hi", "logprob": -0.5}]}]
    results = [chat_result(" hi", 0, {"content": content}), chat_result(" yo", 1), chat_result(" ok", 0)]
    merged = legacy.text_completion(
        [{**results[0], "choices": results[0]["choices"] + results[1]["choices"]}, results[2]],  # type: ignore[operator]
        {"prompt": ["A", "B"], "n": 2, "echo": True, "logprobs": 1},
    )
    assert [(c["index"], c["text"]) for c in merged["choices"]] == [(0, "A hi"), (1, "A yo"), (2, "B ok")]
    assert merged["choices"][0]["logprobs"] == {
        "tokens": [" hi"],
        "token_logprobs": [-0.5],
        "top_logprobs": [{" hi": -0.5}],
        "text_offset": [1],
    }
    assert merged["object"] == "text_completion" and merged["usage"] == {"prompt_tokens": 4, "total_tokens": 10}


def test_stream_chunks_become_text_chunks_of_their_prompt() -> None:
    chunk = {"id": "c", "choices": [{"index": 1, "delta": {"content": "x"}, "finish_reason": None}], "usage": {}}
    shaped = legacy.text_chunk(chunk, {"prompt": ["a", "b"], "n": 2}, 1)
    assert shaped == {
        "id": "c",
        "object": "text_completion",
        "choices": [{"index": 3, "text": "x", "logprobs": None, "finish_reason": None}],
    }
    assert legacy.text_chunk({"choices": [{"index": 0, "delta": {"role": "assistant"}}]}, {"prompt": "a"}, 0) is None
    assert legacy.echo_chunk({"prompt": ["a", "b"], "echo": True, "n": 2}, 1) == {
        "object": "text_completion",
        "choices": [
            {"index": 2, "text": "b", "logprobs": None, "finish_reason": None},
            {"index": 3, "text": "b", "logprobs": None, "finish_reason": None},
        ],
    }


def test_streamed_logprobs_count_their_offsets_across_chunks() -> None:
    def piece(text: str) -> dict[str, object]:
        content = [{"token": text, "logprob": -1.0, "top_logprobs": []}]
        return {"choices": [{"index": 0, "delta": {"content": text}, "logprobs": {"content": content}}]}

    payload, offsets = {"prompt": "Hey", "echo": True, "logprobs": 0}, {}
    first = legacy.text_chunk(piece(" there"), payload, 0, offsets)
    second = legacy.text_chunk(piece(" you"), payload, 0, offsets)
    assert first is not None and second is not None
    assert first["choices"][0]["logprobs"]["text_offset"] == [3]  # after the echoed prompt
    assert second["choices"][0]["logprobs"]["text_offset"] == [9]
