"""Every process setting in one typed object, read once at start-up from the environment and `.env`.

`load_env` is the one place `.env` is read. `Settings.from_env` validates every variable the gateway knows
(gateway/envvars.py: one boolean parser, ranges checked, one error line naming the variable and the fix) and
groups them: routing bounds, retry, breaker, access, call log (gateway/calllog/settings.py), Maps, server, and
the forward proxies upstream calls take (HTTPS_PROXY / HTTP_PROXY / NO_PROXY, routing/upstream/proxy.py).
The mapping itself stays on `settings.env`: the config files expand `${VAR}` from it. A reload (SIGHUP or
`POST /routing {"reload": true}`) re-reads the config files, not the environment: a changed variable, in the
environment or in `.env`, takes a restart.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from dotenv import dotenv_values
from pydantic import Field, field_validator

from gateway.access import AccessConfigError, AccessPolicy
from gateway.budgets import read_budgets
from gateway.calllog.settings import StorageSettings
from gateway.envvars import EnvGroup, Flag, SettingsError, Words, read_env
from routing.limits.breaker import BreakerConfig
from routing.limits.spend import Budget
from routing.retry import DEFAULT_RETRY_ON, RETRYABLE_KINDS, RetryPolicy, parse_retry_on
from routing.upstream.proxy import Proxies

ROOT = Path(__file__).resolve().parent.parent
MAPS_URL = "https://maps.googleapis.com/maps/api/js"

__all__ = ["ROOT", "Settings", "SettingsError", "load_env"]


def load_env(root: Path = ROOT) -> dict[str, str]:
    """The environment with `.env` (at the repo root, then the working directory) underneath it."""
    env: dict[str, str] = {}
    for candidate in (root / ".env", Path.cwd() / ".env"):
        if candidate.is_file():
            env.update({k: v for k, v in dotenv_values(candidate).items() if v is not None})
    env.update(os.environ)
    return env


class _Env(EnvGroup):
    """The gateway's variables (the call log's are in gateway/calllog/settings.py)."""

    models_config: str = Field("", alias="MODELS_CONFIG")
    routing_config: str = Field("", alias="ROUTING_CONFIG")
    max_body_bytes: int = Field(20 * 1024 * 1024, alias="MAX_BODY_BYTES", ge=1)
    max_header_bytes: int = Field(32 * 1024, alias="MAX_HEADER_BYTES", ge=1024)
    max_attempts: int = Field(3, alias="ROUTER_MAX_ATTEMPTS", ge=1)
    deadline: float = Field(600.0, alias="ROUTER_DEADLINE", gt=0)
    queue_timeout: float = Field(5.0, alias="ROUTER_QUEUE_TIMEOUT", ge=0)
    retry_on: str = Field(
        "",
        alias="ROUTER_RETRY_ON",
        description=f"a comma list of {', '.join(RETRYABLE_KINDS)} (or `none`)",
    )
    backoff_base: float = Field(0.05, alias="ROUTER_BACKOFF_BASE", ge=0)
    backoff_cap: float = Field(2.0, alias="ROUTER_BACKOFF_CAP", ge=0)
    keepalive_interval: float = Field(3.0, alias="STREAM_KEEPALIVE_SECONDS", ge=0.05)
    pool_size: int = Field(0, alias="UPSTREAM_POOL_SIZE", ge=0)
    version: str = Field("0.1.0", alias="GIT_SHA")
    cors_origins: Words = Field((), alias="CORS_ORIGINS")
    max_streams_per_client: int = Field(64, alias="MAX_STREAMS_PER_CLIENT", ge=0)
    circuit_failures: int = Field(3, alias="CIRCUIT_FAILURE_THRESHOLD", ge=1)
    circuit_error_rate: float = Field(0.5, alias="CIRCUIT_ERROR_RATE", gt=0, le=1)
    circuit_min_calls: int = Field(10, alias="CIRCUIT_MIN_CALLS", ge=1)
    circuit_window: float = Field(60.0, alias="CIRCUIT_WINDOW_SECONDS", gt=0)
    circuit_cooldown: float = Field(30.0, alias="CIRCUIT_COOLDOWN_SECONDS", ge=0)
    client_rpm: int = Field(0, alias="CLIENT_RPM", ge=0)
    client_tpm: int = Field(0, alias="CLIENT_TPM", ge=0)
    redis_url: str = Field("", alias="REDIS_URL")
    redis_fail: Literal["open", "closed"] = Field("open", alias="REDIS_FAIL")
    rate_limit_prefix: str = Field("gw:rl", alias="RATE_LIMIT_PREFIX")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field("INFO", alias="LOG_LEVEL")
    log_format: Literal["json", "text"] = Field("json", alias="LOG_FORMAT")
    offload: Flag = Field(False, alias="OFFLOAD")
    metrics_public: Flag = Field(False, alias="METRICS_PUBLIC")
    metrics_enabled: Flag = Field(True, alias="METRICS_ENABLED")
    api_keys: str = Field("", alias="GATEWAY_API_KEYS", repr=False)
    keys_file: str = Field("", alias="GATEWAY_KEYS_FILE")
    budgets: str = Field("", alias="GATEWAY_BUDGETS")
    admin_key: str = Field("", alias="ADMIN_API_KEY", repr=False)
    maps_key: str = Field("", alias="GOOGLE_MAPS_API_KEY", repr=False)
    maps_url: str = Field(MAPS_URL, alias="MAPS_API_URL")
    maps_cache_seconds: float = Field(3600.0, alias="MAPS_CACHE_SECONDS", ge=0)
    host: str = Field("0.0.0.0", alias="HOST")
    port: int = Field(8080, alias="PORT", ge=0, le=65535)
    workers: int = Field(1, alias="WORKERS", ge=1)
    graceful_timeout: float = Field(30.0, alias="GRACEFUL_TIMEOUT", ge=0)
    forwarded_allow_ips: str = Field("", alias="FORWARDED_ALLOW_IPS")
    head_timeout: float = Field(10.0, alias="REQUEST_HEAD_TIMEOUT", gt=0)
    keepalive_timeout: float = Field(5.0, alias="KEEPALIVE_TIMEOUT", gt=0)
    max_connections: int = Field(2048, alias="MAX_CONNECTIONS", ge=0)
    allowed_hosts: Words = Field(("localhost", "127.0.0.1", "[::1]"), alias="ALLOWED_HOSTS")
    retry_after_cap: float = Field(3600.0, alias="RETRY_AFTER_CAP", gt=0)
    max_logged_text: int = Field(65536, alias="CALL_LOG_MAX_TEXT", ge=0)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", "redis_fail", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("retry_on")
    @classmethod
    def _retry_on(cls, value: str) -> str:
        parse_retry_on(value)  # ValueError names the bad entry
        return value


@dataclass(frozen=True, slots=True)
class MapsSettings:
    """The Google Maps script proxy (GET /maps/api.js); off without a key."""

    key: str = field(default="", repr=False)
    url: str = MAPS_URL
    cache_seconds: float = 3600.0


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Where `gateway serve` listens and how it stops."""

    host: str = "0.0.0.0"
    port: int = 8080
    workers: int = 1
    graceful_timeout: float = 30.0
    forwarded_allow_ips: str = ""
    head_timeout: float = 10.0  # seconds to receive a whole request head (slowloris)
    keepalive_timeout: float = 5.0  # seconds an idle keep-alive connection stays open
    max_connections: int = 2048  # concurrent connections and tasks per worker; 503 above (0 = no limit)


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
    redis_url: str = ""
    redis_fail_closed: bool = False  # REDIS_FAIL=closed: rate limits refuse (503) while Redis is unreachable
    rate_limit_prefix: str = "gw:rl"
    log_level: str = "INFO"
    log_format: str = "json"
    access: AccessPolicy = field(default_factory=AccessPolicy)
    storage: StorageSettings = field(default_factory=lambda: StorageSettings(backend="disabled"))
    maps: MapsSettings = field(default_factory=MapsSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    proxies: Proxies = field(default_factory=Proxies)
    allowed_hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "[::1]")
    retry_after_cap: float = 3600.0
    max_logged_text: int = 65536  # characters of prompt and of response a row keeps (head and tail); 0 = all
    budgets: tuple[Budget, ...] = ()  # spend budgets per client key name (GATEWAY_BUDGETS, keys file column)
    metrics_enabled: bool = True  # false: calls are not counted in /metrics (the benchmark's metrics-off row)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, root: Path = ROOT) -> Settings:
        """Validate every variable of `env` (default: the process environment over `.env`); SettingsError names
        the first bad one."""
        env = dict(load_env(root) if env is None else env)
        e = read_env(_Env, env)
        storage = StorageSettings.from_env(env, root)
        try:
            access = AccessPolicy.build(e.api_keys, e.keys_file, e.admin_key, e.metrics_public, e.host)
            budgets = read_budgets(e.budgets, e.keys_file, (name for name, _ in access.client_keys))
        except AccessConfigError as exc:
            raise SettingsError(str(exc)) from None
        try:
            proxies = Proxies.from_env(env)
        except ValueError as exc:
            raise SettingsError(f"environment variable {exc}. Fix: write http://[user:pass@]host:port") from None
        return cls(
            env=env,
            root=root,
            models_path=_path(e.models_config, root / "config" / "models.yaml"),
            routing_path=_path(e.routing_config, root / "config" / "routing.yaml"),
            max_body_bytes=e.max_body_bytes,
            max_attempts=e.max_attempts,
            deadline=e.deadline,
            keepalive_interval=e.keepalive_interval,
            log_content=storage.log_content,
            pool_size=e.pool_size,
            version=e.version,
            cors_origins=e.cors_origins,
            max_header_bytes=e.max_header_bytes,
            max_streams_per_client=e.max_streams_per_client,
            breaker=BreakerConfig(
                consecutive_failures=e.circuit_failures,
                failure_rate=e.circuit_error_rate,
                min_calls=e.circuit_min_calls,
                window=e.circuit_window,
                cooldown=e.circuit_cooldown,
            ),
            retry=RetryPolicy(
                base=e.backoff_base,
                cap=e.backoff_cap,
                retry_on=parse_retry_on(e.retry_on) if e.retry_on else DEFAULT_RETRY_ON,
            ),
            client_rpm=e.client_rpm,
            client_tpm=e.client_tpm,
            queue_timeout=e.queue_timeout,
            redis_url=e.redis_url,
            redis_fail_closed=e.redis_fail == "closed",
            rate_limit_prefix=e.rate_limit_prefix,
            metrics_enabled=e.metrics_enabled,
            log_level=e.log_level,
            log_format=e.log_format,
            access=access,
            storage=storage,
            maps=MapsSettings(e.maps_key, e.maps_url, e.maps_cache_seconds),
            server=ServerSettings(
                e.host,
                e.port,
                e.workers,
                e.graceful_timeout,
                e.forwarded_allow_ips,
                e.head_timeout,
                e.keepalive_timeout,
                e.max_connections,
            ),
            proxies=proxies,
            allowed_hosts=tuple(h.lower() for h in e.allowed_hosts),
            retry_after_cap=e.retry_after_cap,
            max_logged_text=e.max_logged_text,
            budgets=budgets,
        )


def _path(value: str, default: Path) -> Path:
    """A configured file: absolute as given, relative to the working directory, or the default."""
    if not value:
        return default
    path = Path(value)
    return path if path.is_absolute() else Path.cwd() / path
