"""Deployment kinds: which schema each speaks and the defaults and quirks of each brand."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KindSpec:
    """What a deployment `kind` means: its schema and its brand's defaults and quirks."""

    kind: str
    schema: str
    provider: str
    default_base_url: str = ""
    key_required: bool = True
    local: bool = False
    health_path: str = "models"
    health_at_origin: bool = False
    streams: bool = True
    in_process: bool = False  # served by the in-process mock transport: no URL, no socket, no probe
    drop_params: tuple[str, ...] = ()
    native_completions: bool = False  # serves `/v1/completions` itself: legacy completions pass through untouched
    reasoning: str = "effort"  # how a request's `reasoning` object reaches it (adapters/reasoning.py)


KINDS: dict[str, KindSpec] = {
    spec.kind: spec
    for spec in (
        KindSpec("openai", "openai", "openai", "https://api.openai.com/v1", native_completions=True),
        KindSpec(
            "vllm",
            "openai",
            "local",
            "",
            key_required=False,
            local=True,
            health_path="/health",
            health_at_origin=True,
            native_completions=True,
        ),
        KindSpec("deepseek", "openai", "deepseek", "https://api.deepseek.com/v1"),
        KindSpec("llama", "openai", "llama", "https://api.llama.com/compat/v1"),
        KindSpec(
            "gemini",
            "openai",
            "gemini",
            "https://generativelanguage.googleapis.com/v1beta/openai",
            drop_params=("logit_bias", "logprobs", "top_logprobs"),
        ),
        KindSpec(
            "mock", "openai", "mock", "mock://local", key_required=False, local=True, health_path="", in_process=True
        ),
        # Anthropic's Messages API (base_url as Anthropic's SDK takes it); not probed: its key is not a bearer token
        KindSpec("anthropic", "anthropic", "anthropic", "https://api.anthropic.com", health_path=""),
        # Project Beacon: Golem provider nodes, Modal web endpoints, RunPod serverless (base_url must be
        # https://api.runpod.ai/v2/<endpoint_id>). None streams; all are probed at `{base_url}/health`.
        KindSpec("golem", "golem", "golem", key_required=False, health_path="health", streams=False),
        KindSpec("modal", "modal", "modal", key_required=False, health_path="health", streams=False),
        KindSpec("runpod", "runpod", "runpod", "", health_path="health", streams=False),
    )
}


def kind_spec(kind: str) -> KindSpec | None:
    """The spec for a kind, or None when the kind is unknown."""
    return KINDS.get(kind)
