"""A call: one client request, with its attempts, as the executor fills it in for the log and metrics."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from routing.config.schema import DeploymentConfig


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
    text: list[str] = field(default_factory=list)
    cancelled: bool = False
    priority: str = "normal"  # X-Priority: high, normal, low
    session: str = ""  # X-Session-Id / x-claude-code-session-id, for affinity
    routing_reason: str = ""  # why the serving deployment was chosen: weighted, local, affinity, spill:*, fallback

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
