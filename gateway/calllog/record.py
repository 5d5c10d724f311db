"""One client call as it is written to `api_logs`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from routing.call import Attempt as AttemptRecord

__all__ = ["AttemptRecord", "CallRecord"]


@dataclass(frozen=True, slots=True)
class CallRecord:
    """Everything the call log keeps about one client call. Never holds a secret."""

    request_id: str
    started_at: float  # unix seconds
    model_id: str
    provider: str
    deployment: str
    stream: bool
    status_code: int
    latency_ms: float
    error: str = ""
    ttft_ms: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0
    finish_reason: str = ""
    attempts: tuple[AttemptRecord, ...] = ()
    fallback_used: bool = False
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    user_id: str = ""
    session_id: str = ""
    api_key_name: str = ""
    client_ip: str = ""
    endpoint: str = "/v1/chat/completions"
    prompt: str | None = None  # JSON of the messages; None when LOG_CONTENT=false
    response: str | None = None  # assembled response text; None when LOG_CONTENT=false
    metadata: dict[str, Any] = field(default_factory=dict)
    routing_reason: str = ""  # weighted, local, affinity, spill:queue, spill:kv, fallback ("" before routing)
