"""Legacy completions (`/v1/completions`) onto chat, for deployments that do not serve them natively: pure.

Each prompt of a batch becomes one chat request whose only message is the prompt as a user turn; the answers come
back as one `text_completion` with a choice per prompt and `n`, indexed `prompt * n + j` as OpenAI indexes them.
`logprobs: k` becomes chat's `logprobs: true, top_logprobs: k` and comes back in the legacy shape; `echo` puts the
prompt before the text (no logprobs for the prompt: chat has none). What chat cannot express, `suffix`, `best_of`
above `n` and token-id prompts, is refused rather than dropped.
"""

from __future__ import annotations

from typing import Any

TEXT_ONLY = ("prompt", "echo", "logprobs", "suffix", "best_of")


class Untranslatable(ValueError):
    """A completions request chat cannot carry; `param` names the field."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


def prompts_of(payload: dict[str, Any]) -> list[str]:
    """The text prompts of a request (a string or a list of them)."""
    prompt = payload.get("prompt")
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        return list(prompt)
    raise Untranslatable("prompt", "token-id prompts need a deployment that serves /v1/completions natively")


def _choices_per_prompt(payload: dict[str, Any]) -> int:
    n = payload.get("n")
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1


def chat_payloads(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """One chat request body per prompt; Untranslatable for what chat cannot carry."""
    prompts = prompts_of(payload)
    if payload.get("suffix"):
        raise Untranslatable("suffix", "`suffix` (insertion) has no chat equivalent")
    best_of = payload.get("best_of")
    if best_of is not None and best_of != _choices_per_prompt(payload):
        raise Untranslatable("best_of", "`best_of` other than `n` has no chat equivalent")
    base = {k: v for k, v in payload.items() if k not in TEXT_ONLY}
    top = payload.get("logprobs")
    if isinstance(top, int) and not isinstance(top, bool):
        base["logprobs"] = True
        if top > 0:
            base["top_logprobs"] = top
    return [{**base, "messages": [{"role": "user", "content": prompt}]} for prompt in prompts]


def text_logprobs(chat: Any, offset: int = 0) -> dict[str, Any] | None:
    """Chat's `logprobs.content` in the legacy shape: tokens, token_logprobs, top_logprobs, text_offset."""
    content = chat.get("content") if isinstance(chat, dict) else None
    if not isinstance(content, list):
        return None
    tokens, values, tops, offsets = [], [], [], []
    for entry in content:
        token = str(entry.get("token", ""))
        tokens.append(token)
        values.append(entry.get("logprob"))
        tops.append({str(t.get("token", "")): t.get("logprob") for t in entry.get("top_logprobs") or ()})
        offsets.append(offset)
        offset += len(token)
    return {"tokens": tokens, "token_logprobs": values, "top_logprobs": tops, "text_offset": offsets}


def add_usage(total: dict[str, Any] | None, more: dict[str, Any] | None) -> dict[str, Any] | None:
    """Usage of two upstream calls together: numbers (and nested numbers) summed."""
    if not more:
        return total
    if not total:
        return dict(more)
    out = dict(total)
    for key, value in more.items():
        if isinstance(value, dict):
            out[key] = add_usage(out.get(key) if isinstance(out.get(key), dict) else None, value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = (out.get(key) or 0) + value
    return out


def _text_choice(index: int, text: str, logprobs: Any, finish: Any) -> dict[str, Any]:
    return {"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish}


def text_completion(results: list[dict[str, Any]], payload: dict[str, Any]) -> dict[str, Any]:
    """The chat answers to chat_payloads' requests, in order, as one `text_completion`."""
    prompts, n = prompts_of(payload), _choices_per_prompt(payload)
    echo, wants_logprobs = bool(payload.get("echo")), payload.get("logprobs") is not None
    choices: list[dict[str, Any]] = []
    usage: dict[str, Any] | None = None
    for i, (prompt, result) in enumerate(zip(prompts, results, strict=True)):
        usage = add_usage(usage, result.get("usage"))
        head = prompt if echo else ""
        for choice in result.get("choices") or ():
            content = (choice.get("message") or {}).get("content") or ""
            logprobs = text_logprobs(choice.get("logprobs"), len(head)) if wants_logprobs else None
            index = i * n + int(choice.get("index") or 0)
            choices.append(_text_choice(index, head + content, logprobs, choice.get("finish_reason")))
    first = results[0] if results else {}
    out: dict[str, Any] = {k: first[k] for k in ("id", "created", "model", "system_fingerprint") if k in first}
    out.update(object="text_completion", choices=sorted(choices, key=lambda c: int(c["index"])))
    if usage is not None:
        out["usage"] = usage
    return out


def echo_chunk(payload: dict[str, Any], prompt_index: int) -> dict[str, Any] | None:
    """The chunk that starts a streamed echo: the prompt, once for each of its `n` choices."""
    if not payload.get("echo"):
        return None
    prompt, n = prompts_of(payload)[prompt_index], _choices_per_prompt(payload)
    choices = [_text_choice(prompt_index * n + j, prompt, None, None) for j in range(n)]
    return {"object": "text_completion", "choices": choices}


def text_chunk(
    chunk: dict[str, Any], payload: dict[str, Any], prompt_index: int, offsets: dict[int, int] | None = None
) -> dict[str, Any] | None:
    """A chat stream chunk of prompt `prompt_index` as a `text_completion` chunk (usage left out: it is summed over
    the prompts and sent once); None when it carries no text and no finish. `offsets`: where each choice's text
    stands so far, for the logprobs' text_offset; kept up to date here, one dict per stream."""
    n, wants_logprobs = _choices_per_prompt(payload), payload.get("logprobs") is not None
    offsets = {} if offsets is None else offsets
    choices = []
    for choice in chunk.get("choices") or ():
        text = (choice.get("delta") or {}).get("content") or ""
        finish = choice.get("finish_reason")
        if text or finish:
            index = prompt_index * n + int(choice.get("index") or 0)
            if index not in offsets:
                offsets[index] = len(prompts_of(payload)[prompt_index]) if payload.get("echo") else 0
            logprobs = text_logprobs(choice.get("logprobs"), offsets[index]) if wants_logprobs else None
            offsets[index] += len(text)
            choices.append(_text_choice(index, text, logprobs, finish))
    if not choices:
        return None
    out: dict[str, Any] = {k: chunk[k] for k in ("id", "created", "model", "system_fingerprint") if k in chunk}
    return {**out, "object": "text_completion", "choices": choices}
