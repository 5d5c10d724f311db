"""OpenRouter's request `reasoning` object (`{effort, max_tokens, exclude, enabled}`) as each upstream takes it.

A deployment's `reasoning` style says how (its kind's default, else `effort`):
- `effort`: OpenAI's `reasoning_effort` (OpenAI, vLLM with gpt-oss, Gemini's compatible endpoint...);
- `chat_template_kwargs`: vLLM's chat template switch, `{"<thinking_switch>": true|false}` (Qwen3 and GLM:
  `enable_thinking`; DeepSeek-V3.1 and Granite: `thinking`), which is how those models turn thinking on and off;
- `openrouter`: the object as it came (an OpenRouter upstream);
- `drop`: neither (an upstream that rejects both).
Pure: a body in, a body out.
"""

from __future__ import annotations

from typing import Any

STYLES = ("effort", "chat_template_kwargs", "openrouter", "drop")
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")


def wanted(asked: Any) -> tuple[bool | None, str | None]:
    """(thinking on or off, effort) that a `reasoning` object asks for; None where it says nothing. `effort` or
    `max_tokens` turn it on unless `enabled` says otherwise, `effort: "none"` and `enabled: false` turn it off."""
    if not isinstance(asked, dict):
        return None, None
    effort = asked.get("effort") if isinstance(asked.get("effort"), str) else None
    enabled = asked.get("enabled") if isinstance(asked.get("enabled"), bool) else None
    if enabled is None and (effort is not None or asked.get("max_tokens")):
        enabled = effort != "none"
    if enabled is False:
        effort = "none"
    return enabled, effort


def shape_reasoning(body: dict[str, Any], style: str, switch: str) -> dict[str, Any]:
    """`body` (the upstream's own copy, changed in place) with its `reasoning` object as `style` takes it. A
    client's own `reasoning_effort` or `chat_template_kwargs` entry wins over what the object maps to."""
    if style == "openrouter":
        return body
    enabled, effort = wanted(body.pop("reasoning", None))
    if style == "effort":
        if effort is not None:
            body.setdefault("reasoning_effort", effort)
        return body
    direct = body.pop("reasoning_effort", None)
    if style != "chat_template_kwargs":
        return body
    if enabled is None and isinstance(direct, str):
        enabled = direct != "none"
    if enabled is not None:
        kwargs = body.get("chat_template_kwargs")
        kwargs = dict(kwargs) if isinstance(kwargs, dict) else {}
        kwargs.setdefault(switch, enabled)
        body["chat_template_kwargs"] = kwargs
    return body
