"""A call: one client request, with its attempts, as the executor fills it in for the log and metrics."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from routing.config.schema import DeploymentConfig
from routing.transcript import Transcript

if TYPE_CHECKING:
    from routing.limits.spending import CallSpend
    from routing.tracing import CallTrace


@dataclass(frozen=True, slots=True)
class Attempt:
    """One upstream try within a call."""

    deployment: str
    provider: str
    outcome: str  # ok, error, timeout, rate_limited, client_error, cancelled, skipped
    status_code: int | None
    duration_ms: float
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "provider": self.provider,
            "outcome": self.outcome,
            "status_code": self.status_code,
            "duration_ms": round(self.duration_ms, 3),
            "error": self.error,
        }


@dataclass(slots=True)
class Call:
    """Mutable state of one call while it runs."""

    request_id: str
    model_id: str
    stream: bool
    started: float = field(default_factory=time.perf_counter)
    started_wall: float = field(default_factory=time.time)
    attempts: list[Attempt] = field(default_factory=list)
    deployment: DeploymentConfig | None = None
    first_token_at: float | None = None
    upstream_wait: float = 0.0
    usage: dict[str, Any] | None = None
    finish_reason: str = ""
    texts: dict[int, Transcript] = field(default_factory=dict)  # each choice's text, bounded for the row, by index
    text_cap: int = 0  # characters each choice's transcript holds (CALL_LOG_MAX_TEXT); 0: all
    cancelled: bool = False
    completions: str = ""  # a legacy completions call: `native` or `translated`, as the serving deployment did it
    system_fingerprint: str | None = None  # the upstream's, once a chunk named it: later chunks carry it too
    priority: str = "normal"  # X-Priority: high, normal, low
    session: str = ""  # X-Session-Id / x-claude-code-session-id, for affinity
    routing_reason: str = ""  # why the serving deployment was chosen: weighted, local, affinity, spill:*, fallback
    spend: CallSpend | None = None  # the client key's budget, when it has one: each attempt reserves against it
    response_model: str = ""  # the `model` the serving upstream named in its answer
    trace: CallTrace | None = None  # the call's spans, when the gateway traces (routing/tracing.py)

    def add_text(self, index: int, piece: str) -> None:
        transcript = self.texts.get(index)
        if transcript is None:
            transcript = self.texts[index] = Transcript(self.text_cap)
        transcript.append(piece)

    def text(self, index: int = 0) -> str:
        """The text of one choice so far (its head and tail around a cut mark, past `text_cap`)."""
        transcript = self.texts.get(index)
        return transcript.text() if transcript is not None else ""

    @property
    def text_chars(self) -> int:
        """Characters relayed, every choice together (what was cut included)."""
        return sum(t.length for t in self.texts.values())

    @property
    def text_cut(self) -> bool:
        return any(t.cut for t in self.texts.values())

    def estimate_text_tokens(self) -> int:
        """Completion tokens of what was relayed, every choice together (adapters.tokens' rule)."""
        return sum(t.estimate_tokens() for t in self.texts.values())

    @property
    def ttft_ms(self) -> float | None:
        return None if self.first_token_at is None else (self.first_token_at - self.started) * 1000.0

    @property
    def fallback_used(self) -> bool:
        return sum(1 for a in self.attempts if a.outcome != "skipped") > 1

    def add_skip(self, dep: DeploymentConfig, reason: str) -> None:
        """A deployment passed over without a request: its circuit was open, it was full or rate-limited."""
        self.attempts.append(Attempt(dep.name, dep.provider, "skipped", None, 0.0, reason))

    def add_attempt(
        self, dep: DeploymentConfig, outcome: str, status: int | None, began: float, error: str = ""
    ) -> None:
        self.attempts.append(
            Attempt(dep.name, dep.provider, outcome, status, (time.perf_counter() - began) * 1000, error)
        )
        if self.trace is not None:
            self.trace.attempt_ended(outcome, status)
