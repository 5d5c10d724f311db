"""Process settings from the environment and `.env`, read once at start-up."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values

from routing.limits.breaker import BreakerConfig
from routing.retry import DEFAULT_RETRY_ON, RETRYABLE_KINDS, RetryPolicy, parse_retry_on

ROOT = Path(__file__).resolve().parent.parent
TRUE = {"1", "true", "yes", "on"}


def load_env(root: Path = ROOT) -> dict[str, str]:
    """The environment with `.env` (at the repo root or the working directory) underneath it."""
    env: dict[str, str] = {}
    for candidate in (root / ".env", Path.cwd() / ".env"):
        if candidate.is_file():
            env.update({k: v for k, v in dotenv_values(candidate).items() if v is not None})
    env.update(os.environ)
    return env


@dataclass(frozen=True, slots=True)
class Settings:
    """What the gateway process is configured with (the config files hold the models)."""

    env: Mapping[str, str] = field(repr=False)
    root: Path = ROOT
    models_path: Path = ROOT / "config" / "models.yaml"
    routing_path: Path = ROOT / "config" / "routing.yaml"
    max_body_bytes: int = 20 * 1024 * 1024
    max_attempts: int = 3
    deadline: float = 600.0
    keepalive_interval: float = 3.0
    log_content: bool = True
    pool_size: int = 0
    version: str = "0.1.0"
    cors_origins: tuple[str, ...] = ()
    max_header_bytes: int = 32 * 1024
    max_streams_per_client: int = 64
    breaker: BreakerConfig = field(default_factory=BreakerConfig)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    client_rpm: int = 0
    client_tpm: int = 0
    queue_timeout: float = 5.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, root: Path = ROOT) -> Settings:
        env = dict(load_env(root) if env is None else env)

        def path(name: str, default: Path) -> Path:
            value = env.get(name)
            if not value:
                return default
            p = Path(value)
            return p if p.is_absolute() else (Path.cwd() / p)

        def number(name: str, default: float) -> float:
            value = env.get(name, "").strip()
            try:
                return float(value) if value else default
            except ValueError:
                raise ValueError(
                    f"environment variable {name}={value!r} must be a number. Fix: write a plain number, or unset it"
                ) from None

        def seconds(name: str, default: float) -> float:
            value = number(name, default)
            if not math.isfinite(value) or value < 0:
                raise ValueError(
                    f"environment variable {name}={env.get(name)!r} must be a number of seconds >= 0. "
                    f"Fix: set {name} to e.g. {default:g}, or unset it for the default"
                )
            return value

        def retry_policy() -> RetryPolicy:
            value = env.get("ROUTER_RETRY_ON", "").strip()
            try:
                kinds = parse_retry_on(value) if value else DEFAULT_RETRY_ON
            except ValueError as exc:
                raise ValueError(
                    f"environment variable ROUTER_RETRY_ON={value!r}: {exc}. Fix: a comma list of "
                    f"{', '.join(RETRYABLE_KINDS)} (or `none`), or unset it to retry all of them"
                ) from None
            base, cap = seconds("ROUTER_BACKOFF_BASE", 0.05), seconds("ROUTER_BACKOFF_CAP", 2.0)
            return RetryPolicy(base=base, cap=cap, retry_on=kinds)

        return cls(
            env=env,
            root=root,
            models_path=path("MODELS_CONFIG", root / "config" / "models.yaml"),
            routing_path=path("ROUTING_CONFIG", root / "config" / "routing.yaml"),
            max_body_bytes=int(number("MAX_BODY_BYTES", 20 * 1024 * 1024)),
            max_attempts=max(1, int(number("ROUTER_MAX_ATTEMPTS", 3))),
            deadline=number("ROUTER_DEADLINE", 600.0),
            keepalive_interval=max(0.05, number("STREAM_KEEPALIVE_SECONDS", 3.0)),
            log_content=env.get("LOG_CONTENT", "true").strip().lower() in TRUE,
            pool_size=int(number("UPSTREAM_POOL_SIZE", 0)),
            version=env.get("GIT_SHA", "") or "0.1.0",
            cors_origins=tuple(o.strip() for o in env.get("CORS_ORIGINS", "").split(",") if o.strip()),
            max_header_bytes=int(number("MAX_HEADER_BYTES", 32 * 1024)),
            max_streams_per_client=int(number("MAX_STREAMS_PER_CLIENT", 64)),
            breaker=BreakerConfig(
                consecutive_failures=int(number("CIRCUIT_FAILURE_THRESHOLD", 3)),
                failure_rate=number("CIRCUIT_ERROR_RATE", 0.5),
                min_calls=int(number("CIRCUIT_MIN_CALLS", 10)),
                window=number("CIRCUIT_WINDOW_SECONDS", 60.0),
                cooldown=number("CIRCUIT_COOLDOWN_SECONDS", 30.0),
            ),
            client_rpm=int(number("CLIENT_RPM", 0)),
            client_tpm=int(number("CLIENT_TPM", 0)),
            queue_timeout=number("ROUTER_QUEUE_TIMEOUT", 5.0),
            retry=retry_policy(),
        )
