"""What the fake upstream answers on `/v1/completions`, as vLLM and OpenAI do: list prompts (a batch: one choice per
prompt and `n`, indexed `prompt * n + j`), token-id prompts, `logprobs` (tokens, token_logprobs, top_logprobs,
text_offset), `echo` (the prompt before the completion, its first token without a logprob), and streaming.
Pure functions of the request body; the server in upstream.py does the I/O."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

_TOKEN = re.compile(r"\s*\S+")


class BadPrompt(ValueError):
    """The body's `prompt` is not one OpenAI accepts."""


def prompts(body: dict[str, Any]) -> list[str]:
    """The prompts of a request as text: a string, a list of strings, token ids or lists of token ids."""
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list) and prompt:
        if all(isinstance(p, int) for p in prompt):
            return [_ids_text(prompt)]
        if all(isinstance(p, str) for p in prompt):
            return list(prompt)
        if all(isinstance(p, list) and all(isinstance(t, int) for t in p) for p in prompt):
            return [_ids_text(p) for p in prompt]
    raise BadPrompt("`prompt` must be a string, a list of strings, token ids or lists of token ids")


def _ids_text(ids: list[int]) -> str:
    return " ".join(f"t{i}" for i in ids)


def tokens(text: str) -> list[str]:
    """The fake tokenizer for logprobs: each word with the whitespace before it."""
    return _TOKEN.findall(text)


def logprobs(text: str, top: int, offset: int = 0, first_unknown: bool = False) -> dict[str, Any]:
    """OpenAI's legacy logprobs object for `text`: a fixed logprob per token, `top` alternatives each."""
    toks = tokens(text)
    offsets, at = [], offset
    for tok in toks:
        offsets.append(at)
        at += len(tok)
    values: list[float | None] = [-0.25] * len(toks)
    alternatives = {f" alt{k}": -1.0 - k for k in range(top - 1)}
    tops: list[dict[str, float] | None] = [{tok: -0.25, **alternatives} for tok in toks]
    if first_unknown and toks:
        values[0], tops[0] = None, None
    return {"tokens": toks, "token_logprobs": values, "top_logprobs": tops, "text_offset": offsets}


def _choice(index: int, prompt: str, reply: str, body: dict[str, Any], finish: str | None) -> dict[str, Any]:
    echo = bool(body.get("echo"))
    text = (prompt if echo else "") + reply
    top = body.get("logprobs")
    lp = None
    if isinstance(top, int) and not isinstance(top, bool):
        lp = logprobs(prompt, top, first_unknown=True) if echo else None
        tail = logprobs(reply, top, offset=len(prompt) if echo else 0)
        lp = tail if lp is None else {k: lp[k] + tail[k] for k in tail}
    return {"index": index, "text": text, "logprobs": lp, "finish_reason": finish}


def completion(base: dict[str, Any], body: dict[str, Any], reply: str, usage: dict[str, Any]) -> dict[str, Any]:
    """The whole `text_completion` for a request."""
    n = int(body.get("n") or 1)
    choices = [
        _choice(i * n + j, prompt, reply, body, "stop") for i, prompt in enumerate(prompts(body)) for j in range(n)
    ]
    return {**base, "object": "text_completion", "choices": choices, "usage": usage}


def chunks(
    base: dict[str, Any], body: dict[str, Any], pieces: list[str], usage: dict[str, Any] | None
) -> Iterator[dict[str, Any]]:
    """The stream's chunks: each choice's pieces in turn (the echoed prompt first), its finish, then the usage."""
    n = int(body.get("n") or 1)
    echo = bool(body.get("echo"))
    head = {**base, "object": "text_completion"}
    for i, prompt in enumerate(prompts(body)):
        for j in range(n):
            index = i * n + j
            if echo:
                yield {**head, "choices": [{"index": index, "text": prompt, "logprobs": None, "finish_reason": None}]}
            for piece in pieces:
                choice = _choice(index, "", piece, {**body, "echo": False}, None)
                yield {**head, "choices": [choice]}
            yield {**head, "choices": [{"index": index, "text": "", "logprobs": None, "finish_reason": "stop"}]}
    if usage is not None:
        yield {**head, "choices": [], "usage": usage}


def prompt_text(body: dict[str, Any]) -> str:
    """All prompts' text, for usage."""
    return "\n".join(prompts(body))


def context_error(limit: int, used: int, param: str) -> dict[str, Any]:
    """OpenAI's 400 body for a request over the model's context length."""
    what = "messages" if param == "messages" else "prompt"
    message = (
        f"This model's maximum context length is {limit} tokens. However, your {what} resulted in {used} tokens. "
        f"Please reduce the length of the {what}."
    )
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": "context_length_exceeded"}
    return {"error": error}
